package capacity

import (
	"cmp"
	"slices"

	v1 "k8s.io/api/core/v1"
)

// DownEstimate answers the preflight's capacity question: how many nodes
// can be drained at the same time without leaving pods Pending, and which
// nodes cannot be drained at all.
type DownEstimate struct {
	// Nodes is a set of nodes that can be down together with every
	// rescheduled pod placed on the others. It is found greedily, so it is
	// a lower estimate of the largest such set, not the maximum.
	Nodes []string `json:"nodes"`
	// Undrainable are the nodes whose pods fit nowhere else even when that
	// node is the only one down.
	Undrainable []Undrainable `json:"undrainable,omitempty"`
}

// Undrainable is a node whose drain would leave pods Pending on its own.
type Undrainable struct {
	Node    string   `json:"node"`
	Misfits []Misfit `json:"misfits"`
}

// MaxSimultaneouslyDown estimates how many of nodes can be down at once
// given the pods bound to them (see DownEstimate).
//
// Greedy: nodes are tried lightest first (least dominant share of pods to
// move, then fewest pods, then name), and a node joins the set when all the
// pods of the set, itself included, still fit on the nodes outside it.
// Lightest first because the set's size is what is maximised, and a light
// node uses up less of the room the next one needs (the classic greedy for
// a cardinality knapsack). Nodes that are undrainable alone never join.
func MaxSimultaneouslyDown(nodes []*v1.Node, pods []*v1.Pod) DownEstimate {
	l := NewLedger(nodes, pods)
	est := DownEstimate{Nodes: []string{}}

	blocked := make([]bool, len(l.nodes))
	for i := range l.nodes {
		m := l.Mark()
		misfits := l.Place(l.Drain(l.nodes[i].node.Name))
		l.Rollback(m)
		if len(misfits) > 0 {
			blocked[i] = true
			est.Undrainable = append(est.Undrainable, Undrainable{Node: l.nodes[i].node.Name, Misfits: misfits})
		}
	}

	order := make([]int, 0, len(l.nodes))
	demand := make([]float64, len(l.nodes))
	for i := range l.nodes {
		if !blocked[i] {
			order = append(order, i)
			demand[i] = l.demand(i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmp.Compare(demand[a], demand[b]); c != 0 {
			return c
		}
		return cmp.Compare(len(l.nodes[a].own), len(l.nodes[b].own))
	})
	for _, i := range order {
		m := l.Mark()
		if misfits := l.Place(l.Drain(l.nodes[i].node.Name)); len(misfits) > 0 {
			l.Rollback(m)
			continue
		}
		est.Nodes = append(est.Nodes, l.nodes[i].node.Name)
	}
	slices.Sort(est.Nodes)
	return est
}
