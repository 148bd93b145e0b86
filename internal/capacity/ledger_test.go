package capacity

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPlaceLargestFirst(t *testing.T) {
	// In the given order, first-fit strands the 3-core pod: 2+1 fill a, 2
	// goes to b, and 3 finds 1 core on a and 2 on b. Largest first fits all.
	nodes := []*v1.Node{node("a", 4, 64), node("b", 4, 64)}
	l := NewLedger(nodes, nil)
	pods := []*v1.Pod{pod("p2", "", 2000, 0), pod("p1", "", 1000, 0), pod("q2", "", 2000, 0), pod("p3", "", 3000, 0)}
	if misfits := l.Place(pods); len(misfits) != 0 {
		t.Fatalf("Place: %v", misfits)
	}
	if got := l.Free("a").MilliCPU + l.Free("b").MilliCPU; got != 0 {
		t.Errorf("free cpu after placing 8 cores on 8: %d", got)
	}
}

func TestPlaceMisfitNamesBestNode(t *testing.T) {
	nodes := []*v1.Node{
		node("a", 16, 64, labelled("disk", "hdd")),
		node("b", 2, 64, labelled("disk", "ssd")),
		node("c", 16, 64, labelled("disk", "ssd"), cordoned),
	}
	l := NewLedger(nodes, nil)
	misfits := l.Place([]*v1.Pod{pod("big", "", 4000, 0, selecting("disk", "ssd"))})
	if len(misfits) != 1 {
		t.Fatalf("want one misfit, got %v", misfits)
	}
	m := misfits[0]
	if m.Pod != "default/big" || m.Node != "b" || m.Filter != Insufficient || !strings.Contains(m.Reason, "Insufficient cpu") {
		t.Errorf("misfit = %+v, want default/big on b: Insufficient cpu", m)
	}

	empty := NewLedger(nil, nil)
	if got := empty.Place([]*v1.Pod{pod("x", "", 1, 0)}); len(got) != 1 || got[0].Filter != NoNodes {
		t.Errorf("no nodes: %v", got)
	}
}

func TestDrainAndRollback(t *testing.T) {
	nodes := []*v1.Node{node("a", 4, 8), node("b", 4, 8), node("c", 4, 8)}
	pods := []*v1.Pod{
		pod("a1", "a", 1000, 512), pod("a2", "a", 1000, 512),
		pod("ds", "a", 100, 64, ownedBy("DaemonSet")),
		pod("bare", "a", 100, 64, unowned),
		pod("b1", "b", 3500, 1024),
	}
	l := NewLedger(nodes, pods)
	before := fmt.Sprint(l.Free("a"), l.Free("b"), l.Free("c"))

	m := l.Mark()
	moved := l.Drain("a")
	if names := podNames(moved); !slices.Equal(names, []string{"a1", "a2"}) {
		t.Fatalf("Drain(a) = %v, want the two ReplicaSet pods only", names)
	}
	if misfits := l.Place(moved); len(misfits) != 0 {
		t.Fatalf("Place: %v", misfits)
	}
	// b has half a core left, so both land on c.
	if names := podNames(l.Placed("c")); !slices.Equal(names, []string{"a1", "a2"}) || len(l.Placed("b")) != 0 {
		t.Errorf("Placed(c) = %v, Placed(b) = %v", names, podNames(l.Placed("b")))
	}
	if got := l.Free("c").MilliCPU; got != 2000 {
		t.Errorf("free cpu on c = %d, want 2000", got)
	}
	if l.Drained("a") == false || len(l.Drain("a")) != 0 {
		t.Error("draining twice must return nothing")
	}
	m2 := l.Mark()
	again := l.Drain("c")
	if names := podNames(again); !slices.Equal(names, []string{"a1", "a2"}) {
		t.Errorf("Drain(c) = %v, want the pods placed there", names)
	}
	if misfits := l.Place(again); len(misfits) != 2 {
		t.Errorf("with a and c drained, a1 and a2 fit nowhere (b has 500m): %v", misfits)
	}
	l.Rollback(m2)
	if l.Drained("c") || l.Free("c").MilliCPU != 2000 {
		t.Errorf("rollback to m2: c drained=%v free=%d", l.Drained("c"), l.Free("c").MilliCPU)
	}
	l.Drain("b")
	if misfits := l.Place(l.Drain("c")); len(misfits) == 0 {
		// b1 and a1, a2 have nowhere to go with a, b, c down.
		t.Error("expected misfits with every node drained")
	}
	l.Rollback(m)
	if after := fmt.Sprint(l.Free("a"), l.Free("b"), l.Free("c")); after != before {
		t.Errorf("after rollback %s, before %s", after, before)
	}
	if l.Drained("a") || l.Drained("b") || l.Drained("c") {
		t.Error("rollback left a node drained")
	}
}

func podNames(pods []*v1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

func TestMaxSimultaneouslyDown(t *testing.T) {
	tests := []struct {
		name            string
		nodes           []*v1.Node
		pods            []*v1.Pod
		wantDown        []string
		wantUndrainable []string
	}{
		{
			name:     "empty nodes can all go down",
			nodes:    []*v1.Node{node("a", 4, 8), node("b", 4, 8)},
			wantDown: []string{"a", "b"},
		},
		{
			// Each node runs 3 cores of 4: one node's pods fit in the room
			// the two others have left (1+1 < 3 fails), so only light nodes.
			name:  "half-full cluster",
			nodes: []*v1.Node{node("a", 4, 8), node("b", 4, 8), node("c", 4, 8), node("d", 4, 8)},
			pods: []*v1.Pod{
				pod("a1", "a", 1000, 0), pod("b1", "b", 1000, 0),
				pod("c1", "c", 2000, 0), pod("d1", "d", 2000, 0),
			},
			// a and b (lightest) go first: their 2 cores fit on c, d (2 free
			// each). c would then need 2 more cores on d, which has none.
			wantDown: []string{"a", "b"},
		},
		{
			name: "pod pinned to its node cannot move",
			nodes: []*v1.Node{
				node("a", 4, 8, labelled("disk", "ssd")), node("b", 4, 8), node("c", 4, 8),
			},
			pods:            []*v1.Pod{pod("db", "a", 100, 0, selecting("disk", "ssd")), pod("web", "b", 100, 0)},
			wantDown:        []string{"b", "c"},
			wantUndrainable: []string{"a"},
		},
		{
			name:  "unmanaged and DaemonSet pods need no place",
			nodes: []*v1.Node{node("a", 4, 8), node("b", 1, 8)},
			pods: []*v1.Pod{
				pod("bare", "a", 3000, 0, unowned), pod("ds", "a", 3000, 0, ownedBy("DaemonSet")),
				pod("ds2", "b", 1000, 0, ownedBy("DaemonSet")),
			},
			wantDown: []string{"a", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MaxSimultaneouslyDown(tt.nodes, tt.pods)
			if !slices.Equal(got.Nodes, tt.wantDown) {
				t.Errorf("Nodes = %v, want %v", got.Nodes, tt.wantDown)
			}
			var undrainable []string
			for _, u := range got.Undrainable {
				undrainable = append(undrainable, u.Node)
				if len(u.Misfits) == 0 {
					t.Errorf("undrainable %s without misfits", u.Node)
				}
			}
			if !slices.Equal(undrainable, tt.wantUndrainable) {
				t.Errorf("Undrainable = %v, want %v", got.Undrainable, tt.wantUndrainable)
			}
		})
	}
}

// TestFreeDoesNotEatAllocatable: Free is a read. Calling it must not
// change what the node can take, and a node without extended resources
// hosting a pod that requests one must not panic (both were bugs).
func TestFreeDoesNotEatAllocatable(t *testing.T) {
	gpu := v1.ResourceName("example.com/gpu")
	n1 := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: v1.NodeStatus{Allocatable: v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi"), v1.ResourcePods: resource.MustParse("10"), gpu: resource.MustParse("2")}}}
	n2 := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Status: v1.NodeStatus{Allocatable: v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi"), v1.ResourcePods: resource.MustParse("10")}}}
	pod := func(name, node string) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: v1.PodSpec{NodeName: node, Containers: []v1.Container{{
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), gpu: resource.MustParse("1")}}}}}}
	}
	l := NewLedger([]*v1.Node{n1, n2}, []*v1.Pod{pod("a", "n1"), pod("b", "n2")})
	first := l.Free("n1")
	for range 3 {
		l.Free("n1")
	}
	if again := l.Free("n1"); again.Scalar[gpu] != first.Scalar[gpu] || first.Scalar[gpu] != 1 {
		t.Errorf("free gpu on n1: first %d, after repeated Free %d; want 1 both times", first.Scalar[gpu], again.Scalar[gpu])
	}
	if got := l.Free("n2"); got.Scalar[gpu] != -1 {
		t.Errorf("n2 has no gpu but hosts a pod requesting one: free %d, want -1", got.Scalar[gpu])
	}
}
