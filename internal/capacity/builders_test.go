package capacity

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// node builds a node with cpu (cores) and memory (Gi) allocatable and room
// for 110 pods.
func node(name string, cpu, memGi int64, opts ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{
			v1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(memGi<<30, resource.BinarySI),
			v1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
		}},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func labelled(k, v string) func(*v1.Node) { return func(n *v1.Node) { n.Labels[k] = v } }
func cordoned(n *v1.Node)                 { n.Spec.Unschedulable = true }
func tainted(t v1.Taint) func(*v1.Node) {
	return func(n *v1.Node) { n.Spec.Taints = append(n.Spec.Taints, t) }
}
func maxPods(c int64) func(*v1.Node) {
	return func(n *v1.Node) { n.Status.Allocatable[v1.ResourcePods] = *resource.NewQuantity(c, resource.DecimalSI) }
}

// pod builds a ReplicaSet-owned pod on nodeName requesting cpu (millicores)
// and memory (Mi).
func pod(name, nodeName string, milliCPU, memMi int64, opts ...func(*v1.Pod)) *v1.Pod {
	yes := true
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", Name: name,
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "rs", Controller: &yes}},
		},
		Spec: v1.PodSpec{
			NodeName:   nodeName,
			Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: requests(milliCPU, memMi)}}},
		},
		Status: v1.PodStatus{Phase: v1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func requests(milliCPU, memMi int64) v1.ResourceList {
	l := v1.ResourceList{}
	if milliCPU > 0 {
		l[v1.ResourceCPU] = *resource.NewMilliQuantity(milliCPU, resource.DecimalSI)
	}
	if memMi > 0 {
		l[v1.ResourceMemory] = *resource.NewQuantity(memMi<<20, resource.BinarySI)
	}
	return l
}

func ownedBy(kind string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: "owner", Controller: &yes}}
	}
}
func unowned(p *v1.Pod) { p.OwnerReferences = nil }
func selecting(k, v string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		if p.Spec.NodeSelector == nil {
			p.Spec.NodeSelector = map[string]string{}
		}
		p.Spec.NodeSelector[k] = v
	}
}
func tolerating(t v1.Toleration) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, t) }
}
func affinity(terms ...v1.NodeSelectorTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: terms},
		}}
	}
}
func expr(key string, op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorTerm {
	return v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}
