package plan

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type blocked struct {
	node  string
	cause BlockCause
	pdbs  []string
}

func TestPlanWaves(t *testing.T) {
	zones3 := []*v1.Node{
		worker("a1", "z-a", 8), worker("a2", "z-a", 8), worker("a3", "z-a", 8),
		worker("b1", "z-b", 8), worker("b2", "z-b", 8),
		worker("c1", "z-c", 8),
	}
	empty10 := []*v1.Node{}
	for _, n := range []string{"n01", "n02", "n03", "n04", "n05", "n06", "n07", "n08", "n09", "n10"} {
		empty10 = append(empty10, worker(n, "", 8))
	}
	tests := []struct {
		name      string
		nodes     []*v1.Node
		pods      []*v1.Pod
		pdbs      []*policyv1.PodDisruptionBudget
		toUpgrade []string // nil: every node
		upgraded  []string
		policy    Policy
		want      [][]string
		limits    []LimitKind
		blocked   []blocked
		bound     int
		decidedBy string
	}{
		{
			// cart allows 1 disruption and has a pod on w1..w4: one of them
			// per wave; the empty w5 joins the first.
			name:   "PDB-bound waves",
			nodes:  []*v1.Node{worker("w1", "", 8), worker("w2", "", 8), worker("w3", "", 8), worker("w4", "", 8), worker("w5", "", 8)},
			pods:   app("shop", "cart", 100, "w1", "w2", "w3", "w4"),
			pdbs:   []*policyv1.PodDisruptionBudget{pdb("shop", "cart", 4, 3)},
			policy: Policy{MaxUnavailable: count(4), Canary: noCanary()},
			want:   [][]string{{"w1", "w5"}, {"w2"}, {"w3"}, {"w4"}},
			limits: []LimitKind{LimitPDB, LimitPDB, LimitPDB, LimitNoMoreNodes},
			bound:  4, decidedBy: "PDB shop/cart",
		},
		{
			// Two budget rounds: a wave may take two of cart's pods (its
			// drains wait once for a replacement), so two waves, and the
			// bound halves with them.
			name:   "two budget rounds",
			nodes:  []*v1.Node{worker("w1", "", 8), worker("w2", "", 8), worker("w3", "", 8), worker("w4", "", 8), worker("w5", "", 8)},
			pods:   app("shop", "cart", 100, "w1", "w2", "w3", "w4"),
			pdbs:   []*policyv1.PodDisruptionBudget{pdb("shop", "cart", 4, 3)},
			policy: Policy{MaxUnavailable: count(5), Canary: noCanary(), BudgetRounds: 2},
			want:   [][]string{{"w1", "w2", "w5"}, {"w3", "w4"}},
			limits: []LimitKind{LimitPDB, LimitNoMoreNodes},
			bound:  2, decidedBy: "PDB shop/cart",
		},
		{
			// A node holding more than budget × rounds still drains alone
			// for that PDB: with 2 rounds, w1's three pods exceed 2.
			name:   "budget rounds: a node over budget × rounds goes alone for its PDB",
			nodes:  []*v1.Node{worker("w1", "", 8), worker("w2", "", 8), worker("w3", "", 8)},
			pods:   concat(app("shop", "cart", 100, "w1", "w1", "w1", "w2", "w3")),
			pdbs:   []*policyv1.PodDisruptionBudget{pdb("shop", "cart", 5, 4)},
			policy: Policy{MaxUnavailable: count(3), Canary: noCanary(), BudgetRounds: 2},
			want:   [][]string{{"w1"}, {"w2", "w3"}},
			limits: []LimitKind{LimitPDB, LimitNoMoreNodes},
			bound:  2, decidedBy: "PDB shop/cart",
		},
		{
			// PDB with 2 disruptions: two of its nodes per wave.
			name:   "PDB with budget 2 pairs nodes",
			nodes:  []*v1.Node{worker("w1", "", 8), worker("w2", "", 8), worker("w3", "", 8), worker("w4", "", 8)},
			pods:   app("shop", "cart", 100, "w1", "w2", "w3", "w4"),
			pdbs:   []*policyv1.PodDisruptionBudget{pdb("shop", "cart", 4, 2)},
			policy: Policy{MaxUnavailable: count(4), Canary: noCanary()},
			want:   [][]string{{"w1", "w2"}, {"w3", "w4"}},
			limits: []LimitKind{LimitPDB, LimitNoMoreNodes},
			bound:  2, decidedBy: "PDB shop/cart",
		},
		{
			// big (3 cores) on a fits only on c: b has 2 cores left. Once a
			// is in the wave, web on b would need 2 of c's 1 remaining core;
			// and b and c cannot go together, web would need 2 of a's 1.
			name:   "capacity-bound wave",
			nodes:  []*v1.Node{worker("a", "", 4), worker("b", "", 4), worker("c", "", 4)},
			pods:   concat(app("shop", "big", 3000, "a"), app("shop", "web", 2000, "b")),
			policy: Policy{MaxUnavailable: count(3), Canary: noCanary()},
			want:   [][]string{{"a"}, {"b"}, {"c"}},
			limits: []LimitKind{LimitCapacity, LimitCapacity, LimitNoMoreNodes},
			bound:  1, decidedBy: "max-unavailable",
		},
		{
			name:   "zone by zone, canary first",
			nodes:  zones3,
			policy: Policy{MaxUnavailable: count(2), ZoneByZone: true},
			want:   [][]string{{"a1"}, {"a2", "a3"}, {"b1", "b2"}, {"c1"}},
			limits: []LimitKind{LimitCanary, LimitZoneBoundary, LimitZoneBoundary, LimitNoMoreNodes},
			bound:  4, decidedBy: "max-unavailable",
		},
		{
			name:   "zone boundary stops a wave",
			nodes:  zones3,
			policy: Policy{MaxUnavailable: count(5), ZoneByZone: true, Canary: noCanary()},
			want:   [][]string{{"a1", "a2", "a3"}, {"b1", "b2"}, {"c1"}},
			limits: []LimitKind{LimitZoneBoundary, LimitZoneBoundary, LimitNoMoreNodes},
			bound:  3, decidedBy: "zones",
		},
		{
			name:   "explicit order picks the zone sequence",
			nodes:  zones3,
			policy: Policy{MaxUnavailable: count(5), ZoneByZone: true, Canary: noCanary(), Order: []string{"c1", "b2", "a3"}},
			want:   [][]string{{"c1"}, {"b1", "b2"}, {"a1", "a2", "a3"}},
			limits: []LimitKind{LimitZoneBoundary, LimitZoneBoundary, LimitNoMoreNodes},
			bound:  3, decidedBy: "zones",
		},
		{
			name:   "explicit order without zones",
			nodes:  empty10[:4],
			policy: Policy{MaxUnavailable: count(2), Order: []string{"n04", "n02"}},
			want:   [][]string{{"n04"}, {"n01", "n02"}, {"n03"}},
			limits: []LimitKind{LimitCanary, LimitMaxUnavailable, LimitNoMoreNodes},
			bound:  3, decidedBy: "max-unavailable",
		},
		{
			name:   "nodes with no pods fill waves up to max-unavailable",
			nodes:  empty10,
			policy: Policy{MaxUnavailable: count(4), Canary: noCanary()},
			want:   [][]string{{"n01", "n02", "n03", "n04"}, {"n05", "n06", "n07", "n08"}, {"n09", "n10"}},
			limits: []LimitKind{LimitMaxUnavailable, LimitMaxUnavailable, LimitNoMoreNodes},
			bound:  3, decidedBy: "max-unavailable",
		},
		{
			name:   "max-unavailable as percent rounds down",
			nodes:  empty10,
			policy: Policy{MaxUnavailable: percent(35), Canary: noCanary()},
			want:   [][]string{{"n01", "n02", "n03"}, {"n04", "n05", "n06"}, {"n07", "n08", "n09"}, {"n10"}},
			limits: []LimitKind{LimitMaxUnavailable, LimitMaxUnavailable, LimitMaxUnavailable, LimitNoMoreNodes},
			bound:  4, decidedBy: "max-unavailable",
		},
		{
			// 30% of the 10 matching workers, not of the 4 left to do.
			name:      "percent counts upgraded nodes too",
			nodes:     empty10,
			toUpgrade: []string{"n07", "n08", "n09", "n10"},
			upgraded:  []string{"n01"},
			policy:    Policy{MaxUnavailable: percent(30)},
			want:      [][]string{{"n07", "n08", "n09"}, {"n10"}},
			limits:    []LimitKind{LimitMaxUnavailable, LimitNoMoreNodes},
			bound:     2, decidedBy: "max-unavailable",
		},
		{
			name:   "tiny percent still moves one node",
			nodes:  empty10[:3],
			policy: Policy{MaxUnavailable: percent(1), Canary: noCanary()},
			want:   [][]string{{"n01"}, {"n02"}, {"n03"}},
			limits: []LimitKind{LimitMaxUnavailable, LimitMaxUnavailable, LimitNoMoreNodes},
			bound:  3, decidedBy: "max-unavailable",
		},
		{
			name:   "node selector restricts scope",
			nodes:  zones3,
			policy: Policy{MaxUnavailable: count(5), Canary: noCanary(), NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{ZoneLabel: "z-b"}}},
			want:   [][]string{{"b1", "b2"}},
			limits: []LimitKind{LimitNoMoreNodes},
			bound:  1, decidedBy: "max-unavailable",
		},
		{
			name:   "control-plane nodes first, one at a time, then the canary",
			nodes:  []*v1.Node{worker("w1", "", 8), worker("w2", "", 8), controlPlane("cp2", ""), controlPlane("cp1", ""), worker("w3", "", 8)},
			policy: Policy{MaxUnavailable: count(3)},
			want:   [][]string{{"cp1"}, {"cp2"}, {"w1"}, {"w2", "w3"}},
			limits: []LimitKind{LimitControlPlane, LimitControlPlane, LimitCanary, LimitNoMoreNodes},
			bound:  4, decidedBy: "max-unavailable",
		},
		{
			name:      "no canary once a worker is upgraded",
			nodes:     empty10[:4],
			upgraded:  []string{"n00-gone", "n01"},
			toUpgrade: []string{"n02", "n03", "n04"},
			policy:    Policy{MaxUnavailable: count(3)},
			want:      [][]string{{"n02", "n03", "n04"}},
			limits:    []LimitKind{LimitNoMoreNodes},
			bound:     1, decidedBy: "max-unavailable",
		},
		{
			name:   "already-cordoned node is upgraded and recorded",
			nodes:  []*v1.Node{worker("a", "", 8, cordoned), worker("b", "", 8), worker("c", "", 8)},
			pods:   app("shop", "web", 100, "a"),
			policy: Policy{MaxUnavailable: count(2), Canary: noCanary()},
			want:   [][]string{{"a", "b"}, {"c"}},
			limits: []LimitKind{LimitMaxUnavailable, LimitNoMoreNodes},
			bound:  2, decidedBy: "max-unavailable",
		},
		{
			// a is cordoned with room to spare; b's pod must not count on it.
			name:    "cordoned node receives no pods",
			nodes:   []*v1.Node{worker("a", "", 8, cordoned), worker("b", "", 4), worker("c", "", 4)},
			pods:    concat(app("shop", "web", 3000, "b"), app("shop", "db", 2000, "c")),
			policy:  Policy{MaxUnavailable: count(3), Canary: noCanary()},
			want:    [][]string{{"a"}},
			limits:  []LimitKind{LimitNoMoreNodes},
			blocked: []blocked{{"b", BlockedByCapacity, nil}, {"c", BlockedByCapacity, nil}},
			bound:   1, decidedBy: "max-unavailable",
		},
		{
			name:  "PDB with 0 budget blocks its node",
			nodes: []*v1.Node{worker("a", "", 8), worker("b", "", 8), worker("c", "", 8)},
			pods:  concat(app("shop", "db", 100, "a"), app("shop", "web", 100, "b", "c")),
			pdbs: []*policyv1.PodDisruptionBudget{
				pdb("shop", "db", 1, 1), // one replica, minAvailable 1
				pdb("shop", "web", 2, 1),
			},
			policy:  Policy{MaxUnavailable: count(3), Canary: noCanary()},
			want:    [][]string{{"b"}, {"c"}},
			limits:  []LimitKind{LimitPDB, LimitNoMoreNodes},
			blocked: []blocked{{"a", BlockedByPDB, []string{"shop/db"}}},
			bound:   2, decidedBy: "PDB shop/web",
		},
		{
			// Until the disruption controller writes a status, the eviction
			// API allows nothing.
			name:  "PDB without status blocks its node",
			nodes: []*v1.Node{worker("a", "", 8), worker("b", "", 8)},
			pods:  app("shop", "db", 100, "a"),
			pdbs: []*policyv1.PodDisruptionBudget{func() *policyv1.PodDisruptionBudget {
				p := pdb("shop", "db", 1, 0)
				p.Status = policyv1.PodDisruptionBudgetStatus{}
				return p
			}()},
			policy:  Policy{MaxUnavailable: count(2), Canary: noCanary()},
			want:    [][]string{{"b"}},
			limits:  []LimitKind{LimitNoMoreNodes},
			blocked: []blocked{{"a", BlockedByPDB, []string{"shop/db"}}},
			bound:   1, decidedBy: "max-unavailable",
		},
		{
			// The eviction API ignores a PDB whose selector does not parse.
			name:  "PDB with an invalid selector matches nothing",
			nodes: []*v1.Node{worker("a", "", 8), worker("b", "", 8), worker("c", "", 8)},
			pods:  app("shop", "db", 100, "a", "b"),
			pdbs: []*policyv1.PodDisruptionBudget{func() *policyv1.PodDisruptionBudget {
				p := pdb("shop", "db", 2, 2)
				p.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}
				return p
			}()},
			policy: Policy{MaxUnavailable: count(2), Canary: noCanary()},
			want:   [][]string{{"a", "b"}, {"c"}},
			limits: []LimitKind{LimitMaxUnavailable, LimitNoMoreNodes},
			bound:  2, decidedBy: "max-unavailable",
		},
		{
			name:  "pod matched by two PDBs blocks its node",
			nodes: []*v1.Node{worker("a", "", 8), worker("b", "", 8)},
			pods: []*v1.Pod{
				podOn("shop", "cart-0", "a", 100, "ReplicaSet", map[string]string{"app": "cart", "tier": "web"}),
				podOn("shop", "cart-1", "b", 100, "ReplicaSet", map[string]string{"app": "cart"}),
			},
			pdbs: []*policyv1.PodDisruptionBudget{pdb("shop", "cart", 2, 1), func() *policyv1.PodDisruptionBudget {
				p := pdb("shop", "web", 4, 2)
				p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}}
				return p
			}()},
			policy:  Policy{MaxUnavailable: count(2), Canary: noCanary()},
			want:    [][]string{{"b"}},
			limits:  []LimitKind{LimitNoMoreNodes},
			blocked: []blocked{{"a", BlockedBySeveralPDBs, []string{"shop/cart", "shop/web"}}},
			bound:   1, decidedBy: "max-unavailable",
		},
		{
			// a holds 3 cart pods, cart allows 1: no other node with cart
			// pods joins a's wave, and a's drain waits for the budget; c,
			// without cart pods, may.
			name:   "node with more pods than the budget takes the PDB for itself",
			nodes:  []*v1.Node{worker("a", "", 8), worker("b", "", 8), worker("c", "", 8)},
			pods:   concat(app("shop", "cart", 100, "a", "a", "a", "b"), app("shop", "web", 100, "c")),
			pdbs:   []*policyv1.PodDisruptionBudget{pdb("shop", "cart", 4, 3)},
			policy: Policy{MaxUnavailable: count(3), Canary: noCanary()},
			want:   [][]string{{"a", "c"}, {"b"}},
			limits: []LimitKind{LimitPDB, LimitNoMoreNodes},
			bound:  2, decidedBy: "PDB shop/cart",
		},
		{
			// A PDB in another namespace with the same labels is not ours.
			name:   "PDBs match pods of their namespace only",
			nodes:  []*v1.Node{worker("a", "", 8), worker("b", "", 8), worker("c", "", 8)},
			pods:   app("shop", "cart", 100, "a", "b"),
			pdbs:   []*policyv1.PodDisruptionBudget{pdb("other", "cart", 2, 2)},
			policy: Policy{MaxUnavailable: count(2), Canary: noCanary()},
			want:   [][]string{{"a", "b"}, {"c"}},
			limits: []LimitKind{LimitMaxUnavailable, LimitNoMoreNodes},
			bound:  2, decidedBy: "max-unavailable",
		},
		{
			// The DaemonSet pod is not evicted, the bare pod is deleted for
			// good: neither needs a place, though both are larger than b.
			name:  "unmanaged and DaemonSet pods",
			nodes: []*v1.Node{worker("a", "", 8), worker("b", "", 2)},
			pods: []*v1.Pod{
				podOn("ops", "debug", "a", 6000, "", nil),
				podOn("kube-system", "proxy-a", "a", 6000, "DaemonSet", nil),
				podOn("kube-system", "proxy-b", "b", 1000, "DaemonSet", nil),
				podOn("shop", "web-0", "a", 500, "ReplicaSet", nil),
			},
			policy: Policy{MaxUnavailable: count(1), Canary: noCanary()},
			want:   [][]string{{"a"}, {"b"}},
			limits: []LimitKind{LimitMaxUnavailable, LimitNoMoreNodes},
			bound:  2, decidedBy: "max-unavailable",
		},
		{
			name:      "unknown node is reported",
			nodes:     []*v1.Node{worker("a", "", 8)},
			toUpgrade: []string{"a", "ghost"},
			policy:    Policy{Canary: noCanary()},
			want:      [][]string{{"a"}},
			limits:    []LimitKind{LimitNoMoreNodes},
			blocked:   []blocked{{"ghost", NodeNotFound, nil}},
			bound:     1, decidedBy: "max-unavailable",
		},
		{
			name:    "invalid policy blocks everything",
			nodes:   []*v1.Node{worker("a", "", 8)},
			policy:  Policy{MaxUnavailable: intstr.FromString("lots")},
			want:    [][]string{},
			blocked: []blocked{{"a", InvalidPolicy, nil}},
			bound:   0, decidedBy: "none",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Nodes: tt.nodes, Pods: tt.pods, PDBs: tt.pdbs, ToUpgrade: tt.toUpgrade, Upgraded: tt.upgraded, Policy: tt.policy}
			if in.ToUpgrade == nil {
				in.ToUpgrade = names(tt.nodes)
			}
			p := PlanWaves(in)
			var got [][]string
			var limits []LimitKind
			for i, w := range p.Waves {
				got = append(got, w.Nodes)
				limits = append(limits, w.Limit.Kind)
				if w.Index != i+1 {
					t.Errorf("wave %d has Index %d", i+1, w.Index)
				}
				if w.Limit.Reason == "" {
					t.Errorf("wave %d: limit without a reason", i+1)
				}
			}
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("waves = %v, want %v", got, tt.want)
			}
			if tt.limits != nil && !slices.Equal(limits, tt.limits) {
				for _, w := range p.Waves {
					t.Logf("wave %d %v: %s", w.Index, w.Nodes, w.Limit.Reason)
				}
				t.Errorf("limits = %v, want %v", limits, tt.limits)
			}
			if len(p.Blocked) != len(tt.blocked) {
				t.Fatalf("blocked = %+v, want %+v", p.Blocked, tt.blocked)
			}
			for i, b := range tt.blocked {
				g := p.Blocked[i]
				if g.Node != b.node || g.Cause != b.cause || !slices.Equal(g.PDBs, b.pdbs) || g.Reason == "" {
					t.Errorf("blocked[%d] = %+v, want %+v", i, g, b)
				}
			}
			if p.LowerBound.Waves != tt.bound || p.LowerBound.DecidedBy != tt.decidedBy {
				t.Errorf("lower bound = %d by %q, want %d by %q (%+v)", p.LowerBound.Waves, p.LowerBound.DecidedBy, tt.bound, tt.decidedBy, p.LowerBound.Terms)
			}
			if len(p.Waves) < p.LowerBound.Waves {
				t.Errorf("%d waves beat the lower bound %d: the bound is wrong", len(p.Waves), p.LowerBound.Waves)
			}

			// NextWave on the same, healthy cluster is the plan's first wave.
			next, nb := NextWave(in)
			if len(p.Waves) > 0 && !slices.Equal(next.Nodes, p.Waves[0].Nodes) {
				t.Errorf("NextWave = %v, PlanWaves starts with %v", next.Nodes, p.Waves[0].Nodes)
			}
			if len(nb) != len(p.Blocked) {
				t.Errorf("NextWave blocked %v, PlanWaves %v", nb, p.Blocked)
			}
		})
	}
}

func TestWaveDetails(t *testing.T) {
	nodes := []*v1.Node{worker("a", "z1", 8, cordoned), worker("b", "z1", 8), worker("c", "z1", 8)}
	pods := []*v1.Pod{
		podOn("ops", "debug", "a", 100, "", nil),
		podOn("kube-system", "proxy", "a", 100, "DaemonSet", nil),
		podOn("kube-system", "etcd-a", "a", 100, "Node", nil),
		podOn("shop", "web-0", "a", 100, "ReplicaSet", nil),
		podOn("shop", "done", "a", 100, "Job", nil),
	}
	pods[2].Annotations = map[string]string{v1.MirrorPodAnnotationKey: "x"}
	pods[4].Status.Phase = v1.PodSucceeded
	p := PlanWaves(Input{Nodes: nodes, Pods: pods, ToUpgrade: []string{"a", "b"}, Policy: Policy{MaxUnavailable: count(2), Canary: noCanary()}})
	if len(p.Waves) != 1 {
		t.Fatalf("waves: %+v", p.Waves)
	}
	w := p.Waves[0]
	if w.PodsEvicted != 2 {
		t.Errorf("PodsEvicted = %d, want 2 (web-0 and the unmanaged debug)", w.PodsEvicted)
	}
	if !slices.Equal(w.Unmanaged, []string{"ops/debug"}) {
		t.Errorf("Unmanaged = %v", w.Unmanaged)
	}
	if !slices.Equal(w.Cordoned, []string{"a"}) {
		t.Errorf("Cordoned = %v", w.Cordoned)
	}
	if w.Zone != "z1" {
		t.Errorf("Zone = %q", w.Zone)
	}
}

func TestBudgetWaits(t *testing.T) {
	nodes := []*v1.Node{worker("a", "", 8), worker("b", "", 8), worker("c", "", 8)}
	pods := concat(app("shop", "cart", 100, "a", "a", "a", "b"), app("shop", "web", 100, "c"))
	p := PlanWaves(Input{Nodes: nodes, Pods: pods, PDBs: []*policyv1.PodDisruptionBudget{pdb("shop", "cart", 4, 3)},
		ToUpgrade: names(nodes), Policy: Policy{MaxUnavailable: count(3), Canary: noCanary()}})
	want := []BudgetWait{{Node: "a", PDB: "shop/cart", Pods: 3, Allowed: 1}}
	if len(p.Waves) != 2 || !slices.Equal(p.Waves[0].BudgetWaits, want) || len(p.Waves[1].BudgetWaits) != 0 {
		t.Fatalf("waves = %+v, want the first to wait for shop/cart on a", p.Waves)
	}
	if got := p.Waves[0].BudgetWaits[0].String(); !strings.Contains(got, "waits for the budget to recover") {
		t.Errorf("BudgetWait.String() = %q", got)
	}
	if l := p.Waves[0].Limit; l.Node != "b" || l.Reason != "PDB shop/cart: 1 disruption allowed" {
		t.Errorf("limit = %+v", l)
	}
}

func TestLimitReasons(t *testing.T) {
	nodes := []*v1.Node{worker("w1", "", 8), worker("w2", "", 8), worker("w3", "", 8)}
	pods := app("shop", "cart", 100, "w1", "w2", "w3")
	p := PlanWaves(Input{Nodes: nodes, Pods: pods, PDBs: []*policyv1.PodDisruptionBudget{pdb("shop", "cart", 3, 2)},
		ToUpgrade: names(nodes), Policy: Policy{MaxUnavailable: count(3), Canary: noCanary()}})
	l := p.Waves[0].Limit
	if l.Reason != "PDB shop/cart: 1 disruption allowed" || l.PDB != "shop/cart" || l.Node != "w2" || l.HeldBack != 2 {
		t.Errorf("limit = %+v", l)
	}

	tight := []*v1.Node{worker("a", "", 4), worker("b", "", 4), worker("c", "", 4)}
	cp := concat(app("shop", "big", 3000, "a"), app("shop", "web", 2000, "b"))
	p = PlanWaves(Input{Nodes: tight, Pods: cp, ToUpgrade: names(tight), Policy: Policy{MaxUnavailable: count(3), Canary: noCanary()}})
	l = p.Waves[0].Limit
	if l.Kind != LimitCapacity || l.Pod != "shop/web-0" || !strings.HasPrefix(l.Reason, "capacity: pod shop/web-0 fits nowhere else (best node c: Insufficient cpu") {
		t.Errorf("limit = %+v", l)
	}
}

func TestNextWaveLiveBudgets(t *testing.T) {
	nodes := []*v1.Node{worker("a", "", 8), worker("b", "", 8), worker("c", "", 8)}
	pods := concat(app("shop", "cart", 100, "a", "b"), app("shop", "web", 100, "c"))
	cart := pdb("shop", "cart", 2, 1)
	in := Input{Nodes: nodes, Pods: pods, PDBs: []*policyv1.PodDisruptionBudget{cart}, ToUpgrade: names(nodes),
		Policy: Policy{MaxUnavailable: count(3), Canary: noCanary()}}

	// A cart pod is unready: no disruption allowed right now. a and b wait,
	// unblocked; c goes.
	cart.Status.CurrentHealthy, cart.Status.DisruptionsAllowed = 1, 0
	w, blocked := NextWave(in)
	if !slices.Equal(w.Nodes, []string{"c"}) || len(blocked) != 0 {
		t.Fatalf("NextWave = %v blocked %v, want [c] and nothing blocked", w.Nodes, blocked)
	}
	if w.Limit.Kind != LimitPDB || w.Limit.Reason != "PDB shop/cart: 0 disruptions allowed now" {
		t.Errorf("limit = %+v", w.Limit)
	}

	// Only a and b left, still unhealthy: an empty wave says what to wait for.
	in.ToUpgrade = []string{"a", "b"}
	w, _ = NextWave(in)
	if len(w.Nodes) != 0 || w.Limit.Kind != LimitPDB || w.Limit.HeldBack != 2 {
		t.Errorf("NextWave = %+v, want an empty wave waiting for shop/cart", w)
	}

	// The plan assumes the budget recovers.
	p := PlanWaves(in)
	if len(p.Waves) != 2 {
		t.Errorf("PlanWaves = %+v, want a and b one after the other", p.Waves)
	}

	// Nothing left to do.
	in.ToUpgrade = nil
	w, _ = NextWave(in)
	if len(w.Nodes) != 0 || w.Limit.Kind != LimitNoMoreNodes {
		t.Errorf("NextWave with nothing to do = %+v", w)
	}
}

func TestLowerBound(t *testing.T) {
	var nodes []*v1.Node
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		nodes = append(nodes, worker(n, "z1", 8))
	}
	nodes = append(nodes, controlPlane("cp", "z1"))
	pods := concat(
		app("shop", "cart", 100, "a", "a", "b", "c", "d"), // a holds 2 > budget 1
		app("shop", "web", 100, "a", "b", "c", "d", "e", "f"),
	)
	in := Input{Nodes: nodes, Pods: pods, ToUpgrade: names(nodes),
		PDBs:   []*policyv1.PodDisruptionBudget{pdb("shop", "cart", 5, 4), pdb("shop", "web", 6, 3)},
		Policy: Policy{MaxUnavailable: count(3)}}
	b := LowerBound(in, 10*time.Minute, 2*time.Minute)
	// cart: a alone + ceil(3 pods / 1) = 4; web: ceil(6/3) = 2;
	// max-unavailable: 1 + ceil(5/3) = 3. Plus one control-plane wave.
	if b.Waves != 5 || b.DecidedBy != "PDB shop/cart" {
		t.Errorf("bound = %+v", b)
	}
	if b.Makespan.Duration != 5*12*time.Minute {
		t.Errorf("makespan = %v, want 1h0m0s", b.Makespan.Duration)
	}
	wantTerms := map[string]int{"max-unavailable": 3, "PDB shop/cart": 4, "PDB shop/web": 2, "control-plane": 1}
	for _, term := range b.Terms {
		if want, ok := wantTerms[term.Name]; !ok || want != term.Waves || term.Detail == "" {
			t.Errorf("term %+v, want %d waves", term, want)
		}
		delete(wantTerms, term.Name)
	}
	if len(wantTerms) != 0 {
		t.Errorf("missing terms %v", wantTerms)
	}
	if p := PlanWaves(in); len(p.Waves) < b.Waves {
		t.Errorf("plan of %d waves beats the bound %d", len(p.Waves), b.Waves)
	}

	// Zone-by-zone: zones of 3, 2 and 1 nodes, 2 per wave: 2+1+1 = 4. The
	// canary costs nothing more in the zone of 3 (1 + ceil(2/2) = 2 waves
	// either way), so the bound stays 4.
	z := Input{Nodes: []*v1.Node{
		worker("a1", "z-a", 8), worker("a2", "z-a", 8), worker("a3", "z-a", 8),
		worker("b1", "z-b", 8), worker("b2", "z-b", 8), worker("c1", "z-c", 8),
	}, Policy: Policy{MaxUnavailable: count(2), ZoneByZone: true}}
	z.ToUpgrade = names(z.Nodes)
	if b := LowerBound(z, 0, 0); b.Waves != 4 {
		t.Errorf("zone bound = %+v, want 4", b)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		ok   bool
	}{
		{"zero value", Policy{}, true},
		{"count", Policy{MaxUnavailable: count(3)}, true},
		{"percent", Policy{MaxUnavailable: percent(20)}, true},
		{"not a percent", Policy{MaxUnavailable: intstr.FromString("20")}, false},
		{"negative", Policy{MaxUnavailable: count(-1)}, false},
		{"negative percent", Policy{MaxUnavailable: intstr.FromString("-5%")}, false},
		{"bad selector", Policy{NodeSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}}, false},
		{"order twice", Policy{Order: []string{"a", "b", "a"}}, false},
		{"three budget rounds", Policy{BudgetRounds: 3}, true},
		{"too many budget rounds", Policy{BudgetRounds: MaxBudgetRounds + 1}, false},
		{"negative budget rounds", Policy{BudgetRounds: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestBudgetRoundsFor(t *testing.T) {
	for _, tc := range []struct {
		upgrade, ready time.Duration
		want           int
	}{
		{16 * time.Second, 5 * time.Second, 3},  // the benchmark's canary: 1 + 16/7 = 3
		{16 * time.Second, 18 * time.Second, 1}, // replacements slower than an upgrade
		{16 * time.Second, 12 * time.Second, 2},
		{8 * time.Second, time.Second, 3},  // capped
		{time.Second, 10 * time.Second, 1}, // never below 1
		{0, 0, 1},
	} {
		if got := BudgetRoundsFor(tc.upgrade, tc.ready); got != tc.want {
			t.Errorf("BudgetRoundsFor(%s, %s) = %d, want %d", tc.upgrade, tc.ready, got, tc.want)
		}
	}
}

// TestNextWaveInFlight: nodes of the last wave still upgrading count
// against max-unavailable; the planner says so when they are what holds
// the wave, and PlanWaves ignores them.
func TestNextWaveInFlight(t *testing.T) {
	var nodes []*v1.Node
	for i := range 6 {
		nodes = append(nodes, worker(fmt.Sprintf("n%d", i), "", 8))
	}
	cp := controlPlane("cp", "")
	for _, tc := range []struct {
		name      string
		nodes     []*v1.Node
		inFlight  int
		want      int
		kind      LimitKind
		reasonHas string
	}{
		{"nothing in flight", nodes, 0, 4, LimitMaxUnavailable, "max-unavailable 4"},
		{"one in flight", nodes, 1, 3, LimitMaxUnavailable, "1 node of the last wave still upgrading"},
		{"cap reached", nodes, 4, 0, LimitMaxUnavailable, "4 nodes of the last wave still upgrading"},
		{"more in flight than the cap", nodes, 9, 0, LimitMaxUnavailable, "9 nodes"},
		{"control plane waits for every worker", append([]*v1.Node{cp}, nodes...), 2, 0, LimitControlPlane, "2 nodes still upgrading"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Nodes: tc.nodes, ToUpgrade: names(tc.nodes), InFlight: tc.inFlight,
				Policy: Policy{MaxUnavailable: count(4), Canary: noCanary()}}
			w, blocked := NextWave(in)
			if len(w.Nodes) != tc.want || len(blocked) != 0 {
				t.Fatalf("NextWave = %v (blocked %v), want %d nodes", w.Nodes, blocked, tc.want)
			}
			if w.Limit.Kind != tc.kind || !strings.Contains(w.Limit.Reason, tc.reasonHas) {
				t.Errorf("limit = %+v, want %s with %q", w.Limit, tc.kind, tc.reasonHas)
			}
			if p := PlanWaves(in); len(p.Waves) == 0 || len(p.Waves[len(p.Waves)-1].Nodes) == 0 {
				t.Errorf("PlanWaves with InFlight %d = %+v: it plans from steady state and ignores nodes in flight", tc.inFlight, p.Waves)
			}
		})
	}
}

// TestOverlapBound: the bound of a rollout whose waves overlap, by the
// term that decides it, against LowerBound's for the same cluster.
func TestOverlapBound(t *testing.T) {
	workers := func(n int, zone func(int) string) []*v1.Node {
		var out []*v1.Node
		for i := range n {
			out = append(out, worker(fmt.Sprintf("n%02d", i), zone(i), 64))
		}
		return out
	}
	oneZone := func(int) string { return "z1" }
	spread := func(name string, nodes []*v1.Node, perNode int) []*v1.Pod {
		var on []string
		for _, n := range nodes {
			for range perNode {
				on = append(on, n.Name)
			}
		}
		return app("shop", name, 10, on...)
	}
	ten := workers(10, oneZone)
	const node, ready = 15 * time.Second, 5 * time.Second
	for _, tc := range []struct {
		name string
		in   Input
		want time.Duration
	}{
		{"max-unavailable, canary first", Input{Nodes: ten, Policy: Policy{MaxUnavailable: count(3)}},
			node + ready + 3*node}, // canary, then ceil(9/3) rounds of a node
		{"no canary", Input{Nodes: ten, Policy: Policy{MaxUnavailable: count(3), Canary: noCanary()}},
			4 * node},
		{"a PDB decides", Input{Nodes: ten, Pods: spread("cart", ten, 3),
			PDBs:   []*policyv1.PodDisruptionBudget{pdb("shop", "cart", 30, 29)},
			Policy: Policy{MaxUnavailable: count(10), Canary: noCanary()}},
			30 * ready}, // one disruption at a time, 30 pods: 150 s against 15 s of nodes
		{"control plane adds", Input{Nodes: append([]*v1.Node{controlPlane("cp", "z1")}, ten...), Policy: Policy{MaxUnavailable: count(10), Canary: noCanary()}},
			node + node + ready},
		{"zone by zone does not overlap: LowerBound", Input{Nodes: workers(4, func(i int) string { return fmt.Sprint("z", i%2) }),
			Policy: Policy{MaxUnavailable: count(4), ZoneByZone: true, Canary: noCanary()}},
			2 * (node + ready)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.ToUpgrade = names(tc.in.Nodes)
			got := OverlapBound(tc.in, node, ready)
			if got != tc.want {
				t.Errorf("OverlapBound = %s, want %s", got, tc.want)
			}
			if lb := LowerBound(tc.in, node, ready).Makespan.Duration; got > lb {
				t.Errorf("OverlapBound %s above LowerBound %s: overlapping can only help", got, lb)
			}
		})
	}
}
