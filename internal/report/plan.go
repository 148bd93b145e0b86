package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kup-project/kup/internal/checks"
	"github.com/kup-project/kup/internal/plan"
	"github.com/kup-project/kup/internal/rollbacksafe"
	"github.com/kup-project/kup/internal/version"
)

// PlanAPIVersion and PlanKind head every `kup plan -o json|yaml` document,
// so a program can tell the format and its version before reading on.
const (
	PlanAPIVersion = "kup.dev/v1alpha1"
	PlanKind       = "PlanReport"
)

// Plan is the result of `kup plan`: the path, every finding, the backup
// kup will take and the node waves it would run.
//
// JSON/YAML schema (kup.dev/v1alpha1, kind PlanReport). Field names are
// stable within the apiVersion; new fields may be added.
//
//	apiVersion   string  "kup.dev/v1alpha1"
//	kind         string  "PlanReport"
//	cluster      string  the apiserver URL read
//	taken        string  RFC 3339 time of the read
//	from, to     string  current control-plane version and target ("v1.36.3")
//	verdict      object  {blocked bool, blockers, waivedBlockers, warnings,
//	                     unknown, info int}: blocked is true when a blocker
//	                     is not waived (kup apply refuses; kup plan exits 3)
//	path         object  the upgrade path (see `kup versions -o json`):
//	                     hops[], finalNodeRolls[], nodes[], skew verdicts
//	findings[]   object  {id, severity, title, objects[], message, action,
//	                     waived}; severity is blocker|warning|info|unknown
//	                     ("unknown": the check could not run — never a pass);
//	                     objects[] are {kind, namespace, name}; sorted worst
//	                     first, then by id
//	backup       object  {what, when, endpoint, note}: the etcd snapshot
//	                     taken before the first hop
//	policy       object  {maxUnavailable, zoneByZone} the waves were planned with
//	rollout      object  {waves[], blocked[], lowerBound}: waves[] are
//	                     {index, nodes[], zone, controlPlane, limit{kind,
//	                     reason, pdb, pod, node, heldBack}, podsEvicted,
//	                     unmanaged[], cordoned[], budgetWaits[]}; blocked[]
//	                     are {node, cause, pdbs[], pod, reason}; lowerBound
//	                     is {waves, decidedBy, terms[{name, waves, detail}]}
//	nodesToRoll  int     nodes the path rolls (the rollout's scope)
//	capacity     object  {nodes, maxDown[], undrainable[{node, misfits[]}]}
//	addons[]     object  {name, version, image, workload, verdicts[
//	                     {kubernetes, verdict, detail}], source, note}
//	waived[]     string  the IDs given with --waive
//	warnings[]   string  what the read could not see, unused waivers
//	error        object  {code, message} when the plan could not be made
//	apiRequests  int     API requests the reads made
type Plan struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Cluster    string               `json:"cluster,omitempty"`
	Taken      time.Time            `json:"taken,omitzero"`
	From       string               `json:"from,omitempty"`
	To         string               `json:"to,omitempty"`
	Verdict    PlanVerdict          `json:"verdict"`
	Path       *version.UpgradePath `json:"path,omitempty"`
	Findings   []checks.Finding     `json:"findings"`
	Backup     *Backup              `json:"backup,omitempty"`
	// RollbackSafe says per control-plane hop whether kup controlplane
	// upgrade --rollback-safe can take it (a rollback window), and why.
	RollbackSafe []rollbacksafe.HopVerdict `json:"rollbackSafe,omitempty"`
	Policy       plan.Policy               `json:"policy"`
	Rollout      *plan.Plan                `json:"rollout,omitempty"`
	NodesToRoll  int                       `json:"nodesToRoll"`
	Capacity     *checks.CapacitySummary   `json:"capacity,omitempty"`
	Addons       []checks.DetectedAddon    `json:"addons"`
	Waived       []string                  `json:"waived,omitempty"`
	Warnings     []string                  `json:"warnings,omitempty"`
	Error        *ResultError              `json:"error,omitempty"`
	Requests     int64                     `json:"apiRequests"`
}

// PlanVerdict counts the findings by severity.
type PlanVerdict struct {
	// Blocked: at least one blocker is not waived.
	Blocked        bool `json:"blocked"`
	Blockers       int  `json:"blockers"`
	WaivedBlockers int  `json:"waivedBlockers"`
	Warnings       int  `json:"warnings"`
	Unknown        int  `json:"unknown"`
	Info           int  `json:"info"`
}

// Count fills the verdict from findings (with their Waived marks).
func (v *PlanVerdict) Count(fs []checks.Finding) {
	*v = PlanVerdict{}
	for _, f := range fs {
		switch f.Severity {
		case checks.Blocker:
			v.Blockers++
			if f.Waived {
				v.WaivedBlockers++
			}
		case checks.Warning:
			v.Warnings++
		case checks.Unknown:
			v.Unknown++
		case checks.Info:
			v.Info++
		}
	}
	v.Blocked = v.Blockers > v.WaivedBlockers
}

// Backup is the backup kup takes before it changes anything.
type Backup struct {
	What     string `json:"what"`
	When     string `json:"when"`
	Endpoint string `json:"endpoint,omitempty"`
	Note     string `json:"note,omitempty"`
}

// PlanTableOptions tune the terminal printer.
type PlanTableOptions struct {
	// Color uses ANSI colours; the caller decides (a terminal, no
	// NO_COLOR, no --no-color).
	Color bool
	// ListAll lists every object and node instead of the first few.
	ListAll bool
}

// palette holds the escape sequences, empty without colour.
type palette struct{ red, yellow, magenta, dim, green, bold, reset string }

func newPalette(color bool) palette {
	if !color {
		return palette{}
	}
	return palette{red: "\x1b[31m", yellow: "\x1b[33m", magenta: "\x1b[35m", dim: "\x1b[2m", green: "\x1b[32m", bold: "\x1b[1m", reset: "\x1b[0m"}
}

type severityGroup struct {
	severity checks.Severity
	heading  string
	mark     string
	color    func(palette) string
}

var severityGroups = []severityGroup{
	{checks.Blocker, "BLOCKERS", "✗", func(p palette) string { return p.red }},
	{checks.Warning, "WARNINGS", "!", func(p palette) string { return p.yellow }},
	{checks.Unknown, "COULD NOT CHECK", "?", func(p palette) string { return p.magenta }},
	{checks.Info, "INFO", "i", func(p palette) string { return p.dim }},
}

// WriteTable prints the plan for a person: the path, the findings grouped
// by severity, the backup, the waves, capacity and add-ons, and the
// verdict last, where the eye ends.
func (r *Plan) WriteTable(w io.Writer, opts PlanTableOptions) error {
	p := newPalette(opts.Color)
	b := &strings.Builder{}
	if r.Cluster != "" {
		fmt.Fprintf(b, "%sPlan for %s%s: %s → %s", p.bold, r.Cluster, p.reset, orDash(r.From), orDash(r.To))
		if !r.Taken.IsZero() {
			fmt.Fprintf(b, " (read %s, %d API requests)", r.Taken.UTC().Format("2006-01-02 15:04:05 MST"), r.Requests)
		}
		b.WriteString("\n\n")
	}
	if r.Path != nil {
		writePath(b, r.Path, TableOptions{ListNodes: opts.ListAll})
		b.WriteString("\n")
	}
	for _, g := range severityGroups {
		var fs []checks.Finding
		for _, f := range r.Findings {
			if f.Severity == g.severity {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			continue
		}
		c := g.color(p)
		fmt.Fprintf(b, "%s%s%s (%d)\n", c+p.bold, g.heading, p.reset, len(fs))
		for _, f := range fs {
			waived := ""
			if f.Waived {
				waived = " (waived)"
			}
			fmt.Fprintf(b, "  %s%s %s%s  %s%s\n", c, g.mark, f.ID, p.reset, f.Title, waived)
			if len(f.Objects) > 0 {
				fmt.Fprintf(b, "      %s\n", objectList(f.Objects, opts.ListAll))
			}
			fmt.Fprintf(b, "      %s\n", f.Message)
			fmt.Fprintf(b, "      %s→ %s%s\n", p.dim, f.Action, p.reset)
		}
		b.WriteString("\n")
	}
	if len(r.Findings) == 0 && r.Error == nil {
		b.WriteString("No findings.\n\n")
	}
	if r.Backup != nil {
		fmt.Fprintf(b, "%sBackup%s: %s %s", p.bold, p.reset, r.Backup.What, r.Backup.When)
		if r.Backup.Endpoint != "" {
			fmt.Fprintf(b, " from %s", r.Backup.Endpoint)
		}
		b.WriteString("\n")
		if r.Backup.Note != "" {
			fmt.Fprintf(b, "  %s\n", r.Backup.Note)
		}
		b.WriteString("\n")
	}
	if len(r.RollbackSafe) > 0 {
		fmt.Fprintf(b, "%sRollback-safe%s (kup controlplane upgrade --rollback-safe):\n", p.bold, p.reset)
		for _, h := range r.RollbackSafe {
			mark := "no "
			if h.Safe {
				mark = "yes"
			}
			fmt.Fprintf(b, "  hop %d %s → %s: %s  %s\n", h.Hop, h.From, h.To, mark, h.Reason)
		}
		b.WriteString("\n")
	}
	if r.Rollout != nil {
		writeRollout(b, r, opts, p)
		b.WriteString("\n")
	}
	if c := r.Capacity; c != nil {
		fmt.Fprintf(b, "%sCapacity%s: %d of %d node(s) can be down at once with every pod placed elsewhere (greedy estimate)", p.bold, p.reset, len(c.MaxDown), c.Nodes)
		if len(c.Undrainable) > 0 {
			var names []string
			for _, u := range c.Undrainable {
				names = append(names, u.Node)
			}
			fmt.Fprintf(b, "; cannot be drained at all: %s", listOf(names, opts.ListAll, 6))
		}
		b.WriteString("\n\n")
	}
	if len(r.Addons) > 0 {
		fmt.Fprintf(b, "%sAdd-ons%s:\n", p.bold, p.reset)
		for _, a := range r.Addons {
			v := a.Version
			if v == "" {
				v = "(no tag)"
			}
			fmt.Fprintf(b, "  %s %s  %s", a.Name, v, a.Workload)
			var verdicts []string
			for _, vd := range a.Verdicts {
				verdicts = append(verdicts, vd.Kubernetes+": "+vd.Verdict)
			}
			if len(verdicts) > 0 {
				fmt.Fprintf(b, "  [%s]", strings.Join(verdicts, ", "))
			} else if a.Note != "" {
				fmt.Fprintf(b, "  (%s)", a.Note)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(b, "%swarning:%s %s\n", p.yellow, p.reset, warn)
	}
	if len(r.Warnings) > 0 {
		b.WriteString("\n")
	}
	if r.Error == nil {
		v := r.Verdict
		waived := ""
		if v.WaivedBlockers > 0 {
			waived = fmt.Sprintf(" (%d waived)", v.WaivedBlockers)
		}
		counts := fmt.Sprintf("%d blocker(s)%s, %d warning(s), %d could not be checked, %d info", v.Blockers, waived, v.Warnings, v.Unknown, v.Info)
		switch {
		case v.Blocked:
			fmt.Fprintf(b, "%s%sBlocked%s: %s. kup apply refuses to start until each blocker is fixed or waived (--waive ID).\n", p.red, p.bold, p.reset, counts)
		case v.WaivedBlockers > 0:
			fmt.Fprintf(b, "%s%sReady, with waivers%s: %s; every blocker is waived.\n", p.yellow, p.bold, p.reset, counts)
		default:
			fmt.Fprintf(b, "%s%sReady%s: %s. Nothing blocks the upgrade.\n", p.green, p.bold, p.reset, counts)
		}
	}
	// r.Error is printed by the caller, once, on stderr.
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func objectList(objs []checks.Object, all bool) string {
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.String()
	}
	return listOf(names, all, 4)
}

func listOf(names []string, all bool, n int) string {
	if all || len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … (%d more)", strings.Join(names[:n], ", "), len(names)-n)
}

func writeRollout(b *strings.Builder, r *Plan, opts PlanTableOptions, p palette) {
	ro := r.Rollout
	mu := r.Policy.MaxUnavailable.String()
	if mu == "0" || mu == "" {
		mu = "1"
	}
	zones := ""
	if r.Policy.ZoneByZone {
		zones = ", zone by zone"
	}
	fmt.Fprintf(b, "%sNode waves%s: %d node(s) to roll in %d wave(s) (max unavailable %s%s); at best %d wave(s)",
		p.bold, p.reset, r.NodesToRoll, len(ro.Waves), mu, zones, ro.LowerBound.Waves)
	if ro.LowerBound.DecidedBy != "" {
		fmt.Fprintf(b, ", bound set by %s", ro.LowerBound.DecidedBy)
	}
	b.WriteString("\n")
	if !r.Policy.ZoneByZone && len(ro.Waves) > 1 {
		// kup apply does not run these one after another by default; a
		// reader counting waves × per-node time would expect far longer.
		fmt.Fprintf(b, "  %skup apply starts each node as soon as its PDBs and max unavailable allow (--continuous, the default), so these waves overlap: they are the order and the limits as the cluster stands now%s\n", p.dim, p.reset)
	}
	for _, w := range ro.Waves {
		where := ""
		if w.Zone != "" {
			where = " in " + w.Zone
		}
		if w.ControlPlane {
			where += " (control plane)"
		}
		fmt.Fprintf(b, "  wave %d: %d node(s)%s: %s\n", w.Index, len(w.Nodes), where, listOf(w.Nodes, opts.ListAll, 6))
		fmt.Fprintf(b, "    %s%d pod(s) evicted; limited by %s: %s%s\n", p.dim, w.PodsEvicted, w.Limit.Kind, w.Limit.Reason, p.reset)
		if len(w.Unmanaged) > 0 {
			fmt.Fprintf(b, "    deletes for good: %s\n", listOf(w.Unmanaged, opts.ListAll, 4))
		}
		if len(w.Cordoned) > 0 {
			fmt.Fprintf(b, "    already cordoned, left cordoned: %s\n", strings.Join(w.Cordoned, ", "))
		}
		for _, bw := range w.BudgetWaits {
			fmt.Fprintf(b, "    waits: %s\n", bw)
		}
	}
	for _, bn := range ro.Blocked {
		fmt.Fprintf(b, "  %sblocked%s: node %s (%s): %s\n", p.red, p.reset, bn.Node, bn.Cause, bn.Reason)
	}
}

// WriteJSON prints the plan as indented JSON.
func (r *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteYAML prints the plan as YAML (the JSON schema, in YAML).
func (r *Plan) WriteYAML(w io.Writer) error {
	data, err := yaml.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
