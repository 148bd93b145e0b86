package rollout

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kup-project/kup/internal/capacity"
)

// gateHold is how long, with Options.Continuous, a wave's health gate may
// stay unmet before kup stops admitting nodes until it is met. Admitting
// while a gate waits is what makes continuous admission fast, but a
// workload under steady pressure (a PDB whose budget is spent again as
// soon as it returns) may never look as available as it did when the wave
// started; pausing admission lets it recover, so the gate judges the
// upgrade, not the pressure.
const gateHold = 30 * time.Second

// pendingBudgets returns pdbs with each one's disruptionsAllowed lowered by
// the pods of it still to be evicted from nodes whose drain is under way:
// those evictions are already promised to the drains in flight. Planning
// with the budgets as listed would let a new node take the same units, and
// one of the two drains would then meet 429s. The objects in pdbs are not
// changed; a PDB with nothing pending is returned as it is.
//
// A pod counts once it is listed on a draining node and not terminating
// (its eviction not yet accepted). Read by LIST, pods come before PDBs,
// so an eviction accepted in between is counted twice rather than not at
// all. From the live cache the two may be a moment apart either way: a
// unit counted once too few lets a drain meet a 429, which it waits out
// (the Eviction API, not this count, keeps every PDB whole).
func pendingBudgets(pdbs []*policyv1.PodDisruptionBudget, pods []*corev1.Pod, draining map[string]bool) []*policyv1.PodDisruptionBudget {
	if len(draining) == 0 {
		return pdbs
	}
	byNS := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if draining[p.Spec.NodeName] && capacity.DrainFate(p).Evicted() {
			byNS[p.Namespace] = append(byNS[p.Namespace], p)
		}
	}
	if len(byNS) == 0 {
		return pdbs
	}
	out := make([]*policyv1.PodDisruptionBudget, len(pdbs))
	for i, pdb := range pdbs {
		out[i] = pdb
		pending := 0
		// As the eviction API matches: an invalid selector matches
		// nothing, policy/v1's nil selector nothing (LabelSelectorAsSelector
		// gives labels.Nothing), an empty one all.
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			continue
		}
		for _, p := range byNS[pdb.Namespace] {
			if sel.Matches(labels.Set(p.Labels)) {
				pending++
			}
		}
		if pending == 0 {
			continue
		}
		c := pdb.DeepCopy()
		c.Status.DisruptionsAllowed = max(c.Status.DisruptionsAllowed-int32(pending), 0)
		out[i] = c
	}
	return out
}

// hasTaint says whether n carries a taint with key.
func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

// wakeOnBudgetGrowth lets the live cache wake the loop when a budget
// grows; only the benchmark turns it off, to measure what it brings.
var wakeOnBudgetGrowth = true

// drainFromCache lets drains wait for evicted pods on the live cache
// (drain.Options.PodsOn); only the benchmark turns it off, to measure
// what it brings.
var drainFromCache = true

// cacheSyncTimeout bounds the live cache's first sync; a variable only
// for TestRolloutNarrowKubeconfig.
var cacheSyncTimeout = 2 * time.Minute

// liveCache keeps what read lists in informers, so that the frequent looks
// of continuous admission cost no request and no decoding: on the
// 200-node benchmark a look every half second LISTed 4,000 pods each time,
// on a machine whose two cores the control plane already keeps busy.
type liveCache struct {
	factory informers.SharedInformerFactory
	nodes   corelisters.NodeLister
	pods    corelisters.PodLister
	pdbs    policylisters.PodDisruptionBudgetLister
	deps    appslisters.DeploymentLister
	sts     appslisters.StatefulSetLister
	dss     appslisters.DaemonSetLister

	// watchErr is the first watch the API server forbade: an informer
	// that may list but not watch syncs from its LIST and then never
	// changes, so the looks would plan on a cluster frozen at the start.
	mu       sync.Mutex
	watchErr error

	// podsByNode indexes the pod informer by spec.nodeName, for the
	// drains' wait for evicted pods to go (drain.Options.PodsOn).
	podsByNode cache.Indexer
	// stopped: the informers are shut down, and the cache no longer
	// follows the cluster.
	stopped atomic.Bool
}

// podNodeIndex names the pod informer's index by spec.nodeName.
const podNodeIndex = "spec.nodeName"

// podsOn is drain.Options.PodsOn: the pods bound to node, from the
// informer. It cannot answer once the cache is stopped or its watch was
// forbidden (it no longer changes).
func (l *liveCache) podsOn(node string) ([]*corev1.Pod, bool) {
	if l.stopped.Load() || l.err() != nil {
		return nil, false
	}
	objs, err := l.podsByNode.ByIndex(podNodeIndex, node)
	if err != nil {
		return nil, false
	}
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			pods = append(pods, p)
		}
	}
	return pods, true
}

// err is why the cache cannot be trusted (nil when it can).
func (l *liveCache) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.watchErr
}

// startLiveCache starts the informers and waits for them to sync. When a
// PDB's disruptionsAllowed grows it signals r.progress: a budget coming
// back is what a waiting node needs, and hearing of it at once saves up to
// a look's interval on every turn of the tightest budgets, which set the
// pace. The caller stops it by cancelling ctx, then calling stop.
func (r *Roller) startLiveCache(ctx context.Context) (*liveCache, error) {
	f := informers.NewSharedInformerFactory(r.Client, 0)
	podInf := f.Core().V1().Pods().Informer()
	// kup never reads managedFields; dropping them halves a pod's size in
	// the cache.
	if err := podInf.SetTransform(func(o any) (any, error) {
		if p, ok := o.(*corev1.Pod); ok {
			p.ManagedFields = nil
		}
		return o, nil
	}); err != nil {
		return nil, err
	}
	if err := podInf.AddIndexers(cache.Indexers{podNodeIndex: func(o any) ([]string, error) {
		if p, ok := o.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, err
	}
	pdbInf := f.Policy().V1().PodDisruptionBudgets().Informer()
	if wakeOnBudgetGrowth {
		if _, err := pdbInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(old, cur any) {
				o, ok1 := old.(*policyv1.PodDisruptionBudget)
				c, ok2 := cur.(*policyv1.PodDisruptionBudget)
				if ok1 && ok2 && c.Status.DisruptionsAllowed > o.Status.DisruptionsAllowed {
					r.signal()
				}
			},
		}); err != nil {
			return nil, err
		}
	}
	l := &liveCache{
		factory: f,
		nodes:   f.Core().V1().Nodes().Lister(),
		pods:    f.Core().V1().Pods().Lister(),
		pdbs:    f.Policy().V1().PodDisruptionBudgets().Lister(),
		deps:    f.Apps().V1().Deployments().Lister(),
		sts:     f.Apps().V1().StatefulSets().Lister(),
		dss:     f.Apps().V1().DaemonSets().Lister(),

		podsByNode: podInf.GetIndexer(),
	}
	// A forbidden watch is not retried into success: record it, so that
	// read stops using the cache. Other watch errors (an apiserver
	// restarting) the reflector rides out as usual.
	for typ, inf := range map[string]cache.SharedIndexInformer{
		"nodes": f.Core().V1().Nodes().Informer(), "pods": podInf, "PodDisruptionBudgets": pdbInf,
		"deployments": f.Apps().V1().Deployments().Informer(), "statefulsets": f.Apps().V1().StatefulSets().Informer(), "daemonsets": f.Apps().V1().DaemonSets().Informer(),
	} {
		if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, rf *cache.Reflector, err error) {
			if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
				l.mu.Lock()
				if l.watchErr == nil {
					l.watchErr = fmt.Errorf("watching %s: %w", typ, err)
				}
				l.mu.Unlock()
			}
			cache.DefaultWatchErrorHandler(ctx, rf, err)
		}); err != nil {
			return nil, err
		}
	}
	f.Start(ctx.Done())
	// An informer whose LIST keeps failing (an API server too loaded to
	// answer, a resource it may list but not in every namespace) retries
	// for ever; the deadline turns that into an error naming the type.
	// One that may list but not watch does sync: see watchErr.
	syncCtx, cancel := context.WithTimeout(ctx, cacheSyncTimeout)
	defer cancel()
	for typ, ok := range f.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			// The caller's cancelling ctx stops the informers (Shutdown
			// would wait for that).
			return nil, fmt.Errorf("the informer cache of %v did not sync within %s", typ, cacheSyncTimeout)
		}
	}
	return l, nil
}

// stop ends the informers: cancel is their context's. The cache stops
// answering podsOn before they stop following the cluster.
func (l *liveCache) stop(cancel context.CancelFunc) {
	l.stopped.Store(true)
	cancel()
	l.factory.Shutdown()
}

// snapshot is the cache's content now. Nodes are copies (they go to the
// upgrader); everything else is the informers' own objects, which nothing
// in the rollout changes.
func (l *liveCache) snapshot() *clusterState {
	// Listers over a synced cache do not fail.
	all := labels.Everything()
	nodes, _ := l.nodes.List(all)
	for i, n := range nodes {
		nodes[i] = n.DeepCopy()
	}
	// In a LIST's order (by namespace and name), so the planner breaks
	// ties as it does on a read from the apiserver.
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	pods, _ := l.pods.List(all)
	slices.SortFunc(pods, func(a, b *corev1.Pod) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	pdbs, _ := l.pdbs.List(all)
	slices.SortFunc(pdbs, func(a, b *policyv1.PodDisruptionBudget) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	deps, _ := l.deps.List(all)
	sts, _ := l.sts.List(all)
	dss, _ := l.dss.List(all)
	return newState(nodes, pods, pdbs, deps, sts, dss)
}
