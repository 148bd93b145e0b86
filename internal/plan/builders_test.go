package plan

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// worker builds a schedulable node in zone with cpu cores and 64Gi.
func worker(name, zone string, cpu int64, opts ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{
			v1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(64<<30, resource.BinarySI),
			v1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
		}},
	}
	if zone != "" {
		n.Labels[ZoneLabel] = zone
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

// controlPlane builds a kubeadm-style control-plane node: labelled and
// tainted so workloads stay off it.
func controlPlane(name, zone string) *v1.Node {
	return worker(name, zone, 4, func(n *v1.Node) {
		n.Labels[ControlPlaneLabel] = ""
		n.Spec.Taints = []v1.Taint{{Key: ControlPlaneLabel, Effect: v1.TaintEffectNoSchedule}}
	})
}

func cordoned(n *v1.Node) { n.Spec.Unschedulable = true }

// app builds one ReplicaSet pod labelled app=<name> per listed node, each
// requesting milliCPU.
func app(ns, name string, milliCPU int64, nodes ...string) []*v1.Pod {
	var out []*v1.Pod
	for i, n := range nodes {
		out = append(out, podOn(ns, fmt.Sprintf("%s-%d", name, i), n, milliCPU, "ReplicaSet", map[string]string{"app": name}))
	}
	return out
}

func podOn(ns, name, node string, milliCPU int64, ownerKind string, lbls map[string]string) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec: v1.PodSpec{NodeName: node, Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: *resource.NewMilliQuantity(milliCPU, resource.DecimalSI)},
		}}}},
		Status: v1.PodStatus{Phase: v1.PodRunning},
	}
	if ownerKind != "" {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{Kind: ownerKind, Name: name + "-owner", Controller: &yes}}
	}
	return p
}

// pdb builds a PDB selecting app=<name> whose status says expected pods
// and how many must stay healthy; disruptionsAllowed is the steady state.
func pdb(ns, name string, expected, desiredHealthy int32) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}},
		Status: policyv1.PodDisruptionBudgetStatus{
			ExpectedPods: expected, DesiredHealthy: desiredHealthy, CurrentHealthy: expected,
			DisruptionsAllowed: max(expected-desiredHealthy, 0),
		},
	}
}

func names(nodes []*v1.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

func count(n int) intstr.IntOrString   { return intstr.FromInt32(int32(n)) }
func percent(p int) intstr.IntOrString { return intstr.FromString(fmt.Sprintf("%d%%", p)) }
func noCanary() *bool                  { f := false; return &f }
func concat[T any](lists ...[]T) []T {
	var out []T
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
