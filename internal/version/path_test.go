package version

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// rollsOf renders a path's node rolls compactly: "before hop 4: a v1.33.9→v1.36.3".
func rollsOf(p *UpgradePath) []string {
	var out []string
	for _, h := range p.Hops {
		for _, r := range h.NodeRolls {
			out = append(out, fmt.Sprintf("before hop %d: %s %s→%s", h.Index, r.Node, r.From, r.To))
		}
	}
	for _, r := range p.FinalNodeRolls {
		out = append(out, fmt.Sprintf("final: %s %s→%s", r.Node, r.From, r.To))
	}
	return out
}

func hopsOf(p *UpgradePath) string {
	s := []string{p.Hops[0].From.String()}
	for _, h := range p.Hops {
		s = append(s, h.To.String())
	}
	return strings.Join(s, " → ")
}

func TestPath(t *testing.T) {
	only := func(ss ...string) func(Version) bool {
		return func(v Version) bool {
			for _, s := range ss {
				if MustParse(s).Compare(v) == 0 {
					return true
				}
			}
			return false
		}
	}
	tests := []struct {
		name     string
		from, to string
		cluster  *ClusterVersions
		opts     PathOptions
		hops     string
		kinds    string
		rolls    []string
		benefit  string
		valid    bool
		decided  map[string]string // node → DecidedBy
		reasons  []string          // phrases that must appear somewhere in the rendered path
		skewNow  []string
		notRolls []string // nodes that must not be rolled
	}{
		{
			// 1.37 is four minors above 1.33, beyond the kubelet's n-3: the
			// nodes must move once before the last hop, to the control
			// plane's 1.36 (never ahead of it), and once more at the end.
			name: "1.33.9 to 1.37.2: four hops via the newest 1.34/1.35/1.36 patches",
			from: "v1.33.9", to: "v1.37.2",
			cluster: &ClusterVersions{Kubelets: nodes("node-1", "v1.33.9", "node-4", "v1.33.9")},
			hops:    "v1.33.9 → v1.34.4 → v1.35.4 → v1.36.3 → v1.37.2",
			kinds:   "minor minor minor minor",
			rolls: []string{
				"before hop 4: node-1 v1.33.9→v1.36.3", "before hop 4: node-4 v1.33.9→v1.36.3",
				"final: node-1 v1.36.3→v1.37.2", "final: node-4 v1.36.3→v1.37.2",
			},
			benefit: "nodes rolled twice instead of 4 times: 50% fewer node disruptions",
			valid:   true,
			decided: map[string]string{"node-1": DecidedBySkewPolicy, "node-4": DecidedBySkewPolicy},
			reasons: []string{
				"kubelet v1.33.9 on node-4 would be 4 minors behind kube-apiserver v1.37.2 after hop 4 (max 3, kubelet-older-than-n-3): rolled before hop 4",
				"v1.34.4 is the newest known patch of 1.34",
				"v1.37.2 is the requested target",
				"newest patch of your current minor (v1.33.12)",
			},
		},
		{
			name: "1.33.9 to 1.36.3: three hops, every node rolled once at the end",
			from: "v1.33.9", to: "v1.36.3",
			cluster: &ClusterVersions{Kubelets: nodes("a", "v1.33.9", "b", "v1.33.2", "c", "v1.34.4-eks-1")},
			hops:    "v1.33.9 → v1.34.4 → v1.35.4 → v1.36.3",
			rolls:   []string{"final: a v1.33.9→v1.36.3", "final: b v1.33.2→v1.36.3", "final: c v1.34.4-eks-1→v1.36.3"},
			// c is ahead of the control plane (flagged) until hop 1.
			skewNow: []string{"kubelet-newer-than-apiserver kubelet c"},
			benefit: "3 node rolls instead of 8: 63% fewer node disruptions",
			valid:   false,
			reasons: []string{"straight to the target v1.36.3 after the last hop: v1.33.9 stays within the skew policy after every hop"},
		},
		{
			name: "1.33.9 to 1.36.3, nodes all at 1.33: rolled once instead of three times",
			from: "v1.33.9", to: "v1.36.3",
			cluster: &ClusterVersions{Kubelets: nodes("a", "v1.33.9", "b", "v1.33.9")},
			rolls:   []string{"final: a v1.33.9→v1.36.3", "final: b v1.33.9→v1.36.3"},
			benefit: "nodes rolled once instead of 3 times: 67% fewer node disruptions",
			valid:   true,
			reasons: []string{"rolled once, at the end, straight to the target: it stays within the skew policy through all 3 hops"},
		},
		{
			name: "1.33.9 to 1.37.2 with an upgrader limited to one minor per roll",
			from: "v1.33.9", to: "v1.37.2",
			cluster: &ClusterVersions{Kubelets: nodes("node-1", "v1.33.9")},
			opts:    PathOptions{NodeMaxMinorsPerRoll: 1},
			rolls: []string{
				"before hop 4: node-1 v1.33.9→v1.34.4",
				"final: node-1 v1.34.4→v1.35.4", "final: node-1 v1.35.4→v1.36.3", "final: node-1 v1.36.3→v1.37.2",
			},
			benefit: "4 node rolls, as many as rolling every node after every hop",
			valid:   true,
			decided: map[string]string{"node-1": RuleNodeMaxMinorsPerRoll},
			reasons: []string{
				"rolled 4 times: the node upgrader moves at most 1 minor per roll (NodeMaxMinorsPerRoll=1), stricter than the skew policy, which alone needs twice",
				"to v1.34.4 only: the node upgrader moves at most 1 minor per roll",
			},
		},
		{
			name: "1.33.9 to 1.36.3 with a one-minor upgrader: three rolls, all at the end",
			from: "v1.33.9", to: "v1.36.3",
			cluster: &ClusterVersions{Kubelets: nodes("a", "v1.33.9")},
			opts:    PathOptions{NodeMaxMinorsPerRoll: 1},
			rolls:   []string{"final: a v1.33.9→v1.34.4", "final: a v1.34.4→v1.35.4", "final: a v1.35.4→v1.36.3"},
			valid:   true,
			decided: map[string]string{"a": RuleNodeMaxMinorsPerRoll},
		},
		{
			// A two-minor limit binds at hop 4 (1.33 → 1.35 instead of 1.36)
			// but the count is still the policy's two.
			name: "an upgrader limit that does not add rolls: the skew policy decides",
			from: "v1.33.9", to: "v1.37.2",
			cluster: &ClusterVersions{Kubelets: nodes("a", "v1.33.9")},
			opts:    PathOptions{NodeMaxMinorsPerRoll: 2},
			rolls:   []string{"before hop 4: a v1.33.9→v1.35.4", "final: a v1.35.4→v1.37.2"},
			valid:   true,
			decided: map[string]string{"a": DecidedBySkewPolicy},
		},
		{
			name: "nodes at 1.33 and 1.30: the 1.30 node moves before the hop to 1.34",
			from: "v1.33.9", to: "v1.37.2",
			cluster: &ClusterVersions{Kubelets: nodes("new", "v1.33.9", "old", "v1.30.14")},
			rolls: []string{
				"before hop 1: old v1.30.14→v1.33.9",
				"before hop 4: new v1.33.9→v1.36.3", "before hop 4: old v1.33.9→v1.36.3",
				"final: new v1.36.3→v1.37.2", "final: old v1.36.3→v1.37.2",
			},
			benefit: "5 node rolls instead of 8: 38% fewer node disruptions",
			valid:   true,
			reasons: []string{
				"kubelet v1.30.14 on old would be 4 minors behind kube-apiserver v1.34.4 after hop 1 (max 3, kubelet-older-than-n-3): rolled before hop 1, to v1.33.9, the control plane's version at that point",
				"rolled 3 times: the skew policy forces a roll before hops 1 and 4, then to the target",
			},
		},
		{
			name: "a node already outside the policy is repaired before the first hop",
			from: "v1.33.9", to: "v1.34.4",
			cluster: &ClusterVersions{Kubelets: nodes("stale", "v1.29.15")},
			rolls:   []string{"before hop 1: stale v1.29.15→v1.33.9", "final: stale v1.33.9→v1.34.4"},
			skewNow: []string{"kubelet-older-than-n-3 kubelet stale"},
			valid:   true,
		},
		{
			name: "patch-only upgrade is one hop",
			from: "v1.37.0", to: "v1.37.2",
			cluster: &ClusterVersions{Kubelets: nodes("a", "v1.37.0", "b", "v1.34.4", "done", "v1.37.2")},
			hops:    "v1.37.0 → v1.37.2",
			kinds:   "patch",
			rolls:   []string{"final: a v1.37.0→v1.37.2", "final: b v1.34.4→v1.37.2"},
			valid:   true,
			reasons: []string{"patch upgrade within 1.37: one hop straight to the requested v1.37.2"},
			decided: map[string]string{"done": DecidedBySkewPolicy},
			// A node already at the target is not rolled.
			notRolls: []string{"done"},
		},
		{
			name: "a node newer than the target is flagged and never rolled",
			from: "v1.36.1", to: "v1.36.3",
			cluster:  &ClusterVersions{Kubelets: nodes("ahead", "v1.37.2", "a", "v1.36.1")},
			rolls:    []string{"final: a v1.36.1→v1.36.3"},
			skewNow:  []string{"kubelet-newer-than-apiserver kubelet ahead"},
			valid:    false,
			notRolls: []string{"ahead"},
			reasons:  []string{"not rolled: v1.37.2 is newer than the target v1.36.3"},
		},
		{
			name: "the provider installs only some versions",
			from: "v1.33.9", to: "v1.36.1",
			opts: PathOptions{Installable: only("v1.34.2", "v1.35.4", "v1.35.1", "v1.36.1", "v1.36.3")},
			hops: "v1.33.9 → v1.34.2 → v1.35.4 → v1.36.1",
			reasons: []string{
				"v1.34.2 is the newest patch of 1.34 the provider can install (the newest release is v1.34.4)",
				"v1.35.4 is the newest known patch of 1.35",
			},
			valid:   true,
			benefit: "no nodes given: only the control plane is planned",
		},
		{
			name: "nodes rolled through a minor below the control plane take an installable patch",
			from: "v1.33.9", to: "v1.34.2",
			cluster: &ClusterVersions{Kubelets: nodes("a", "v1.31.0")},
			opts:    PathOptions{NodeMaxMinorsPerRoll: 1, Installable: only("v1.32.5", "v1.32.6", "v1.33.9", "v1.34.2")},
			rolls:   []string{"final: a v1.31.0→v1.32.6", "final: a v1.32.6→v1.33.9", "final: a v1.33.9→v1.34.2"},
			valid:   true,
		},
		{
			name: "a minor-only target means its newest patch",
			from: "v1.35.4", to: "1.36",
			hops:    "v1.35.4 → v1.36.3",
			valid:   true,
			reasons: []string{"target v1.36 resolved to v1.36.3, the newest known patch of 1.36"},
		},
		{
			name: "distribution suffixes: compared by upstream, kept on the target",
			from: "v1.33.9-eks-abc123", to: "v1.35.4-eks-def456",
			cluster: &ClusterVersions{Kubelets: nodes("a", "v1.33.5-eks-abc123")},
			hops:    "v1.33.9-eks-abc123 → v1.34.4 → v1.35.4-eks-def456",
			rolls:   []string{"final: a v1.33.5-eks-abc123→v1.35.4-eks-def456"},
			valid:   true,
		},
		{
			name: "HA control plane at mixed patches",
			from: "v1.36.3", to: "v1.37.2",
			cluster: &ClusterVersions{APIServers: vs("v1.36.3", "v1.36.3", "v1.36.1"), ControllerManagers: vs("v1.36.3"),
				Schedulers: vs("v1.36.1"), Kubelets: nodes("a", "v1.34.4")},
			valid: true,
			rolls: []string{"final: a v1.34.4→v1.37.2"},
		},
		{
			// One minor behind is fine now, but the policy wants controllers at
			// n-1 before kube-apiserver moves to n: during the hop they would be
			// two behind.
			name: "a controller one minor behind the apiserver is two behind during the hop",
			from: "v1.36.3", to: "v1.37.2",
			cluster: &ClusterVersions{APIServers: vs("v1.36.3"), ControllerManagers: vs("v1.35.4")},
			valid:   false,
			reasons: []string{"skew during: 1 violation(s)", "kube-controller-manager[0] v1.35.4 is 2 minors behind kube-apiserver[0] v1.37.2"},
		},
		{
			name: "kube-proxy older than its kubelet decides the roll",
			from: "v1.33.9", to: "v1.34.4",
			cluster: &ClusterVersions{Kubelets: nodes("a", "v1.33.9"), KubeProxies: nodes("a", "v1.30.14")},
			rolls:   []string{"before hop 1: a v1.33.9→v1.33.9", "final: a v1.33.9→v1.34.4"},
			valid:   true,
			reasons: []string{"kube-proxy v1.30.14 on a would be 4 minors behind kube-apiserver v1.34.4 after hop 1 (max 3, kube-proxy-older-than-n-3)"},
		},
		{
			name: "pre-1.28 kubelets get n-2",
			from: "v1.28.0", to: "v1.29.15",
			cluster: &ClusterVersions{Kubelets: nodes("a", "v1.28.0"), KubeProxies: nodes("a", "v1.28.0")},
			rolls:   []string{"final: a v1.28.0→v1.29.15"},
			valid:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Cluster = tt.cluster
			p, err := Path(MustParse(tt.from), MustParse(tt.to), DefaultReleases(), opts)
			if err != nil {
				t.Fatalf("Path: %v", err)
			}
			if tt.hops != "" && hopsOf(p) != tt.hops {
				t.Errorf("hops = %s, want %s", hopsOf(p), tt.hops)
			}
			if tt.kinds != "" {
				var k []string
				for _, h := range p.Hops {
					k = append(k, h.Kind)
				}
				if strings.Join(k, " ") != tt.kinds {
					t.Errorf("hop kinds = %v, want %s", k, tt.kinds)
				}
			}
			if tt.rolls != nil || tt.cluster != nil {
				if g, w := strings.Join(rollsOf(p), "\n"), strings.Join(tt.rolls, "\n"); g != w {
					t.Errorf("rolls:\n%s\nwant:\n%s", g, w)
				}
			}
			if tt.benefit != "" && p.Benefit != tt.benefit {
				t.Errorf("benefit = %q, want %q", p.Benefit, tt.benefit)
			}
			if p.Valid() != tt.valid {
				t.Errorf("Valid() = %v, want %v; violations: %v", p.Valid(), tt.valid, p.Violations())
			}
			for node, want := range tt.decided {
				for _, n := range p.Nodes {
					if n.Node == node && n.DecidedBy != want {
						t.Errorf("node %s decided by %s, want %s (%s)", node, n.DecidedBy, want, n.Reason)
					}
				}
			}
			if tt.skewNow != nil {
				if g, w := strings.Join(found(p.SkewNow), "\n"), strings.Join(tt.skewNow, "\n"); g != w {
					t.Errorf("SkewNow:\n%s\nwant:\n%s", g, w)
				}
			}
			text := p.String()
			for _, phrase := range tt.reasons {
				if !strings.Contains(text, phrase) {
					t.Errorf("path does not say %q:\n%s", phrase, text)
				}
			}
			for _, n := range tt.notRolls {
				for _, r := range rollsOf(p) {
					if strings.Contains(r, ": "+n+" ") {
						t.Errorf("node %s rolled: %s", n, r)
					}
				}
			}
			checkInvariants(t, p, opts)
		})
	}
}

// checkInvariants holds for every path: one minor per hop, the exact target
// last, nodes never ahead of the control plane, never more than the
// upgrader's limit per roll, every node at (or beyond) the target at the end.
func checkInvariants(t *testing.T, p *UpgradePath, opts PathOptions) {
	t.Helper()
	if len(p.Hops) == 0 {
		t.Fatal("no hops")
	}
	if last := p.Hops[len(p.Hops)-1].To; last.String() != p.To.String() {
		t.Errorf("last hop ends at %s, want the target %s", last, p.To)
	}
	for i, h := range p.Hops {
		if h.Index != i+1 {
			t.Errorf("hop %d has index %d", i+1, h.Index)
		}
		if i > 0 && h.From.String() != p.Hops[i-1].To.String() {
			t.Errorf("hop %d starts at %s, previous ended at %s", h.Index, h.From, p.Hops[i-1].To)
		}
		if d := h.To.MinorsAfter(h.From); d > 1 || h.To.Compare(h.From) <= 0 {
			t.Errorf("hop %d %s → %s is not one step up", h.Index, h.From, h.To)
		}
		if h.SkewBefore == nil || h.SkewDuring == nil || h.SkewAfter == nil {
			t.Errorf("hop %d has a nil verdict", h.Index)
		}
		if opts.Installable != nil && !opts.Installable(h.To) {
			t.Errorf("hop %d goes to %s, which is not installable", h.Index, h.To)
		}
		for _, r := range h.NodeRolls {
			if r.To.MinorsAfter(h.From) > 0 || r.To.Compare(h.From) > 0 {
				t.Errorf("roll %s → %s before hop %d puts the node ahead of the control plane at %s", r.From, r.To, h.Index, h.From)
			}
		}
	}
	last := map[string]Version{}
	count := map[string]int{}
	all := append([]NodeRoll(nil), p.FinalNodeRolls...)
	for _, h := range p.Hops {
		all = append(all, h.NodeRolls...)
	}
	for _, r := range all {
		count[r.Node]++
		if r.To.Compare(r.From) < 0 {
			t.Errorf("roll of %s goes down: %s → %s", r.Node, r.From, r.To)
		}
		if m := opts.NodeMaxMinorsPerRoll; m > 0 && r.To.MinorsAfter(r.From) > m {
			t.Errorf("roll of %s moves %d minors, limit %d", r.Node, r.To.MinorsAfter(r.From), m)
		}
		if r.Reason == "" || r.ForcedBy == "" || r.Roll < 1 || r.Roll > r.Of {
			t.Errorf("roll %+v lacks a reason or numbering", r)
		}
	}
	for _, r := range p.FinalNodeRolls {
		last[r.Node] = r.To
	}
	total := 0
	for _, n := range p.Nodes {
		total += n.Rolls
		if count[n.Node] != n.Rolls {
			t.Errorf("node %s: schedule says %d rolls, path has %d", n.Node, n.Rolls, count[n.Node])
		}
		end := n.From
		if v, ok := last[n.Node]; ok {
			end = v
		}
		if end.Compare(p.To) < 0 {
			t.Errorf("node %s ends at %s, below the target %s", n.Node, end, p.To)
		}
		if n.Reason == "" || (n.DecidedBy != DecidedBySkewPolicy && n.DecidedBy != RuleNodeMaxMinorsPerRoll) {
			t.Errorf("node %s: DecidedBy %q, reason %q", n.Node, n.DecidedBy, n.Reason)
		}
	}
	if total != p.NodeRolls {
		t.Errorf("NodeRolls = %d, nodes sum to %d", p.NodeRolls, total)
	}
	if _, err := json.Marshal(p); err != nil {
		t.Errorf("path does not serialise: %v", err)
	}
}

func TestPathErrors(t *testing.T) {
	tests := []struct {
		name, from, to string
		cluster        *ClusterVersions
		opts           PathOptions
		want           error
		says           []string
	}{
		{name: "equal", from: "v1.37.2", to: "v1.37.2", want: ErrSameVersion,
			says: []string{"already at v1.37.2", "nothing to upgrade"}},
		{name: "equal across distributions", from: "v1.36.3-eks-1", to: "v1.36.3+k3s1", want: ErrSameVersion},
		{name: "equal after resolving a minor", from: "v1.37.2", to: "1.37", want: ErrSameVersion},
		{name: "minor downgrade", from: "v1.37.2", to: "v1.36.3", want: ErrDowngrade,
			says: []string{"never downgrades", "restore the etcd backup", "allowed: targets newer than v1.37.2"}},
		{name: "patch downgrade", from: "v1.37.2", to: "v1.37.1", want: ErrDowngrade},
		{name: "downgrade to an rc", from: "v1.37.0", to: "v1.37.0-rc.1", want: ErrDowngrade},
		{name: "beyond the table", from: "v1.37.2", to: "v1.38.0", want: ErrBeyondTable,
			says: []string{"newest minor in the release table (1.37, dated 2026-11-25)", "up to v1.37.2", "--releases FILE"}},
		{name: "minor beyond the table", from: "v1.36.3", to: "1.38", want: ErrBeyondTable},
		{name: "unknown patch", from: "v1.35.4", to: "v1.36.9", want: ErrUnknownVersion,
			says: []string{"v1.36.9 is not a known release of 1.36 (known: v1.36.0, v1.36.1, v1.36.2, v1.36.3)"}},
		{name: "unknown patch of a distribution", from: "v1.35.4", to: "v1.36.9-eks-1", want: ErrUnknownVersion,
			says: []string{"v1.36.9 is not a known release"}},
		{name: "pre-release target", from: "v1.36.3", to: "v1.37.0-rc.1", want: ErrUnknownVersion},
		{name: "intermediate minor missing from the table", from: "v1.26.15", to: "v1.28.15", want: ErrUnknownVersion,
			says: []string{"must pass through 1.27", "no release of 1.27"}},
		{name: "target minor older than the table", from: "v1.25.0", to: "v1.26.1", want: ErrUnknownVersion,
			says: []string{"no release of 1.26"}},
		{name: "target not installable", from: "v1.36.3", to: "v1.37.2",
			opts: PathOptions{Installable: func(v Version) bool { return v.Minor() < 37 || v.Patch() < 2 }},
			want: ErrNotInstallable, says: []string{"cannot install v1.37.2", "up to v1.37.1"}},
		{name: "intermediate minor not installable", from: "v1.34.4", to: "v1.36.3",
			opts: PathOptions{Installable: func(v Version) bool { return v.Minor() != 35 }},
			want: ErrNotInstallable, says: []string{"must pass through 1.35", "can install none"}},
		{name: "minor-only target not installable", from: "v1.34.4", to: "1.35",
			opts: PathOptions{Installable: func(v Version) bool { return v.Minor() != 35 }},
			want: ErrNotInstallable},
		{name: "minor-only current version", from: "1.36", to: "v1.37.2", want: ErrVersionNeeded,
			says: []string{"names no patch"}},
		{name: "node needs a minor the table lacks", from: "v1.28.15", to: "v1.29.15",
			cluster: &ClusterVersions{Kubelets: nodes("old", "v1.26.0")}, opts: PathOptions{NodeMaxMinorsPerRoll: 1},
			want: ErrUnknownVersion, says: []string{"node old", "no release of 1.27"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Cluster = tt.cluster
			p, err := Path(MustParse(tt.from), MustParse(tt.to), nil, opts)
			if err == nil {
				t.Fatalf("Path = %s, want an error", p)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v is not %v", err, tt.want)
			}
			var pe *PathError
			if !errors.As(err, &pe) || pe.From.String() != MustParse(tt.from).String() {
				t.Errorf("error %v is not a *PathError naming %s", err, tt.from)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
	if _, err := Path(Version{}, MustParse("v1.37.2"), nil, PathOptions{}); !errors.Is(err, ErrVersionNeeded) {
		t.Errorf("Path from the zero version: %v, want ErrVersionNeeded", err)
	}
}

// minimalRolls is an exhaustive search of the fewest rolls for one node
// (minors only; the node starts at patch .0 below the target's minor): the
// oracle the greedy schedule is checked against.
func minimalRolls(node int, cp []int, maxMinors int) int {
	const inf = 1 << 30
	k := len(cp) - 1
	memo := map[[2]int]int{}
	var best func(i, a int) int
	best = func(i, a int) int {
		if i == k+1 { // after the last hop: climb to the target
			if maxMinors == 0 {
				return 1
			}
			return (cp[k] - a + maxMinors - 1) / maxMinors
		}
		key := [2]int{i, a}
		if v, ok := memo[key]; ok {
			return v
		}
		res := inf
		// Roll j times before hop i, up to the control plane at cp[i-1].
		for j := 0; ; j++ {
			reach := cp[i-1]
			if maxMinors > 0 && a+j*maxMinors < reach {
				reach = a + j*maxMinors
			}
			if j == 0 {
				reach = a
			}
			for b := a; b <= reach; b++ {
				lim := 3
				if b < 25 {
					lim = 2
				}
				if cp[i]-b > lim {
					continue
				}
				if c := j + best(i+1, b); c < res {
					res = c
				}
			}
			if reach >= cp[i-1] || j > 20 {
				break
			}
		}
		memo[key] = res
		return res
	}
	return best(1, node)
}

// TestPathMinimalRolls drives Path over seeded random clusters and checks
// that the greedy schedule is never worse than the exhaustive oracle, and
// that every stage stays within the policy.
func TestPathMinimalRolls(t *testing.T) {
	rel := DefaultReleases()
	rng := rand.New(rand.NewSource(20261125))
	for iter := 0; iter < 400; iter++ {
		fromMinor := 33 + rng.Intn(4)                     // 1.33 … 1.36
		toMinor := fromMinor + 1 + rng.Intn(37-fromMinor) // up to 1.37
		from, _ := rel.NewestPatch(MinorVersion(1, fromMinor))
		to, _ := rel.NewestPatch(MinorVersion(1, toMinor))
		maxMinors := rng.Intn(4)
		kubelets := map[string]Version{}
		for n := 0; n < 1+rng.Intn(4); n++ {
			kubelets[fmt.Sprintf("n%d", n)] = MustParse(fmt.Sprintf("v1.%d.0", fromMinor-rng.Intn(4)))
		}
		opts := PathOptions{NodeMaxMinorsPerRoll: maxMinors, Cluster: &ClusterVersions{Kubelets: kubelets}}
		name := fmt.Sprintf("%s→%s limit %d nodes %v", from, to, maxMinors, kubelets)
		p, err := Path(from, to, rel, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !p.Valid() {
			t.Fatalf("%s: invalid plan: %v\n%s", name, p.Violations(), p)
		}
		checkInvariants(t, p, opts)
		cp := []int{fromMinor}
		for _, h := range p.Hops {
			cp = append(cp, h.To.Minor())
		}
		for _, n := range p.Nodes {
			if want := minimalRolls(n.From.Minor(), cp, maxMinors); n.Rolls != want {
				t.Fatalf("%s: node %s rolled %d times, the minimum is %d\n%s", name, n.Node, n.Rolls, want, p)
			}
		}
	}
}

func TestPathGolden(t *testing.T) {
	cluster := &ClusterVersions{
		APIServers:         vs("v1.33.9", "v1.33.9", "v1.33.9"),
		ControllerManagers: vs("v1.33.9", "v1.33.9", "v1.33.9"),
		Schedulers:         vs("v1.33.9", "v1.33.9", "v1.33.9"),
		Kubelets:           nodes("node-1", "v1.33.9", "node-2", "v1.33.9", "node-3", "v1.30.14", "node-4", "v1.33.9"),
	}
	tests := []struct {
		file string
		opts PathOptions
		json bool
	}{
		{file: "path-1.33.9-to-1.37.2.txt"},
		{file: "path-1.33.9-to-1.37.2-one-minor-per-roll.txt", opts: PathOptions{NodeMaxMinorsPerRoll: 1}},
		{file: "path-1.33.9-to-1.37.2.json", json: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			opts := tt.opts
			opts.Cluster = cluster
			p, err := Path(MustParse("v1.33.9"), MustParse("v1.37.2"), nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			got := []byte(p.String())
			if tt.json {
				if got, err = json.MarshalIndent(p, "", "  "); err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
			}
			golden := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendered path (go test -update to accept):\n%s", golden, got)
			}
			if tt.json {
				var back UpgradePath
				if err := json.Unmarshal(got, &back); err != nil {
					t.Fatalf("JSON does not read back: %v", err)
				}
				if back.To.String() != "v1.37.2" || len(back.Hops) != 4 || back.Hops[3].NodeRolls[0].Node != "node-1" {
					t.Errorf("JSON round trip lost data: %+v", back)
				}
			}
		})
	}
}

// Before 1.28 a kubelet older than 1.25 may only trail by two minors, so a
// path through 1.27 must move a 1.24 kubelet before the hop to 1.27, where
// today's n-3 would let it wait.
func TestPathPre128KubeletRule(t *testing.T) {
	rel, err := LoadReleases(strings.NewReader(`{"date": "2024-01-10", "releases": {
		"1.24": ["v1.24.17"], "1.25": ["v1.25.16"], "1.26": ["v1.26.12"],
		"1.27": ["v1.27.9"], "1.28": ["v1.28.5"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	opts := PathOptions{Cluster: &ClusterVersions{Kubelets: nodes("old", "v1.24.17", "n25", "v1.25.16")}}
	p, err := Path(MustParse("v1.26.12"), MustParse("v1.28.5"), rel, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"before hop 1: old v1.24.17→v1.26.12",
		"final: n25 v1.25.16→v1.28.5", // 1.25 with 1.28 is n-3: allowed
		"final: old v1.26.12→v1.28.5",
	}
	if g, w := strings.Join(rollsOf(p), "\n"), strings.Join(want, "\n"); g != w {
		t.Errorf("rolls:\n%s\nwant:\n%s", g, w)
	}
	if r := p.Hops[0].NodeRolls[0]; r.ForcedBy != RuleKubeletOlderN2 || !strings.Contains(r.Reason, "3 minors behind kube-apiserver v1.27.9 after hop 1 (max 2") {
		t.Errorf("roll forced by %s: %s", r.ForcedBy, r.Reason)
	}
	if !p.Valid() {
		t.Errorf("invalid: %v", p.Violations())
	}
	checkInvariants(t, p, opts)
}

// TestPathNodesOnly: with NodesOnly, a control plane already at the
// target and nodes behind it make a path of no hop and those nodes'
// rolls, within the node upgrader's limit; without nodes behind, or
// without NodesOnly, it is still ErrSameVersion.
func TestPathNodesOnly(t *testing.T) {
	rel := DefaultReleases()
	for _, tc := range []struct {
		name      string
		at        string
		kubelets  map[string]Version
		proxies   map[string]Version
		nodesOnly bool
		maxMinors int
		wantErr   error
		rolls     map[string]int // node → rolls
	}{
		{name: "nodes behind", at: "v1.37.2", kubelets: nodes("a", "v1.36.3", "b", "v1.37.2", "c", "v1.35.4"), nodesOnly: true,
			rolls: map[string]int{"a": 1, "b": 0, "c": 1}},
		{name: "one minor per roll", at: "v1.37.2", kubelets: nodes("a", "v1.35.4"), nodesOnly: true, maxMinors: 1,
			rolls: map[string]int{"a": 2}},
		{name: "a kube-proxy behind", at: "v1.37.2", kubelets: nodes("a", "v1.37.2"), proxies: nodes("a", "v1.36.3"), nodesOnly: true,
			rolls: map[string]int{"a": 1}},
		{name: "an older patch behind", at: "v1.37.2", kubelets: nodes("a", "v1.37.1"), nodesOnly: true,
			rolls: map[string]int{"a": 1}},
		{name: "every node at the target", at: "v1.37.2", kubelets: nodes("a", "v1.37.2"), nodesOnly: true, wantErr: ErrSameVersion},
		{name: "nodes behind, not asked", at: "v1.37.2", kubelets: nodes("a", "v1.36.3"), wantErr: ErrSameVersion},
		{name: "no nodes", at: "v1.37.2", nodesOnly: true, wantErr: ErrSameVersion},
	} {
		at := MustParse(tc.at)
		opts := PathOptions{NodesOnly: tc.nodesOnly, NodeMaxMinorsPerRoll: tc.maxMinors,
			Cluster: &ClusterVersions{APIServers: []Version{at}, Kubelets: tc.kubelets, KubeProxies: tc.proxies}}
		p, err := Path(at, at, rel, opts)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(p.Hops) != 0 || p.From.Compare(at) != 0 || p.To.Compare(at) != 0 || !p.Valid() {
			t.Errorf("%s: %d hops, %s → %s, violations %v; want none, %s → %s\n%s", tc.name, len(p.Hops), p.From, p.To, p.Violations(), at, at, p)
		}
		got := map[string]int{}
		for _, n := range p.Nodes {
			got[n.Node] = n.Rolls
			if n.Rolls > 0 && n.To.Compare(at) != 0 {
				t.Errorf("%s: node %s rolls to %s, want %s", tc.name, n.Node, n.To, at)
			}
		}
		if !maps.Equal(got, tc.rolls) {
			t.Errorf("%s: rolls %v, want %v\n%s", tc.name, got, tc.rolls, p)
		}
		final := 0
		for _, r := range p.FinalNodeRolls {
			final++
			if r.BeforeHop != 0 {
				t.Errorf("%s: roll %+v before hop %d of none", tc.name, r, r.BeforeHop)
			}
		}
		if want := sumRolls(tc.rolls); final != want {
			t.Errorf("%s: %d final rolls, want %d", tc.name, final, want)
		}
	}
}

func sumRolls(m map[string]int) int {
	n := 0
	for _, r := range m {
		n += r
	}
	return n
}
