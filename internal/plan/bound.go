package plan

import (
	"fmt"
	"maps"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LowerBound is the least number of waves, and the least time, any plan
// obeying the rules of this package needs for in (blocked nodes left out),
// with the term that decided it. perNode is the time one wave takes to
// cordon, drain, upgrade and get a node Ready; podReady the time evicted
// pods take to be Ready elsewhere, which the health gate waits for.
//
// Control-plane waves are one node each, so they add their count. For the
// workers the bound is the largest of:
//   - max-unavailable: ceil(n / maxUnavailable); with a canary due,
//     1 + ceil((n-1) / maxUnavailable);
//   - zones (ZoneByZone): waves never span zones, so the zones' own bounds
//     add up: the sum over zones of the largest of ceil(n_z /
//     maxUnavailable) and the PDB terms below counted within the zone,
//     plus what the canary costs in the zone where it costs least;
//   - every PDB with steady budget b: a wave takes at most b of its pods,
//     except a wave with a node holding more than b, whose other nodes hold
//     none. With a such nodes and S pods on the other nodes, that is
//     a + ceil(S / b) waves. When each node holds one pod this is the
//     familiar ceil(k / b) over the k nodes the PDB's pods sit on.
//
// The makespan bound is Waves × (perNode + podReady): waves run one after
// another, each waiting for its nodes and then its pods.
func LowerBound(in Input, perNode, podReady time.Duration) Bound {
	return newCluster(in).lowerBound(perNode, podReady)
}

func (c *cluster) lowerBound(perNode, podReady time.Duration) Bound {
	m := c.maxUnavailable
	var b Bound
	cp := 0
	var workers []*nodeInfo
	for _, n := range c.order {
		ni := c.info[n]
		if ni.controlPlane {
			cp++
			continue
		}
		workers = append(workers, ni)
	}
	n := len(workers)

	best := Term{Name: "none", Detail: "no worker node to upgrade"}
	consider := func(t Term) {
		b.Terms = append(b.Terms, t)
		if t.Waves > best.Waves {
			best = t
		}
	}
	if n > 0 {
		canary := c.canaryDue
		t := Term{Name: "max-unavailable", Waves: ceilDiv(n, m), Detail: fmt.Sprintf("ceil(%d nodes / %d)", n, m)}
		if canary {
			t.Waves = 1 + ceilDiv(n-1, m)
			t.Detail = fmt.Sprintf("1 canary + ceil(%d nodes / %d)", n-1, m)
		}
		consider(t)

		type tally struct{ alone, pods int }
		per := make([]tally, len(c.pdbs))
		for _, ni := range workers {
			for _, pc := range ni.pdbs {
				if pc.pods > c.pdbs[pc.pdb].perWave {
					per[pc.pdb].alone++
				} else {
					per[pc.pdb].pods += pc.pods
				}
			}
		}
		for i, p := range c.pdbs {
			t := per[i]
			if p.steady == 0 {
				continue
			}
			w := t.alone + ceilDiv(t.pods, p.perWave)
			if w < 2 {
				// One wave bounds nothing; listing every PDB would drown
				// the terms that matter.
				continue
			}
			detail := fmt.Sprintf("ceil(%d pods / %s per wave)", t.pods, plural(p.perWave, "disruption"))
			if t.alone > 0 {
				detail = fmt.Sprintf("%d nodes holding more than %d, one wave each + %s", t.alone, p.perWave, detail)
			}
			consider(Term{Name: "PDB " + p.key, Waves: w, Detail: detail})
		}

		if c.policy.ZoneByZone {
			consider(c.zoneTerm(workers, canary))
		}
	}

	b.Waves = best.Waves
	b.DecidedBy = best.Name
	if cp > 0 {
		b.Terms = append(b.Terms, Term{Name: "control-plane", Waves: cp, Detail: fmt.Sprintf("%d control-plane nodes, one at a time, added", cp)})
		b.Waves += cp
		if n == 0 {
			b.DecidedBy = "control-plane"
		}
	}
	b.Makespan = metav1.Duration{Duration: time.Duration(b.Waves) * (perNode + podReady)}
	return b
}

// zoneTerm is the ZoneByZone bound: per zone, the largest of the
// max-unavailable term and every PDB term over that zone's nodes; summed.
func (c *cluster) zoneTerm(workers []*nodeInfo, canary bool) Term {
	m := c.maxUnavailable
	byZone := map[string][]*nodeInfo{}
	for _, ni := range workers {
		byZone[ni.zone] = append(byZone[ni.zone], ni)
	}
	sum, extra := 0, -1
	for _, z := range slices.Sorted(maps.Keys(byZone)) {
		nodes := byZone[z]
		pdbMax := 0
		for _, w := range c.pdbTerms(nodes) {
			pdbMax = max(pdbMax, w)
		}
		k := len(nodes)
		need := max(ceilDiv(k, m), pdbMax)
		sum += need
		// The canary's zone needs the canary wave plus the rest.
		if e := max(1+ceilDiv(k-1, m), pdbMax) - need; extra < 0 || e < extra {
			extra = e
		}
	}
	t := Term{Name: "zones", Waves: sum,
		Detail: fmt.Sprintf("%d zones one after another: sum over zones of the largest of ceil(nodes in zone / %d) and the zone's PDB terms", len(byZone), m)}
	if canary && extra > 0 {
		t.Waves += extra
		t.Detail += " + 1 canary"
	}
	return t
}

// pdbTerms is, per PDB with a positive steady budget b, a + ceil(S / b)
// over nodes (see LowerBound), indexed like c.pdbs.
func (c *cluster) pdbTerms(nodes []*nodeInfo) map[int]int {
	type tally struct{ alone, pods int }
	per := map[int]*tally{}
	for _, ni := range nodes {
		for _, pc := range ni.pdbs {
			b := c.pdbs[pc.pdb].perWave
			if b == 0 {
				continue
			}
			t := per[pc.pdb]
			if t == nil {
				t = &tally{}
				per[pc.pdb] = t
			}
			if pc.pods > b {
				t.alone++
			} else {
				t.pods += pc.pods
			}
		}
	}
	out := make(map[int]int, len(per))
	for i, t := range per {
		out[i] = t.alone + ceilDiv(t.pods, c.pdbs[i].perWave)
	}
	return out
}

func ceilDiv(a, b int) int {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// OverlapBound is the least makespan of a rollout whose waves may
// overlap (rollout.Options.Overlap): a wave starts while the last one's
// nodes still upgrade, so LowerBound's "waves one after another" no
// longer binds it. What still does, for the workers (control-plane nodes
// add perNode + podReady each, one at a time):
//   - the canary, when due, runs alone and its pods get Ready before
//     anything else: perNode + podReady;
//   - max-unavailable: every other node is down perNode, at most m at a
//     time: ceil(n' / m) × perNode;
//   - every PDB with steady budget b over P evicted pods: a disruption
//     holds a unit of budget until its replacement is Ready, at least
//     podReady, so ceil(P / b) × podReady.
//
// The canary and max-unavailable terms add up; the largest of that and
// the PDB terms is the bound. With ZoneByZone kup does not overlap
// waves, and this is LowerBound's makespan.
func OverlapBound(in Input, perNode, podReady time.Duration) time.Duration {
	c := newCluster(in)
	if c.policy.ZoneByZone {
		return c.lowerBound(perNode, podReady).Makespan.Duration
	}
	cp := 0
	var workers []*nodeInfo
	for _, n := range c.order {
		if ni := c.info[n]; ni.controlPlane {
			cp++
		} else {
			workers = append(workers, ni)
		}
	}
	var bound time.Duration
	if n := len(workers); n > 0 {
		if c.canaryDue {
			bound = perNode + podReady
			n--
		}
		bound += time.Duration(ceilDiv(n, c.maxUnavailable)) * perNode
		pods := make([]int, len(c.pdbs))
		for _, ni := range workers {
			for _, pc := range ni.pdbs {
				pods[pc.pdb] += pc.pods
			}
		}
		for i, p := range c.pdbs {
			if p.perWave > 0 {
				bound = max(bound, time.Duration(ceilDiv(pods[i], p.perWave))*podReady)
			}
		}
	}
	return bound + time.Duration(cp)*(perNode+podReady)
}
