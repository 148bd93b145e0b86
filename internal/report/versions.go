// Package report renders kup's results for people and for programs: one
// result struct per command, one printer per format (table, JSON, YAML).
// It decides nothing and reads nothing from the cluster.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"

	"github.com/kup-project/kup/internal/inventory"
	"github.com/kup-project/kup/internal/version"
)

// Versions is the result of `kup versions`.
type Versions struct {
	// Cluster is empty for a paper plan (--from/--to without a cluster).
	Cluster string                  `json:"cluster,omitempty"`
	Groups  []VersionGroup          `json:"components,omitempty"`
	Skew    []version.SkewViolation `json:"skew"`
	// SkewOK is true when the current state is within the policy.
	SkewOK bool                 `json:"skewOK"`
	Path   *version.UpgradePath `json:"path,omitempty"`
	// Warnings: a stale release table, versions that did not parse, parts
	// of the cluster that could not be read.
	Warnings []string     `json:"warnings,omitempty"`
	Error    *ResultError `json:"error,omitempty"`
	Requests int64        `json:"apiRequests,omitempty"`
}

// ResultError is an error as JSON carries it: a stable code and the message.
type ResultError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// VersionGroup is one component at one version, with how many instances
// (nodes, for node components) run it.
type VersionGroup struct {
	Component string   `json:"component"`
	Version   string   `json:"version"`
	Count     int      `json:"count"`
	Where     []string `json:"where"`
	Source    string   `json:"source,omitempty"`
}

// GroupVersions groups a snapshot's versions by component and version.
func GroupVersions(s *inventory.Snapshot) []VersionGroup {
	type key struct{ comp, ver string }
	groups := map[key]*VersionGroup{}
	var order []key
	add := func(comp, ver, where, source string) {
		k := key{comp, ver}
		g := groups[k]
		if g == nil {
			g = &VersionGroup{Component: comp, Version: ver, Source: source}
			groups[k] = g
			order = append(order, k)
		}
		g.Count++
		g.Where = append(g.Where, where)
	}
	for _, c := range s.Components {
		add(c.Name, c.Version, c.Instance, c.Source)
	}
	for _, n := range s.Nodes {
		info := n.Status.NodeInfo
		add("kubelet", info.KubeletVersion, n.Name, "node status")
		//nolint:staticcheck // deprecated field, still the per-node kube-proxy signal
		if info.KubeProxyVersion != "" {
			add("kube-proxy (node status)", info.KubeProxyVersion, n.Name, "node status")
		}
		add("container runtime", info.ContainerRuntimeVersion, n.Name, "node status")
		add("os image", info.OSImage, n.Name, "node status")
	}
	for _, a := range s.Addons {
		for _, img := range a.Images {
			add(strings.ToLower(a.Kind)+" "+a.Namespace+"/"+a.Name, img, a.Name, "image")
		}
	}
	if s.Kubectl != "" {
		add("kubectl (local)", s.Kubectl, "PATH", "kubectl version --client")
	}
	rank := map[string]int{"kube-apiserver": 0, "kube-controller-manager": 1, "kube-scheduler": 2, "cloud-controller-manager": 3, "etcd": 4, "kubelet": 5, "kube-proxy (node status)": 6, "container runtime": 7, "os image": 8}
	sort.SliceStable(order, func(i, j int) bool {
		ri, oki := rank[order[i].comp]
		rj, okj := rank[order[j].comp]
		if !oki {
			ri = 100
		}
		if !okj {
			rj = 100
		}
		if ri != rj {
			return ri < rj
		}
		if order[i].comp != order[j].comp {
			return order[i].comp < order[j].comp
		}
		return compareVersionStrings(order[i].ver, order[j].ver) > 0
	})
	out := make([]VersionGroup, 0, len(order))
	for _, k := range order {
		g := groups[k]
		sort.Strings(g.Where)
		out = append(out, *g)
	}
	return out
}

func compareVersionStrings(a, b string) int {
	va, ea := version.Parse(a)
	vb, eb := version.Parse(b)
	if ea == nil && eb == nil {
		return va.Compare(vb)
	}
	return strings.Compare(a, b)
}

// TableOptions tune the table printer.
type TableOptions struct {
	// ListNodes lists every node instead of counting them.
	ListNodes bool
}

// WriteTable prints the result for a terminal.
func (r *Versions) WriteTable(w io.Writer, opts TableOptions) error {
	if r.Cluster != "" {
		fmt.Fprintf(w, "Cluster %s\n\n", r.Cluster)
	}
	if len(r.Groups) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "COMPONENT\tVERSION\tCOUNT\tWHERE")
		for _, g := range r.Groups {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", g.Component, g.Version, g.Count, where(g.Where, opts.ListNodes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if r.Cluster != "" {
		if r.SkewOK {
			fmt.Fprintln(w, "Version skew: every component is within the Kubernetes version-skew policy.")
		} else {
			fmt.Fprintf(w, "Version skew: %d violation(s) of the Kubernetes version-skew policy:\n", len(r.Skew))
			for _, v := range r.Skew {
				fmt.Fprintf(w, "  ✗ %s\n", v)
			}
		}
	}
	if r.Path != nil {
		fmt.Fprintln(w)
		writePath(w, r.Path, opts)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	// r.Error is printed by the caller, once, on stderr.
	return nil
}

func where(ws []string, all bool) string {
	if all || len(ws) <= 3 {
		return strings.Join(ws, ", ")
	}
	return fmt.Sprintf("%s, … (%d more; --nodes lists all)", strings.Join(ws[:3], ", "), len(ws)-3)
}

// writePath prints the upgrade path with node rolls grouped by
// (from, to, reason rule) so a 1,000-node cluster reads in a screen.
func writePath(w io.Writer, p *version.UpgradePath, opts TableOptions) {
	fmt.Fprintf(w, "Upgrade path %s → %s: %d control-plane hop(s), %d node roll(s)\n", p.From, p.To, len(p.Hops), p.NodeRolls)
	if p.Benefit != "" {
		fmt.Fprintf(w, "  %s\n", p.Benefit)
	}
	for _, h := range p.Hops {
		if len(h.NodeRolls) > 0 {
			fmt.Fprintf(w, "  before hop %d, roll nodes the skew policy would otherwise break:\n", h.Index)
			writeRolls(w, h.NodeRolls, opts)
		}
		fmt.Fprintf(w, "  hop %d: control plane %s → %s  (%s)\n", h.Index, h.From, h.To, h.Reason)
		for _, v := range h.SkewAfter {
			fmt.Fprintf(w, "    ✗ after this hop: %s\n", v)
		}
	}
	if len(p.FinalNodeRolls) > 0 {
		fmt.Fprintf(w, "  then roll the nodes to %s:\n", p.To)
		writeRolls(w, p.FinalNodeRolls, opts)
	} else {
		fmt.Fprintln(w, "  no node needs a roll")
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

func writeRolls(w io.Writer, rolls []version.NodeRoll, opts TableOptions) {
	type key struct{ from, to, forced, capped string }
	groups := map[key][]string{}
	var order []key
	reasons := map[key]string{}
	for _, r := range rolls {
		k := key{r.From.String(), r.To.String(), r.ForcedBy, r.CappedBy}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
			reasons[k] = r.Reason
		}
		groups[k] = append(groups[k], r.Node)
	}
	for _, k := range order {
		nodes := groups[k]
		fmt.Fprintf(w, "    %d node(s) %s → %s: %s\n", len(nodes), k.from, k.to, where(nodes, opts.ListNodes))
		why := "reaching the target"
		if k.forced != version.ForcedByTarget {
			why = "forced by " + k.forced
		}
		if k.capped != "" {
			why += ", capped by " + k.capped
		}
		fmt.Fprintf(w, "      why: %s", why)
		if len(nodes) == 1 {
			fmt.Fprintf(w, " — %s", reasons[k])
		}
		fmt.Fprintln(w)
	}
}

// WriteJSON prints the result as indented JSON.
func (r *Versions) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteYAML prints the result as YAML (the JSON schema, in YAML).
func (r *Versions) WriteYAML(w io.Writer) error {
	data, err := yaml.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
