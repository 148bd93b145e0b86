package report

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file prints an UpgradeReport three ways: JSON for programs,
// Markdown for a change ticket, and one self-contained HTML page (inline
// CSS and SVG, no script, no external asset) for people. Problems come
// first in every human format: a failed node or one left cordoned must not
// hide at the bottom of a long table.

// Node outcomes the rollout records (internal/rollout's NodeResult.Outcome).
const (
	nodeUpgraded    = "upgraded"
	nodeFailed      = "failed"
	nodeQuarantined = "quarantined"
)

// nodeSteps are the steps of a node in order, with the colour class each
// has in the Gantt chart.
var nodeSteps = []string{"cordon", "drain", "upgrade", "ready", "uncordon"}

// WriteJSON writes the report as indented JSON (upgrade-report.json).
func (r *UpgradeReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// attentionItem is one thing an operator must look at.
type attentionItem struct {
	Kind    string // hop, node, cordoned, verify, pdb, backup, waiver
	Subject string // what it concerns: a node, a check
	Text    string
}

// needsAttention lists, most serious first, what went wrong or was left
// behind: failed hops and nodes, nodes still cordoned, failed
// verifications, PDB violations, a missing backup and waived blockers.
func (r *UpgradeReport) needsAttention() []attentionItem {
	var out []attentionItem
	for _, h := range r.Hops {
		if h.Outcome == "failed" {
			out = append(out, attentionItem{"hop", fmt.Sprintf("hop %d", h.Index),
				fmt.Sprintf("control-plane hop %d (%s → %s) failed: %s", h.Index, h.From, h.To, dashIfEmpty(h.Detail))})
		}
	}
	for _, n := range r.sortedNodes() {
		if n.Outcome == nodeFailed || n.Outcome == nodeQuarantined {
			out = append(out, attentionItem{"node", n.Node,
				fmt.Sprintf("%s (wave %d, %s → %s): %s", n.Outcome, n.Wave, dashIfEmpty(n.From), dashIfEmpty(n.To), dashIfEmpty(n.Reason))})
		}
	}
	for _, c := range r.cordoned() {
		out = append(out, attentionItem{"cordoned", c.Node, "still cordoned: " + dashIfEmpty(c.Reason)})
	}
	var notDone []string
	pending := map[string][]string{}
	for _, n := range r.sortedNodes() {
		switch n.Outcome {
		case nodeUpgraded, nodeFailed, nodeQuarantined:
		default:
			o := dashIfEmpty(n.Outcome)
			if len(pending[o]) == 0 {
				notDone = append(notDone, o)
			}
			pending[o] = append(pending[o], n.Node)
		}
	}
	if len(notDone) > 0 {
		var parts []string
		total := 0
		for _, o := range notDone {
			names := pending[o]
			total += len(names)
			list := strings.Join(names[:min(len(names), 10)], ", ")
			if len(names) > 10 {
				list += fmt.Sprintf(" and %d more", len(names)-10)
			}
			parts = append(parts, o+": "+list)
		}
		out = append(out, attentionItem{"pending", "nodes not upgraded",
			fmt.Sprintf("%d node%s not at the target (%s)", total, sIf(total), strings.Join(parts, "; "))})
	}
	if r.Verify == nil {
		out = append(out, attentionItem{"verify-missing", "verification", "did not run"})
	} else {
		for _, c := range r.Verify.Checks {
			if !c.Passed {
				out = append(out, attentionItem{"verify", c.Name, "verification failed: " + dashIfEmpty(c.Detail)})
			}
		}
	}
	if v := r.Rollout.PDBViolations; v > 0 {
		out = append(out, attentionItem{"pdb", "PodDisruptionBudgets",
			fmt.Sprintf("%d PDB violation%s during the node rollout", v, sIf(v))})
	}
	switch {
	case r.Backup == nil:
		out = append(out, attentionItem{"backup", "etcd backup", "no etcd backup is recorded for this run"})
	case r.Backup.Skipped != "":
		out = append(out, attentionItem{"backup", "etcd backup", "no etcd backup was taken: " + r.Backup.Skipped})
	case !r.Backup.Verified:
		out = append(out, attentionItem{"backup", "etcd backup", "the etcd snapshot was not verified"})
	}
	for _, f := range r.Findings {
		if f.Severity == "blocker" && f.Waived {
			out = append(out, attentionItem{"waiver", f.ID, "blocker waived: " + f.Title})
		}
	}
	return out
}

// cordoned merges StillCordoned with nodes marked LeftCordoned, so a node
// is named even if only one of the two records it.
func (r *UpgradeReport) cordoned() []CordonedNode {
	out := append([]CordonedNode(nil), r.StillCordoned...)
	seen := map[string]bool{}
	for _, c := range out {
		seen[c.Node] = true
	}
	for _, n := range r.sortedNodes() {
		if n.LeftCordoned && !seen[n.Node] {
			out = append(out, CordonedNode{Node: n.Node, Reason: n.Reason})
		}
	}
	return out
}

// sortedNodes orders nodes by wave (unscheduled last), then by when they
// started, then by name: the order of the Gantt chart.
func (r *UpgradeReport) sortedNodes() []NodeTimeline {
	out := append([]NodeTimeline(nil), r.Nodes...)
	first := func(n NodeTimeline) time.Time {
		var t time.Time
		for _, s := range n.Spans {
			if !s.Start.IsZero() && (t.IsZero() || s.Start.Before(t)) {
				t = s.Start
			}
		}
		return t
	}
	waveKey := func(n NodeTimeline) int {
		if n.Wave <= 0 {
			return math.MaxInt
		}
		return n.Wave
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if wa, wb := waveKey(a), waveKey(b); wa != wb {
			return wa < wb
		}
		if ta, tb := first(a), first(b); !ta.Equal(tb) {
			return !ta.IsZero() && (tb.IsZero() || ta.Before(tb))
		}
		return a.Node < b.Node
	})
	return out
}

func (r *UpgradeReport) duration() time.Duration {
	if r.Started.IsZero() || r.Finished.IsZero() {
		return 0
	}
	return r.Finished.Sub(r.Started)
}

// upgraded counts nodes at the end of their roll.
func (r *UpgradeReport) upgraded() int {
	if r.Rollout.Upgraded > 0 {
		return r.Rollout.Upgraded
	}
	n := 0
	for _, nt := range r.Nodes {
		if nt.Outcome == nodeUpgraded {
			n++
		}
	}
	return n
}

func (r *UpgradeReport) nodeCount() int {
	if r.Rollout.Nodes > 0 {
		return r.Rollout.Nodes
	}
	return len(r.Nodes)
}

// pathLine sums up the planned path: the versions the control plane passes
// through and how many node rolls it costs.
func (r *UpgradeReport) pathLine() string {
	p := r.Path
	if p == nil {
		return ""
	}
	steps := []string{p.From.String()}
	for _, h := range p.Hops {
		steps = append(steps, h.To.String())
	}
	s := "control plane " + strings.Join(steps, " → ") + fmt.Sprintf("; %d node roll%s", p.NodeRolls, sIf(p.NodeRolls))
	if p.LockstepNodeRolls > 0 {
		s += fmt.Sprintf(" (%d following the control plane hop by hop)", p.LockstepNodeRolls)
	}
	if p.Benefit != "" {
		s += "; " + p.Benefit
	}
	return s
}

// makespanLine compares the rollout's duration with its lower bound.
func (s RolloutStats) makespanLine() string {
	out := roundDur(s.Makespan)
	if s.LowerBound > 0 {
		out += " vs lower bound " + roundDur(s.LowerBound)
		if s.LowerBoundWaves > 0 {
			out += fmt.Sprintf(" (%d wave%s)", s.LowerBoundWaves, sIf(s.LowerBoundWaves))
		}
		out += fmt.Sprintf(": %.2f×", s.Makespan.Seconds()/s.LowerBound.Seconds())
	} else if s.LowerBoundWaves > 0 {
		out += fmt.Sprintf(" in %d waves vs at least %d", s.Waves, s.LowerBoundWaves)
	}
	return out
}

func (s RolloutStats) evictionsLine() string {
	return fmt.Sprintf("%d (%.2f per pod; 1.00 is ideal)", s.Evictions, s.EvictionsPerPod)
}

// utcTime prints an instant in UTC to the second: reports are compared
// across machines and time zones.
func utcTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// roundDur prints a duration to the second.
func roundDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return "<1s"
	}
	return d.Round(time.Second).String()
}

func took(a, b time.Time) string {
	if a.IsZero() || b.IsZero() {
		return "—"
	}
	return roundDur(b.Sub(a))
}

func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// worstAvailability is the lowest share of a protected workload's desired
// replicas that was available, or a dash when nothing was sampled.
func (r *UpgradeReport) worstAvailability() string {
	if len(r.Availability) == 0 && r.Rollout.WorstAvailability == 0 {
		return "— (no PDB-protected workload sampled)"
	}
	return percent(r.Rollout.WorstAvailability)
}

// percent prints an availability ratio (0..1) as a percentage.
func percent(f float64) string {
	return strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
}

func dashIfEmpty(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return s
}

func sIf(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// stepDurations sums a node's time per step: "cordon 2s, drain 1m3s".
func stepDurations(n NodeTimeline) string {
	var parts []string
	for _, s := range n.Spans {
		if s.End.IsZero() {
			parts = append(parts, s.Step+" (unfinished)")
			continue
		}
		parts = append(parts, s.Step+" "+roundDur(s.End.Sub(s.Start)))
	}
	return strings.Join(parts, ", ")
}

// nodeSpan is when a node's first step started and its last ended.
func nodeSpan(n NodeTimeline) (start, end time.Time) {
	for _, s := range n.Spans {
		if !s.Start.IsZero() && (start.IsZero() || s.Start.Before(start)) {
			start = s.Start
		}
		if s.End.After(end) {
			end = s.End
		}
	}
	return start, end
}

// ---- Markdown ---------------------------------------------------------

// mdText escapes free text for Markdown: table pipes, and the characters
// that would start emphasis, links, code or inline HTML.
func mdText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCode prints a name or path as a code span, with a fence longer than
// any backtick run inside; a pipe is escaped even there, as GFM tables
// require.
func mdCode(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "—"
	}
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + strings.ReplaceAll(s, "|", `\|`) + pad + fence
}

// mdNames lists up to max names as code spans, then how many more.
func mdNames(names []string, max int) string {
	var parts []string
	for i, n := range names {
		if i == max {
			parts = append(parts, fmt.Sprintf("… %d more", len(names)-max))
			break
		}
		parts = append(parts, mdCode(n))
	}
	return strings.Join(parts, ", ")
}

var outcomeMark = map[string]string{"succeeded": "✓", "failed": "✗", "interrupted": "⏸", "waiting": "⏳"}

// WriteMarkdown writes the summary an engineer pastes into a change
// ticket: outcome and reason, versions and times, what needs attention,
// then backup, hops, waves, rollout figures, verification and findings.
func (r *UpgradeReport) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	mark := outcomeMark[r.Outcome]
	if mark == "" {
		mark = "•"
	}
	p("# kup upgrade %s → %s: %s %s\n\n", mdText(dashIfEmpty(r.From)), mdText(dashIfEmpty(r.To)), mark, strings.ToUpper(mdText(dashIfEmpty(r.Outcome))))
	if r.Reason != "" {
		p("**%s**: %s\n\n", mdText(upperFirst(r.Outcome)), mdText(r.Reason))
	}
	p("| | |\n|---|---|\n")
	p("| Cluster | %s |\n", mdCode(r.Cluster))
	run := mdCode(r.RunID)
	if r.Resumes > 0 {
		run += fmt.Sprintf(" (resumed %d time%s)", r.Resumes, sIf(r.Resumes))
	}
	p("| Run | %s |\n", run)
	p("| Versions | %s → %s |\n", mdText(dashIfEmpty(r.From)), mdText(dashIfEmpty(r.To)))
	p("| Started | %s |\n", utcTime(r.Started))
	p("| Finished | %s |\n", utcTime(r.Finished))
	p("| Duration | %s |\n", roundDur(r.duration()))
	p("| Nodes | %d of %d upgraded in %d wave%s |\n", r.upgraded(), r.nodeCount(), len(r.Waves), sIf(len(r.Waves)))
	if pl := r.pathLine(); pl != "" {
		p("| Path | %s |\n", mdText(pl))
	}
	p("\n## Needs attention\n\n")
	if items := r.needsAttention(); len(items) == 0 {
		p("Nothing: every node is at the target, none is left cordoned, and verification passed.\n")
	} else {
		for _, it := range items {
			switch it.Kind {
			case "node":
				p("- **Node %s** %s\n", mdCode(it.Subject), mdText(it.Text))
			case "cordoned":
				p("- **Node %s is still cordoned**: %s\n", mdCode(it.Subject), mdText(strings.TrimPrefix(it.Text, "still cordoned: ")))
			case "verify":
				p("- **Verify %s failed**: %s\n", mdCode(it.Subject), mdText(strings.TrimPrefix(it.Text, "verification failed: ")))
			default:
				p("- **%s**: %s\n", mdText(upperFirst(it.Subject)), mdText(it.Text))
			}
		}
	}

	p("\n## Backup\n\n")
	switch bk := r.Backup; {
	case bk == nil:
		p("None recorded.\n")
	case bk.Skipped != "":
		p("Not taken: %s\n", mdText(bk.Skipped))
	default:
		p("etcd snapshot %s, %s, revision %d, %d keys, taken in %s.\n\n", mdCode(bk.Path), byteSize(bk.Size), bk.Revision, bk.Keys, roundDur(bk.Duration))
		p("- sha256: %s\n", mdCode(bk.SHA256))
		p("- verified: %s\n", yesNo(bk.Verified, "yes", "**no**"))
		p("- encrypted: %s\n", yesNo(bk.Encrypted, "yes", "no"))
	}

	p("\n## Control-plane hops\n\n")
	if len(r.Hops) == 0 {
		p("None.\n")
	} else {
		p("| # | From | To | Outcome | Started | Took | Detail |\n|---|---|---|---|---|---|---|\n")
		for _, h := range r.Hops {
			p("| %d | %s | %s | %s | %s | %s | %s |\n", h.Index, mdText(h.From), mdText(h.To), mdText(h.Outcome),
				utcTime(h.Started), took(h.Started, h.Finished), mdText(dashIfEmpty(h.Detail)))
		}
	}

	p("\n## Node waves\n\n")
	if len(r.Waves) == 0 {
		p("None.\n")
	} else {
		failedIn := map[int][]string{}
		for _, n := range r.sortedNodes() {
			if n.Outcome == nodeFailed || n.Outcome == nodeQuarantined {
				failedIn[n.Wave] = append(failedIn[n.Wave], n.Node)
			}
		}
		p("| Wave | Nodes | Limited by | Started | Took | Failed |\n|---|---|---|---|---|---|\n")
		for _, wv := range r.Waves {
			failed := "—"
			if f := failedIn[wv.Index]; len(f) > 0 {
				failed = mdNames(f, 8)
			}
			p("| %d | %d: %s | %s | %s | %s | %s |\n", wv.Index, len(wv.Nodes), mdNames(wv.Nodes, 8), mdText(dashIfEmpty(wv.Limit)),
				utcTime(wv.Started), took(wv.Started, wv.Finished), failed)
		}
	}

	s := r.Rollout
	p("\n## Rollout\n\n| Figure | Value |\n|---|---|\n")
	p("| Nodes upgraded | %d of %d |\n", r.upgraded(), r.nodeCount())
	p("| %s | %d |\n", s.wavesLabel(), max(s.Waves, len(r.Waves)))
	if s.MostDown > 0 {
		p("| Most nodes down at once | %d |\n", s.MostDown)
	}
	p("| Evictions | %s |\n", s.evictionsLine())
	p("| Evictions refused (429) | %d |\n", s.Refusals)
	p("| PDB violations | %d |\n", s.PDBViolations)
	p("| Makespan | %s |\n", s.makespanLine())
	p("| Worst availability | %s |\n", r.worstAvailability())

	p("\n## Verify\n\n")
	if r.Verify == nil {
		p("Not run.\n")
	} else {
		p("%s\n\n| Check | Result | Detail |\n|---|---|---|\n", yesNo(r.Verify.Passed, "**Passed.**", "**Failed.**"))
		for _, c := range r.Verify.Checks {
			p("| %s | %s | %s |\n", mdCode(c.Name), yesNo(c.Passed, "✓ pass", "✗ **fail**"), mdText(dashIfEmpty(c.Detail)))
		}
	}

	p("\n## Preflight findings\n\n")
	if len(r.Findings) == 0 {
		p("None.\n")
	} else {
		p("| ID | Severity | Title | Objects | Waived |\n|---|---|---|---|---|\n")
		for _, f := range r.Findings {
			p("| %s | %s | %s | %s | %s |\n", mdCode(f.ID), mdText(f.Severity), mdText(f.Title), mdNames(f.Objects, 5), yesNo(f.Waived, "yes", ""))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// ---- HTML -------------------------------------------------------------

// Geometry of the charts, in SVG user units. The Gantt chart and the
// availability charts share the width and the plot area, and are drawn at
// the same width on the page, so their time axes line up.
const (
	svgWidth   = 1100.0
	labelWidth = 190.0
	rightPad   = 24.0
	plotX      = labelWidth
	plotW      = svgWidth - labelWidth - rightPad
	// Gantt rows shrink with the node count, between these heights; rows
	// get a name label only when one fits.
	ganttMaxRowH   = 20.0
	ganttMinRowH   = 4.0
	ganttRowBudget = 1600.0
	labelMinRowH   = 11.0
)

// timeScale maps the run's time range onto the plot's width.
type timeScale struct{ t0, t1 time.Time }

func (s timeScale) x(t time.Time) float64 {
	return plotX + plotW*float64(t.Sub(s.t0))/float64(s.t1.Sub(s.t0))
}

// timeScale spans everything the charts draw: the run, its hops, waves,
// node steps and availability samples.
func (r *UpgradeReport) timeScale() timeScale {
	var s timeScale
	see := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if s.t0.IsZero() || t.Before(s.t0) {
			s.t0 = t
		}
		if t.After(s.t1) {
			s.t1 = t
		}
	}
	see(r.Started)
	see(r.Finished)
	for _, h := range r.Hops {
		see(h.Started)
		see(h.Finished)
	}
	for _, w := range r.Waves {
		see(w.Started)
		see(w.Finished)
	}
	for _, n := range r.Nodes {
		for _, sp := range n.Spans {
			see(sp.Start)
			see(sp.End)
		}
	}
	for _, se := range r.Availability {
		for _, p := range se.Points {
			see(p.T)
		}
	}
	if s.t0.IsZero() {
		s.t0 = time.Unix(0, 0).UTC()
	}
	if !s.t1.After(s.t0) {
		s.t1 = s.t0.Add(time.Minute)
	}
	return s
}

// tickSteps are the axis steps a reader counts in easily.
var tickSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour,
}

type svgTick struct{ X, Label, Title string }

// ticks marks elapsed time from the start at a step giving at most ten
// ticks; the label is the elapsed time, the tooltip the UTC clock.
func (s timeScale) ticks() []svgTick {
	span := s.t1.Sub(s.t0)
	step := tickSteps[len(tickSteps)-1]
	for _, st := range tickSteps {
		if span/st <= 10 {
			step = st
			break
		}
	}
	var out []svgTick
	for d := time.Duration(0); d <= span; d += step {
		t := s.t0.Add(d)
		out = append(out, svgTick{X: coord(s.x(t)), Label: compactDur(d), Title: utcTime(t)})
	}
	return out
}

// compactDur prints an elapsed time for an axis: 0, 30s, 5m, 1h30m, 2d.
func compactDur(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	var b strings.Builder
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		d -= days * 24 * time.Hour
	}
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d -= m * time.Minute
	}
	if sec := d / time.Second; sec > 0 {
		fmt.Fprintf(&b, "%ds", sec)
	}
	return b.String()
}

// coord prints a coordinate with one decimal and no trailing ".0": the
// 500-node chart has thousands of them.
func coord(f float64) string {
	s := strconv.FormatFloat(math.Round(f*10)/10, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}

type svgRect struct{ X, Y, W, H, Class string }

type svgBand struct {
	X, W, LabelX, Label, Title, Class string
}

type svgText struct{ X, Y, Label string }

type hopBar struct {
	svgRect
	Label, LabelX, LabelY, Title string
	ShowLabel                    bool
}

type ganttRow struct {
	Node, Title, Label, LabelY, MarkX, MarkY, Mark, BgY, BgH, BgClass string
	ShowLabel, ShowMark                                               bool
	Bars                                                              []svgRect
}

type ganttView struct {
	W, H, PlotX, PlotRight                           string
	WaveLabelY, TickLabelY, AxisY, BottomY, BottomLY string
	BandY, BandH                                     string
	HopRowY, HopLabelY                               string
	Ticks                                            []svgTick
	Bands                                            []svgBand
	Hops                                             []hopBar
	Rows                                             []ganttRow
	Groups                                           []svgText
	RowH, LabelX                                     string
}

// waveBands shade each wave's time range, alternately, and name it.
func (r *UpgradeReport) waveBands(s timeScale) []svgBand {
	var out []svgBand
	for i, w := range r.Waves {
		if w.Started.IsZero() {
			continue
		}
		end := w.Finished
		if end.IsZero() {
			end = s.t1
		}
		x0, x1 := s.x(w.Started), s.x(end)
		out = append(out, svgBand{
			X: coord(x0), W: coord(math.Max(x1-x0, 0.5)), LabelX: coord((x0 + x1) / 2),
			Label: fmt.Sprintf("W%d", w.Index), Class: fmt.Sprintf("band%d", i%2),
			Title: fmt.Sprintf("wave %d: %d node%s, %s – %s; limited by: %s", w.Index, len(w.Nodes), sIf(len(w.Nodes)),
				utcTime(w.Started), utcTime(w.Finished), dashIfEmpty(w.Limit)),
		})
	}
	return out
}

func stepClass(step string) string {
	for _, s := range nodeSteps {
		if s == step {
			return "s-" + s
		}
	}
	return "s-other"
}

func (r *UpgradeReport) gantt(s timeScale) ganttView {
	nodes := r.sortedNodes()
	rowH := math.Max(ganttMinRowH, math.Min(ganttMaxRowH, math.Floor(ganttRowBudget/math.Max(float64(len(nodes)), 1))))
	showLabels := rowH >= labelMinRowH
	const (
		waveLabelY = 12.0
		tickLabelY = 28.0
		axisY      = 34.0
		hopRowY    = 40.0
		hopRowH    = 18.0
	)
	rowsY := hopRowY + hopRowH + 10
	bottomY := rowsY + float64(len(nodes))*rowH + 4
	g := ganttView{
		W: coord(svgWidth), H: coord(bottomY + 20), PlotX: coord(plotX), PlotRight: coord(plotX + plotW),
		WaveLabelY: coord(waveLabelY), TickLabelY: coord(tickLabelY), AxisY: coord(axisY),
		BottomY: coord(bottomY), BottomLY: coord(bottomY + 14),
		BandY: coord(0), BandH: coord(bottomY),
		HopRowY: coord(hopRowY), HopLabelY: coord(hopRowY + hopRowH/2 + 4),
		Ticks: s.ticks(), Bands: r.waveBands(s), RowH: coord(rowH), LabelX: coord(labelWidth - 8),
	}
	for _, h := range r.Hops {
		if h.Started.IsZero() {
			continue
		}
		end := h.Finished
		if end.IsZero() {
			end = s.t1
		}
		x0, x1 := s.x(h.Started), s.x(end)
		class := "hop"
		if h.Outcome == "failed" {
			class += " failed"
		}
		g.Hops = append(g.Hops, hopBar{
			svgRect: svgRect{X: coord(x0), Y: coord(hopRowY), W: coord(math.Max(x1-x0, 1)), H: coord(hopRowH), Class: class},
			Label:   h.To, LabelX: coord(x0 + 4), LabelY: coord(hopRowY + hopRowH/2 + 4), ShowLabel: x1-x0 > 70,
			Title: fmt.Sprintf("control-plane hop %d: %s → %s, %s, %s – %s (%s)%s", h.Index, h.From, h.To, h.Outcome,
				utcTime(h.Started), utcTime(h.Finished), took(h.Started, h.Finished), prefixed("; ", h.Detail)),
		})
	}
	barH := math.Max(rowH*0.72, math.Min(rowH, 3))
	for i, n := range nodes {
		y := rowsY + float64(i)*rowH
		failed := n.Outcome == nodeFailed || n.Outcome == nodeQuarantined
		row := ganttRow{
			Node: n.Node, Label: n.Node, ShowLabel: showLabels,
			LabelY: coord(y + rowH/2 + 4), BgY: coord(y), BgH: coord(rowH),
		}
		switch {
		case failed:
			row.BgClass = "bg-failed"
			row.Label = "✗ " + n.Node
		case n.LeftCordoned:
			row.BgClass = "bg-cordoned"
			row.Label = "⚠ " + n.Node
		case n.Outcome != nodeUpgraded:
			row.BgClass = "bg-pending"
		}
		var last float64
		for _, sp := range n.Spans {
			if sp.Start.IsZero() {
				continue
			}
			class := stepClass(sp.Step)
			end := sp.End
			if end.IsZero() {
				end, class = s.t1, class+" open"
			}
			x0, x1 := s.x(sp.Start), s.x(end)
			last = math.Max(last, x1)
			row.Bars = append(row.Bars, svgRect{X: coord(x0), Y: coord(y + (rowH-barH)/2), W: coord(math.Max(x1-x0, 0.6)), H: coord(barH), Class: class})
		}
		// A failed node is marked after its last bar; without row labels
		// the mark names it.
		if failed && last > 0 {
			row.ShowMark, row.MarkX, row.MarkY, row.Mark = true, coord(last+3), coord(y+rowH/2+4), "✗"
			if !showLabels {
				row.Mark = "✗ " + n.Node
			}
		}
		start, end := nodeSpan(n)
		row.Title = fmt.Sprintf("%s · wave %d · %s → %s · %s%s · %s – %s · %s", n.Node, n.Wave, dashIfEmpty(n.From), dashIfEmpty(n.To),
			dashIfEmpty(n.Outcome), prefixed(": ", n.Reason), utcTime(start), utcTime(end), stepDurations(n))
		if n.LeftCordoned {
			row.Title += " · left cordoned"
		}
		g.Rows = append(g.Rows, row)
	}
	// Without per-row names, the label column names each wave's rows, in
	// the middle of them, skipping a label that would overlap the last.
	if !showLabels {
		lastY := -100.0
		for i := 0; i < len(nodes); {
			j := i
			for j < len(nodes) && nodes[j].Wave == nodes[i].Wave {
				j++
			}
			y := rowsY + (float64(i)+float64(j-i)/2)*rowH + 4
			if y-lastY >= 12 {
				label := fmt.Sprintf("wave %d · %d node%s", nodes[i].Wave, j-i, sIf(j-i))
				if nodes[i].Wave <= 0 {
					label = fmt.Sprintf("not in a wave · %d", j-i)
				}
				g.Groups = append(g.Groups, svgText{X: coord(labelWidth - 8), Y: coord(y), Label: label})
				lastY = y
			}
			i = j
		}
	}
	return g
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

type chartView struct {
	Workload, Summary, Title                    string
	Breached                                    bool
	W, H, PlotX, PlotRight, PlotTop, PlotBottom string
	TickLabelY, Path, MinY, DesY, MinLabelY     string
	DesLabelY, MinLabel, DesLabel, ZeroY        string
	PlotH, LabelX                               string
	ShowDesLabel                                bool
	Bands                                       []svgBand
	Ticks                                       []svgTick
	Breaches                                    []svgRect
}

// availabilityChart draws one workload's available replicas as a step line, with the
// PDB's minimum dashed and the desired count dotted; time below the
// minimum is shaded.
func availabilityChart(se Series, s timeScale, bands []svgBand) chartView {
	const top, bottom, height = 10.0, 90.0, 114.0
	pts := append([]Point(nil), se.Points...)
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].T.Before(pts[j].T) })
	yMax := math.Max(float64(max(se.Desired, se.MinAvailable)), 1)
	for _, p := range pts {
		yMax = math.Max(yMax, float64(p.Available))
	}
	y := func(v int32) float64 { return bottom - (bottom-top)*float64(v)/yMax }
	c := chartView{
		Workload: se.Workload,
		W:        coord(svgWidth), H: coord(height), PlotX: coord(plotX), PlotRight: coord(plotX + plotW),
		PlotTop: coord(top), PlotBottom: coord(bottom), PlotH: coord(bottom - top), LabelX: coord(labelWidth - 8), TickLabelY: coord(bottom + 16), ZeroY: coord(bottom + 4),
		MinY: coord(y(se.MinAvailable)), DesY: coord(y(se.Desired)),
		MinLabelY: coord(y(se.MinAvailable) + 4), DesLabelY: coord(y(se.Desired) + 4),
		MinLabel: fmt.Sprintf("PDB min %d", se.MinAvailable), DesLabel: fmt.Sprintf("desired %d", se.Desired),
		Ticks: s.ticks(), Bands: bands,
	}
	c.ShowDesLabel = math.Abs(y(se.Desired)-y(se.MinAvailable)) >= 11
	if !c.ShowDesLabel {
		c.MinLabel = fmt.Sprintf("min %d / %d", se.MinAvailable, se.Desired)
	}
	var path strings.Builder
	lowest, lowestAt := int32(math.MaxInt32), time.Time{}
	var below time.Duration
	for i, p := range pts {
		x := s.x(p.T)
		switch {
		case i == 0:
			fmt.Fprintf(&path, "M%s %s", coord(x), coord(y(p.Available)))
		case p.Available != pts[i-1].Available:
			fmt.Fprintf(&path, "H%sV%s", coord(x), coord(y(p.Available)))
		}
		if p.Available < lowest {
			lowest, lowestAt = p.Available, p.T
		}
		if i+1 < len(pts) && p.Available < se.MinAvailable {
			x1 := s.x(pts[i+1].T)
			below += pts[i+1].T.Sub(p.T)
			c.Breaches = append(c.Breaches, svgRect{X: coord(x), Y: coord(top), W: coord(math.Max(x1-x, 0.6)), H: coord(bottom - top)})
		}
	}
	if n := len(pts); n > 1 {
		fmt.Fprintf(&path, "H%s", coord(s.x(pts[n-1].T)))
	}
	c.Path = path.String()
	c.Breached = len(c.Breaches) > 0
	pdb := ""
	if se.PDB != "" {
		pdb = "PDB " + se.PDB + ": "
	}
	if len(pts) == 0 {
		c.Summary = fmt.Sprintf("%sat least %d of %d available; no samples", pdb, se.MinAvailable, se.Desired)
	} else {
		c.Summary = fmt.Sprintf("%sat least %d of %d available; lowest %d at %s; below the minimum for %s; %d samples",
			pdb, se.MinAvailable, se.Desired, lowest, utcTime(lowestAt), roundDur(below), len(pts))
	}
	c.Title = se.Workload + " — " + c.Summary
	return c
}

type hopRow struct {
	Index                                           int
	From, To, Outcome, Class, Started, Took, Detail string
}

type waveRow struct {
	Index                               int
	Count                               int
	Nodes, Limit, Started, Took, Failed string
}

type nodeRow struct {
	Node, From, To, Outcome, Class, Total, Reason string
	Wave, Evicted                                 int
	Steps                                         []string
	Cordoned                                      bool
}

type statCard struct{ Label, Value, Class string }

type htmlView struct {
	R                                     *UpgradeReport
	Title, OutcomeClass, OutcomeMark      string
	Started, Finished, Duration, PathLine string
	AxisCaption                           string
	Attention                             []attentionItem
	Stats                                 []statCard
	Steps                                 []string
	Gantt                                 ganttView
	Charts                                []chartView
	Hops                                  []hopRow
	Waves                                 []waveRow
	Nodes                                 []nodeRow
	Cordoned                              []CordonedNode
	BackupSize, BackupTook                string
}

// wavesLabel names what Waves counts: with continuous admission each
// "wave" is one admission of nodes, not a wave a reader would recognise.
func (s RolloutStats) wavesLabel() string {
	if s.Continuous {
		return "Admissions (continuous)"
	}
	return "Waves"
}

func outcomeClass(o string) string {
	switch o {
	case "succeeded", "done", "passed", nodeUpgraded:
		return "ok"
	case "failed", nodeQuarantined:
		return "bad"
	case "interrupted", "waiting", "blocked", "not-started", "skipped", "deleted":
		return "warn"
	}
	return "neutral"
}

func (r *UpgradeReport) htmlView() *htmlView {
	s := r.timeScale()
	v := &htmlView{
		R:            r,
		Title:        fmt.Sprintf("kup upgrade %s → %s: %s", dashIfEmpty(r.From), dashIfEmpty(r.To), dashIfEmpty(r.Outcome)),
		OutcomeClass: outcomeClass(r.Outcome), OutcomeMark: outcomeMark[r.Outcome],
		Started: utcTime(r.Started), Finished: utcTime(r.Finished), Duration: roundDur(r.duration()),
		PathLine:    r.pathLine(),
		AxisCaption: "time since " + utcTime(s.t0),
		Attention:   r.needsAttention(),
		Steps:       nodeSteps,
		Gantt:       r.gantt(s),
		Cordoned:    r.cordoned(),
	}
	st := r.Rollout
	upgraded, total := r.upgraded(), r.nodeCount()
	v.Stats = []statCard{
		{"Nodes upgraded", fmt.Sprintf("%d / %d", upgraded, total), yesNo(upgraded == total, "ok", "bad")},
		{st.wavesLabel(), strconv.Itoa(max(st.Waves, len(r.Waves))), ""},
		{"Evictions", st.evictionsLine(), yesNo(st.EvictionsPerPod > 1.05, "warn", "")},
		{"Evictions refused (429)", strconv.Itoa(st.Refusals), ""},
		{"PDB violations", strconv.Itoa(st.PDBViolations), yesNo(st.PDBViolations > 0, "bad", "ok")},
		{"Makespan", st.makespanLine(), ""},
		{"Worst availability", r.worstAvailability(), ""},
	}
	if st.MostDown > 0 {
		v.Stats = append(v.Stats, statCard{"Most nodes down at once", strconv.Itoa(st.MostDown), ""})
	}
	if r.Backup != nil {
		v.BackupSize, v.BackupTook = byteSize(r.Backup.Size), roundDur(r.Backup.Duration)
	}
	bands := r.waveBands(s)
	for i := range bands {
		bands[i].Label = "" // the Gantt chart names the waves
	}
	for _, se := range r.Availability {
		v.Charts = append(v.Charts, availabilityChart(se, s, bands))
	}
	for _, h := range r.Hops {
		v.Hops = append(v.Hops, hopRow{Index: h.Index, From: h.From, To: h.To, Outcome: h.Outcome, Class: outcomeClass(h.Outcome),
			Started: utcTime(h.Started), Took: took(h.Started, h.Finished), Detail: h.Detail})
	}
	failedIn := map[int][]string{}
	for _, n := range r.sortedNodes() {
		if n.Outcome == nodeFailed || n.Outcome == nodeQuarantined {
			failedIn[n.Wave] = append(failedIn[n.Wave], n.Node)
		}
		row := nodeRow{Node: n.Node, Wave: n.Wave, From: n.From, To: n.To, Outcome: n.Outcome, Class: outcomeClass(n.Outcome),
			Evicted: n.Evicted, Reason: n.Reason, Cordoned: n.LeftCordoned}
		for _, step := range nodeSteps {
			var d time.Duration
			seen, open := false, false
			for _, sp := range n.Spans {
				if sp.Step == step {
					seen = true
					if sp.End.IsZero() {
						open = true
					} else {
						d += sp.End.Sub(sp.Start)
					}
				}
			}
			switch {
			case open:
				row.Steps = append(row.Steps, "unfinished")
			case seen:
				row.Steps = append(row.Steps, roundDur(d))
			default:
				row.Steps = append(row.Steps, "—")
			}
		}
		start, end := nodeSpan(n)
		row.Total = took(start, end)
		v.Nodes = append(v.Nodes, row)
	}
	for _, w := range r.Waves {
		v.Waves = append(v.Waves, waveRow{Index: w.Index, Count: len(w.Nodes), Nodes: strings.Join(w.Nodes, ", "), Limit: w.Limit,
			Started: utcTime(w.Started), Took: took(w.Started, w.Finished), Failed: strings.Join(failedIn[w.Index], ", ")})
	}
	return v
}

// WriteHTML writes the report as one self-contained page: inline CSS and
// SVG, no script and nothing fetched, readable offline and printable. It
// holds the outcome, what needs attention, a Gantt chart of every node's
// steps with the waves, the availability of every PDB-protected workload
// on the same time axis, and the hops, waves, verification, findings and
// nodes as tables. Every text is escaped by html/template.
func (r *UpgradeReport) WriteHTML(w io.Writer) error {
	return upgradeHTML.Execute(w, r.htmlView())
}

var upgradeHTML = template.Must(template.New("upgrade-report.html").Parse(upgradeHTMLText))

// upgradeHTMLText is the page. The colours are CSS variables, so the SVG
// follows the reader's light or dark preference; the tooltips are SVG
// <title> elements, which need no script.
const upgradeHTMLText = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{{.Title}}</title>
<style>
:root{--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--band0:rgba(9,105,218,.08);--band1:rgba(9,105,218,.02);--cordon:#bf8700;--drain:#e16f24;--upgrade:#0969da;--ready:#8250df;--uncordon:#1a7f37;--other:#8c959f;--hop:#6e7781;--failbg:rgba(207,34,46,.16);--cordbg:rgba(191,135,0,.2);--pendbg:rgba(140,149,159,.16);--breach:rgba(207,34,46,.2)}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--card:#151b23;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--band0:rgba(56,139,253,.13);--band1:rgba(56,139,253,.03);--cordon:#d29922;--drain:#f0883e;--upgrade:#4493f8;--ready:#ab7df8;--uncordon:#3fb950;--hop:#9198a1;--failbg:rgba(248,81,73,.22);--cordbg:rgba(210,153,34,.24);--breach:rgba(248,81,73,.25)}}
body{margin:0 auto;max-width:1200px;padding:1.5rem;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
h1{font-size:1.5rem;margin:.2rem 0}
h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}
.badge{display:inline-block;padding:.1rem .7rem;border-radius:1rem;font-size:1rem;vertical-align:middle;color:#fff;background:var(--muted)}
.badge.ok{background:var(--ok)}.badge.bad{background:var(--bad)}.badge.warn{background:var(--warn)}
.reason{font-size:1.05rem;font-weight:600}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:.3rem 1.2rem;margin:.6rem 0}
.facts .wide{grid-column:1/-1}
dt{color:var(--muted);font-size:.8rem}dd{margin:0;overflow-wrap:anywhere}
#attention{border-radius:6px;padding:0 1rem .5rem;margin-top:1rem}
#attention h2{border:0;margin-top:.8rem}
.attention{border:2px solid var(--bad)}.attention h2{color:var(--bad)}
.all-clear{border:1px solid var(--ok)}.all-clear h2{color:var(--ok)}
.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:.5rem}
.stat{background:var(--card);border-radius:6px;padding:.4rem .7rem;border-left:4px solid var(--line)}
.stat span{display:block;color:var(--muted);font-size:.8rem}
.stat.ok{border-color:var(--ok)}.stat.bad{border-color:var(--bad)}.stat.warn{border-color:var(--warn)}
table{border-collapse:collapse;width:100%;margin:.3rem 0}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.8rem;color:var(--muted);font-weight:600}
td.ok{color:var(--ok)}td.bad{color:var(--bad);font-weight:600}td.warn{color:var(--warn)}
td.num{text-align:right}
svg.chart{width:100%;height:auto;display:block;font:11px system-ui,sans-serif}
svg text{fill:var(--fg)}
.tick{fill:var(--muted);text-anchor:middle}
.wlabel{text-anchor:middle;font-weight:600}
.rowlabel,.ylabel{text-anchor:end}.ylabel,.wlabel{fill:var(--muted)}
.grid{stroke:var(--line);stroke-width:.5}.axis{stroke:var(--muted);stroke-width:1}
.band0{fill:var(--band0)}.band1{fill:var(--band1)}
.s-cordon{fill:var(--cordon);background:var(--cordon)}.s-drain{fill:var(--drain);background:var(--drain)}.s-upgrade{fill:var(--upgrade);background:var(--upgrade)}
.s-ready{fill:var(--ready);background:var(--ready)}.s-uncordon{fill:var(--uncordon);background:var(--uncordon)}.s-other{fill:var(--other);background:var(--other)}
.open{fill-opacity:.45}
.hop{fill:var(--hop);background:var(--hop)}.hop.failed{fill:var(--bad)}svg .hoplabel{fill:#fff}
.bg-failed{fill:var(--failbg);background:var(--failbg)}.bg-cordoned{fill:var(--cordbg);background:var(--cordbg)}.bg-pending{fill:var(--pendbg)}
svg .failmark{fill:var(--bad);font-weight:700}
.row:hover rect{stroke:var(--fg);stroke-width:.4}
.legend{color:var(--muted);font-size:.85rem}
.sw{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin:0 .25em 0 .7em;vertical-align:-.1em}
.avail-line{fill:none;stroke:var(--upgrade);stroke-width:2}
.pdbmin{stroke:var(--bad);stroke-dasharray:6 4;stroke-width:1.2}
.desired{stroke:var(--muted);stroke-dasharray:2 3}
.breach{fill:var(--breach)}
figure{margin:.8rem 0}figcaption{font-size:.9rem}
.breached figcaption b{color:var(--bad)}
details summary{cursor:pointer;margin:.5rem 0}
</style>
</head>
<body>
<header>
<h1>kup upgrade {{.R.From}} → {{.R.To}} <span class="badge {{.OutcomeClass}}">{{.OutcomeMark}} {{.R.Outcome}}</span></h1>
{{with .R.Reason}}<p class="reason">{{.}}</p>{{end}}
<dl class="facts">
<div><dt>Cluster</dt><dd><code>{{.R.Cluster}}</code></dd></div>
<div><dt>Run</dt><dd><code>{{.R.RunID}}</code>{{if .R.Resumes}} (resumed {{.R.Resumes}}×){{end}}</dd></div>
<div><dt>Started</dt><dd>{{.Started}}</dd></div>
<div><dt>Finished</dt><dd>{{.Finished}}</dd></div>
<div><dt>Duration</dt><dd>{{.Duration}}</dd></div>
{{with .PathLine}}<div class="wide"><dt>Path</dt><dd>{{.}}</dd></div>{{end}}
</dl>
</header>
<main>
<section id="attention" class="{{if .Attention}}attention{{else}}all-clear{{end}}">
<h2>Needs attention</h2>
{{if .Attention}}<ul>
{{range .Attention}}<li><strong>{{.Subject}}</strong> {{.Text}}</li>
{{end}}</ul>{{else}}<p>Nothing: every node is at the target, none is left cordoned, and verification passed.</p>{{end}}
</section>
<section id="rollout">
<h2>Rollout</h2>
<div class="stats">
{{range .Stats}}<div class="stat {{.Class}}"><span>{{.Label}}</span><b>{{.Value}}</b></div>
{{end}}</div>
</section>
<section id="timeline">
<h2>Timeline</h2>
<p class="legend">{{range .Steps}}<span class="sw s-{{.}}"></span>{{.}} {{end}}<span class="sw hop"></span>control-plane hop <span class="sw bg-failed"></span>failed node <span class="sw bg-cordoned"></span>left cordoned · shaded bands are waves · axis: {{.AxisCaption}} · hover a row for its steps</p>
{{with .Gantt}}{{$g := .}}<svg class="chart gantt" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="Gantt chart: one row per node, one bar per step">
<g class="bands">{{range .Bands}}<rect class="{{.Class}}" x="{{.X}}" y="{{$g.BandY}}" width="{{.W}}" height="{{$g.BandH}}"><title>{{.Title}}</title></rect><text class="wlabel" x="{{.LabelX}}" y="{{$g.WaveLabelY}}">{{.Label}}</text>{{end}}</g>
<g class="ticks">{{range .Ticks}}<line class="grid" x1="{{.X}}" x2="{{.X}}" y1="{{$g.AxisY}}" y2="{{$g.BottomY}}"/><text class="tick" x="{{.X}}" y="{{$g.TickLabelY}}">{{.Label}}<title>{{.Title}}</title></text><text class="tick" x="{{.X}}" y="{{$g.BottomLY}}">{{.Label}}</text>{{end}}</g>
<line class="axis" x1="{{.PlotX}}" x2="{{.PlotRight}}" y1="{{.AxisY}}" y2="{{.AxisY}}"/>
<line class="axis" x1="{{.PlotX}}" x2="{{.PlotRight}}" y1="{{.BottomY}}" y2="{{.BottomY}}"/>
<g class="cp"><text class="rowlabel" x="{{.LabelX}}" y="{{.HopLabelY}}">control plane</text>{{range .Hops}}<g><title>{{.Title}}</title><rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"/>{{if .ShowLabel}}<text class="hoplabel" x="{{.LabelX}}" y="{{.LabelY}}">{{.Label}}</text>{{end}}</g>{{end}}</g>
{{range .Rows}}<g class="row" data-node="{{.Node}}"><title>{{.Title}}</title>{{if .BgClass}}<rect class="{{.BgClass}}" x="0" y="{{.BgY}}" width="{{$g.W}}" height="{{.BgH}}"/>{{end}}{{if .ShowLabel}}<text class="rowlabel" x="{{$g.LabelX}}" y="{{.LabelY}}">{{.Label}}</text>{{end}}{{range .Bars}}<rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"/>{{end}}{{if .ShowMark}}<text class="failmark" x="{{.MarkX}}" y="{{.MarkY}}">{{.Mark}}</text>{{end}}</g>
{{end}}{{range .Groups}}<text class="ylabel" x="{{.X}}" y="{{.Y}}">{{.Label}}</text>{{end}}
</svg>{{end}}
</section>
{{if .Charts}}<section id="availability">
<h2>Availability of PDB-protected workloads</h2>
<p class="legend"><span class="sw s-upgrade"></span>available replicas <span class="sw bg-failed"></span>below the PDB's minimum (dashed) · dotted: desired · same time axis as the timeline</p>
{{range .Charts}}{{$c := .}}<figure class="avail{{if .Breached}} breached{{end}}">
<figcaption><b>{{.Workload}}</b> — {{.Summary}}</figcaption>
<svg class="chart" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Title}}">
{{range .Bands}}<rect class="{{.Class}}" x="{{.X}}" y="{{$c.PlotTop}}" width="{{.W}}" height="{{$c.PlotH}}"/>{{end}}
{{range .Ticks}}<line class="grid" x1="{{.X}}" x2="{{.X}}" y1="{{$c.PlotTop}}" y2="{{$c.PlotBottom}}"/><text class="tick" x="{{.X}}" y="{{$c.TickLabelY}}">{{.Label}}</text>{{end}}
{{range .Breaches}}<rect class="breach" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"/>{{end}}
<line class="desired" x1="{{.PlotX}}" x2="{{.PlotRight}}" y1="{{.DesY}}" y2="{{.DesY}}"/>
<line class="pdbmin" x1="{{.PlotX}}" x2="{{.PlotRight}}" y1="{{.MinY}}" y2="{{.MinY}}"/>
<line class="axis" x1="{{.PlotX}}" x2="{{.PlotRight}}" y1="{{.PlotBottom}}" y2="{{.PlotBottom}}"/>
<path class="avail-line" d="{{.Path}}"/>
{{if .ShowDesLabel}}<text class="ylabel" x="{{.LabelX}}" y="{{.DesLabelY}}">{{.DesLabel}}</text>{{end}}<text class="ylabel" x="{{.LabelX}}" y="{{.MinLabelY}}">{{.MinLabel}}</text><text class="ylabel" x="{{.LabelX}}" y="{{.ZeroY}}">0</text>
</svg>
</figure>
{{end}}</section>{{end}}
<section id="hops">
<h2>Control-plane hops</h2>
{{if .Hops}}<table>
<tr><th>#</th><th>From</th><th>To</th><th>Outcome</th><th>Started</th><th>Took</th><th>Detail</th></tr>
{{range .Hops}}<tr><td>{{.Index}}</td><td>{{.From}}</td><td>{{.To}}</td><td class="{{.Class}}">{{.Outcome}}</td><td>{{.Started}}</td><td>{{.Took}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}
</section>
<section id="waves">
<h2>Node waves</h2>
{{if .Waves}}<table>
<tr><th>Wave</th><th>Nodes</th><th>Limited by</th><th>Started</th><th>Took</th><th>Failed</th></tr>
{{range .Waves}}<tr><td>{{.Index}}</td><td>{{.Count}}: {{.Nodes}}</td><td>{{.Limit}}</td><td>{{.Started}}</td><td>{{.Took}}</td><td class="bad">{{.Failed}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}
</section>
<section id="verify">
<h2>Verify</h2>
{{with .R.Verify}}<p class="{{if .Passed}}ok{{else}}bad{{end}}"><strong>{{if .Passed}}Passed{{else}}Failed{{end}}</strong></p>
<table>
<tr><th>Check</th><th>Result</th><th>Detail</th></tr>
{{range .Checks}}<tr><td><code>{{.Name}}</code></td>{{if .Passed}}<td class="ok">✓ pass</td>{{else}}<td class="bad">✗ fail</td>{{end}}<td>{{.Detail}}</td></tr>
{{end}}</table>{{else}}<p>Not run.</p>{{end}}
</section>
<section id="cordoned">
<h2>Still cordoned</h2>
{{if .Cordoned}}<table>
<tr><th>Node</th><th>Reason</th></tr>
{{range .Cordoned}}<tr><td><code>{{.Node}}</code></td><td>{{.Reason}}</td></tr>
{{end}}</table>{{else}}<p>None: every node kup cordoned was uncordoned.</p>{{end}}
</section>
<section id="backup">
<h2>Backup</h2>
{{with .R.Backup}}{{if .Skipped}}<p>Not taken: {{.Skipped}}</p>{{else}}<table>
<tr><th>Snapshot</th><td><code>{{.Path}}</code></td></tr>
<tr><th>sha256</th><td><code>{{.SHA256}}</code></td></tr>
<tr><th>Size</th><td>{{$.BackupSize}}, revision {{.Revision}}, {{.Keys}} keys</td></tr>
<tr><th>Verified</th>{{if .Verified}}<td class="ok">yes</td>{{else}}<td class="bad">no</td>{{end}}</tr>
<tr><th>Encrypted</th><td>{{if .Encrypted}}yes{{else}}no{{end}}</td></tr>
<tr><th>Took</th><td>{{$.BackupTook}}</td></tr>
</table>{{end}}{{else}}<p>None recorded.</p>{{end}}
</section>
<section id="findings">
<h2>Preflight findings</h2>
{{if .R.Findings}}<table>
<tr><th>ID</th><th>Severity</th><th>Title</th><th>Objects</th><th>Waived</th></tr>
{{range .R.Findings}}<tr><td><code>{{.ID}}</code></td><td>{{.Severity}}</td><td>{{.Title}}</td><td>{{range $i, $o := .Objects}}{{if $i}}, {{end}}{{$o}}{{end}}</td><td>{{if .Waived}}waived{{end}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}
</section>
<section id="nodes">
<h2>Nodes</h2>
<details{{if le (len .Nodes) 50}} open{{end}}><summary>{{len .Nodes}} nodes, in Gantt order</summary>
<table>
<tr><th>Node</th><th>Wave</th><th>From</th><th>To</th><th>Outcome</th><th>Evicted</th>{{range .Steps}}<th>{{.}}</th>{{end}}<th>Total</th><th>Reason</th></tr>
{{range .Nodes}}<tr><td><code>{{.Node}}</code></td><td class="num">{{.Wave}}</td><td>{{.From}}</td><td>{{.To}}</td><td class="{{.Class}}">{{.Outcome}}{{if .Cordoned}} (cordoned){{end}}</td><td class="num">{{.Evicted}}</td>{{range .Steps}}<td>{{.}}</td>{{end}}<td>{{.Total}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>
</details>
</section>
</main>
</body>
</html>
`
