package version

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
)

// Sentinel errors Path wraps in a *PathError, for errors.Is.
var (
	ErrSameVersion    = errors.New("target equals the current version")
	ErrDowngrade      = errors.New("downgrade refused")
	ErrUnknownVersion = errors.New("version not in the release table")
	ErrBeyondTable    = errors.New("target newer than the release table")
	ErrNotInstallable = errors.New("no installable version")
	ErrVersionNeeded  = errors.New("a full version is needed")
)

// PathError says why no path exists from From to To and what is allowed.
type PathError struct {
	From, To Version
	Err      error // one of the sentinels above
	Detail   string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("no upgrade path from %s to %s: %s", e.From, e.To, e.Detail)
}

func (e *PathError) Unwrap() error { return e.Err }

// Values of NodeRoll.ForcedBy / CappedBy and NodeSchedule.DecidedBy that are
// not skew-rule IDs.
const (
	// ForcedByTarget: the roll happens because the upgrade's goal is every
	// node at the target, not because any rule forced it earlier.
	ForcedByTarget = "target"
	// RuleNodeMaxMinorsPerRoll: the node upgrader's own limit
	// (PathOptions.NodeMaxMinorsPerRoll) stopped a roll short.
	RuleNodeMaxMinorsPerRoll = "node-max-minors-per-roll"
	// DecidedBySkewPolicy: the version-skew policy alone decided how often a
	// node rolls.
	DecidedBySkewPolicy = "version-skew-policy"
)

// PathOptions tunes Path for a provider and a node upgrader.
type PathOptions struct {
	// Installable, when set, says which versions the provider can install
	// (a managed service offers a subset). Each intermediate hop then takes
	// the newest installable patch of its minor, and the target must be
	// installable. Node rolls to intermediate minors obey it too.
	Installable func(Version) bool `json:"-"`
	// NodeMaxMinorsPerRoll is the node upgrader's own limit on minors per
	// roll (e.g. 1 for an upgrader driving `kubeadm upgrade node`, which
	// follows the control plane one minor at a time); 0 means only the skew
	// policy limits a roll.
	NodeMaxMinorsPerRoll int `json:"nodeMaxMinorsPerRoll,omitempty"`
	// Cluster is the current version of every component. Nil, or empty
	// APIServers, means a control plane at the path's From and, without
	// Kubelets, no nodes. Kubectl is ignored: it is the operator's client,
	// not part of the rollout (CheckSkew on the observed cluster judges it).
	Cluster *ClusterVersions `json:"-"`
	// NodesOnly: when the control plane is at the target already but
	// some kubelet or kube-proxy in Cluster is older (an upgrade stopped
	// between its control plane and its nodes, or a managed control plane
	// upgraded in the provider's console), the path is those nodes' rolls
	// with no hop, instead of ErrSameVersion.
	NodesOnly bool `json:"-"`
}

// UpgradePath is the plan of versions for one upgrade: control-plane hops one
// minor at a time, the node rolls each hop needs first, and the final rolls
// that bring every node to the target, each decision with its reason and
// the skew verdict at every stage. It is data: print it with String, save it
// as JSON.
type UpgradePath struct {
	From Version `json:"from"`
	To   Version `json:"to"`
	// ReleasesDate is the date of the release table the path was planned
	// with.
	ReleasesDate string `json:"releasesDate"`
	// SkewNow judges the cluster as it is, before anything moves.
	SkewNow []SkewViolation `json:"skewNow"`
	Hops    []Hop           `json:"hops"`
	// FinalNodeRolls bring every node to the target once the control plane
	// is there; SkewFinal judges the result.
	FinalNodeRolls []NodeRoll      `json:"finalNodeRolls"`
	SkewFinal      []SkewViolation `json:"skewFinal"`
	Nodes          []NodeSchedule  `json:"nodes"`
	NodeRolls      int             `json:"nodeRolls"`
	// LockstepNodeRolls is what rolling every node to the control plane's
	// version after every hop would cost: the baseline Benefit compares to.
	LockstepNodeRolls int      `json:"lockstepNodeRolls"`
	Benefit           string   `json:"benefit"`
	Notes             []string `json:"notes,omitempty"`
}

// Hop moves the control plane from From to To. NodeRolls happen before it,
// because after it those nodes would be outside the skew policy. The three
// verdicts cover every state the hop passes through: before (nodes rolled,
// control plane at From), during (every kube-apiserver at To, controllers
// and nodes not yet; an HA cluster mid-hop is bounded by before and during),
// after (controllers at To too).
type Hop struct {
	Index      int             `json:"index"` // 1-based
	Kind       string          `json:"kind"`  // "minor" or "patch"
	From       Version         `json:"from"`
	To         Version         `json:"to"`
	Reason     string          `json:"reason"`
	NodeRolls  []NodeRoll      `json:"nodeRollsBefore"`
	SkewBefore []SkewViolation `json:"skewBefore"`
	SkewDuring []SkewViolation `json:"skewDuring"`
	SkewAfter  []SkewViolation `json:"skewAfter"`
}

// NodeRoll upgrades one node (drained first: the policy does not support
// in-place minor kubelet upgrades) from From to To.
type NodeRoll struct {
	Node string  `json:"node"`
	From Version `json:"from"`
	To   Version `json:"to"`
	// BeforeHop is the hop this roll must precede; 0 for a final roll.
	BeforeHop int `json:"beforeHop,omitempty"`
	// Roll and Of number this node's rolls: "roll 2 of 3".
	Roll int `json:"roll"`
	Of   int `json:"of"`
	// ForcedBy is the skew rule that made the roll necessary at this point,
	// or "target".
	ForcedBy string `json:"forcedBy"`
	// CappedBy names what stopped the roll short of the target:
	// kubelet-newer-than-apiserver (the control plane is not there yet) or
	// node-max-minors-per-roll; empty when it reaches the target.
	CappedBy string `json:"cappedBy,omitempty"`
	Reason   string `json:"reason"`
}

// NodeSchedule sums up one node's rolls and which rule decided their number.
type NodeSchedule struct {
	Node  string  `json:"node"`
	From  Version `json:"from"`
	To    Version `json:"to"`
	Rolls int     `json:"rolls"`
	// SkewPolicyRolls is how many rolls the skew policy alone would need.
	SkewPolicyRolls int `json:"skewPolicyRolls"`
	// LockstepRolls is how many rolls following the control plane after
	// every hop would take.
	LockstepRolls int `json:"lockstepRolls"`
	// DecidedBy is "version-skew-policy" or "node-max-minors-per-roll" when
	// the node upgrader's limit is the stricter and adds rolls.
	DecidedBy string `json:"decidedBy"`
	Reason    string `json:"reason"`
}

// Valid reports whether every stage of the path is within the skew policy.
func (p *UpgradePath) Valid() bool { return len(p.Violations()) == 0 }

// Violations collects the skew violations at every stage after the path
// starts (SkewNow is the cluster before it, which the path may repair).
func (p *UpgradePath) Violations() []SkewViolation {
	var out []SkewViolation
	for _, h := range p.Hops {
		out = append(out, h.SkewBefore...)
		out = append(out, h.SkewDuring...)
		out = append(out, h.SkewAfter...)
	}
	return append(out, p.SkewFinal...)
}

// Path plans the upgrade of a cluster's control plane from from to to, and of
// its nodes (opts.Cluster.Kubelets) along with it.
//
// The control plane climbs one minor per hop, because kube-apiserver must
// not skip minors, even in a single-instance cluster
// (https://kubernetes.io/releases/version-skew-policy/#supported-component-upgrade-order),
// and kubeadm refuses to. Each intermediate hop goes to the newest known
// (installable) patch of its minor, as the policy recommends; the last hop
// goes to the exact target. A patch-only upgrade is one hop.
//
// Nodes may trail the control plane (three minors; two for kubelets older
// than 1.25), so they are rolled as late as possible, as far as possible:
// a node is rolled before the hop that would leave it outside the policy, to
// the control plane's version at that point (a kubelet may never be ahead of
// kube-apiserver), or by opts.NodeMaxMinorsPerRoll minors when that is
// smaller; all nodes reach the target after the last hop. Rolling as late
// and as far as allowed is never worse than any earlier or shorter roll, so
// the schedule has the fewest rolls per node.
//
// Path refuses, with a *PathError: equal versions, downgrades (upstream
// supports no control-plane downgrade; restore an etcd backup instead), a
// target beyond the table's newest minor, a target or intermediate minor the
// table does not know, and versions the provider cannot install. A
// minor-only target ("1.37") means its newest installable patch.
func Path(from, to Version, rel *Releases, opts PathOptions) (*UpgradePath, error) {
	if rel == nil {
		rel = DefaultReleases()
	}
	fail := func(sentinel error, format string, args ...any) (*UpgradePath, error) {
		return nil, &PathError{From: from, To: to, Err: sentinel, Detail: fmt.Sprintf(format, args...)}
	}
	if from.IsZero() || to.IsZero() {
		return fail(ErrVersionNeeded, "both the current and the target version are required, e.g. v1.36.3")
	}
	if from.IsMinorOnly() {
		return fail(ErrVersionNeeded, "the current version %s names no patch; give the control plane's exact version, e.g. %s.3", from, from)
	}
	installable := func(v Version) bool { return opts.Installable == nil || opts.Installable(v) }
	newestMinor := rel.NewestMinor()

	var notes []string
	target := to
	if to.IsMinorOnly() {
		p, ok := rel.NewestMatching(to, installable)
		switch {
		case !ok && to.MinorsAfter(newestMinor) > 0:
			return fail(ErrBeyondTable, "%s is newer than the newest minor in the release table (%s, dated %s); allowed: up to %s, or pass --releases FILE with a newer table",
				to, newestMinor.MinorString(), rel.Date().Format(dateLayout), newestMinor.MinorString())
		case !ok && rel.Patches(to) == nil:
			return fail(ErrUnknownVersion, "the release table has no release of %s; known minors: %s", to.MinorString(), listVersions(rel.Minors()))
		case !ok:
			return fail(ErrNotInstallable, "the provider can install none of the known releases of %s (%s)", to.MinorString(), listVersions(rel.Patches(to)))
		}
		target = p
		notes = append(notes, fmt.Sprintf("target %s resolved to %s, the newest %s patch of %s", to, p, installableWord(opts), to.MinorString()))
	}

	nodesOnly := false
	switch c := target.Compare(from); {
	case c == 0 && opts.NodesOnly && nodesBehind(from, opts.Cluster):
		nodesOnly = true
		notes = append(notes, fmt.Sprintf("the control plane is already at %s: no hop, only the nodes behind it roll", from))
	case c == 0:
		return fail(ErrSameVersion, "the control plane is already at %s; nothing to upgrade (allowed: a newer known release, up to %s)",
			from, newestKnown(rel))
	case c < 0:
		return fail(ErrDowngrade, "%s is older than %s: kup never downgrades a control plane, because upstream Kubernetes supports no control-plane downgrade; to go back, restore the etcd backup taken before the upgrade (allowed: targets newer than %s)",
			target, from, from)
	}
	// A nodes-only path's target is what the control plane runs: real
	// whether or not the table lists it, and installed already.
	if !nodesOnly {
		if detail, sentinel := checkTarget(target, rel, installable); sentinel != nil {
			return fail(sentinel, "%s", detail)
		}
	}

	if newest, ok := rel.NewestPatch(from); ok && from.Minor() != target.Minor() && newest.Compare(from) > 0 {
		notes = append(notes, fmt.Sprintf("optional: the Kubernetes project recommends moving to the newest patch of your current minor (%s) before a minor upgrade; this path starts from %s as it is", newest, from))
	}

	// The control plane's versions: cp[0] now, cp[i] after hop i.
	cp := []Version{from}
	var reasons []string
	switch {
	case nodesOnly:
	case target.Minor() == from.Minor():
		cp = append(cp, target)
		reasons = append(reasons, fmt.Sprintf("patch upgrade within %s: one hop straight to the requested %s (patch releases of a minor may be skipped)",
			target.MinorString(), target))
	default:
		hops := target.Minor() - from.Minor()
		for m := from.Minor() + 1; m < target.Minor(); m++ {
			minor := MinorVersion(target.Major(), m)
			if rel.Patches(minor) == nil {
				return fail(ErrUnknownVersion, "the path must pass through %s (kube-apiserver cannot skip a minor) but the release table has no release of %s; pass --releases FILE with a table that lists it",
					minor.MinorString(), minor.MinorString())
			}
			v, ok := rel.NewestMatching(minor, installable)
			if !ok {
				return fail(ErrNotInstallable, "the path must pass through %s (kube-apiserver cannot skip a minor) but the provider can install none of its known releases (%s)",
					minor.MinorString(), listVersions(rel.Patches(minor)))
			}
			newest, _ := rel.NewestPatch(minor)
			why := fmt.Sprintf("%s is the newest known patch of %s", v, minor.MinorString())
			if newest.Compare(v) > 0 {
				why = fmt.Sprintf("%s is the newest patch of %s the provider can install (the newest release is %s)", v, minor.MinorString(), newest)
			}
			reasons = append(reasons, fmt.Sprintf("minor hop %d of %d: %s; kube-apiserver may not skip a minor, so every minor between %s and %s is a hop",
				len(cp), hops, why, from, target))
			cp = append(cp, v)
		}
		reasons = append(reasons, fmt.Sprintf("minor hop %d of %d: %s is the requested target", hops, hops, target))
		cp = append(cp, target)
	}

	p := &UpgradePath{From: from, To: target, ReleasesDate: rel.Date().Format(dateLayout), Notes: notes}
	state := initialState(from, opts.Cluster)
	p.SkewNow = CheckSkew(state.ClusterVersions)

	pick := func(major, minor int) (Version, error) {
		mv := MinorVersion(major, minor)
		if v, ok := rel.NewestMatching(mv, installable); ok {
			return v, nil
		}
		if rel.Patches(mv) == nil {
			return Version{}, fmt.Errorf("%w: no release of %s to roll a node through", ErrUnknownVersion, mv.MinorString())
		}
		return Version{}, fmt.Errorf("%w: the provider can install no release of %s to roll a node through", ErrNotInstallable, mv.MinorString())
	}

	rolls := map[string][]NodeRoll{}
	for _, node := range sortedKeys(state.Kubelets) {
		var proxy *Version
		if v, ok := state.KubeProxies[node]; ok {
			proxy = &v
		}
		nr, err := scheduleNode(node, state.Kubelets[node], proxy, cp, opts.NodeMaxMinorsPerRoll, pick)
		if err != nil {
			return nil, &PathError{From: from, To: to, Err: errors.Unwrap(err), Detail: fmt.Sprintf("node %s: %v", node, err)}
		}
		skewOnly, err := scheduleNode(node, state.Kubelets[node], proxy, cp, 0, pick)
		if err != nil {
			return nil, &PathError{From: from, To: to, Err: errors.Unwrap(err), Detail: fmt.Sprintf("node %s: %v", node, err)}
		}
		rolls[node] = nr
		ns := nodeSchedule(node, state.Kubelets[node], target, nr, len(skewOnly), opts.NodeMaxMinorsPerRoll, len(cp)-1)
		ns.LockstepRolls = lockstepRolls(state.Kubelets[node], proxy, cp, opts.NodeMaxMinorsPerRoll)
		p.Nodes = append(p.Nodes, ns)
		p.NodeRolls += ns.Rolls
		p.LockstepNodeRolls += ns.LockstepRolls
	}

	for i := 1; i < len(cp); i++ {
		h := Hop{Index: i, Kind: "minor", From: cp[i-1], To: cp[i], Reason: reasons[i-1], NodeRolls: []NodeRoll{}}
		if cp[i].Minor() == cp[i-1].Minor() {
			h.Kind = "patch"
		}
		for _, node := range sortedKeys(rolls) {
			for _, r := range rolls[node] {
				if r.BeforeHop == i {
					h.NodeRolls = append(h.NodeRolls, r)
					state.roll(r)
				}
			}
		}
		h.SkewBefore = CheckSkew(state.ClusterVersions)
		state.setAPIServers(cp[i])
		h.SkewDuring = CheckSkew(state.ClusterVersions)
		state.setControllers(cp[i])
		h.SkewAfter = CheckSkew(state.ClusterVersions)
		p.Hops = append(p.Hops, h)
	}
	p.FinalNodeRolls = []NodeRoll{}
	for _, node := range sortedKeys(rolls) {
		for _, r := range rolls[node] {
			if r.BeforeHop == 0 {
				p.FinalNodeRolls = append(p.FinalNodeRolls, r)
				state.roll(r)
			}
		}
	}
	p.SkewFinal = CheckSkew(state.ClusterVersions)
	if p.Nodes == nil {
		p.Nodes = []NodeSchedule{}
	}
	p.Benefit = benefit(p)
	return p, nil
}

// checkTarget is Path's verdict on a target newer than the control
// plane, as its detail and a sentinel (nil when the target will do):
// beyond the release table, not a known release, or not one the provider
// can install.
func checkTarget(target Version, rel *Releases, installable func(Version) bool) (string, error) {
	newestMinor := rel.NewestMinor()
	targetFail := func(sentinel error, format string, args ...any) (string, error) {
		return fmt.Sprintf(format, args...), sentinel
	}
	if target.MinorsAfter(newestMinor) > 0 {
		return targetFail(ErrBeyondTable, "%s is newer than the newest minor in the release table (%s, dated %s); allowed: up to %s, or pass --releases FILE with a newer table",
			target, newestMinor.MinorString(), rel.Date().Format(dateLayout), newestKnown(rel))
	}
	if !rel.Known(target) {
		if known := rel.Patches(target); known != nil {
			return targetFail(ErrUnknownVersion, "%s is not a known release of %s (known: %s); pick one of those or pass --releases FILE with a newer table",
				target.Upstream(), target.MinorString(), listVersions(known))
		}
		return targetFail(ErrUnknownVersion, "the release table has no release of %s; known minors: %s", target.MinorString(), listVersions(rel.Minors()))
	}
	if !installable(target) {
		p, ok := rel.NewestMatching(target, installable)
		allowed := "none of its releases"
		if ok {
			allowed = "up to " + p.String()
		}
		return targetFail(ErrNotInstallable, "the provider cannot install %s (of %s it can install %s)", target, target.MinorString(), allowed)
	}
	return "", nil
}

// nodesBehind reports whether a kubelet or kube-proxy of c is older than v.
func nodesBehind(v Version, c *ClusterVersions) bool {
	if c == nil {
		return false
	}
	for _, m := range []map[string]Version{c.Kubelets, c.KubeProxies} {
		for _, nv := range m {
			if nv.Compare(v) < 0 {
				return true
			}
		}
	}
	return false
}

func installableWord(opts PathOptions) string {
	if opts.Installable != nil {
		return "installable"
	}
	return "known"
}

func newestKnown(rel *Releases) Version {
	v, _ := rel.NewestPatch(rel.NewestMinor())
	return v
}

// clusterState is the simulated cluster a path walks through.
type clusterState struct{ ClusterVersions }

func initialState(from Version, c *ClusterVersions) clusterState {
	var s clusterState
	if c != nil {
		s.ControllerManagers = append([]Version(nil), c.ControllerManagers...)
		s.Schedulers = append([]Version(nil), c.Schedulers...)
		s.CloudControllerManagers = append([]Version(nil), c.CloudControllerManagers...)
		s.APIServers = append([]Version(nil), c.APIServers...)
		s.Kubelets = maps.Clone(c.Kubelets)
		s.KubeProxies = maps.Clone(c.KubeProxies)
	}
	if len(s.APIServers) == 0 {
		s.APIServers = []Version{from}
	}
	return s
}

func (s *clusterState) setAPIServers(v Version) {
	for i := range s.APIServers {
		s.APIServers[i] = v
	}
}

func (s *clusterState) setControllers(v Version) {
	for _, vs := range [][]Version{s.ControllerManagers, s.Schedulers, s.CloudControllerManagers} {
		for i := range vs {
			vs[i] = v
		}
	}
}

// roll applies a node roll: the kubelet goes to r.To, and kube-proxy, if
// recorded for the node and older, with it (a node roll replaces the node's
// components; where kube-proxy is a DaemonSet upgraded with the control
// plane it is never older than the kubelet, so this changes nothing).
func (s *clusterState) roll(r NodeRoll) {
	s.Kubelets[r.Node] = r.To
	if p, ok := s.KubeProxies[r.Node]; ok && p.Compare(r.To) < 0 {
		s.KubeProxies[r.Node] = r.To
	}
}

// nodeVersion is the node's oldest skew-bound component.
type nodeVersion struct {
	kubelet Version
	proxy   *Version
}

func (n nodeVersion) oldest() Version {
	if n.proxy != nil && n.proxy.Compare(n.kubelet) < 0 {
		return *n.proxy
	}
	return n.kubelet
}

func (n *nodeVersion) rollTo(v Version) {
	n.kubelet = v
	if n.proxy != nil && n.proxy.Compare(v) < 0 {
		pv := v
		n.proxy = &pv
	}
}

// tooOld returns the skew rule a node component at v breaks against an
// apiserver at api ("" when within the policy).
func tooOld(comp Component, v, api Version) (rule string, limit int) {
	limit, which := nodeSkewLimit(v)
	if api.MinorsAfter(v) <= limit {
		return "", limit
	}
	if comp == KubeProxy {
		if which == "n-2" {
			return RuleKubeProxyOlderN2, limit
		}
		return RuleKubeProxyOlderN3, limit
	}
	if which == "n-2" {
		return RuleKubeletOlderN2, limit
	}
	return RuleKubeletOlderN3, limit
}

// violation describes which component of n breaks the lower skew bound
// against api, if any.
func (n nodeVersion) violation(api Version) (comp Component, v Version, rule string, limit int) {
	if rule, limit := tooOld(Kubelet, n.kubelet, api); rule != "" {
		return Kubelet, n.kubelet, rule, limit
	}
	if n.proxy != nil {
		if rule, limit := tooOld(KubeProxy, *n.proxy, api); rule != "" {
			return KubeProxy, *n.proxy, rule, limit
		}
	}
	return "", Version{}, "", 0
}

// nextStop is where one roll from cur toward ceiling ends: the ceiling, or
// maxMinors minors on when the node upgrader's limit is shorter.
func nextStop(cur, ceiling Version, maxMinors int, pick func(major, minor int) (Version, error)) (Version, bool, error) {
	if maxMinors > 0 && ceiling.MinorsAfter(cur) > maxMinors {
		v, err := pick(cur.Major(), cur.Minor()+maxMinors)
		return v, true, err
	}
	return ceiling, false, nil
}

// scheduleNode rolls one node as late and as far as the policy and the
// upgrader's limit allow. cp[0] is the control plane now, cp[i] after hop i,
// the last entry the target.
func scheduleNode(node string, kubelet Version, proxy *Version, cp []Version, maxMinors int,
	pick func(major, minor int) (Version, error)) ([]NodeRoll, error) {
	n := nodeVersion{kubelet: kubelet, proxy: proxy}
	var out []NodeRoll
	target := cp[len(cp)-1]
	for i := 1; i < len(cp); i++ {
		// Before hop i the control plane is at cp[i-1]; the hop puts every
		// kube-apiserver at cp[i] while the node stays where it is.
		for {
			comp, v, rule, limit := n.violation(cp[i])
			if rule == "" {
				break
			}
			cur := n.oldest()
			to, limited, err := nextStop(cur, cp[i-1], maxMinors, pick)
			if err != nil {
				return nil, err
			}
			if to.Compare(cur) <= 0 {
				// Cannot happen: a node outside the skew before hop i is at
				// least two minors below cp[i-1]. Guard against a loop anyway.
				return nil, fmt.Errorf("%w: cannot move %s %s any closer to the control plane at %s", ErrUnknownVersion, comp, v, cp[i-1])
			}
			r := NodeRoll{Node: node, From: n.kubelet, To: to, BeforeHop: i, ForcedBy: rule, CappedBy: RuleKubeletNewer}
			why := fmt.Sprintf("%s %s on %s would be %s behind kube-apiserver %s after hop %d (max %d, %s): rolled before hop %d",
				comp, v, node, plural(cp[i].MinorsAfter(v)), cp[i], i, limit, rule, i)
			if limited {
				r.CappedBy = RuleNodeMaxMinorsPerRoll
				r.Reason = fmt.Sprintf("%s, to %s only: the node upgrader moves at most %s per roll (NodeMaxMinorsPerRoll=%d)",
					why, to, plural(maxMinors), maxMinors)
			} else {
				r.Reason = fmt.Sprintf("%s, to %s, the control plane's version at that point (a kubelet may not be newer than kube-apiserver)", why, to)
			}
			out = append(out, r)
			n.rollTo(to)
		}
	}
	for n.oldest().Compare(target) < 0 {
		cur := n.oldest()
		to, limited, err := nextStop(cur, target, maxMinors, pick)
		if err != nil {
			return nil, err
		}
		r := NodeRoll{Node: node, From: n.kubelet, To: to, ForcedBy: ForcedByTarget}
		switch {
		case limited:
			r.CappedBy = RuleNodeMaxMinorsPerRoll
			r.Reason = fmt.Sprintf("toward the target %s after the last hop, to %s only: the node upgrader moves at most %s per roll (NodeMaxMinorsPerRoll=%d), stricter than the skew policy",
				target, to, plural(maxMinors), maxMinors)
		case len(out) == 0 && len(cp) > 2:
			r.Reason = fmt.Sprintf("straight to the target %s after the last hop: %s stays within the skew policy after every hop, so no earlier roll is needed", to, cur)
		default:
			r.Reason = fmt.Sprintf("to the target %s after the last hop", to)
		}
		out = append(out, r)
		n.rollTo(to)
	}
	for i := range out {
		out[i].Roll, out[i].Of = i+1, len(out)
	}
	return out, nil
}

// lockstepRolls counts the rolls of the naive schedule: after every hop,
// roll the node up to the control plane's version (within the upgrader's
// limit). It is the baseline the plan's benefit is measured against.
func lockstepRolls(kubelet Version, proxy *Version, cp []Version, maxMinors int) int {
	n := nodeVersion{kubelet: kubelet, proxy: proxy}
	count := 0
	for i := 1; i < len(cp); i++ {
		for n.oldest().Compare(cp[i]) < 0 {
			cur := n.oldest()
			to := cp[i]
			if maxMinors > 0 && cp[i].MinorsAfter(cur) > maxMinors {
				// The patch does not change the count; any version of the
				// minor will do for counting.
				to = MinorVersion(cur.Major(), cur.Minor()+maxMinors)
			}
			n.rollTo(to)
			count++
		}
	}
	return count
}

func nodeSchedule(node string, from, target Version, rolls []NodeRoll, skewOnly, maxMinors, hops int) NodeSchedule {
	s := NodeSchedule{Node: node, From: from, To: from, Rolls: len(rolls), SkewPolicyRolls: skewOnly, DecidedBy: DecidedBySkewPolicy}
	if len(rolls) > 0 {
		s.To = rolls[len(rolls)-1].To
	}
	var early []string
	for _, r := range rolls {
		if h := fmt.Sprintf("%d", r.BeforeHop); r.BeforeHop > 0 && !slices.Contains(early, h) {
			early = append(early, h)
		}
	}
	switch {
	case len(rolls) == 0 && from.Compare(target) > 0:
		s.Reason = fmt.Sprintf("not rolled: %s is newer than the target %s (kup never downgrades a node)", from, target)
	case len(rolls) == 0:
		s.Reason = fmt.Sprintf("not rolled: already at the target %s", target)
	case maxMinors > 0 && len(rolls) > skewOnly:
		s.DecidedBy = RuleNodeMaxMinorsPerRoll
		s.Reason = fmt.Sprintf("rolled %s: the node upgrader moves at most %s per roll (NodeMaxMinorsPerRoll=%d), stricter than the skew policy, which alone needs %s",
			times(len(rolls)), plural(maxMinors), maxMinors, times(skewOnly))
	case len(early) > 0:
		hopWord := "hop "
		if len(early) > 1 {
			hopWord = "hops "
		}
		s.Reason = fmt.Sprintf("rolled %s: the skew policy forces a roll before %s%s, then to the target", times(len(rolls)), hopWord, joinAnd(early))
	case hops > 1:
		s.Reason = fmt.Sprintf("rolled %s, at the end, straight to the target: it stays within the skew policy through all %d hops", times(len(rolls)), hops)
	default:
		s.Reason = fmt.Sprintf("rolled %s, after the control plane reaches the target", times(len(rolls)))
	}
	return s
}

// joinAnd is "1", "1 and 4", "1, 2 and 4".
func joinAnd(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// benefit is the one-line saving of the schedule over rolling every node
// after every hop.
func benefit(p *UpgradePath) string {
	if len(p.Nodes) == 0 {
		return "no nodes given: only the control plane is planned"
	}
	if p.NodeRolls == 0 {
		return "no node needs a roll"
	}
	if len(p.Hops) == 0 {
		return fmt.Sprintf("%d node rolls, to the control plane's version", p.NodeRolls)
	}
	if p.NodeRolls >= p.LockstepNodeRolls {
		if p.NodeRolls == p.LockstepNodeRolls {
			return fmt.Sprintf("%d node rolls, as many as rolling every node after every hop", p.NodeRolls)
		}
		return fmt.Sprintf("%d node rolls; rolling every node after every hop would take %d but leave nodes outside the skew policy on the way", p.NodeRolls, p.LockstepNodeRolls)
	}
	pct := int(math.Round(100 * float64(p.LockstepNodeRolls-p.NodeRolls) / float64(p.LockstepNodeRolls)))
	// One phrase for all nodes when they all save the same: the common case.
	first := p.Nodes[0]
	for _, n := range p.Nodes[1:] {
		if n.Rolls != first.Rolls || n.LockstepRolls != first.LockstepRolls {
			return fmt.Sprintf("%d node rolls instead of %d: %d%% fewer node disruptions", p.NodeRolls, p.LockstepNodeRolls, pct)
		}
	}
	return fmt.Sprintf("nodes rolled %s instead of %s: %d%% fewer node disruptions", times(first.Rolls), times(first.LockstepRolls), pct)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
