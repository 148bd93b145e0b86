package capacity

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

func TestCheck(t *testing.T) {
	noSchedule := v1.Taint{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}
	noExecute := v1.Taint{Key: "maintenance", Effect: v1.TaintEffectNoExecute}
	prefer := v1.Taint{Key: "spot", Effect: v1.TaintEffectPreferNoSchedule}
	tests := []struct {
		name       string
		node       *v1.Node
		bound      []*v1.Pod // pods already on the node
		pod        *v1.Pod
		wantFilter Filter // empty: fits
		wantReason string // substring
	}{
		{name: "fits", node: node("n", 4, 8), pod: pod("p", "", 1000, 1024)},
		{name: "cordoned", node: node("n", 4, 8, cordoned), pod: pod("p", "", 100, 0), wantFilter: Unschedulable},
		{name: "cordoned but tolerated", node: node("n", 4, 8, cordoned),
			pod: pod("p", "", 100, 0, tolerating(v1.Toleration{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}))},
		{name: "nodeSelector matches", node: node("n", 4, 8, labelled("disk", "ssd")), pod: pod("p", "", 100, 0, selecting("disk", "ssd"))},
		{name: "nodeSelector differs", node: node("n", 4, 8, labelled("disk", "hdd")), pod: pod("p", "", 100, 0, selecting("disk", "ssd")), wantFilter: NodeSelector},
		{name: "nodeSelector label missing", node: node("n", 4, 8), pod: pod("p", "", 100, 0, selecting("disk", "ssd")), wantFilter: NodeSelector},
		{name: "affinity In", node: node("n", 4, 8, labelled("zone", "a")), pod: pod("p", "", 100, 0, affinity(expr("zone", v1.NodeSelectorOpIn, "a", "b")))},
		{name: "affinity In misses", node: node("n", 4, 8, labelled("zone", "c")), pod: pod("p", "", 100, 0, affinity(expr("zone", v1.NodeSelectorOpIn, "a", "b"))), wantFilter: NodeAffinity},
		{name: "affinity NotIn matches absent label", node: node("n", 4, 8), pod: pod("p", "", 100, 0, affinity(expr("zone", v1.NodeSelectorOpNotIn, "a")))},
		{name: "affinity NotIn misses", node: node("n", 4, 8, labelled("zone", "a")), pod: pod("p", "", 100, 0, affinity(expr("zone", v1.NodeSelectorOpNotIn, "a"))), wantFilter: NodeAffinity},
		{name: "affinity Exists", node: node("n", 4, 8, labelled("gpu", "")), pod: pod("p", "", 100, 0, affinity(expr("gpu", v1.NodeSelectorOpExists)))},
		{name: "affinity DoesNotExist misses", node: node("n", 4, 8, labelled("gpu", "")), pod: pod("p", "", 100, 0, affinity(expr("gpu", v1.NodeSelectorOpDoesNotExist))), wantFilter: NodeAffinity},
		{name: "affinity Gt", node: node("n", 4, 8, labelled("gen", "5")), pod: pod("p", "", 100, 0, affinity(expr("gen", v1.NodeSelectorOpGt, "4")))},
		{name: "affinity Gt not greater", node: node("n", 4, 8, labelled("gen", "4")), pod: pod("p", "", 100, 0, affinity(expr("gen", v1.NodeSelectorOpGt, "4"))), wantFilter: NodeAffinity},
		{name: "affinity Lt with non-number label", node: node("n", 4, 8, labelled("gen", "x")), pod: pod("p", "", 100, 0, affinity(expr("gen", v1.NodeSelectorOpLt, "4"))), wantFilter: NodeAffinity},
		{name: "affinity terms are ORed", node: node("n", 4, 8, labelled("zone", "b")),
			pod: pod("p", "", 100, 0, affinity(expr("zone", v1.NodeSelectorOpIn, "a"), expr("zone", v1.NodeSelectorOpIn, "b")))},
		{name: "affinity empty term matches nothing", node: node("n", 4, 8), pod: pod("p", "", 100, 0, affinity(v1.NodeSelectorTerm{})), wantFilter: NodeAffinity},
		{name: "affinity matchFields name In", node: node("n", 4, 8),
			pod: pod("p", "", 100, 0, affinity(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"n"}}}}))},
		{name: "affinity matchFields name NotIn", node: node("n", 4, 8),
			pod: pod("p", "", 100, 0, affinity(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpNotIn, Values: []string{"n"}}}})), wantFilter: NodeAffinity},
		{name: "nodeSelector and affinity must both match", node: node("n", 4, 8, labelled("zone", "a")),
			pod: pod("p", "", 100, 0, selecting("disk", "ssd"), affinity(expr("zone", v1.NodeSelectorOpIn, "a"))), wantFilter: NodeSelector},
		{name: "NoSchedule taint", node: node("n", 4, 8, tainted(noSchedule)), pod: pod("p", "", 100, 0), wantFilter: Taint, wantReason: "dedicated: gpu"},
		{name: "NoSchedule taint tolerated by value", node: node("n", 4, 8, tainted(noSchedule)),
			pod: pod("p", "", 100, 0, tolerating(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "gpu", Effect: v1.TaintEffectNoSchedule}))},
		{name: "NoSchedule taint, toleration with other value", node: node("n", 4, 8, tainted(noSchedule)),
			pod: pod("p", "", 100, 0, tolerating(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "cpu"})), wantFilter: Taint},
		{name: "NoExecute taint", node: node("n", 4, 8, tainted(noExecute)), pod: pod("p", "", 100, 0), wantFilter: Taint},
		{name: "NoExecute tolerated by Exists", node: node("n", 4, 8, tainted(noExecute)),
			pod: pod("p", "", 100, 0, tolerating(v1.Toleration{Key: "maintenance", Operator: v1.TolerationOpExists}))},
		{name: "PreferNoSchedule never blocks", node: node("n", 4, 8, tainted(prefer)), pod: pod("p", "", 100, 0)},
		{name: "wildcard toleration", node: node("n", 4, 8, tainted(noSchedule), tainted(noExecute)),
			pod: pod("p", "", 100, 0, tolerating(v1.Toleration{Operator: v1.TolerationOpExists}))},
		{name: "insufficient cpu", node: node("n", 4, 8), bound: []*v1.Pod{pod("b", "n", 3500, 0)},
			pod: pod("p", "", 1000, 0), wantFilter: Insufficient, wantReason: "Insufficient cpu (requests 1, free 500m)"},
		{name: "insufficient memory", node: node("n", 4, 8), bound: []*v1.Pod{pod("b", "n", 0, 7<<10)},
			pod: pod("p", "", 0, 2048), wantFilter: Insufficient, wantReason: "Insufficient memory"},
		{name: "finished pods free their room", node: node("n", 4, 8),
			bound: []*v1.Pod{pod("b", "n", 4000, 0, func(p *v1.Pod) { p.Status.Phase = v1.PodSucceeded })}, pod: pod("p", "", 1000, 0)},
		{name: "too many pods", node: node("n", 4, 8, maxPods(1)), bound: []*v1.Pod{pod("b", "n", 0, 0)},
			pod: pod("p", "", 0, 0), wantFilter: Insufficient, wantReason: "Too many pods"},
		{name: "overcommitted node takes a pod requesting nothing", node: node("n", 4, 8), bound: []*v1.Pod{pod("b", "n", 6000, 0)},
			pod: pod("p", "", 0, 0)},
		{name: "extended resource missing", node: node("n", 4, 8),
			pod: pod("p", "", 100, 0, func(p *v1.Pod) {
				p.Spec.Containers[0].Resources.Requests["nvidia.com/gpu"] = resource.MustParse("1")
			}), wantFilter: Insufficient, wantReason: "Insufficient nvidia.com/gpu"},
		{name: "init container larger than the node", node: node("n", 4, 8),
			pod: pod("p", "", 100, 0, func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Resources: v1.ResourceRequirements{Requests: requests(5000, 0)}}}
			}), wantFilter: Insufficient, wantReason: "Insufficient cpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLedger([]*v1.Node{tt.node}, tt.bound)
			f, why, ok := l.Check(tt.pod, tt.node.Name)
			if ok != (tt.wantFilter == "") || f != tt.wantFilter {
				t.Fatalf("Check = %q %q %v, want filter %q", f, why, ok, tt.wantFilter)
			}
			if !strings.Contains(why, tt.wantReason) {
				t.Errorf("reason %q does not contain %q", why, tt.wantReason)
			}
			// The fast path must agree with the explaining one.
			if fast := l.fits(tt.pod, l.requests(tt.pod), &l.nodes[0]); fast != ok {
				t.Errorf("fits = %v but Check = %v", fast, ok)
			}
		})
	}
}

// FuzzMatchExpression checks the hand-written node selector requirement
// against apimachinery's label requirement, which implements the same
// operators for valid input.
func FuzzMatchExpression(f *testing.F) {
	f.Add(uint8(0), "a", "a", "b", true)
	f.Add(uint8(1), "a", "c", "b", false)
	f.Add(uint8(4), "5", "4", "", true)
	f.Add(uint8(5), "-3", "-2", "", true)
	f.Add(uint8(4), "x", "4", "", true)
	ops := []struct {
		node v1.NodeSelectorOperator
		sel  selection.Operator
	}{
		{v1.NodeSelectorOpIn, selection.In},
		{v1.NodeSelectorOpNotIn, selection.NotIn},
		{v1.NodeSelectorOpExists, selection.Exists},
		{v1.NodeSelectorOpDoesNotExist, selection.DoesNotExist},
		{v1.NodeSelectorOpGt, selection.GreaterThan},
		{v1.NodeSelectorOpLt, selection.LessThan},
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, label, v1s, v2s string, present bool) {
		op := ops[int(opIndex)%len(ops)]
		var values []string
		switch op.sel {
		case selection.In, selection.NotIn:
			values = []string{v1s, v2s}
		case selection.GreaterThan, selection.LessThan:
			values = []string{v1s}
		}
		req, err := labels.NewRequirement("k", op.sel, values)
		if err != nil {
			t.Skip("invalid requirement; the API server would reject it")
		}
		set := labels.Set{}
		if present {
			set["k"] = label
		}
		want := req.Matches(set)
		if got := matchExpression(op.node, values, label, present); got != want {
			t.Errorf("%s %q on label %q (present %v): got %v, labels says %v", op.node, values, label, present, got, want)
		}
	})
}
