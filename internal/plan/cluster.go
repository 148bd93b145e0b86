package plan

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kup-project/kup/internal/capacity"
)

// cluster is the planner's index of an Input: per node, what its drain
// evicts and how much of each PDB's budget that uses; per PDB, its budget.
type cluster struct {
	policy         Policy
	maxUnavailable int
	inFlight       int
	canaryDue      bool
	info           map[string]*nodeInfo
	pdbs           []pdbInfo
	// order is every node in scope and not blocked, in priority order,
	// control-plane nodes first.
	order   []string
	blocked []BlockedNode
	ledger  *capacity.Ledger
	// zoneRank orders zones for ZoneByZone; see priority.
	zoneRank map[string]int
	// byNS holds the evicted pods of in-scope nodes by namespace, the only
	// pods a PDB needs to look at.
	byNS map[string][]evictedPod
	// observe, when set (tests), sees the ledger with a wave's placements.
	observe func(*capacity.Ledger)
}

type nodeInfo struct {
	name         string
	zone         string
	controlPlane bool
	cordoned     bool
	evicted      int
	unmanaged    []string
	pdbs         []pdbCount // by pdb index
	// multi are the node's evicted pods matched by several PDBs.
	multi []podPDBs
	// score is how much of the PDBs' budgets the node uses up; see
	// priority. urgency weighs it by what is left; see byUrgency.
	score, urgency float64
}

type pdbCount struct {
	pdb  int
	pods int
}

type podPDBs struct {
	pod  string
	pdbs []int
}

type pdbInfo struct {
	key string // namespace/name
	// steady is the budget when every pod the PDB expects is healthy:
	// expectedPods - desiredHealthy. PlanWaves assumes budgets recover to
	// it between waves (the executor waits for that).
	steady int
	// perWave is what one wave may take of the PDB: steady ×
	// Policy.BudgetRounds (a drain spends the budget, waits for the
	// replacements, spends it again).
	perWave int
	// live is status.disruptionsAllowed as listed; NextWave uses it.
	live           int
	expected       int32
	desiredHealthy int32
}

// budget is what a wave starting now may take: the live budget plus the
// later rounds at steady state (NextWave), or perWave (PlanWaves).
func (p pdbInfo) budget(live bool) int {
	if live {
		return p.live + p.perWave - p.steady
	}
	return p.perWave
}

// newCluster indexes in. Any policy error blocks every node named in
// ToUpgrade: the planner reports rather than fails, and plans nothing it
// cannot justify.
func newCluster(in Input) *cluster {
	c := &cluster{policy: in.Policy, info: map[string]*nodeInfo{}}
	nodes := make(map[string]*v1.Node, len(in.Nodes))
	for _, n := range in.Nodes {
		nodes[n.Name] = n
	}
	toUpgrade := sortedCopy(in.ToUpgrade)
	toUpgrade = slices.Compact(toUpgrade)

	if err := in.Policy.Validate(); err != nil {
		for _, name := range toUpgrade {
			c.blocked = append(c.blocked, BlockedNode{Node: name, Cause: InvalidPolicy, Reason: err.Error()})
		}
		return c
	}
	selector, _ := metav1.LabelSelectorAsSelector(in.Policy.NodeSelector)
	if in.Policy.NodeSelector == nil {
		selector = labels.Everything()
	}

	// The percentage base counts matching workers whether upgraded or not,
	// so the cap stays put while NextWave is asked again and again.
	workers := 0
	for _, n := range in.Nodes {
		if selector.Matches(labels.Set(n.Labels)) && !isControlPlane(n) {
			workers++
		}
	}
	mu, _ := intstr.GetScaledValueFromIntOrPercent(&in.Policy.MaxUnavailable, workers, false)
	c.maxUnavailable = max(mu, 1)
	c.inFlight = max(in.InFlight, 0)

	c.canaryDue = in.Policy.CanaryEnabled()
	for _, name := range in.Upgraded {
		if n, ok := nodes[name]; ok && !isControlPlane(n) {
			c.canaryDue = false
		}
	}

	for _, name := range toUpgrade {
		n, ok := nodes[name]
		if !ok {
			c.blocked = append(c.blocked, BlockedNode{Node: name, Cause: NodeNotFound,
				Reason: fmt.Sprintf("node %s is to upgrade but was not listed; it may have been deleted", name)})
			continue
		}
		if !selector.Matches(labels.Set(n.Labels)) {
			continue
		}
		c.info[name] = &nodeInfo{
			name:         name,
			zone:         n.Labels[ZoneLabel],
			controlPlane: isControlPlane(n),
			cordoned:     n.Spec.Unschedulable,
		}
	}

	c.rankZones(in.Nodes)
	c.indexPods(in)
	c.indexPDBs(in)
	c.ledger = capacity.NewLedger(in.Nodes, in.Pods)
	c.block()
	c.order = c.priority()
	return c
}

func isControlPlane(n *v1.Node) bool {
	_, ok := n.Labels[ControlPlaneLabel]
	return ok
}

// evictedPod is a pod on an in-scope node that the drain evicts.
type evictedPod struct {
	pod  *v1.Pod
	node *nodeInfo
}

func (c *cluster) indexPods(in Input) {
	c.byNS = map[string][]evictedPod{}
	for _, p := range in.Pods {
		ni, ok := c.info[p.Spec.NodeName]
		if !ok {
			continue
		}
		fate := capacity.DrainFate(p)
		if !fate.Evicted() {
			continue
		}
		ni.evicted++
		if fate == capacity.Deleted {
			ni.unmanaged = append(ni.unmanaged, p.Namespace+"/"+p.Name)
		}
		c.byNS[p.Namespace] = append(c.byNS[p.Namespace], evictedPod{pod: p, node: ni})
	}
	for _, ni := range c.info {
		slices.Sort(ni.unmanaged)
	}
}

// indexPDBs counts, for every PDB and node, the PDB's pods the node's drain
// would evict, matching pods as the eviction API does: same namespace, and
// a selector that parses (an invalid one matches nothing; policy/v1's nil
// selector matches nothing, an empty one everything).
func (c *cluster) indexPDBs(in Input) {
	pdbs := slices.Clone(in.PDBs)
	slices.SortFunc(pdbs, func(a, b *policyv1.PodDisruptionBudget) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	matched := map[*v1.Pod][]int{}
	// Pods of one workload share their labels: a selector is matched once
	// per distinct label set, not once per pod (300 PDBs × 30,000 pods
	// was a fifth of a plan's CPU).
	groups := map[string][]labelGroup{}
	for _, pdb := range pdbs {
		if _, ok := groups[pdb.Namespace]; !ok {
			groups[pdb.Namespace] = groupByLabels(c.byNS[pdb.Namespace])
		}
	}
	for _, pdb := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			continue
		}
		idx := len(c.pdbs)
		st := pdb.Status
		steady := int(st.DisruptionsAllowed)
		if st.ExpectedPods > 0 {
			steady = int(st.ExpectedPods - st.DesiredHealthy)
		}
		c.pdbs = append(c.pdbs, pdbInfo{
			key:            pdb.Namespace + "/" + pdb.Name,
			steady:         max(steady, 0),
			perWave:        max(steady, 0) * in.Policy.rounds(),
			live:           max(int(st.DisruptionsAllowed), 0),
			expected:       st.ExpectedPods,
			desiredHealthy: st.DesiredHealthy,
		})
		for _, g := range groups[pdb.Namespace] {
			if !sel.Matches(g.labels) {
				continue
			}
			// Within this PDB's loop only idx is appended to any node's
			// list, so a node's last entry is idx if it has one yet.
			for _, ep := range g.pods {
				matched[ep.pod] = append(matched[ep.pod], idx)
				ni := ep.node
				if k := len(ni.pdbs); k > 0 && ni.pdbs[k-1].pdb == idx {
					ni.pdbs[k-1].pods++
				} else {
					ni.pdbs = append(ni.pdbs, pdbCount{pdb: idx, pods: 1})
				}
			}
		}
	}
	for p, idx := range matched {
		if len(idx) > 1 {
			ni := c.info[p.Spec.NodeName]
			ni.multi = append(ni.multi, podPDBs{pod: p.Namespace + "/" + p.Name, pdbs: idx})
		}
	}
	for _, ni := range c.info {
		slices.SortFunc(ni.multi, func(a, b podPDBs) int { return cmp.Compare(a.pod, b.pod) })
	}
}

// labelGroup is the evicted pods of a namespace that carry the same labels.
type labelGroup struct {
	labels labels.Set
	pods   []evictedPod
}

// groupByLabels groups pods by their label set, in the order each set is
// first seen, each group's pods in their given order.
func groupByLabels(pods []evictedPod) []labelGroup {
	var out []labelGroup
	at := map[string]int{}
	for _, ep := range pods {
		// Set.String sorts the keys; neither keys nor values can hold
		// "," or "=", so equal strings are equal sets.
		key := labels.Set(ep.pod.Labels).String()
		i, ok := at[key]
		if !ok {
			i = len(out)
			at[key] = i
			out = append(out, labelGroup{labels: labels.Set(ep.pod.Labels)})
		}
		out[i].pods = append(out[i].pods, ep)
	}
	return out
}

// block finds the nodes no wave can take, cheapest check first.
func (c *cluster) block() {
	for _, name := range slices.Sorted(maps.Keys(c.info)) {
		ni := c.info[name]
		if b, ok := c.blockedByPDB(ni); ok {
			c.blocked = append(c.blocked, b)
			delete(c.info, name)
			continue
		}
		m := c.ledger.Mark()
		misfits := c.ledger.Place(c.ledger.Drain(name))
		c.ledger.Rollback(m)
		if len(misfits) > 0 {
			f := misfits[0]
			c.blocked = append(c.blocked, BlockedNode{Node: name, Cause: BlockedByCapacity, Pod: f.Pod,
				Reason: fmt.Sprintf("pod %s fits on no other node, even with only this node down (%s)", f.Pod, misfitDetail(f))})
			delete(c.info, name)
		}
	}
	slices.SortFunc(c.blocked, func(a, b BlockedNode) int { return cmp.Compare(a.Node, b.Node) })
}

func (c *cluster) blockedByPDB(ni *nodeInfo) (BlockedNode, bool) {
	if len(ni.multi) > 0 {
		m := ni.multi[0]
		names := c.pdbNames(m.pdbs)
		return BlockedNode{Node: ni.name, Cause: BlockedBySeveralPDBs, PDBs: names, Pod: m.pod,
			Reason: fmt.Sprintf("pod %s is matched by PDBs %s; the eviction API refuses to evict a pod with more than one PDB (HTTP 500), so the drain cannot finish — make the selectors disjoint",
				m.pod, strings.Join(names, ", "))}, true
	}
	var zero []int
	for _, pc := range ni.pdbs {
		if c.pdbs[pc.pdb].steady == 0 {
			zero = append(zero, pc.pdb)
		}
	}
	if len(zero) == 0 {
		return BlockedNode{}, false
	}
	p := c.pdbs[zero[0]]
	why := fmt.Sprintf("PDB %s allows 0 disruptions even with all its pods healthy (%d expected, %d must stay healthy); the drain would wait for ever — add replicas or relax the PDB",
		p.key, p.expected, p.desiredHealthy)
	if p.expected == 0 {
		// The disruption controller has not written a status: the eviction
		// API sees 0 disruptions allowed and refuses, whatever the spec says.
		why = fmt.Sprintf("PDB %s has no status from the disruption controller yet, so it allows 0 disruptions; the drain would wait until it has one", p.key)
	}
	return BlockedNode{Node: ni.name, Cause: BlockedByPDB, PDBs: c.pdbNames(zero), Reason: why}, true
}

func (c *cluster) pdbNames(idx []int) []string {
	out := make([]string, len(idx))
	for i, x := range idx {
		out[i] = c.pdbs[x].key
	}
	return out
}

func misfitDetail(m capacity.Misfit) string {
	if m.Node == "" {
		return m.Reason
	}
	return "best node " + m.Node + ": " + m.Reason
}

// rankZones fixes the order zones are done in with ZoneByZone: the order
// they first appear in Policy.Order (looking at every node, upgraded or
// not, so the answer does not change while the rollout advances), then by
// name. NextWave, asked again after every wave, thus stays in the zone it
// started until that zone is done.
func (c *cluster) rankZones(nodes []*v1.Node) {
	zoneOf := make(map[string]string, len(nodes))
	all := map[string]bool{}
	for _, n := range nodes {
		zoneOf[n.Name] = n.Labels[ZoneLabel]
		all[n.Labels[ZoneLabel]] = true
	}
	c.zoneRank = map[string]int{}
	for _, name := range c.policy.Order {
		z, ok := zoneOf[name]
		if _, ranked := c.zoneRank[z]; ok && !ranked {
			c.zoneRank[z] = len(c.zoneRank)
		}
	}
	for _, z := range slices.Sorted(maps.Keys(all)) {
		if _, ranked := c.zoneRank[z]; !ranked {
			c.zoneRank[z] = len(c.zoneRank)
		}
	}
}

// priority orders the nodes to plan: control-plane nodes first, then
// workers; with ZoneByZone, workers zone by zone (see rankZones).
//
// Within that, an explicit Policy.Order is followed as given — the user's
// order wins over the heuristic — and nodes it does not name come after.
// Otherwise workers go most constrained first: a node's score is the sum,
// over the PDBs whose pods it holds, of the share of the PDB's budget it
// uses (3 pods of a PDB allowing 1 disruption: 3). This is the rule that
// makes first-fit good in bin packing and graph colouring (first-fit
// decreasing; Welsh–Powell's largest degree first): nodes that conflict
// with each other are spread over different waves early, one per wave, and
// the unconstrained nodes, which fit any wave, fill the room left. Easy
// nodes first would pack the first waves with them and leave the
// conflicting nodes one wave each at the end. Ties go by zone, then name.
func (c *cluster) priority() []string {
	pos := map[string]int{}
	for i, n := range c.policy.Order {
		pos[n] = i
	}
	for _, ni := range c.info {
		ni.score = 0
		for _, pc := range ni.pdbs {
			ni.score += float64(pc.pods) / float64(max(c.pdbs[pc.pdb].perWave, 1))
		}
	}
	names := slices.Sorted(maps.Keys(c.info))
	slices.SortStableFunc(names, func(x, y string) int {
		a, b := c.info[x], c.info[y]
		if a.controlPlane != b.controlPlane {
			if a.controlPlane {
				return -1
			}
			return 1
		}
		if c.policy.ZoneByZone && !a.controlPlane {
			if z := cmp.Compare(c.zoneRank[a.zone], c.zoneRank[b.zone]); z != 0 {
				return z
			}
		}
		pa, oka := pos[x]
		pb, okb := pos[y]
		switch {
		case oka && okb:
			return cmp.Compare(pa, pb)
		case oka:
			return -1
		case okb:
			return 1
		}
		if s := cmp.Compare(b.score, a.score); s != 0 {
			return s
		}
		return cmp.Or(cmp.Compare(c.zoneRank[a.zone], c.zoneRank[b.zone]), cmp.Compare(x, y))
	})
	return names
}
