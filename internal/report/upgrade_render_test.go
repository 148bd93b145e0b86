package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// The -update flag rewrites the golden files; plan_test.go may register
// it first, and then both share it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata/")
	}
}

func upgradeUpdating() bool { return flag.Lookup("update").Value.String() == "true" }

// fixture is testdata/upgrade-report.json: a v1.35.4 → v1.37.2 upgrade of
// 12 nodes in 5 waves, two control-plane hops, one node that failed to come
// back Ready and was left cordoned, four PDB-protected workloads.
func fixture(t *testing.T) *UpgradeReport {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "upgrade-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r UpgradeReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("testdata/upgrade-report.json: %v", err)
	}
	return &r
}

// upgradeGolden compares got with testdata/name, or rewrites it with
// -update; on a difference it shows the first differing line only (the
// HTML golden has long lines).
func upgradeGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if upgradeUpdating() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/report -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < min(len(gl), len(wl)); i++ {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs at line %d:\n got: %.300s\nwant: %.300s\n(rerun with -update if the change is intended)", path, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s differs in length: %d lines, want %d (rerun with -update if intended)", path, len(gl), len(wl))
	}
}

func render(t *testing.T, write func(io.Writer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// minimalReport is a clean patch upgrade without nodes, findings or
// availability samples.
func minimalReport() *UpgradeReport {
	start := time.Date(2026, 3, 28, 2, 0, 0, 0, time.UTC)
	return &UpgradeReport{
		Cluster: "https://127.0.0.1:6443", RunID: "kup-min", From: "v1.36.2", To: "v1.36.3",
		Started: start, Finished: start.Add(3 * time.Minute), Outcome: "succeeded",
		Backup: &BackupRecord{Path: "/var/lib/kup/etcd.db", SHA256: "00ff", Size: 2048, Verified: true, Duration: time.Second},
		Hops:   []HopRecord{{Index: 1, From: "v1.36.2", To: "v1.36.3", Started: start, Finished: start.Add(2 * time.Minute), Outcome: "done"}},
		Verify: &VerifyRecord{Passed: true, Checks: []VerifyCheck{{Name: "apis-served", Passed: true}}},
	}
}

func TestUpgradeMarkdownGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		report *UpgradeReport
	}{
		{"upgrade-report.md.golden", fixture(t)},
		{"upgrade-minimal.md.golden", minimalReport()},
	} {
		upgradeGolden(t, tc.golden, render(t, tc.report.WriteMarkdown))
	}
}

func TestUpgradeHTMLGolden(t *testing.T) {
	upgradeGolden(t, "upgrade-report.html.golden", render(t, fixture(t).WriteHTML))
}

// TestUpgradeMarkdownProblemsFirst: the outcome heads the summary, and the
// failed node, the node left cordoned and the failed check come before
// any table.
func TestUpgradeMarkdownProblemsFirst(t *testing.T) {
	md := string(render(t, fixture(t).WriteMarkdown))
	if !strings.HasPrefix(md, "# kup upgrade v1.35.4 → v1.37.2: ✗ FAILED\n\n**Failed**: node worker-8") {
		t.Errorf("the summary does not open with the outcome and reason:\n%.200s", md)
	}
	hops := strings.Index(md, "## Control-plane hops")
	for _, want := range []string{
		"- **Node `worker-8`** failed (wave 4, v1.34.4 → v1.37.2): kubelet did not report Ready",
		"- **Node `worker-8` is still cordoned**: ",
		"- **Verify `nodes-ready` failed**: ",
		"- **PDB-ZERO-BUDGET**: blocker waived: ",
	} {
		i := strings.Index(md, want)
		if i < 0 || i > hops {
			t.Errorf("%q is not listed before the tables", want)
		}
	}
	if !strings.Contains(md, "| Makespan | 20m59s vs lower bound 17m0s (4 waves): 1.23× |") {
		t.Errorf("the makespan is not compared with its lower bound")
	}
	clean := string(render(t, minimalReport().WriteMarkdown))
	if !strings.Contains(clean, "## Needs attention\n\nNothing: every node is at the target") {
		t.Errorf("a clean run does not say nothing needs attention:\n%s", clean)
	}
}

// TestUpgradeContinuousRollout: a rollout that admitted nodes
// continuously counts admissions, not waves, and says how many nodes were
// down at once, in both formats.
func TestUpgradeContinuousRollout(t *testing.T) {
	r := minimalReport()
	r.Rollout = RolloutStats{Waves: 70, Continuous: true, MostDown: 38, Nodes: 200, Upgraded: 200}
	md := string(render(t, r.WriteMarkdown))
	html := string(render(t, r.WriteHTML))
	for _, want := range []string{"| Admissions (continuous) | 70 |", "| Most nodes down at once | 38 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	for _, want := range []string{"Admissions (continuous)", "Most nodes down at once"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(md, "| Waves |") {
		t.Error("a continuous rollout's admissions are called waves")
	}
}

// TestUpgradeAttention: what is left undone is named even when nothing
// failed outright.
func TestUpgradeAttention(t *testing.T) {
	r := minimalReport()
	r.Outcome = "interrupted"
	r.Verify = nil
	r.Backup.Verified = false
	r.Nodes = []NodeTimeline{{Node: "a", Outcome: "not-started"}, {Node: "b", Outcome: "blocked", Wave: 2}, {Node: "c", Outcome: "upgraded", Wave: 1}, {Node: "d", LeftCordoned: true, Outcome: "blocked", Reason: "PDB ops/x allows 0 disruptions", Wave: 2}}
	r.Rollout.PDBViolations = 1
	var got []string
	for _, it := range r.needsAttention() {
		got = append(got, it.Subject+": "+it.Text)
	}
	want := []string{
		"d: still cordoned: PDB ops/x allows 0 disruptions",
		"nodes not upgraded: 3 nodes not at the target (blocked: b, d; not-started: a)",
		"verification: did not run",
		"PodDisruptionBudgets: 1 PDB violation during the node rollout",
		"etcd backup: the etcd snapshot was not verified",
	}
	if !slices.Equal(got, want) {
		t.Errorf("needs attention:\n got %q\nwant %q", got, want)
	}
}

func TestUpgradeMarkdownEscapes(t *testing.T) {
	r := minimalReport()
	r.Reason = "a|b <script>x</script> *bold* [link](u)"
	r.Nodes = []NodeTimeline{{Node: "n|1`x", Wave: 1, Outcome: "failed", Reason: "line1\nline2 | cell"}}
	md := string(render(t, r.WriteMarkdown))
	for _, bad := range []string{"<script>", "a|b", "*bold*", "line1\nline2", "n|1"} {
		if strings.Contains(md, bad) {
			t.Errorf("Markdown carries %q unescaped", bad)
		}
	}
	if !strings.Contains(md, "``n\\|1`x``") {
		t.Errorf("a name with a backtick and a pipe is not a safe code span:\n%s", md)
	}
}

// TestUpgradeJSONRoundTrip: WriteJSON reproduces the fixture, field for
// field, and what it writes reads back unchanged. The planned path is
// compared only for presence: its schema belongs to internal/version.
func TestUpgradeJSONRoundTrip(t *testing.T) {
	r := fixture(t)
	out := render(t, r.WriteJSON)
	want, err := os.ReadFile(filepath.Join("testdata", "upgrade-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gotDoc, wantDoc map[string]any
	if err := json.Unmarshal(out, &gotDoc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &wantDoc); err != nil {
		t.Fatal(err)
	}
	if gotDoc["path"] == nil {
		t.Errorf("the path is lost")
	}
	delete(gotDoc, "path")
	delete(wantDoc, "path")
	if !reflect.DeepEqual(gotDoc, wantDoc) {
		for k := range wantDoc {
			if !reflect.DeepEqual(gotDoc[k], wantDoc[k]) {
				t.Errorf("field %q differs from testdata/upgrade-report.json", k)
			}
		}
		for k := range gotDoc {
			if _, ok := wantDoc[k]; !ok {
				t.Errorf("field %q is not in testdata/upgrade-report.json", k)
			}
		}
	}
	var back UpgradeReport
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if again := render(t, back.WriteJSON); !bytes.Equal(out, again) {
		t.Errorf("JSON does not survive a round trip")
	}
}

// ganttRows returns the data-node attribute of every Gantt row.
func ganttRows(t *testing.T, page []byte) []string {
	t.Helper()
	var rows []string
	z := html.NewTokenizer(bytes.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatal(z.Err())
			}
			return rows
		case html.StartTagToken:
			tok := z.Token()
			if tok.Data != "g" {
				continue
			}
			var class, node string
			for _, a := range tok.Attr {
				switch a.Key {
				case "class":
					class = a.Val
				case "data-node":
					node = a.Val
				}
			}
			if class == "row" {
				rows = append(rows, node)
			}
		}
	}
}

// urlAttributes are the attributes through which a page fetches something.
var urlAttributes = map[string]bool{"src": true, "href": true, "xlink:href": true, "srcset": true, "action": true, "formaction": true, "poster": true, "data": true, "background": true, "manifest": true}

// checkSelfContained fails on anything that would make the page fetch:
// external elements, URL attributes, CSS url() or @import.
func checkSelfContained(t *testing.T, page []byte) {
	t.Helper()
	z := html.NewTokenizer(bytes.NewReader(page))
	inStyle := false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatal(z.Err())
			}
			return
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.Data {
			case "script", "link", "img", "iframe", "object", "embed", "image", "use", "foreignObject", "base", "audio", "video", "source":
				t.Errorf("the page has a <%s> element", tok.Data)
			}
			for _, a := range tok.Attr {
				if urlAttributes[a.Key] || strings.HasPrefix(a.Key, "on") {
					t.Errorf("<%s> has a %s attribute %q", tok.Data, a.Key, a.Val)
				}
				if a.Key == "style" {
					t.Errorf("<%s> has an inline style (all CSS belongs in the one <style>)", tok.Data)
				}
			}
			inStyle = tok.Data == "style"
		case html.EndTagToken:
			inStyle = false
		case html.TextToken:
			if inStyle {
				css := strings.ToLower(string(z.Text()))
				if strings.Contains(css, "url(") || strings.Contains(css, "@import") || strings.Contains(css, "http") {
					t.Errorf("the style sheet refers to something outside the page")
				}
			}
		}
	}
}

// voidElements have no end tag in HTML.
var voidElements = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true, "input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true}

// checkWellFormed tokenizes the page and checks that every element is
// closed in order, and that every inline SVG is well-formed XML on its own.
func checkWellFormed(t *testing.T, page []byte) {
	t.Helper()
	if !bytes.HasPrefix(page, []byte("<!DOCTYPE html>\n")) {
		t.Errorf("the page does not start with <!DOCTYPE html>")
	}
	var stack []string
	z := html.NewTokenizer(bytes.NewReader(page))
loop:
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatal(z.Err())
			}
			break loop
		case html.StartTagToken:
			name, _ := z.TagName()
			if !voidElements[string(name)] {
				stack = append(stack, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(stack) == 0 || stack[len(stack)-1] != string(name) {
				t.Fatalf("</%s> closes %v", name, stack)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed elements at the end: %v", stack)
	}
	svgs := regexp.MustCompile(`(?s)<svg\b.*?</svg>`).FindAll(page, -1)
	if len(svgs) == 0 {
		t.Fatal("the page has no SVG")
	}
	for i, svg := range svgs {
		d := xml.NewDecoder(bytes.NewReader(svg))
		d.Strict = true
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("SVG %d is not well-formed XML: %v", i+1, err)
			}
		}
	}
}

func TestUpgradeHTMLStructure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		report *UpgradeReport
	}{
		{"fixture", fixture(t)},
		{"minimal", minimalReport()},
		{"500 nodes", syntheticReport(500, 25, 3, "worker-250")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := render(t, tc.report.WriteHTML)
			checkSelfContained(t, page)
			checkWellFormed(t, page)
			var want []string
			for _, n := range tc.report.sortedNodes() {
				want = append(want, n.Node)
			}
			if got := ganttRows(t, page); !slices.Equal(got, want) {
				t.Errorf("Gantt rows %d, want one per node (%d) in wave order", len(got), len(want))
			}
			if n := strings.Count(string(page), `<svg class="chart"`); n != len(tc.report.Availability) {
				t.Errorf("%d availability charts, want %d", n, len(tc.report.Availability))
			}
		})
	}
}

// TestUpgradeHTMLFixtureContent checks what the reader must see in the
// fixture's page: the outcome, the failed node marked in the chart and
// named in the attention box, every wave band, and the PDB minimum lines.
func TestUpgradeHTMLFixtureContent(t *testing.T) {
	r := fixture(t)
	page := string(render(t, r.WriteHTML))
	for _, want := range []string{
		`<span class="badge bad">✗ failed</span>`,
		`<section id="attention" class="attention">`,
		`<li><strong>worker-8</strong> failed (wave 4, v1.34.4 → v1.37.2)`,
		`<li><strong>worker-8</strong> still cordoned: `,
		`<g class="row" data-node="worker-8"><title>worker-8 · wave 4 · v1.34.4 → v1.37.2 · failed: `,
		`<rect class="bg-failed"`,
		`<text class="failmark"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if got := strings.Count(page, `<text class="wlabel"`); got != len(r.Waves) {
		t.Errorf("%d wave labels, want %d", got, len(r.Waves))
	}
	if got := strings.Count(page, `<line class="pdbmin"`); got != len(r.Availability) {
		t.Errorf("%d PDB minimum lines, want %d", got, len(r.Availability))
	}
	// Every step of every node is a bar.
	bars := 0
	for _, n := range r.Nodes {
		bars += len(n.Spans)
	}
	if got := len(regexp.MustCompile(`<rect class="s-`).FindAllString(page, -1)); got != bars {
		t.Errorf("%d step bars, want %d", got, bars)
	}
}

// TestUpgradeHTMLEscapes feeds hostile names everywhere a name goes.
func TestUpgradeHTMLEscapes(t *testing.T) {
	evil := `<script>alert(1)</script>"' onload="x" &amp; https://evil.example/x.png`
	r := syntheticReport(6, 3, 1, "")
	r.Reason = evil
	r.Cluster = evil
	r.Nodes[0].Node = evil
	r.Nodes[0].Reason = evil
	r.Nodes[1].Spans[0].Step = evil
	r.Waves[0].Limit = evil
	r.Availability[0].Workload = evil
	r.Findings = []FindingSummary{{ID: evil, Severity: "warning", Title: evil, Objects: []string{evil}}}
	r.StillCordoned = []CordonedNode{{Node: evil, Reason: evil}}
	page := render(t, r.WriteHTML)
	if bytes.Contains(page, []byte("<script")) || bytes.Contains(page, []byte(`" onload`)) {
		t.Errorf("hostile text reached the page unescaped")
	}
	checkSelfContained(t, page)
	checkWellFormed(t, page)
	if got := ganttRows(t, page); len(got) != 6 || !slices.Contains(got, evil) {
		t.Errorf("the hostile node name does not round-trip through the row attribute: %q", got)
	}
}

// TestUpgradeHTMLScale renders 500 nodes and reports the size: rows
// shrink to the minimum height, names give way to wave labels, and the
// page stays small enough to mail.
func TestUpgradeHTMLScale(t *testing.T) {
	for _, n := range []int{12, 50, 500} {
		r := syntheticReport(n, 25, 3, "")
		page := render(t, r.WriteHTML)
		md := render(t, r.WriteMarkdown)
		js := render(t, r.WriteJSON)
		g := r.gantt(r.timeScale())
		t.Logf("%3d nodes: HTML %7d bytes (row height %s, gantt %s units tall), Markdown %6d bytes, JSON %7d bytes",
			n, len(page), g.RowH, g.H, len(md), len(js))
		if n == 500 {
			if g.RowH != coord(ganttMinRowH) || len(g.Groups) == 0 || g.Rows[0].ShowLabel {
				t.Errorf("500 rows: height %s, %d wave labels, row labels %v; want the minimum height and wave labels instead of names",
					g.RowH, len(g.Groups), g.Rows[0].ShowLabel)
			}
			if len(page) > 1<<20 {
				t.Errorf("500-node page is %d bytes, over the 1 MiB budget", len(page))
			}
		}
	}
}

func TestTicks(t *testing.T) {
	start := time.Date(2026, 3, 28, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		span  time.Duration
		first []string
	}{
		{40 * time.Second, []string{"0", "5s", "10s"}},
		{27 * time.Minute, []string{"0", "5m", "10m"}},
		{3*time.Hour + 10*time.Minute, []string{"0", "30m", "1h", "1h30m"}},
		{0, []string{"0", "10s"}}, // a zero span is widened to a minute
	} {
		r := &UpgradeReport{Started: start, Finished: start.Add(tc.span)}
		ticks := r.timeScale().ticks()
		var labels []string
		for _, tk := range ticks {
			labels = append(labels, tk.Label)
		}
		if len(ticks) > 11 || !slices.Equal(labels[:len(tc.first)], tc.first) {
			t.Errorf("span %s: ticks %v, want at most 11 starting %v", tc.span, labels, tc.first)
		}
		if ticks[0].X != coord(plotX) {
			t.Errorf("span %s: first tick at %s, want the plot's left edge %s", tc.span, ticks[0].X, coord(plotX))
		}
	}
}

// syntheticReport simulates a rollout of n nodes (cp-1, then workers) in
// waves of perWave after two control-plane hops, with four PDB-protected
// workloads whose evicted pods are unavailable until rescheduled; replicas
// of one workload sit in different waves, so no PDB is broken. The node
// named failed never comes back Ready and stays cordoned. Deterministic
// for a seed.
func syntheticReport(n, perWave int, seed int64, failed string) *UpgradeReport {
	rng := rand.New(rand.NewSource(seed))
	start := time.Date(2026, 3, 28, 2, 0, 5, 0, time.UTC)
	sec := func(s int) time.Duration { return time.Duration(s) * time.Second }
	r := &UpgradeReport{
		Cluster: "https://10.0.0.10:6443", RunID: fmt.Sprintf("kup-synthetic-%d", n), From: "v1.35.4", To: "v1.37.2",
		Started: start, Outcome: "succeeded",
		Backup: &BackupRecord{Path: "/var/lib/kup/backups/etcd-20260328T020005Z.db", SHA256: strings.Repeat("ab", 32),
			Size: 25 << 20, Revision: 184213, Keys: 5120, Verified: true, Duration: sec(12)},
	}
	t := start.Add(sec(15))
	for i, to := range []string{"v1.36.3", "v1.37.2"} {
		from := []string{"v1.35.4", "v1.36.3"}[i]
		end := t.Add(sec(360 + rng.Intn(60)))
		r.Hops = append(r.Hops, HopRecord{Index: i + 1, From: from, To: to, Started: t, Finished: end, Outcome: "done",
			Detail: "kubeadm upgrade apply " + to + " on cp-1, then kube-controller-manager and kube-scheduler"})
		t = end.Add(sec(10))
	}
	// The waves: cp-1 alone, then the workers perWave at a time.
	layout := [][]string{{"cp-1"}}
	for i := 1; i < n; i += perWave {
		var wave []string
		for j := i; j < min(i+perWave, n); j++ {
			wave = append(wave, fmt.Sprintf("worker-%d", j))
		}
		layout = append(layout, wave)
	}
	workloads := []Series{
		{Workload: "Deployment shop/cart", PDB: "shop/cart", Desired: 3, MinAvailable: 2},
		{Workload: "Deployment shop/checkout", PDB: "shop/checkout", Desired: 4, MinAvailable: 3},
		{Workload: "StatefulSet data/redis", PDB: "data/redis", Desired: 3, MinAvailable: 2},
		{Workload: "Deployment kube-system/coredns", PDB: "kube-system/coredns", Desired: 2, MinAvailable: 1},
	}
	// podsOn[node] lists the workloads with a replica there: replica k of
	// workload s in worker wave (s+k) mod waves.
	podsOn := map[string][]int{}
	if workerWaves := len(layout) - 1; workerWaves > 0 {
		for s, w := range workloads {
			for k := 0; k < int(w.Desired); k++ {
				wave := layout[1+(s+k)%workerWaves]
				node := wave[s%len(wave)]
				podsOn[node] = append(podsOn[node], s)
			}
		}
	}
	type outage struct {
		series   int
		from, to time.Time
	}
	var outages []outage
	waveStart := t.Add(sec(20))
	for i, nodes := range layout {
		limit := fmt.Sprintf("max-unavailable: at most %d nodes at a time", perWave)
		switch {
		case i == 0:
			limit = "control-plane nodes roll one at a time"
		case i == len(layout)-1:
			limit = "no more nodes"
		}
		wr := WaveRecord{Index: i + 1, Limit: limit, Started: waveStart, Nodes: nodes}
		end := waveStart
		for k, node := range nodes {
			c := waveStart.Add(sec(rng.Intn(3)))
			d0 := c.Add(sec(1 + rng.Intn(2)))
			d1 := d0.Add(sec(20 + rng.Intn(70)))
			u1 := d1.Add(sec(60 + rng.Intn(50)))
			rd := u1.Add(sec(10 + rng.Intn(25)))
			uc := rd.Add(sec(1))
			nt := NodeTimeline{Node: node, Wave: i + 1, From: "v1.35.4", To: "v1.37.2", Outcome: "upgraded",
				Spans: []Span{{"cordon", c, d0}, {"drain", d0, d1}, {"upgrade", d1, u1}, {"ready", u1, rd}, {"uncordon", rd, uc}}}
			if k%3 == 1 {
				nt.From = "v1.34.4"
			}
			if node == failed {
				nt.Outcome, nt.LeftCordoned = "failed", true
				nt.Reason = "kubelet did not report Ready within 5m0s after the upgrade to v1.37.2 (last condition: KubeletNotReady: container runtime network not ready)"
				uc = u1.Add(5 * time.Minute)
				nt.Spans = append(nt.Spans[:3], Span{"ready", u1, uc})
			}
			for _, s := range podsOn[node] {
				nt.Evicted++
				outages = append(outages, outage{s, d0.Add(sec(5)), d0.Add(sec(35 + rng.Intn(30)))})
			}
			nt.Evicted += 3 + rng.Intn(4)
			r.Nodes = append(r.Nodes, nt)
			if uc.After(end) {
				end = uc
			}
		}
		wr.Finished = end
		r.Waves = append(r.Waves, wr)
		waveStart = end.Add(sec(5))
	}
	r.Finished = waveStart.Add(sec(40))
	step := sec(15)
	if n > 100 {
		step = sec(30)
	}
	worst := 1.0
	for s, w := range workloads {
		for at := r.Waves[0].Started; !at.After(waveStart); at = at.Add(step) {
			avail := w.Desired
			for _, o := range outages {
				if o.series == s && !at.Before(o.from) && at.Before(o.to) {
					avail--
				}
			}
			w.Points = append(w.Points, Point{T: at, Available: avail})
			worst = min(worst, float64(avail)/float64(w.Desired))
		}
		r.Availability = append(r.Availability, w)
	}
	evictions, upgraded := 0, 0
	for _, nt := range r.Nodes {
		evictions += nt.Evicted
		if nt.Outcome == "upgraded" {
			upgraded++
		}
	}
	makespan := waveStart.Sub(r.Waves[0].Started)
	r.Rollout = RolloutStats{Waves: len(r.Waves), Nodes: n, Upgraded: upgraded, Evictions: evictions, EvictionsPerPod: 1.0,
		Makespan: makespan, LowerBound: (makespan * 4 / 5).Round(time.Minute), LowerBoundWaves: len(r.Waves) - 1,
		WorstAvailability: worst}
	r.Verify = &VerifyRecord{Passed: true, Checks: []VerifyCheck{
		{Name: "nodes-ready", Passed: true, Detail: fmt.Sprintf("%d of %d nodes Ready at v1.37.2", n, n)},
		{Name: "workloads-available", Passed: true, Detail: "every Deployment, StatefulSet and DaemonSet at least as available as before"},
	}}
	return r
}

// TestSyntheticFixtureShape guards the generator the scale test relies on.
func TestSyntheticFixtureShape(t *testing.T) {
	r := syntheticReport(500, 25, 3, "worker-250")
	if len(r.Nodes) != 500 || len(r.Waves) != 21 || len(r.Availability) != 4 || r.Rollout.Upgraded != 499 {
		t.Fatalf("synthetic report: %d nodes, %d waves, %d series", len(r.Nodes), len(r.Waves), len(r.Availability))
	}
	for _, se := range r.Availability {
		for _, p := range se.Points {
			if p.Available < se.MinAvailable || p.Available > se.Desired {
				t.Fatalf("%s: %d available of %d, min %d: the synthetic rollout breaks its PDB", se.Workload, p.Available, se.Desired, se.MinAvailable)
			}
		}
	}
}
