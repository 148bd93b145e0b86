package rehearse

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kup-project/kup/internal/report"
)

func TestBlockerIDsCompareGeneratedPodsByTheirPrefix(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Pod problems/double-covered-7d9dd6d48b-s4p74", "Pod problems/double-covered-*"},
		{"Pod data/db-0", "Pod data/db-0"},                                 // a StatefulSet's pod keeps its name
		{"Pod problems/unmanaged", "Pod problems/unmanaged"},               // an unmanaged pod too
		{"Pod monitoring/node-agent-x7k2p", "Pod monitoring/node-agent-*"}, // a DaemonSet's
		{"Deployment problems/double-covered-7d9dd6d48b-s4p74", "Deployment problems/double-covered-7d9dd6d48b-s4p74"},
	} {
		got := BlockerIDs([]report.FindingSummary{{ID: "X", Objects: []string{tc.in}}})
		if got[0] != "X "+tc.want {
			t.Errorf("%s → %s, want %s", tc.in, got[0], tc.want)
		}
	}
}

func TestFromUpgrade(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	up := &report.UpgradeReport{
		From: "v1.35.4", To: "v1.37.2", Outcome: "failed", Reason: "rolling nodes to v1.37.2: …", Started: t0, Finished: t0.Add(3 * time.Minute),
		Findings: []report.FindingSummary{{ID: "KUP-PDB-001", Severity: "blocker", Waived: true}, {ID: "KUP-NODE-001", Severity: "blocker"}, {ID: "KUP-POD-003", Severity: "warning"}},
		Hops:     []report.HopRecord{{Index: 1}, {Index: 2}},
		Waves: []report.WaveRecord{{Index: 1, Nodes: []string{"n1"}, Limit: "canary", Started: t0, Finished: t0.Add(20 * time.Second)},
			{Index: 2, Nodes: []string{"n2", "n3"}, Limit: "PDB shop/cart", Started: t0.Add(20 * time.Second), Finished: t0.Add(50 * time.Second)}},
		Nodes: []report.NodeTimeline{
			{Node: "n1", Outcome: "upgraded"},
			{Node: "n4", Outcome: "failed", Reason: "draining node n4: pod problems/singleton-abc blocked by PDB problems/singleton: timed out after 20s"},
			{Node: "n5", Outcome: "failed", Reason: "draining node n5: pod problems/double-covered-x: the Eviction API refuses it: …"},
			{Node: "n6", Outcome: "failed", Reason: "node n6 not Ready at v1.37.2 after 10m"},
			{Node: "n7", Outcome: "not-started", Reason: "PDB problems/singleton allows 0 disruptions even with all its pods healthy (1 expected, 1 must stay healthy); the drain would wait for ever — add replicas or relax the PDB"},
			{Node: "n8", Outcome: "not-started", Reason: "pod problems/dc-x is matched by PDBs problems/dc-a, problems/dc-b; the eviction API refuses to evict a pod with more than one PDB (HTTP 500), so the drain cannot finish — make the selectors disjoint"},
		},
	}
	up.Rollout.Makespan = 50 * time.Second
	var r Report
	r.FromUpgrade(up)
	if r.Passed || r.Outcome != "failed" || r.From != "v1.35.4" {
		t.Errorf("verdict: %+v", r)
	}
	if ids := BlockerIDs(r.Blockers); !slices.Equal(ids, []string{"KUP-NODE-001 "}) {
		t.Errorf("blockers %v: want the one not waived", ids)
	}
	want := []BlockedDrain{{Node: "n4", PDB: "problems/singleton"}, {Node: "n5"}, {Node: "n7", PDB: "problems/singleton"}, {Node: "n8", PDB: "problems/dc-a, problems/dc-b"}}
	if len(r.BlockedDrains) != len(want) {
		t.Fatalf("blocked drains %+v, want %+v", r.BlockedDrains, want)
	}
	for i, w := range want {
		if r.BlockedDrains[i].Node != w.Node || r.BlockedDrains[i].PDB != w.PDB {
			t.Errorf("blocked drain %d: %+v, want %+v", i, r.BlockedDrains[i], w)
		}
	}
	p := r.Prediction
	if p.Makespan != 50*time.Second || p.Total != 3*time.Minute || p.Hops != 2 || len(p.Waves) != 2 || p.Waves[1].Duration != 30*time.Second {
		t.Errorf("prediction %+v", p)
	}
	var b strings.Builder
	_ = r.WriteText(&b)
	for _, s := range []string{"FAILED", "PDB problems/singleton (twin node n4)", "wave 2: 2 node(s) in 30s — PDB shop/cart"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, b.String())
		}
	}

	up.Outcome, r.Refused = "succeeded", []Failure{{Key: "Gadget shop/old"}}
	r.FromUpgrade(up)
	if r.Passed {
		t.Error("a refused manifest must fail the rehearsal")
	}
	r.Refused = nil
	r.FromUpgrade(up)
	if !r.Passed {
		t.Error("a succeeded upgrade with nothing refused passes")
	}
}

func TestMapToReal(t *testing.T) {
	pdb := func(name string, sel map[string]any) Object {
		return Object{Kind: kind("PodDisruptionBudget"), Obj: &unstructured.Unstructured{Object: map[string]any{
			"metadata": map[string]any{"name": name, "namespace": "p"}, "spec": map[string]any{"selector": map[string]any{"matchLabels": sel}}}}}
	}
	podOn := func(name, node string, l map[string]string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "p", Labels: l}, Spec: corev1.PodSpec{NodeName: node}}
	}
	src := &Source{
		Objects: []Object{pdb("single", map[string]any{"app": "single"}), pdb("dc-a", map[string]any{"app": "dc"}), pdb("dc-b", map[string]any{"app": "dc"})},
		Pods: []corev1.Pod{podOn("single-1", "node-9", map[string]string{"app": "single"}), podOn("dc-1", "node-25", map[string]string{"app": "dc"}),
			podOn("dc-2", "node-29", map[string]string{"app": "dc"}), podOn("other", "node-1", map[string]string{"app": "x"})},
	}
	r := Report{BlockedDrains: []BlockedDrain{{Node: "node-12", PDB: "p/single"}, {Node: "node-0", PDB: "p/dc-a, p/dc-b"}, {Node: "node-3"}}}
	r.MapToReal(src)
	for i, want := range [][]string{{"node-9"}, {"node-25", "node-29"}, nil} {
		if !slices.Equal(r.BlockedDrains[i].RealNodes, want) {
			t.Errorf("drain %d: real nodes %v, want %v", i, r.BlockedDrains[i].RealNodes, want)
		}
	}
}
