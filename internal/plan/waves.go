package plan

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/kup-project/kup/internal/capacity"
)

// PlanWaves plans the whole rollout of in.ToUpgrade.
//
// It assumes what the executor makes true between waves: every PDB is
// back to its steady-state budget (the executor waits for a health gate),
// and the pods a wave evicted run again on upgraded nodes, so the nodes
// still to do hold the pods they hold now. The simulation puts each evicted
// pod back on the node it left, which is upgraded by then; that is the
// cheapest state meeting the assumption.
//
// Each wave is what NextWave would return on that simulated cluster with
// every budget at its steady state, so the plan shown is the plan run when
// the cluster behaves.
func PlanWaves(in Input) Plan {
	c := newCluster(in)
	p := Plan{Waves: []Wave{}, LowerBound: c.lowerBound(0, 0)}
	remaining := c.order
	canaryDue := c.canaryDue
	for len(remaining) > 0 {
		w := c.buildWave(remaining, false, canaryDue)
		if len(w.Nodes) == 0 {
			// Cannot happen: in steady state the first candidate always fits
			// on its own, or block() would have taken it out. Guard the loop
			// anyway and say why rather than spin.
			for _, n := range remaining {
				p.Blocked = append(p.Blocked, BlockedNode{Node: n, Cause: BlockedByCapacity,
					Reason: "no wave could take this node: " + w.Limit.Reason})
			}
			break
		}
		w.Index = len(p.Waves) + 1
		if !w.ControlPlane {
			canaryDue = false
		}
		p.Waves = append(p.Waves, w)
		remaining = slices.DeleteFunc(slices.Clone(remaining), func(n string) bool { return slices.Contains(w.Nodes, n) })
	}
	p.Blocked = append(slices.Clone(c.blocked), p.Blocked...)
	return p
}

// NextWave is the wave to run now, computed from the live cluster, and the
// nodes that cannot be in any wave. Budgets are taken as listed
// (status.disruptionsAllowed): a PDB that is short of healthy pods right now
// holds its nodes back, without blocking them. A wave with no nodes means
// there is nothing to do (Limit no-more-nodes) or nothing can go now (Limit
// says what to wait for). Index is always 1. A node blocked by a PDB stays
// blocked until someone changes the PDB or the workload; a node blocked by
// capacity is blocked as of now, and pods moving in later waves can lift it.
func NextWave(in Input) (Wave, []BlockedNode) {
	return nextWave(in, nil)
}

// nextWave is NextWave with a look at the ledger before the wave's
// placements are rolled back: tests check the packing the planner relied
// on, pod by pod, with their own arithmetic.
func nextWave(in Input, observe func(*capacity.Ledger)) (Wave, []BlockedNode) {
	c := newCluster(in)
	c.observe = observe
	w := c.buildWave(c.order, true, c.canaryDue)
	w.Index = 1
	return w, c.blocked
}

// buildWave fills one wave, taking candidates in priority order and each
// one that keeps the wave allowed (first-fit: together with the priority
// order this is first-fit over waves, since a node that fits no earlier wave
// is considered again for the next). live chooses the budgets: as listed
// (NextWave) or steady state (PlanWaves). The ledger is rolled back before
// returning.
func (c *cluster) buildWave(remaining []string, live, canaryDue bool) Wave {
	w := Wave{Nodes: []string{}}
	if len(remaining) == 0 {
		w.Limit = Limit{Kind: LimitNoMoreNodes, Reason: "no more nodes"}
		return w
	}

	var candidates []string
	limit := c.maxUnavailable
	capLimit := Limit{Kind: LimitMaxUnavailable, Reason: fmt.Sprintf("max-unavailable %d", c.maxUnavailable)}
	otherZones := false
	if c.info[remaining[0]].controlPlane {
		// Control-plane nodes one at a time: each runs an etcd member and an
		// API server, and losing two at once can cost etcd its quorum.
		for _, n := range remaining {
			if c.info[n].controlPlane {
				candidates = append(candidates, n)
			}
		}
		limit = 1
		capLimit = Limit{Kind: LimitControlPlane, Reason: "control-plane one at a time"}
		w.ControlPlane = true
		if live && c.inFlight > 0 {
			limit = 0
			capLimit.Reason += fmt.Sprintf(", and %s still upgrading", plural(c.inFlight, "node"))
		}
	} else {
		zone := c.info[remaining[0]].zone
		for _, n := range remaining {
			if c.policy.ZoneByZone && c.info[n].zone != zone {
				otherZones = true
				continue
			}
			candidates = append(candidates, n)
		}
		if len(c.policy.Order) == 0 {
			c.byUrgency(candidates)
		}
		if canaryDue {
			// The canary is the first candidate, the most constrained node:
			// it proves the drain where it is likeliest to struggle, and it
			// spends the one-node wave on a node that conflicts with many
			// others. (Taking the least constrained one instead made plans
			// about 1% longer over the sequence test's clusters.)
			limit = 1
			capLimit = Limit{Kind: LimitCanary, Reason: "canary"}
		}
		if live && c.inFlight > 0 {
			limit = max(limit-c.inFlight, 0)
			capLimit.Reason += fmt.Sprintf(", %s of the last wave still upgrading", plural(c.inFlight, "node"))
		}
	}

	start := c.ledger.Mark()
	defer c.ledger.Rollback(start)
	used := map[int]int{}
	var waits []BudgetWait
	var held *Limit
	heldBack := 0
	capHit := false
	for _, n := range candidates {
		if len(w.Nodes) == limit {
			capHit = true // and n is left for a later wave
			break
		}
		ni := c.info[n]
		over, why, ok := c.pdbAllows(ni, used, live)
		if ok {
			m := c.ledger.Mark()
			if misfits := c.ledger.Place(c.ledger.Drain(n)); len(misfits) > 0 {
				c.ledger.Rollback(m)
				f := misfits[0]
				ok = false
				why = Limit{Kind: LimitCapacity, Pod: f.Pod,
					Reason: fmt.Sprintf("capacity: pod %s fits nowhere else (%s)", f.Pod, misfitDetail(f))}
			}
		}
		if !ok {
			heldBack++
			if held == nil {
				why.Node = n
				held = &why
			}
			continue
		}
		w.Nodes = append(w.Nodes, n)
		for _, pc := range ni.pdbs {
			used[pc.pdb] += pc.pods
		}
		waits = append(waits, over...)
	}

	// The first rule that applies is the one that stopped the wave. A full
	// wave that took every candidate was stopped by running out of nodes,
	// not by its cap — except the canary and control-plane waves, whose
	// limit also says what kind of wave they are.
	switch {
	case capHit:
		w.Limit = capLimit
	case held != nil:
		w.Limit = *held
	case len(w.Nodes) == limit && capLimit.Kind != LimitMaxUnavailable:
		w.Limit = capLimit
	case otherZones:
		w.Limit = Limit{Kind: LimitZoneBoundary, Reason: "zone boundary"}
	default:
		w.Limit = Limit{Kind: LimitNoMoreNodes, Reason: "no more nodes"}
	}
	w.Limit.HeldBack = heldBack
	w.BudgetWaits = waits
	c.describe(&w)
	if c.observe != nil {
		c.observe(c.ledger)
	}
	return w
}

// pdbAllows checks node ni against the PDB budgets given what the wave
// already evicts (used).
//
// A node holding more pods of a PDB than the PDB's steady-state budget can
// never drain without waiting: its drain evicts up to the budget, then
// waits for the replacements to be healthy before evicting more. Such a
// node shares its wave with no other node holding pods of that PDB, so the
// wait is its own; nodes holding none of them may still join (the brief
// "goes alone" read as "alone for that PDB": an unrelated node does not
// make the wait longer, and a wave of one would cost a wave for nothing).
// over lists those waits.
func (c *cluster) pdbAllows(ni *nodeInfo, used map[int]int, live bool) (over []BudgetWait, why Limit, ok bool) {
	for _, pc := range ni.pdbs {
		p := c.pdbs[pc.pdb]
		budget := p.budget(live)
		now := ""
		if live && p.live < p.steady {
			now = " now"
		}
		if pc.pods > p.perWave {
			if used[pc.pdb] > 0 {
				return nil, Limit{Kind: LimitPDB, PDB: p.key,
					Reason: fmt.Sprintf("PDB %s: %s allowed%s, node %s holds %d and shares no wave with other nodes holding them",
						p.key, plural(p.steady, "disruption"), c.roundsNote(), ni.name, pc.pods)}, false
			}
			if budget == 0 {
				return nil, Limit{Kind: LimitPDB, PDB: p.key, Reason: fmt.Sprintf("PDB %s: 0 disruptions allowed%s", p.key, now)}, false
			}
			over = append(over, BudgetWait{Node: ni.name, PDB: p.key, Pods: pc.pods, Allowed: p.steady})
			continue
		}
		if used[pc.pdb]+pc.pods > budget {
			return nil, Limit{Kind: LimitPDB, PDB: p.key, Reason: fmt.Sprintf("PDB %s: %s allowed%s%s", p.key, plural(p.budget(live)-p.perWave+p.steady, "disruption"), now, c.roundsNote())}, false
		}
	}
	return over, Limit{}, true
}

// byUrgency orders a wave's candidates most urgent first, stable on the
// priority order. A node's urgency is the sum, over the PDBs whose pods it
// holds, of the share of the PDB's budget it uses times the waves the PDB
// still needs among the candidates (its pods there over its budget). The
// PDBs needing the most waves are the plan's critical path: a wave that
// leaves out a pod of theirs it could have taken makes the plan longer,
// while a PDB with few pods left can wait. It refines the static score of
// priority with what is left, wave after wave.
func (c *cluster) byUrgency(candidates []string) {
	need := map[int]int{}
	for _, n := range candidates {
		for _, pc := range c.info[n].pdbs {
			need[pc.pdb] += pc.pods
		}
	}
	for _, n := range candidates {
		ni := c.info[n]
		ni.urgency = 0
		for _, pc := range ni.pdbs {
			b := float64(max(c.pdbs[pc.pdb].perWave, 1))
			ni.urgency += float64(pc.pods) / b * float64(need[pc.pdb]) / b
		}
	}
	slices.SortStableFunc(candidates, func(a, b string) int { return cmp.Compare(c.info[b].urgency, c.info[a].urgency) })
}

// describe fills what the wave's nodes tell: zone, evicted and unmanaged
// pods, nodes cordoned before the rollout.
func (c *cluster) describe(w *Wave) {
	slices.Sort(w.Nodes)
	zones := map[string]bool{}
	for _, n := range w.Nodes {
		ni := c.info[n]
		zones[ni.zone] = true
		w.PodsEvicted += ni.evicted
		w.Unmanaged = append(w.Unmanaged, ni.unmanaged...)
		if ni.cordoned {
			w.Cordoned = append(w.Cordoned, n)
		}
	}
	if len(zones) == 1 {
		for z := range zones {
			w.Zone = z
		}
	}
	slices.Sort(w.Unmanaged)
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// roundsNote says, in a limit's reason, that the wave spends budgets
// more than once.
func (c *cluster) roundsNote() string {
	if r := c.policy.rounds(); r > 1 {
		return fmt.Sprintf(" (× %d rounds per wave)", r)
	}
	return ""
}
