package version

import (
	"fmt"
	"strings"
)

// String renders the path for a terminal: one line per hop and per roll,
// each with its reason, and the skew verdict at every stage.
func (p *UpgradePath) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "upgrade %s → %s: %d control-plane hop(s), %d node roll(s) (release table of %s)\n",
		p.From, p.To, len(p.Hops), p.NodeRolls, p.ReleasesDate)
	fmt.Fprintf(&b, "  %s\n", p.Benefit)
	writeSkew(&b, "  now", p.SkewNow)
	for _, h := range p.Hops {
		fmt.Fprintf(&b, "hop %d (%s): control plane %s → %s\n", h.Index, h.Kind, h.From, h.To)
		fmt.Fprintf(&b, "  why: %s\n", h.Reason)
		for _, r := range h.NodeRolls {
			writeRoll(&b, r)
		}
		writeSkew(&b, "  skew before", h.SkewBefore)
		writeSkew(&b, "  skew during", h.SkewDuring)
		writeSkew(&b, "  skew after", h.SkewAfter)
	}
	fmt.Fprintf(&b, "nodes: control plane at %s\n", p.To)
	if len(p.FinalNodeRolls) == 0 {
		b.WriteString("  no node rolls\n")
	}
	for _, r := range p.FinalNodeRolls {
		writeRoll(&b, r)
	}
	writeSkew(&b, "  skew after", p.SkewFinal)
	for _, n := range p.Nodes {
		fmt.Fprintf(&b, "node %s: %s → %s, %d roll(s) [%s]: %s\n", n.Node, n.From, n.To, n.Rolls, n.DecidedBy, n.Reason)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

func writeRoll(b *strings.Builder, r NodeRoll) {
	capped := ""
	if r.CappedBy != "" {
		capped = ", capped by " + r.CappedBy
	}
	fmt.Fprintf(b, "  roll %s %s → %s (roll %d of %d, forced by %s%s): %s\n",
		r.Node, r.From, r.To, r.Roll, r.Of, r.ForcedBy, capped, r.Reason)
}

func writeSkew(b *strings.Builder, label string, vs []SkewViolation) {
	if len(vs) == 0 {
		fmt.Fprintf(b, "%s: within the skew policy\n", label)
		return
	}
	fmt.Fprintf(b, "%s: %d violation(s)\n", label, len(vs))
	for _, v := range vs {
		fmt.Fprintf(b, "    %s\n", v)
	}
}
