package checks

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kup-project/kup/internal/capacity"
)

// CapacitySummary is the capacity verdict the report shows beside the
// findings.
type CapacitySummary struct {
	// Nodes is how many nodes were considered.
	Nodes int `json:"nodes"`
	// MaxDown is a set of nodes that can be down together with every
	// rescheduled pod placed on the others (a greedy, lower estimate of
	// the largest such set; see capacity.MaxSimultaneouslyDown).
	MaxDown []string `json:"maxDown"`
	// Undrainable are the nodes whose pods fit nowhere else even alone.
	Undrainable []capacity.Undrainable `json:"undrainable,omitempty"`
}

// Capacity asks, for each node the upgrade drains, whether its evictable
// pods can be placed on the other schedulable nodes (requests against
// what is left of allocatable, node selectors, required node affinity,
// taints and tolerations — package capacity's model of the scheduler), and
// estimates the largest set of nodes that can be down at once. A node that
// cannot be drained even alone is a warning; pods relying on rules the
// model ignores are reported as information, since the verdict for them
// is optimistic.
func Capacity(in Input) ([]Finding, CapacitySummary) { return capacityCheck(newIndex(in)) }

func capacityCheck(x *index) ([]Finding, CapacitySummary) {
	nodes := make([]*corev1.Node, 0, len(x.snap.Nodes))
	for i := range x.snap.Nodes {
		nodes = append(nodes, &x.snap.Nodes[i])
	}
	est := maxDown(nodes, x.pods)
	summary := CapacitySummary{Nodes: len(nodes), MaxDown: est.Nodes}
	var out []Finding
	for _, u := range est.Undrainable {
		if !x.rolls(u.Node) {
			continue
		}
		summary.Undrainable = append(summary.Undrainable, u)
		objs := []Object{nodeObject(u.Node)}
		var why []string
		for i, m := range u.Misfits {
			ns, name, _ := strings.Cut(m.Pod, "/")
			objs = append(objs, Object{Kind: "Pod", Namespace: ns, Name: name})
			if i < 3 {
				why = append(why, m.String())
			}
		}
		if len(u.Misfits) > 3 {
			why = append(why, fmt.Sprintf("… (%d more)", len(u.Misfits)-3))
		}
		out = append(out, foundf(CapacityUndrained, objs, "draining node %s alone leaves %s Pending: %s",
			u.Node, plural(len(u.Misfits), "pod"), strings.Join(why, "; ")))
	}

	// Pods whose placement the model cannot vouch for, by workload and rule.
	type key struct {
		owner Object
		rules string
	}
	groups := map[key][]*corev1.Pod{}
	var order []key
	for _, p := range x.pods {
		if p.Spec.NodeName == "" || !x.rolls(p.Spec.NodeName) || capacity.DrainFate(p) != capacity.Rescheduled {
			continue
		}
		ignored := capacity.Ignored(p)
		if len(ignored) == 0 {
			continue
		}
		rules := make([]string, len(ignored))
		for i, c := range ignored {
			rules[i] = string(c)
		}
		k := key{x.owner(p), strings.Join(rules, ", ")}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], p)
	}
	for _, k := range order {
		g := ownerGroup{owner: k.owner, pods: groups[k]}
		out = append(out, foundf(CapacityUnmodelled, objectsOf(g), "%s of %s use %s, which kup's capacity model does not evaluate",
			plural(len(g.pods), "pod"), k.owner, k.rules))
	}
	return out, summary
}

// maxDown is capacity.MaxSimultaneouslyDown's estimate — nodes that cannot
// be drained even alone, then a greedy set, lightest node first (the sum
// of its pods' dominant shares, then fewest pods, then name), that can be
// down together — with a cheap necessary condition in front of every
// attempt to grow the set: the pods to move must fit, resource by
// resource, in the total room left on the schedulable nodes outside it.
// Ledger.Place explains every misfit against every node, which is right
// for a verdict shown to a person and ruinous for the hundreds of
// attempts that fail once a large cluster is nearly full (1,000 nodes,
// 30,000 pods: six seconds, against a few hundred milliseconds with the
// condition). Skipping only attempts that would fail anyway leaves the
// greedy's answer unchanged.
func maxDown(nodes []*corev1.Node, pods []*corev1.Pod) capacity.DownEstimate {
	l := capacity.NewLedger(nodes, pods)
	est := capacity.DownEstimate{Nodes: []string{}}
	reqs := map[*corev1.Pod]capacity.Resources{}
	requests := func(p *corev1.Pod) capacity.Resources {
		r, ok := reqs[p]
		if !ok {
			r = capacity.PodRequests(p)
			reqs[p] = r
		}
		return r
	}
	names := make([]string, 0, len(nodes))
	schedulable := map[string]bool{}
	var total capacity.Resources
	for _, n := range nodes {
		names = append(names, n.Name)
		if !n.Spec.Unschedulable {
			schedulable[n.Name] = true
			addResources(&total, capacity.Allocatable(n))
		}
	}
	slices.Sort(names)
	own := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.Spec.NodeName != "" && l.Has(p.Spec.NodeName) && !finished(p) && capacity.DrainFate(p) == capacity.Rescheduled {
			own[p.Spec.NodeName] = append(own[p.Spec.NodeName], p)
		}
	}

	blocked := map[string]bool{}
	for _, n := range names {
		m := l.Mark()
		misfits := l.Place(l.Drain(n))
		l.Rollback(m)
		if len(misfits) > 0 {
			blocked[n] = true
			est.Undrainable = append(est.Undrainable, capacity.Undrainable{Node: n, Misfits: misfits})
		}
	}

	share := func(r capacity.Resources) float64 {
		frac := func(v, t int64) float64 {
			if t <= 0 {
				return 0
			}
			return float64(v) / float64(t)
		}
		return max(frac(r.MilliCPU, total.MilliCPU), frac(r.Memory, total.Memory), frac(r.EphemeralStorage, total.EphemeralStorage))
	}
	need := map[string]capacity.Resources{}
	demand := map[string]float64{}
	var order []string
	for _, n := range names {
		if blocked[n] {
			continue
		}
		var sum capacity.Resources
		for _, p := range own[n] {
			r := requests(p)
			addResources(&sum, r)
			demand[n] += share(r)
		}
		need[n] = sum
		order = append(order, n)
	}
	slices.SortStableFunc(order, func(a, b string) int {
		return cmp.Or(cmp.Compare(demand[a], demand[b]), cmp.Compare(len(own[a]), len(own[b])))
	})

	// Room per node, kept here rather than asked of Ledger.Free, which
	// shares the node's extended-resource map with its result and so
	// changes the ledger when a node has extended resources.
	base := map[string]capacity.Resources{}
	for _, n := range nodes {
		base[n.Name] = capacity.Allocatable(n)
	}
	for _, p := range pods {
		if b, ok := base[p.Spec.NodeName]; ok && !finished(p) {
			subResources(&b, requests(p))
			base[p.Spec.NodeName] = b
		}
	}
	drained := map[string]bool{}
	// An overcommitted node's negative room must not hide another's.
	free := func(n string) capacity.Resources {
		f := copyResources(base[n])
		for _, p := range l.Placed(n) {
			subResources(&f, requests(p))
		}
		return clampResources(f)
	}
	room := func() capacity.Resources {
		var r capacity.Resources
		for _, n := range names {
			if schedulable[n] && !drained[n] {
				addResources(&r, free(n))
			}
		}
		return r
	}
	left := room()
	for _, n := range order {
		// What must move: the node's own pods and what earlier drains put
		// there; where it can go: the room outside the set and this node.
		want := need[n]
		for _, p := range l.Placed(n) {
			addResources(&want, requests(p))
		}
		avail := left
		if schedulable[n] {
			subResources(&avail, free(n))
		}
		if !fitsIn(want, avail) {
			continue
		}
		m := l.Mark()
		if misfits := l.Place(l.Drain(n)); len(misfits) > 0 {
			l.Rollback(m)
			continue
		}
		drained[n] = true
		est.Nodes = append(est.Nodes, n)
		left = room()
	}
	slices.Sort(est.Nodes)
	return est
}

func addResources(r *capacity.Resources, o capacity.Resources) {
	r.MilliCPU += o.MilliCPU
	r.Memory += o.Memory
	r.EphemeralStorage += o.EphemeralStorage
	r.Pods += o.Pods
	for k, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[corev1.ResourceName]int64{}
		}
		r.Scalar[k] += v
	}
}

func subResources(r *capacity.Resources, o capacity.Resources) {
	neg := capacity.Resources{MilliCPU: -o.MilliCPU, Memory: -o.Memory, EphemeralStorage: -o.EphemeralStorage, Pods: -o.Pods}
	for k, v := range o.Scalar {
		if neg.Scalar == nil {
			neg.Scalar = map[corev1.ResourceName]int64{}
		}
		neg.Scalar[k] = -v
	}
	addResources(r, neg)
}

func copyResources(r capacity.Resources) capacity.Resources {
	var out capacity.Resources
	addResources(&out, r)
	return out
}

// clampResources raises every negative amount to zero.
func clampResources(r capacity.Resources) capacity.Resources {
	out := capacity.Resources{MilliCPU: max(r.MilliCPU, 0), Memory: max(r.Memory, 0), EphemeralStorage: max(r.EphemeralStorage, 0), Pods: max(r.Pods, 0)}
	for k, v := range r.Scalar {
		if out.Scalar == nil {
			out.Scalar = map[corev1.ResourceName]int64{}
		}
		out.Scalar[k] = max(v, 0)
	}
	return out
}

// fitsIn is the necessary condition: every amount wanted is at most what
// is available in total.
func fitsIn(want, avail capacity.Resources) bool {
	if want.MilliCPU > avail.MilliCPU || want.Memory > avail.Memory || want.EphemeralStorage > avail.EphemeralStorage || want.Pods > avail.Pods {
		return false
	}
	for k, v := range want.Scalar {
		if v > avail.Scalar[k] {
			return false
		}
	}
	return true
}
