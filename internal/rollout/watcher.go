package rollout

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Watcher independently observes PodDisruptionBudgets and Deployments
// while something else disrupts the cluster, and records every moment a
// budget was violated (fewer healthy pods than it requires) and the worst
// availability each PDB-protected Deployment reached. It shares no state
// with the rollout: tests and benchmarks use it as the referee.
type Watcher struct {
	mu         sync.Mutex
	violated   map[string]bool // PDB currently violated
	violations []Violation
	worst      map[string]float64 // Deployment → lowest available/desired seen
	ignored    map[string]bool    // Deployments not fully available when first seen
	protected  map[string]bool    // Deployments some PDB names (by namespace)
	stop       context.CancelFunc
	done       chan struct{}
}

// Violation is one moment a PDB had fewer healthy pods than it requires.
type Violation struct {
	PDB            string    `json:"pdb"`
	Time           time.Time `json:"time"`
	CurrentHealthy int32     `json:"currentHealthy"`
	DesiredHealthy int32     `json:"desiredHealthy"`
}

// Watch starts watching; call Stop to end it and read the findings.
func Watch(ctx context.Context, cs kubernetes.Interface) (*Watcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{violated: map[string]bool{}, worst: map[string]float64{}, ignored: map[string]bool{}, protected: map[string]bool{}, stop: cancel, done: make(chan struct{})}
	f := informers.NewSharedInformerFactory(cs, 0)
	pdbs := f.Policy().V1().PodDisruptionBudgets().Informer()
	deps := f.Apps().V1().Deployments().Informer()
	if _, err := pdbs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.pdb(o) },
		UpdateFunc: func(_, o any) { w.pdb(o) },
	}); err != nil {
		cancel()
		return nil, err
	}
	if _, err := deps.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.deployment(o) },
		UpdateFunc: func(_, o any) { w.deployment(o) },
	}); err != nil {
		cancel()
		return nil, err
	}
	f.Start(ctx.Done())
	synced := f.WaitForCacheSync(ctx.Done())
	for typ, ok := range synced {
		if !ok {
			cancel()
			return nil, fmt.Errorf("watcher: cache of %v did not sync", typ)
		}
	}
	go func() { <-ctx.Done(); f.Shutdown(); close(w.done) }()
	return w, nil
}

func (w *Watcher) pdb(o any) {
	p, ok := o.(*policyv1.PodDisruptionBudget)
	if !ok || p.Status.ObservedGeneration < p.Generation {
		return
	}
	key := p.Namespace + "/" + p.Name
	bad := p.Status.CurrentHealthy < p.Status.DesiredHealthy
	w.mu.Lock()
	defer w.mu.Unlock()
	w.protected[p.Namespace] = true
	if bad && !w.violated[key] {
		w.violations = append(w.violations, Violation{PDB: key, Time: time.Now(), CurrentHealthy: p.Status.CurrentHealthy, DesiredHealthy: p.Status.DesiredHealthy})
	}
	w.violated[key] = bad
}

func (w *Watcher) deployment(o any) {
	d, ok := o.(*appsv1.Deployment)
	if !ok || d.Spec.Replicas == nil || *d.Spec.Replicas == 0 {
		return
	}
	ratio := float64(d.Status.AvailableReplicas) / float64(*d.Spec.Replicas)
	key := d.Namespace + "/" + d.Name
	w.mu.Lock()
	defer w.mu.Unlock()
	// Judge only workloads that were fully available when first seen: a
	// Deployment that was already down (a crash loop) says nothing about
	// what the rollout did.
	if _, seen := w.worst[key]; !seen && ratio < 1 {
		w.ignored[key] = true
	}
	if w.ignored[key] {
		return
	}
	if cur, ok := w.worst[key]; !ok || ratio < cur {
		w.worst[key] = ratio
	}
}

// Stop ends the watch.
func (w *Watcher) Stop() {
	w.stop()
	<-w.done
}

// Violations are the moments a PDB was violated (a PDB counts again only
// after it recovered).
func (w *Watcher) Violations() []Violation {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Violation(nil), w.violations...)
}

// WorstAvailability is the lowest available/desired ratio any Deployment
// that was fully available when the watch began reached, and which one.
func (w *Watcher) WorstAvailability() (float64, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := make([]string, 0, len(w.worst))
	for k := range w.worst {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	worst, which := 1.0, ""
	for _, k := range keys {
		if r := w.worst[k]; r < worst {
			worst, which = r, k
		}
	}
	return worst, which
}
