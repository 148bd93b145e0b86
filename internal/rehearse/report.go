package rehearse

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kup-project/kup/internal/report"
)

// Report kinds and version.
const (
	ReportAPIVersion = "kup.dev/v1alpha1"
	ReportKind       = "Rehearsal"
)

// Report is the rehearsal's verdict on an upgrade of the real cluster.
type Report struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Cluster is the real cluster's API address; Fingerprint identifies
	// it beyond the address (see Fingerprint).
	Cluster     string    `json:"cluster"`
	Fingerprint string    `json:"fingerprint"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	TwinVersion string    `json:"twinVersion"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	// PlanHash identifies the plan rehearsed: target and the flags that
	// shape the upgrade (see PlanHash).
	PlanHash string `json:"planHash"`
	// Passed is true when the upgrade succeeded in the twin and no
	// manifest was refused by the target version's apiserver.
	Passed  bool   `json:"passed"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// Blockers are the preflight's blockers not waived (the same checks
	// `kup plan` runs).
	Blockers      []report.FindingSummary `json:"blockers"`
	BlockedDrains []BlockedDrain          `json:"blockedDrains"`
	// Refused are manifests (last-applied configurations) the target
	// version's apiserver refused.
	Refused []Failure `json:"refused"`
	// NotWritten are objects the twin refused when it was built.
	NotWritten  []Failure    `json:"notWritten"`
	Prediction  Prediction   `json:"prediction"`
	Differences []Difference `json:"differences"`
	// UpgradeReport is where the twin's own upgrade report is.
	UpgradeReport string `json:"upgradeReport,omitempty"`
}

// BlockedDrain is a node the twin could not drain, and the budget that
// held it (empty when the reason was not a budget).
type BlockedDrain struct {
	// Node is the twin's node. The twin's scheduler placed the pods, so
	// the real cluster's nodes holding the budget's pods are RealNodes.
	Node      string   `json:"node"`
	PDB       string   `json:"pdb,omitempty"`
	Reason    string   `json:"reason"`
	RealNodes []string `json:"realNodes,omitempty"`
}

// MapToReal names, for each blocked drain, the real cluster's nodes that
// run pods of its budget(s): the drains that will block in production.
func (r *Report) MapToReal(src *Source) {
	selectors := map[string]labels.Selector{}
	for _, o := range src.Objects {
		if o.Kind.Kind != "PodDisruptionBudget" {
			continue
		}
		m, _, _ := unstructured.NestedMap(o.Obj.Object, "spec", "selector")
		var ls metav1.LabelSelector
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &ls); err != nil {
			continue
		}
		if sel, err := metav1.LabelSelectorAsSelector(&ls); err == nil {
			selectors[o.Obj.GetNamespace()+"/"+o.Obj.GetName()] = sel
		}
	}
	for i := range r.BlockedDrains {
		b := &r.BlockedDrains[i]
		nodes := map[string]bool{}
		for _, pdb := range strings.Split(b.PDB, ", ") {
			ns, _, _ := strings.Cut(pdb, "/")
			sel, ok := selectors[pdb]
			if !ok {
				continue
			}
			for j := range src.Pods {
				p := &src.Pods[j]
				if p.Namespace == ns && p.Spec.NodeName != "" && p.DeletionTimestamp == nil && sel.Matches(labels.Set(p.Labels)) {
					nodes[p.Spec.NodeName] = true
				}
			}
		}
		b.RealNodes = sortedKeys(nodes)
	}
}

// Prediction is what the rehearsal predicts for the real upgrade.
type Prediction struct {
	// Makespan is the node rollout's duration in the twin; Total the
	// whole upgrade's (preflight, backup, hops, nodes, verify).
	Makespan time.Duration `json:"makespan"`
	Total    time.Duration `json:"total"`
	Hops     int           `json:"hops"`
	Waves    []Wave        `json:"waves"`
}

// Wave is one node wave of the prediction.
type Wave struct {
	Index    int           `json:"index"`
	Nodes    []string      `json:"nodes"`
	Limit    string        `json:"limit"`
	Duration time.Duration `json:"duration"`
}

var generatedPodRE = regexp.MustCompile(`^(Pod [^/]+/.+?)(-[0-9a-f]{6,10})?-[a-z0-9]{5}$`)

// pdbREs find the budget(s) in a blocked drain's reason: the drainer's
// ("blocked by PDB ns/name:") and the wave planner's ("PDB ns/name allows
// 0 disruptions…", "matched by PDBs ns/a, ns/b;").
var pdbREs = []*regexp.Regexp{
	regexp.MustCompile(`blocked by PDB (\S+?):`),
	regexp.MustCompile(`^PDB (\S+) (?:allows 0|has no status)`),
	regexp.MustCompile(`matched by PDBs (.+?); the eviction API`),
}

// FromUpgrade fills the verdict, blockers, blocked drains and prediction
// from the twin's upgrade report.
func (r *Report) FromUpgrade(up *report.UpgradeReport) {
	r.Blockers = []report.FindingSummary{}
	r.BlockedDrains = []BlockedDrain{}
	if up == nil {
		return
	}
	r.Outcome, r.Reason = up.Outcome, up.Reason
	r.From = up.From
	for _, f := range up.Findings {
		if f.Severity == "blocker" && !f.Waived {
			r.Blockers = append(r.Blockers, f)
		}
	}
	for _, n := range up.Nodes {
		if n.Outcome == "upgraded" || n.Reason == "" || !strings.Contains(n.Reason, "drain") {
			continue
		}
		b := BlockedDrain{Node: n.Node, Reason: n.Reason}
		for _, re := range pdbREs {
			if m := re.FindStringSubmatch(n.Reason); m != nil {
				b.PDB = m[1]
				break
			}
		}
		r.BlockedDrains = append(r.BlockedDrains, b)
	}
	r.Prediction = Prediction{Makespan: up.Rollout.Makespan, Hops: len(up.Hops)}
	if !up.Finished.IsZero() && !up.Started.IsZero() {
		r.Prediction.Total = up.Finished.Sub(up.Started)
	}
	for _, w := range up.Waves {
		r.Prediction.Waves = append(r.Prediction.Waves, Wave{Index: w.Index, Nodes: w.Nodes, Limit: w.Limit, Duration: w.Finished.Sub(w.Started)})
	}
	r.Passed = up.Outcome == "succeeded" && len(r.Refused) == 0
}

// WriteText writes the report for a terminal or a Markdown file.
func (r *Report) WriteText(w io.Writer) error {
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Rehearsal of %s → %s: %s\n\n", r.From, r.To, verdict)
	fmt.Fprintf(&b, "Real cluster %s; twin at %s; plan %s; %s.\n", r.Cluster, r.TwinVersion, short(r.PlanHash), r.Finished.Format(time.RFC3339))
	if r.Reason != "" {
		fmt.Fprintf(&b, "\nThe upgrade in the twin %s: %s\n", r.Outcome, r.Reason)
	}
	section := func(title string, n int) {
		fmt.Fprintf(&b, "\n## %s (%d)\n", title, n)
	}
	section("Blockers", len(r.Blockers))
	for _, f := range r.Blockers {
		fmt.Fprintf(&b, "- %s %s: %s\n", f.ID, f.Title, strings.Join(f.Objects, ", "))
	}
	section("Blocked drains", len(r.BlockedDrains))
	for _, d := range r.BlockedDrains {
		pdb := d.PDB
		if pdb == "" {
			pdb = "(no single budget)"
		}
		real := ""
		if len(d.RealNodes) > 0 {
			real = " — in the real cluster its pods run on " + strings.Join(d.RealNodes, ", ")
		}
		fmt.Fprintf(&b, "- PDB %s (twin node %s%s): %s\n", pdb, d.Node, real, d.Reason)
	}
	section("Manifests the target version refuses", len(r.Refused))
	for _, f := range r.Refused {
		fmt.Fprintf(&b, "- %s: %s\n", f.Key, f.Reason)
	}
	section("Objects the twin could not hold", len(r.NotWritten))
	for _, f := range r.NotWritten {
		fmt.Fprintf(&b, "- %s: %s\n", f.Key, f.Reason)
	}
	p := r.Prediction
	fmt.Fprintf(&b, "\n## Prediction for the real cluster\n")
	fmt.Fprintf(&b, "Node rollout makespan %s over %d wave(s); whole upgrade %s (%d control-plane hop(s)).\n", p.Makespan.Round(time.Second), len(p.Waves), p.Total.Round(time.Second), p.Hops)
	for _, w := range p.Waves {
		fmt.Fprintf(&b, "- wave %d: %d node(s) in %s — %s: %s\n", w.Index, len(w.Nodes), w.Duration.Round(time.Second), w.Limit, strings.Join(w.Nodes, " "))
	}
	section("Differences between the twin and the real cluster", len(r.Differences))
	for _, d := range r.Differences {
		if d.Effect != "" {
			fmt.Fprintf(&b, "- %s — %s\n", d.What, d.Effect)
		} else {
			fmt.Fprintf(&b, "- %s\n", d.What)
		}
	}
	if r.UpgradeReport != "" {
		fmt.Fprintf(&b, "\nThe twin's full upgrade report: %s\n", r.UpgradeReport)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Save writes rehearsal.json and rehearsal.md into dir, each to a .part
// file first and renamed, so a reader never sees half a report.
func (r *Report) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	var md strings.Builder
	_ = r.WriteText(&md)
	for name, data := range map[string][]byte{"rehearsal.json": raw, "rehearsal.md": []byte(md.String())} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path+".part", data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := os.Rename(path+".part", path); err != nil {
			return err
		}
	}
	return nil
}

// BlockerIDs are the blockers as "ID object" lines, sorted, for comparing
// with `kup plan`.
// Pods a controller made have generated names that differ between the
// real cluster and the twin (ReplicaSet hash, random suffix): they are
// compared by the name they were generated from.
func BlockerIDs(fs []report.FindingSummary) []string {
	var out []string
	for _, f := range fs {
		objs := make([]string, len(f.Objects))
		for i, o := range f.Objects {
			objs[i] = generatedPodRE.ReplaceAllString(o, "$1-*")
		}
		out = append(out, f.ID+" "+strings.Join(objs, ","))
	}
	sort.Strings(out)
	return out
}

// PlanHash identifies a plan by the values that shape it ("flag=value",
// in a fixed order): a rehearsal and an apply with the same hash execute
// the same plan.
func PlanHash(parts []string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:])
}
