package rehearse

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Failure is an object the twin refused, with the apiserver's reason.
type Failure struct {
	Key    string `json:"object"`
	Reason string `json:"reason"`
}

// Built is what Build wrote to the twin.
type Built struct {
	Nodes int `json:"nodes"`
	// Written counts created objects by kind; Present those the twin had
	// already (its own kube-system objects, default namespaces…).
	Written map[string]int `json:"written"`
	Present map[string]int `json:"present"`
	Failed  []Failure      `json:"failed,omitempty"`
	// NotSettled names workloads that did not reach the real cluster's
	// availability before the deadline.
	NotSettled []string      `json:"notSettled,omitempty"`
	Took       time.Duration `json:"took"`
}

// Twin is the sandbox to write to: a typed and a dynamic client. Build is
// never handed the real cluster.
type Twin struct {
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
}

// BuildOptions tune Build.
type BuildOptions struct {
	// Delays are per-workload pod ready delays ("Deployment ns/name" →
	// delay), written as ReadyDelayAnnotation on the pod templates.
	Delays map[string]time.Duration
	// SettleTimeout bounds the wait for workloads to match the real
	// cluster's availability (default 5 minutes).
	SettleTimeout time.Duration
	Progress      func(format string, args ...any)
}

// Build writes src into the twin: nodes, then every object in order
// (waiting for CRDs to be established before their resources), then
// waits until the nodes are Ready and the workloads as available as in
// the real cluster. Objects the twin refuses are recorded, not fatal: the
// rehearsal continues with what could be written.
func Build(ctx context.Context, twin Twin, src *Source, opts BuildOptions) (*Built, error) {
	start := time.Now()
	progress := opts.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	b := &Built{Written: map[string]int{}, Present: map[string]int{}}
	var mu sync.Mutex
	fail := func(key string, err error) {
		mu.Lock()
		b.Failed = append(b.Failed, Failure{Key: key, Reason: err.Error()})
		mu.Unlock()
	}

	progress("creating %d kwok nodes with the real nodes' names, labels, taints, capacity and kubelet versions", len(src.Nodes))
	if err := parallel(ctx, len(src.Nodes), 16, func(ctx context.Context, i int) error {
		n := TwinNode(&src.Nodes[i])
		_, err := twin.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		switch {
		case err == nil:
			mu.Lock()
			b.Nodes++
			mu.Unlock()
		case apierrors.IsAlreadyExists(err):
		default:
			fail("Node "+n.Name, err)
		}
		return ctx.Err()
	}); err != nil {
		return b, err
	}

	// Group by write rank and write each group in parallel.
	var groups [][]Object
	for i, o := range src.Objects {
		if i == 0 || writeRank(o.Kind) != writeRank(src.Objects[i-1].Kind) {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], o)
	}
	for _, g := range groups {
		kind := g[0].Kind
		progress("writing %d %s(s)", len(g), kind.Kind)
		if err := parallel(ctx, len(g), 8, func(ctx context.Context, i int) error {
			o := g[i]
			obj := o.Obj.DeepCopy()
			setDelay(obj, o.Kind.Kind, opts.Delays)
			err := create(ctx, twin.Dynamic, o.Kind, obj)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				b.Written[o.Kind.Kind]++
			case apierrors.IsAlreadyExists(err):
				b.Present[o.Kind.Kind]++
			default:
				b.Failed = append(b.Failed, Failure{Key: o.Key(), Reason: err.Error()})
			}
			return ctx.Err()
		}); err != nil {
			return b, err
		}
		if kind.Kind == "CustomResourceDefinition" {
			if err := waitEstablished(ctx, twin.Dynamic, g, fail); err != nil {
				return b, err
			}
		}
		if kind.Kind == "ResourceQuota" {
			if err := waitQuotasObserved(ctx, twin.Dynamic, g); err != nil {
				return b, err
			}
		}
	}
	sort.Slice(b.Failed, func(i, j int) bool { return b.Failed[i].Key < b.Failed[j].Key })

	timeout := opts.SettleTimeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	progress("waiting up to %s for the nodes to be Ready and the workloads as available as in the real cluster", timeout)
	b.NotSettled = settle(ctx, twin, src, timeout)
	resyncBudgets(ctx, twin, progress)
	b.Took = time.Since(start)
	return b, ctx.Err()
}

// create writes one object, retrying what a fresh namespace refuses for a
// moment (its default ServiceAccount not made yet).
func create(ctx context.Context, dyn dynamic.Interface, k Kind, obj *unstructured.Unstructured) error {
	var ri dynamic.ResourceInterface = dyn.Resource(k.GVR)
	if k.Namespaced {
		ri = dyn.Resource(k.GVR).Namespace(obj.GetNamespace())
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		_, err = ri.Create(ctx, obj, metav1.CreateOptions{FieldManager: "kup-rehearse"})
		if err == nil || apierrors.IsAlreadyExists(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
			return err
		}
		retry := apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsTimeout(err) ||
			(apierrors.IsForbidden(err) && strings.Contains(err.Error(), "serviceaccount")) ||
			(apierrors.IsNotFound(err) && k.Namespaced)
		if !retry {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return err
}

// ReadyDelayAnnotation on a pod (template) is how long the twin's kwok
// waits before reporting it Ready (the sandbox's pod-ready stage reads it).
const ReadyDelayAnnotation = "sandbox.kup.dev/ready-delay"

func setDelay(obj *unstructured.Unstructured, kind string, delays map[string]time.Duration) {
	d, ok := delays[Key(kind, obj)]
	if !ok {
		return
	}
	path := []string{"spec", "template", "metadata", "annotations"}
	if kind == "Pod" {
		path = []string{"metadata", "annotations"}
	} else if kind == "CronJob" {
		path = []string{"spec", "jobTemplate", "spec", "template", "metadata", "annotations"}
	}
	ann, _, _ := unstructured.NestedStringMap(obj.Object, path...)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[ReadyDelayAnnotation] = d.String()
	_ = unstructured.SetNestedStringMap(obj.Object, ann, path...)
}

func waitEstablished(ctx context.Context, dyn dynamic.Interface, crds []Object, fail func(string, error)) error {
	ri := dyn.Resource(gvr("apiextensions.k8s.io", "v1", "customresourcedefinitions"))
	deadline := time.Now().Add(time.Minute)
	pending := map[string]bool{}
	for _, o := range crds {
		pending[o.Obj.GetName()] = true
	}
	for len(pending) > 0 {
		for name := range pending {
			got, err := ri.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				delete(pending, name) // refused at create: already recorded
				continue
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					delete(pending, name)
				}
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for name := range pending {
				fail("CustomResourceDefinition "+name, errors.New("not Established after 1m: its custom resources will be refused"))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return nil
}

// waitQuotasObserved waits (up to 30 s) until the twin's quota controller
// has filled each written ResourceQuota's status.hard. Until then the
// apiserver's quota admission may not see the new quota at all (its
// informer lags, and a namespace it found without quotas is cached so
// for a while), and the objects written next would be admitted where
// production's quota refused them.
func waitQuotasObserved(ctx context.Context, dyn dynamic.Interface, quotas []Object) error {
	ri := dyn.Resource(gvr("", "v1", "resourcequotas"))
	deadline := time.Now().Add(30 * time.Second)
	for _, o := range quotas {
		for {
			got, err := ri.Namespace(o.Obj.GetNamespace()).Get(ctx, o.Obj.GetName(), metav1.GetOptions{})
			if err != nil {
				break // refused at create (recorded) or gone: nothing to wait for
			}
			if hard, _, _ := unstructured.NestedMap(got.Object, "status", "hard"); len(hard) > 0 {
				break
			}
			if time.Now().After(deadline) {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// settle waits until every twin node that should be Ready is, and every
// workload is as available as it was in the real cluster; it returns what
// did not get there before the timeout.
func settle(ctx context.Context, twin Twin, src *Source, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		var behind []string
		nodes, err := twin.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			want := 0
			for i := range src.Nodes {
				if NodeReady(&src.Nodes[i]) {
					want++
				}
			}
			ready := 0
			for i := range nodes.Items {
				if NodeReady(&nodes.Items[i]) {
					ready++
				}
			}
			if ready < want {
				behind = append(behind, fmt.Sprintf("nodes: %d of %d Ready", ready, want))
			}
		}
		avail := twinAvailable(ctx, twin)
		for _, k := range sortedKeys(src.Available) {
			if src.Available[k] > avail[k] && inScope(src, k) {
				behind = append(behind, fmt.Sprintf("%s: %d available, %d in the real cluster", k, avail[k], src.Available[k]))
			}
		}
		if len(behind) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return behind
		}
		time.Sleep(time.Second)
	}
}

// ResyncedAnnotation is set on every twin PodDisruptionBudget once the
// workloads have settled.
const ResyncedAnnotation = "rehearse.kup.dev/resynced"

// resyncBudgets touches every PodDisruptionBudget in the twin so the
// disruption controller computes its status again now that the pods are
// there and Ready. It has to be told: on a pod event the controller
// re-syncs only the first budget that selects the pod ("matches multiple
// PodDisruptionBudgets. Chose arbitrarily"), so a second budget over the
// same pods keeps the status it computed when it was written, before its
// pods existed (expectedPods 0), where the real cluster's has long been
// recomputed. Any update of a budget makes the controller sync it.
func resyncBudgets(ctx context.Context, twin Twin, progress func(string, ...any)) {
	l, err := twin.Client.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		progress("could not list the twin's PodDisruptionBudgets to resync them: %v", err)
		return
	}
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, ResyncedAnnotation, time.Now().UTC().Format(time.RFC3339)))
	_ = parallel(ctx, len(l.Items), 8, func(ctx context.Context, i int) error {
		p := &l.Items[i]
		if p.Namespace == KupNamespace {
			return nil
		}
		if _, err := twin.Client.PolicyV1().PodDisruptionBudgets(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kup-rehearse"}); err != nil {
			progress("PodDisruptionBudget %s/%s: resync: %v", p.Namespace, p.Name, err)
		}
		return ctx.Err()
	})
}

func inScope(src *Source, key string) bool {
	_, rest, _ := strings.Cut(key, " ")
	ns, _, _ := strings.Cut(rest, "/")
	return InNamespaces(src.Scope.Namespaces, ns) && ns != KupNamespace
}

func twinAvailable(ctx context.Context, twin Twin) map[string]int32 {
	out := map[string]int32{}
	if l, err := twin.Client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range l.Items {
			out["Deployment "+d.Namespace+"/"+d.Name] = d.Status.AvailableReplicas
		}
	}
	if l, err := twin.Client.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range l.Items {
			out["StatefulSet "+d.Namespace+"/"+d.Name] = d.Status.AvailableReplicas
		}
	}
	if l, err := twin.Client.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range l.Items {
			out["DaemonSet "+d.Namespace+"/"+d.Name] = d.Status.NumberAvailable
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// parallel runs fn(0..n-1) with at most workers at a time.
func parallel(ctx context.Context, n, workers int, fn func(context.Context, int) error) error {
	idx := make(chan int)
	var wg sync.WaitGroup
	var first error
	var once sync.Once
	for range min(workers, max(n, 1)) {
		wg.Go(func() {
			for i := range idx {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err })
				}
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		idx <- i
	}
	close(idx)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
