package rehearse

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The sandbox's kwok manages nodes carrying KwokNodeAnnotation=fake; a
// node carrying KubeletStopped stays NotReady (internal/sandbox). They are
// repeated here so this package stays free of the sandbox.
const (
	KwokNodeAnnotation = "kwok.x-k8s.io/node"
	KubeletStopped     = "sandbox.kup.dev/kubelet-stopped"
)

// lifecycleTaints are put and removed by the node lifecycle controller
// from the node's conditions: the twin's controller puts its own.
var lifecycleTaints = map[string]bool{
	"node.kubernetes.io/not-ready":           true,
	"node.kubernetes.io/unreachable":         true,
	"node.kubernetes.io/unschedulable":       true,
	"node.kubernetes.io/memory-pressure":     true,
	"node.kubernetes.io/disk-pressure":       true,
	"node.kubernetes.io/pid-pressure":        true,
	"node.kubernetes.io/network-unavailable": true,
}

// TwinNode is the kwok node standing in for a real one: the same name,
// labels, taints (the user's, not the lifecycle controller's), cordon,
// capacity, allocatable and nodeInfo (kubelet version included: kwok
// keeps what the creator set). A node that is not Ready in the real
// cluster has its simulated kubelet stopped, so it stays NotReady.
func TwinNode(real *corev1.Node) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        real.Name,
			Labels:      copyMap(real.Labels),
			Annotations: map[string]string{KwokNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
		},
		Spec: corev1.NodeSpec{Unschedulable: real.Spec.Unschedulable},
		Status: corev1.NodeStatus{
			Capacity:    real.Status.Capacity.DeepCopy(),
			Allocatable: real.Status.Allocatable.DeepCopy(),
			NodeInfo:    real.Status.NodeInfo,
			Phase:       corev1.NodeRunning,
		},
	}
	for _, t := range real.Spec.Taints {
		if !lifecycleTaints[t.Key] {
			t.TimeAdded = nil
			n.Spec.Taints = append(n.Spec.Taints, t)
		}
	}
	if !NodeReady(real) {
		n.Annotations[KubeletStopped] = "NotReady in the real cluster"
	}
	return n
}

// NodeReady reports the node's Ready condition.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// NodeShape is what a test (and the difference list) compares of a node.
type NodeShape struct {
	Name, KubeletVersion, Zone string
	Labels, Taints             string
	CPU, Memory, Pods          string
	Unschedulable, Ready       bool
}

// ShapeOf is a node's shape.
func ShapeOf(n *corev1.Node) NodeShape {
	var labels []string
	for k, v := range n.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	var taints []string
	for _, t := range n.Spec.Taints {
		if !lifecycleTaints[t.Key] {
			taints = append(taints, fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect))
		}
	}
	sort.Strings(taints)
	a := n.Status.Allocatable
	return NodeShape{
		Name: n.Name, KubeletVersion: n.Status.NodeInfo.KubeletVersion, Zone: n.Labels["topology.kubernetes.io/zone"],
		Labels: strings.Join(labels, ","), Taints: strings.Join(taints, ","),
		CPU: a.Cpu().String(), Memory: a.Memory().String(), Pods: a.Pods().String(),
		Unschedulable: n.Spec.Unschedulable, Ready: NodeReady(n),
	}
}

// SampleNodes picks n of the nodes for --node-sample: round-robin over the
// zones (so a zone-by-zone rollout still has every zone), by name within a
// zone, so the same cluster always gives the same sample.
func SampleNodes(nodes []corev1.Node, n int) []corev1.Node {
	if n <= 0 || n >= len(nodes) {
		return nodes
	}
	byZone := map[string][]corev1.Node{}
	var zones []string
	for _, nd := range nodes {
		z := nd.Labels["topology.kubernetes.io/zone"]
		if _, ok := byZone[z]; !ok {
			zones = append(zones, z)
		}
		byZone[z] = append(byZone[z], nd)
	}
	sort.Strings(zones)
	for _, z := range zones {
		sort.Slice(byZone[z], func(i, j int) bool { return byZone[z][i].Name < byZone[z][j].Name })
	}
	var out []corev1.Node
	for i := 0; len(out) < n; i++ {
		for _, z := range zones {
			if i < len(byZone[z]) && len(out) < n {
				out = append(out, byZone[z][i])
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
