package checks

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kup-project/kup/internal/capacity"
)

func TestCapacity(t *testing.T) {
	rs := ownedBy("ReplicaSet", "app-1")
	for _, tc := range []struct {
		name    string
		nodes   []corev1.Node
		pods    []corev1.Pod
		maxDown int
		want    []string
	}{
		{name: "empty cluster", maxDown: 0},
		{
			name:  "a single node has nowhere to send its pods",
			nodes: []corev1.Node{mkNode("a")},
			pods:  []corev1.Pod{mkPod("ns", "p", "a", rs)},
			want:  []string{"warning KUP-CAP-001 Node a"},
		},
		{
			name:    "roomy cluster: all but one node can be down",
			nodes:   []corev1.Node{mkNode("a"), mkNode("b"), mkNode("c"), mkNode("d")},
			pods:    []corev1.Pod{mkPod("ns", "p1", "a", rs), mkPod("ns", "p2", "b", rs)},
			maxDown: 3,
		},
		{
			name:    "big pods: one node down at a time",
			nodes:   []corev1.Node{mkNode("a"), mkNode("b"), mkNode("c")},
			pods:    []corev1.Pod{mkPod("ns", "p1", "a", rs, requestsCPU("1500m")), mkPod("ns", "p2", "b", rs, requestsCPU("1500m")), mkPod("ns", "p3", "c", rs, requestsCPU("1500m"))},
			maxDown: 1,
		},
		{
			name:    "a pod pinned to its node by a selector",
			nodes:   []corev1.Node{mkNode("a", label("disk", "ssd")), mkNode("b")},
			pods:    []corev1.Pod{mkPod("ns", "p", "a", rs, nodeSelector("disk", "ssd"))},
			maxDown: 1,
			want:    []string{"warning KUP-CAP-001 Node a"},
		},
		{
			name:    "the other node's taint is not tolerated",
			nodes:   []corev1.Node{mkNode("a"), mkNode("b", taint("dedicated"))},
			pods:    []corev1.Pod{mkPod("ns", "p", "a", rs)},
			maxDown: 1,
			want:    []string{"warning KUP-CAP-001 Node a"},
		},
		{
			name:    "the other node is cordoned",
			nodes:   []corev1.Node{mkNode("a"), mkNode("b", cordoned)},
			pods:    []corev1.Pod{mkPod("ns", "p", "a", rs)},
			maxDown: 1,
			want:    []string{"warning KUP-CAP-001 Node a"},
		},
		{
			name:    "the other node is full",
			nodes:   []corev1.Node{mkNode("a"), mkNode("b", cpu("1"))},
			pods:    []corev1.Pod{mkPod("ns", "p", "a", rs, requestsCPU("2")), mkPod("ns", "q", "b", rs, requestsCPU("500m"))},
			maxDown: 1,
			want:    []string{"warning KUP-CAP-001 Node a"},
		},
		{
			name:  "DaemonSet, mirror, unmanaged and finished pods need no room",
			nodes: []corev1.Node{mkNode("a"), mkNode("b", cpu("100m"))},
			pods: []corev1.Pod{
				mkPod("ns", "ds", "a", ownedBy("DaemonSet", "agent"), requestsCPU("3")),
				mkPod("kube-system", "static", "a", mirror),
				mkPod("ns", "bare", "a", requestsCPU("3")),
				mkPod("ns", "job", "a", rs, requestsCPU("3"), phase(corev1.PodSucceeded)),
			},
			maxDown: 2,
		},
		{
			name:    "Pending pods are not counted",
			nodes:   []corev1.Node{mkNode("a"), mkNode("b")},
			pods:    []corev1.Pod{mkPod("ns", "p", "a", rs), mkPod("ns", "waiting", "", rs, phase(corev1.PodPending), requestsCPU("4"))},
			maxDown: 1,
		},
		{
			name:  "rules the model ignores are reported",
			nodes: []corev1.Node{mkNode("a"), mkNode("b")},
			pods: []corev1.Pod{mkPod("ns", "spread", "a", rs, func(p *corev1.Pod) {
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.DoNotSchedule}}
			}), mkPod("ns", "soft", "b", rs, func(p *corev1.Pod) {
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.ScheduleAnyway}}
			})},
			maxDown: 1,
			want:    []string{"info KUP-CAP-002 ReplicaSet ns/app-1"},
		},
	} {
		fs, sum := Capacity(Input{Snapshot: snapshot(tc.nodes, tc.pods)})
		checkKeys(t, tc.name, fs, tc.want)
		if len(sum.MaxDown) != tc.maxDown || sum.Nodes != len(tc.nodes) {
			t.Errorf("%s: %d of %d nodes can be down (%v), want %d", tc.name, len(sum.MaxDown), sum.Nodes, sum.MaxDown, tc.maxDown)
		}
		for _, u := range sum.Undrainable {
			if slices.Contains(sum.MaxDown, u.Node) {
				t.Errorf("%s: undrainable node %s is in the set that can be down", tc.name, u.Node)
			}
		}
	}
}

func TestCapacityMessageNamesPodAndReason(t *testing.T) {
	s := snapshot([]corev1.Node{mkNode("a", label("disk", "ssd")), mkNode("b")}, []corev1.Pod{mkPod("ns", "p", "a", ownedBy("ReplicaSet", "x"), nodeSelector("disk", "ssd"))})
	fs, _ := Capacity(Input{Snapshot: s})
	if len(fs) != 1 || !strings.Contains(fs[0].Message, "ns/p") || !strings.Contains(fs[0].Message, "node selector") || !slices.Contains(fs[0].Objects, Object{Kind: "Pod", Namespace: "ns", Name: "p"}) {
		t.Errorf("want the pod and the filter named: %+v", fs)
	}
}

// TestCapacityOnlyRolledNodes: a node the path does not roll is never
// drained, so it is not reported.
func TestCapacityOnlyRolledNodes(t *testing.T) {
	s := snapshot([]corev1.Node{mkNode("a", kubelet("v1.37.2"))}, []corev1.Pod{mkPod("ns", "p", "a", ownedBy("ReplicaSet", "x"))})
	s.Server = "v1.37.1"
	fs, _ := Capacity(Input{Snapshot: s, Path: pathTo(t, s, "v1.37.2")})
	checkKeys(t, "already at target", fs, nil)
}

// TestMaxDownMatchesCapacity: maxDown only skips attempts that would fail,
// so on any cluster it gives exactly capacity.MaxSimultaneouslyDown's
// answer. Random clusters, seeded, with the shapes that matter: uneven
// nodes, big and small pods, selectors, taints, cordons, DaemonSet and
// unmanaged pods, overcommitted nodes and extended resources.
func TestMaxDownMatchesCapacity(t *testing.T) {
	var several, undrainable int
	defer func() {
		if several < 30 || undrainable < 30 {
			t.Errorf("the random clusters are too tame: %d with several nodes down, %d with undrainable nodes", several, undrainable)
		}
	}()
	for seed := range int64(300) {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		var nodes []corev1.Node
		n := 1 + rng.IntN(12)
		for i := range n {
			opts := []nodeOpt{cpu(fmt.Sprintf("%dm", 500+rng.IntN(4000)))}
			if rng.IntN(5) == 0 {
				opts = append(opts, cordoned)
			}
			if rng.IntN(6) == 0 {
				opts = append(opts, taint("dedicated"))
			}
			if rng.IntN(3) == 0 {
				opts = append(opts, label("disk", "ssd"))
			}
			if rng.IntN(4) == 0 {
				opts = append(opts, func(n *corev1.Node) {
					n.Status.Allocatable["example.com/gpu"] = resource.MustParse(fmt.Sprint(rng.IntN(3)))
				})
			}
			nodes = append(nodes, mkNode(fmt.Sprintf("n%02d", i), opts...))
		}
		var pods []corev1.Pod
		for i := range rng.IntN(40) {
			opts := []podOpt{requestsCPU(fmt.Sprintf("%dm", 50+rng.IntN(1500)))}
			switch rng.IntN(10) {
			case 0:
				opts = append(opts, ownedBy("DaemonSet", "ds"))
			case 1:
				// unmanaged
			default:
				opts = append(opts, ownedBy("ReplicaSet", "rs"))
			}
			if rng.IntN(5) == 0 {
				opts = append(opts, nodeSelector("disk", "ssd"))
			}
			if rng.IntN(6) == 0 {
				opts = append(opts, func(p *corev1.Pod) {
					p.Spec.Containers[0].Resources.Requests["example.com/gpu"] = resource.MustParse("1")
				})
			}
			pods = append(pods, mkPod("ns", fmt.Sprintf("p%02d", i), nodes[rng.IntN(n)].Name, opts...))
		}
		np := make([]*corev1.Node, len(nodes))
		for i := range nodes {
			np[i] = &nodes[i]
		}
		pp := make([]*corev1.Pod, len(pods))
		for i := range pods {
			pp[i] = &pods[i]
		}
		want := capacity.MaxSimultaneouslyDown(np, pp)
		got := maxDown(np, pp)
		if len(want.Nodes) > 1 {
			several++
		}
		if len(want.Undrainable) > 0 {
			undrainable++
		}
		if !slices.Equal(got.Nodes, want.Nodes) {
			t.Errorf("seed %d: maxDown %v, capacity.MaxSimultaneouslyDown %v", seed, got.Nodes, want.Nodes)
		}
		var gu, wu []string
		for _, u := range got.Undrainable {
			gu = append(gu, u.Node)
		}
		for _, u := range want.Undrainable {
			wu = append(wu, u.Node)
		}
		if !slices.Equal(gu, wu) {
			t.Errorf("seed %d: undrainable %v, want %v", seed, gu, wu)
		}
	}
}
