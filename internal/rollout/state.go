package rollout

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kup-project/kup/internal/capacity"
)

// clusterState is one read of what the planner and the gate look at.
type clusterState struct {
	nodes []*corev1.Node
	pods  []*corev1.Pod
	pdbs  []*policyv1.PodDisruptionBudget
	// workloads: "Deployment ns/name" → available / desired replicas.
	available map[string]int32
	desired   map[string]int32
	// crashLooping: owner key → pods of it in CrashLoopBackOff.
	crashLooping map[string]int
	// draining names the nodes whose drain was under way when the
	// snapshot was taken (set by Run, for pendingBudgets).
	draining map[string]bool
}

func labelSet(m map[string]string) labels.Set { return labels.Set(m) }

func (s *clusterState) node(name string) *corev1.Node {
	for _, n := range s.nodes {
		if n.Name == name {
			return n
		}
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func (s *clusterState) evictableOn(node string) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range s.pods {
		if p.Spec.NodeName == node && capacity.DrainFate(p).Evicted() {
			out = append(out, p)
		}
	}
	return out
}

// read lists nodes, pods, PDBs and workloads: one LIST each, from the
// watch cache — or, with a live cache (continuous admission), a copy of
// what its informers hold, without a request.
func (r *Roller) read(ctx context.Context) (*clusterState, error) {
	if r.live != nil {
		err := r.live.err()
		if err == nil {
			return r.live.snapshot(), nil
		}
		// The cache would stay as it was when the watch was refused:
		// read with LIST from now on, slower on a large cluster but
		// right. The live cache itself is stopped when Run returns.
		r.emit("", StepWaiting, "continuous admission cannot watch the cluster (%v); reading it with a LIST on every look instead — give this kubeconfig watch on it for lighter looks", err)
		r.live = nil
	}
	list := metav1.ListOptions{ResourceVersion: "0"}
	cs := r.Client
	nodes, err := cs.CoreV1().Nodes().List(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	// Pods before PDBs: see pendingBudgets.
	pods, err := cs.CoreV1().Pods("").List(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("listing PodDisruptionBudgets: %w", err)
	}
	deps, err := cs.AppsV1().Deployments("").List(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}
	sts, err := cs.AppsV1().StatefulSets("").List(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("listing statefulsets: %w", err)
	}
	dss, err := cs.AppsV1().DaemonSets("").List(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("listing daemonsets: %w", err)
	}
	return newState(ptrs(nodes.Items), ptrs(pods.Items), ptrs(pdbs.Items), ptrs(deps.Items), ptrs(sts.Items), ptrs(dss.Items)), nil
}

// ptrs points at every item of a list.
func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// newState indexes what read found. It keeps the objects, never changes
// them: with a live cache they are the informers' own.
func newState(nodes []*corev1.Node, pods []*corev1.Pod, pdbs []*policyv1.PodDisruptionBudget, deps []*appsv1.Deployment, sts []*appsv1.StatefulSet, dss []*appsv1.DaemonSet) *clusterState {
	s := &clusterState{nodes: nodes, pods: pods, pdbs: pdbs, available: map[string]int32{}, desired: map[string]int32{}, crashLooping: map[string]int{}}
	for _, p := range pods {
		if crashLooping(p) {
			s.crashLooping[ownerKey(p)]++
		}
	}
	for _, d := range deps {
		k := "Deployment " + d.Namespace + "/" + d.Name
		s.available[k] = d.Status.AvailableReplicas
		if d.Spec.Replicas != nil {
			s.desired[k] = *d.Spec.Replicas
		}
	}
	for _, st := range sts {
		k := "StatefulSet " + st.Namespace + "/" + st.Name
		s.available[k] = st.Status.AvailableReplicas
		if st.Spec.Replicas != nil {
			s.desired[k] = *st.Spec.Replicas
		}
	}
	for _, d := range dss {
		k := "DaemonSet " + d.Namespace + "/" + d.Name
		s.available[k] = d.Status.NumberAvailable
		s.desired[k] = d.Status.DesiredNumberScheduled
	}
	return s
}

func crashLooping(p *corev1.Pod) bool {
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff" {
			return true
		}
	}
	return false
}

// ownerKey names a pod's controller ("ReplicaSet ns/name"), or the pod.
func ownerKey(p *corev1.Pod) string {
	if c := metav1.GetControllerOf(p); c != nil {
		return c.Kind + " " + p.Namespace + "/" + c.Name
	}
	return "Pod " + p.Namespace + "/" + p.Name
}

// baseline is what the gate compares against.
type baseline struct {
	available    map[string]int32
	desired      map[string]int32
	crashLooping map[string]int
}

func availability(s *clusterState) baseline {
	return baseline{available: s.available, desired: s.desired, crashLooping: s.crashLooping}
}

// gate waits until the wave's nodes are Ready at the target, no workload
// is less available than before the wave (capped at what it wants now,
// so a scale-down does not hold the gate), and no workload has more
// crash-looping pods than before. It fails after GateTimeout, naming what
// did not recover.
func (r *Roller) gate(ctx context.Context, index int, wave []string, before baseline) error {
	deadline := time.Now().Add(r.Options.GateTimeout)
	r.emit("", StepGate, "health gate after wave %d", index)
	var problems []string
	for {
		s, err := r.read(ctx)
		if err != nil {
			problems = []string{err.Error()}
		} else {
			problems = r.gateProblems(s, wave, before)
		}
		if len(problems) == 0 {
			r.emit("", StepGate, "health gate after wave %d passed", index)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %s: %s", r.Options.GateTimeout, strings.Join(problems, "; "))
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
	}
}

// gateProblems is what keeps the health gate after wave from passing on
// the cluster as s shows it, sorted; none when it passes.
func (r *Roller) gateProblems(s *clusterState, wave []string, before baseline) []string {
	var problems []string
	r.mu.Lock()
	skip := map[string]bool{}
	for _, n := range wave {
		if nr := r.res.Nodes[n]; nr != nil && nr.Outcome != "upgraded" {
			skip[n] = true // failed or quarantined: judged by the failure policy
		}
	}
	r.mu.Unlock()
	for _, n := range wave {
		if skip[n] {
			continue
		}
		node := s.node(n)
		if !isReady(node) || node.Status.NodeInfo.KubeletVersion != r.Options.Target {
			problems = append(problems, fmt.Sprintf("node %s not Ready at %s", n, r.Options.Target))
		}
	}
	for k, was := range before.available {
		want := was
		if d, ok := s.desired[k]; ok && d < want {
			want = d
		}
		if now, ok := s.available[k]; ok && now < want {
			problems = append(problems, fmt.Sprintf("%s: %d available, %d before the wave", k, now, was))
		}
	}
	for k, n := range s.crashLooping {
		if n > before.crashLooping[k] {
			problems = append(problems, fmt.Sprintf("%s: %d pod(s) newly crash-looping", k, n-before.crashLooping[k]))
		}
	}
	sort.Strings(problems)
	return problems
}
