package capacity

import (
	"cmp"
	"slices"

	v1 "k8s.io/api/core/v1"
)

// Ledger is the running account of what every node has left while pods are
// placed on paper. It starts from the cluster as listed — each node's
// allocatable and what its non-terminated pods request — and changes only
// through Drain and Place, both of which can be undone with Rollback, so a
// caller can try a node and take the attempt back cheaply.
//
// Placement is first-fit decreasing: the pods to place are sorted largest
// first (by their dominant share of the cluster's allocatable), and each
// goes to the first node in name order that passes every filter. First-fit
// rather than best-fit because the question is only "is there room", for
// which both have the same worst-case guarantee (11/9 of optimal in one
// dimension), while best-fit must score every node for every pod and needs
// an arbitrary single "tightness" across cpu, memory and the rest; the
// planner asks this question once per candidate node, so the cheaper answer
// wins. Largest first because small pods fit in the gaps big ones leave,
// never the other way round.
//
// A Ledger is not safe for concurrent use.
type Ledger struct {
	nodes  []ledgerNode
	byName map[string]int
	reqs   map[*v1.Pod]Resources
	total  Resources // allocatable of all schedulable nodes, to size pods
	log    []undo
}

type ledgerNode struct {
	node    *v1.Node
	alloc   Resources
	used    Resources
	own     []*v1.Pod // the node's pods that need a place when it is drained
	placed  []*v1.Pod // pods this ledger placed here
	drained bool
}

// undo is one entry of the ledger's journal, replayed backwards by Rollback.
type undo struct {
	node   int
	pod    *v1.Pod   // a placement to take back, or nil for a drain
	placed []*v1.Pod // for a drain: the node's placed pods before it
}

// Mark is a point in a Ledger's history to Rollback to.
type Mark int

// NewLedger accounts nodes and the pods bound to them. Pods bound to nodes
// not in the list are ignored.
func NewLedger(nodes []*v1.Node, pods []*v1.Pod) *Ledger {
	l := &Ledger{
		nodes:  make([]ledgerNode, len(nodes)),
		byName: make(map[string]int, len(nodes)),
		reqs:   make(map[*v1.Pod]Resources, len(pods)),
	}
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b *v1.Node) int { return cmp.Compare(a.Name, b.Name) })
	for i, n := range sorted {
		l.nodes[i] = ledgerNode{node: n, alloc: Allocatable(n)}
		l.byName[n.Name] = i
		if !n.Spec.Unschedulable {
			l.total.add(l.nodes[i].alloc)
		}
	}
	for _, p := range pods {
		i, ok := l.byName[p.Spec.NodeName]
		if !ok || !holdsResources(p) {
			continue
		}
		ln := &l.nodes[i]
		ln.used.add(l.requests(p))
		if DrainFate(p) == Rescheduled {
			ln.own = append(ln.own, p)
		}
	}
	return l
}

// requests caches PodRequests: the same pod is sized many times over a plan.
func (l *Ledger) requests(p *v1.Pod) Resources {
	if r, ok := l.reqs[p]; ok {
		return r
	}
	r := PodRequests(p)
	l.reqs[p] = r
	return r
}

// Has reports whether node is in the ledger.
func (l *Ledger) Has(node string) bool {
	_, ok := l.byName[node]
	return ok
}

// Free is what node has left for new pods: allocatable minus what is placed
// there, including pods the ledger placed. Unknown nodes have nothing.
func (l *Ledger) Free(node string) Resources {
	i, ok := l.byName[node]
	if !ok {
		return Resources{}
	}
	// A copy: subtracting in place would eat into the node's allocatable
	// extended resources through the shared map.
	free := l.nodes[i].alloc.clone()
	free.sub(l.nodes[i].used)
	return free
}

// Mark returns the current point in the ledger's history.
func (l *Ledger) Mark() Mark { return Mark(len(l.log)) }

// Rollback undoes every Drain and Place since m.
func (l *Ledger) Rollback(m Mark) {
	for len(l.log) > int(m) {
		u := l.log[len(l.log)-1]
		l.log = l.log[:len(l.log)-1]
		ln := &l.nodes[u.node]
		if u.pod == nil {
			ln.drained = false
			ln.placed = u.placed
			continue
		}
		ln.used.sub(l.requests(u.pod))
		ln.placed = ln.placed[:len(ln.placed)-1]
	}
}

// Drain takes node out of the targets, as a cordon and drain would, and
// returns the pods that now need a place elsewhere: the node's own pods that
// their controllers recreate (see Fate) and any pod this ledger had placed
// there. An unknown or already drained node returns nothing.
func (l *Ledger) Drain(node string) []*v1.Pod {
	i, ok := l.byName[node]
	if !ok || l.nodes[i].drained {
		return nil
	}
	ln := &l.nodes[i]
	l.log = append(l.log, undo{node: i, placed: ln.placed})
	ln.drained = true
	out := make([]*v1.Pod, 0, len(ln.own)+len(ln.placed))
	out = append(out, ln.own...)
	out = append(out, ln.placed...)
	// A fresh slice: the old one is kept in the journal for Rollback.
	ln.placed = nil
	return out
}

// Placed returns the pods Place put on node (and that are still there), in
// the order they were placed.
func (l *Ledger) Placed(node string) []*v1.Pod {
	i, ok := l.byName[node]
	if !ok {
		return nil
	}
	return slices.Clone(l.nodes[i].placed)
}

// Drained reports whether node has been drained since the ledger was made
// (and not rolled back).
func (l *Ledger) Drained(node string) bool {
	i, ok := l.byName[node]
	return ok && l.nodes[i].drained
}

// Place puts pods, largest first, each on the first node (in name order)
// that is not drained and passes every filter, and records the placement.
// It returns the pods that fit nowhere, each with the reason its best node
// gave. Pods that fit stay placed even when others do not; Rollback to a
// Mark taken before to undo all of it.
func (l *Ledger) Place(pods []*v1.Pod) []Misfit {
	order := slices.Clone(pods)
	size := make(map[*v1.Pod]float64, len(order))
	for _, p := range order {
		size[p] = l.share(l.requests(p))
	}
	slices.SortStableFunc(order, func(a, b *v1.Pod) int {
		if c := cmp.Compare(size[b], size[a]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	var misfits []Misfit
	for _, p := range order {
		if !l.place(p) {
			misfits = append(misfits, l.explain(p))
		}
	}
	return misfits
}

// place puts one pod on the first node that takes it.
func (l *Ledger) place(p *v1.Pod) bool {
	req := l.requests(p)
	for i := range l.nodes {
		ln := &l.nodes[i]
		if ln.drained || !l.fits(p, req, ln) {
			continue
		}
		ln.used.add(req)
		ln.placed = append(ln.placed, p)
		l.log = append(l.log, undo{node: i, pod: p})
		return true
	}
	return false
}

// fits is verdict reordered for speed: the cheap integer checks that turn
// down most nodes run before label and taint matching. Explain uses verdict,
// which keeps the scheduler's order for the message.
func (l *Ledger) fits(p *v1.Pod, req Resources, ln *ledgerNode) bool {
	n := ln.node
	if n.Spec.Unschedulable && !tolerates(p.Spec.Tolerations, &unschedulableTaint) {
		return false
	}
	if !fitsResources(req, ln.alloc, ln.used) {
		return false
	}
	if !matchesNodeSelector(p, n) || !matchesRequiredAffinity(p, n) {
		return false
	}
	_, bad := untoleratedTaint(p, n)
	return !bad
}

// Check says whether pod would fit on node now, and if not, why.
func (l *Ledger) Check(pod *v1.Pod, node string) (Filter, string, bool) {
	i, ok := l.byName[node]
	if !ok {
		return NoNodes, "node " + node + " is not known", false
	}
	ln := &l.nodes[i]
	if ln.drained {
		return Unschedulable, "node is being drained", false
	}
	return verdict(pod, l.requests(pod), ln.node, ln.alloc, ln.used)
}

// explain finds the node that came closest to taking p.
func (l *Ledger) explain(p *v1.Pod) Misfit {
	m := Misfit{Pod: p.Namespace + "/" + p.Name, Filter: NoNodes, Reason: "no other node to place it on"}
	req := l.requests(p)
	best := 0
	for i := range l.nodes {
		ln := &l.nodes[i]
		if ln.drained {
			continue
		}
		f, why, _ := verdict(p, req, ln.node, ln.alloc, ln.used)
		if f.stage() > best {
			best = f.stage()
			m.Node, m.Filter, m.Reason = ln.node.Name, f, why
		}
	}
	return m
}

// share is a pod's dominant share of the cluster: the largest fraction of
// the schedulable nodes' total cpu, memory or ephemeral storage it requests.
// It puts pods of different shapes on one scale for "largest first".
func (l *Ledger) share(r Resources) float64 {
	frac := func(v, total int64) float64 {
		if total <= 0 {
			return 0
		}
		return float64(v) / float64(total)
	}
	return max(frac(r.MilliCPU, l.total.MilliCPU), frac(r.Memory, l.total.Memory), frac(r.EphemeralStorage, l.total.EphemeralStorage))
}

// demand is the total dominant share of the pods node's drain would need
// to place; MaxSimultaneouslyDown takes the lightest nodes first.
func (l *Ledger) demand(i int) float64 {
	var d float64
	for _, p := range l.nodes[i].own {
		d += l.share(l.requests(p))
	}
	return d
}
