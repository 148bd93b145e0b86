package checks

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kup-project/kup/internal/inventory"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/version"
)

// Builders of hand-made cluster objects for the table tests.

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type nodeOpt func(*corev1.Node)

func mkNode(name string, opts ...nodeOpt) corev1.Node {
	n := corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			NodeInfo:    corev1.NodeSystemInfo{KubeletVersion: "v1.36.3"},
		},
	}
	for _, o := range opts {
		o(&n)
	}
	return n
}

func withCondition(t corev1.NodeConditionType, s corev1.ConditionStatus, reason string) nodeOpt {
	return func(n *corev1.Node) {
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == t {
				n.Status.Conditions[i].Status, n.Status.Conditions[i].Reason = s, reason
				return
			}
		}
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: t, Status: s, Reason: reason})
	}
}

func noConditions(n *corev1.Node) { n.Status.Conditions = nil }
func cordoned(n *corev1.Node)     { n.Spec.Unschedulable = true }
func kubelet(v string) nodeOpt    { return func(n *corev1.Node) { n.Status.NodeInfo.KubeletVersion = v } }
func cpu(c string) nodeOpt {
	return func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse(c) }
}
func taint(key string) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
	}
}
func label(k, v string) nodeOpt { return func(n *corev1.Node) { n.Labels[k] = v } }

type podOpt func(*corev1.Pod)

// mkPod makes a Running, Ready pod with requests, owned by nothing
// (add ownedBy), on node.
func mkPod(ns, name, node string, opts ...podOpt) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "app", Image: "app:1",
			Resources:      corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
			ReadinessProbe: &corev1.Probe{},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func ownedBy(kind, name string) podOpt {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, Controller: ptr.To(true), APIVersion: "apps/v1"}}
	}
}
func podLabels(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}
func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func notReady(p *corev1.Pod)          { p.Status.Conditions[0].Status = corev1.ConditionFalse }
func crashLoop(p *corev1.Pod) {
	notReady(p)
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", RestartCount: 9, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
}
func noRequests(p *corev1.Pod) { p.Spec.Containers[0].Resources = corev1.ResourceRequirements{} }
func noProbe(p *corev1.Pod)    { p.Spec.Containers[0].ReadinessProbe = nil }
func requestsCPU(c string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse(c)
	}
}
func volume(v corev1.Volume) podOpt {
	return func(p *corev1.Pod) { p.Spec.Volumes = append(p.Spec.Volumes, v) }
}
func grace(s int64) podOpt { return func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = &s } }
func nodeSelector(k, v string) podOpt {
	return func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{k: v} }
}
func terminating(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: testNow} }
func mirror(p *corev1.Pod) {
	p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
}

type pdbOpt func(*policyv1.PodDisruptionBudget)

// mkPDB selects app=<app>, with the status the disruption controller
// would write (expected, desiredHealthy, allowed).
func mkPDB(ns, name, app string, expected, desired, allowed int32, opts ...pdbOpt) policyv1.PodDisruptionBudget {
	p := policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}, MaxUnavailable: ptr.To(intstr.FromInt32(1))},
		Status: policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1, ExpectedPods: expected, DesiredHealthy: desired,
			CurrentHealthy: desired + allowed, DisruptionsAllowed: allowed},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func minAvailable(n int32) pdbOpt {
	return func(p *policyv1.PodDisruptionBudget) {
		p.Spec.MaxUnavailable, p.Spec.MinAvailable = nil, ptr.To(intstr.FromInt32(n))
	}
}
func alwaysAllow(p *policyv1.PodDisruptionBudget) {
	p.Spec.UnhealthyPodEvictionPolicy = ptr.To(policyv1.AlwaysAllow)
}
func nilSelector(p *policyv1.PodDisruptionBudget) { p.Spec.Selector = nil }
func unobserved(p *policyv1.PodDisruptionBudget)  { p.Generation = 2 }

func mkDeployment(ns, name string, replicas int32) appsv1.Deployment {
	return appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.DeploymentSpec{Replicas: &replicas,
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1", ReadinessProbe: &corev1.Probe{}}}}}}}
}

// snapshot is a cluster of nodes and pods, read at testNow.
func snapshot(nodes []corev1.Node, pods []corev1.Pod, pdbs ...policyv1.PodDisruptionBudget) *inventory.Snapshot {
	return &inventory.Snapshot{Taken: testNow, Server: "v1.36.3", Nodes: nodes, Pods: pods, PDBs: pdbs, Unknown: map[string]string{},
		Components: nil}
}

// pathTo plans from v1.36.3 to the given version for the snapshot's nodes.
func pathTo(t *testing.T, s *inventory.Snapshot, to string) *version.UpgradePath {
	t.Helper()
	if len(s.Components) == 0 {
		s.Components = append(s.Components, componentAt("kube-apiserver", s.Server))
	}
	cv, errs := s.ClusterVersions()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	p, err := version.Path(version.MustParse(s.Server), version.MustParse(to), nil, version.PathOptions{Cluster: &cv})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// key renders a finding as "ID first-object" for comparisons.
func key(f Finding) string {
	o := ""
	if len(f.Objects) > 0 {
		o = f.Objects[0].String()
	}
	return strings.TrimSpace(string(f.Severity) + " " + f.ID + " " + o)
}

func keys(fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = key(f)
	}
	slices.Sort(out)
	return out
}

func checkKeys(t *testing.T, name string, fs []Finding, want []string) {
	t.Helper()
	got := keys(fs)
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		var b strings.Builder
		for _, f := range fs {
			fmt.Fprintf(&b, "\n  %s: %s", key(f), f.Message)
		}
		t.Errorf("%s:\n got %q\nwant %q%s", name, got, w, b.String())
	}
	for _, f := range fs {
		if c, ok := Lookup(f.ID); !ok || f.Title != c.Title || f.Message == "" || f.Action == "" {
			t.Errorf("%s: finding %s is incomplete or not in the catalogue: %+v", name, f.ID, f)
		}
	}
}

func componentAt(name, v string) provider.Component {
	return provider.Component{Name: name, Instance: "cp-0", Version: v}
}
