package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kup-project/kup/internal/checks"
	"github.com/kup-project/kup/internal/rehearse"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// kupSplit runs kup in-process and returns stdout and stderr apart.
func kupSplit(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCommand()
	var out, errOut strings.Builder
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errOut.WriteString("Error: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), exitCode(err)
}

// stopTwinAfter stops the twin a failed rehearse may have left running.
func stopTwinAfter(t *testing.T, state, name string) {
	t.Cleanup(func() {
		if c, err := sandbox.Load(state, name); err == nil {
			_ = c.StopContext(context.Background())
		}
	})
}

// assertTwinGone fails if any process of the twin (its state directory on
// the command line) is still running after kup rehearse returned.
func assertTwinGone(t *testing.T, state, name string) {
	t.Helper()
	dir := filepath.Join(state, "sandboxes", name)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(cmdline), dir+"/") {
			args := strings.ReplaceAll(string(cmdline), "\x00", " ")
			t.Errorf("a process of the twin outlived kup rehearse: %s: %s", p, args[:min(len(args), 100)])
		}
	}
}

func rehearsal(t *testing.T, stdout string) *rehearse.Report {
	t.Helper()
	var rep rehearse.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("rehearse -o json printed no report: %v\n%s", err, stdout)
	}
	return &rep
}

// TestRehearseNamesTheBlockersOfPlan: the rehearsal of a production
// cluster with problems reports exactly the blockers `kup plan` names on
// production, and writes its report.
func TestRehearseNamesTheBlockersOfPlan(t *testing.T) {
	state := t.TempDir()
	t.Setenv("KUP_STATE_DIR", state)
	prod := sandboxtest.Start(t, sandbox.Options{Name: "prod", Version: "v1.35.4", Nodes: 40, Workloads: "default", WithProblems: true, PodReadyDelay: 2 * time.Second})
	stopTwinAfter(t, state, "rehearsal")
	kc := "--kubeconfig=" + prod.Kubeconfig

	planOut, planErr, code := kupSplit(t, "plan", kc, "--to", "v1.37.2", "-o", "json")
	if code != exitBlockers {
		t.Fatalf("kup plan on production: exit %d, want %d (blockers)\n%s", code, exitBlockers, planErr)
	}
	var plan report.Plan
	if err := json.Unmarshal([]byte(planOut), &plan); err != nil {
		t.Fatal(err)
	}
	var want []report.FindingSummary
	for _, f := range plan.Findings {
		if f.Severity == checks.Blocker && !f.Waived {
			s := report.FindingSummary{ID: f.ID}
			for _, o := range f.Objects {
				s.Objects = append(s.Objects, o.String())
			}
			want = append(want, s)
		}
	}

	start := time.Now()
	out, errOut, code := kupSplit(t, "rehearse", kc, "--to", "v1.37.2", "-o", "json", "--upgrade-time", "1s")
	t.Logf("kup rehearse took %s, exit %d", time.Since(start).Round(time.Second), code)
	if code != exitBlockers {
		t.Fatalf("kup rehearse: exit %d, want %d (blockers)\n%s", code, exitBlockers, tail(errOut, 40))
	}
	rep := rehearsal(t, out)
	got, wantIDs := rehearse.BlockerIDs(rep.Blockers), rehearse.BlockerIDs(want)
	t.Logf("kup plan on production: %d blocker(s):\n  %s", len(wantIDs), strings.Join(wantIDs, "\n  "))
	if len(wantIDs) == 0 {
		t.Fatal("production has problems but kup plan found no blocker")
	}
	if !slices.Equal(got, wantIDs) {
		t.Errorf("the rehearsal names other blockers than kup plan on production:\nrehearsal: %v\nplan:      %v", got, wantIDs)
	}
	if rep.Passed || rep.Fingerprint == "" || rep.PlanHash == "" || len(rep.Differences) == 0 {
		t.Errorf("report: passed=%v fingerprint=%q plan=%q differences=%d", rep.Passed, rep.Fingerprint, rep.PlanHash, len(rep.Differences))
	}
	reports, _ := filepath.Glob(filepath.Join(state, "rehearsals", rep.Fingerprint, "*", "rehearsal.md"))
	if len(reports) != 1 {
		t.Fatalf("rehearsal.md written: %v", reports)
	}
	md, _ := os.ReadFile(reports[0])
	t.Logf("%s", md)
	assertTwinGone(t, state, "rehearsal")
	// Production was only read.
	if v, _ := prod.ServerVersion(context.Background()); v != "v1.35.4" {
		t.Errorf("production moved to %s", v)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var gadgets = schema.GroupVersionResource{Group: "example.kup.dev", Version: "v1", Resource: "gadgets"}

const gadgetCRD = `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
  "metadata":{"name":"gadgets.example.kup.dev"},
  "spec":{"group":"example.kup.dev","scope":"Namespaced","names":{"plural":"gadgets","singular":"gadget","kind":"Gadget"},
    "versions":[
      {"name":"v1beta1","served":%s,"storage":false,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}},
      {"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}}`

// TestRehearseFindsManifestsTheTargetRefuses: a Gadget last applied as
// example.kup.dev/v1beta1 — a version the upgrade's CRDs stop serving, and
// no table of kup's knows — is reported by the rehearsal, from the target
// apiserver's own answer; a Gadget applied as v1 is not.
func TestRehearseFindsManifestsTheTargetRefuses(t *testing.T) {
	state := t.TempDir()
	t.Setenv("KUP_STATE_DIR", state)
	prod := sandboxtest.Start(t, sandbox.Options{Name: "prod", Version: "v1.35.4", Nodes: 4, Workloads: "default", PodReadyDelay: time.Second})
	stopTwinAfter(t, state, "rehearsal")
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(prod.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	crd := &unstructured.Unstructured{}
	if err := json.Unmarshal([]byte(strings.Replace(gadgetCRD, "%s", "true", 1)), &crd.Object); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// As `kubectl apply` leaves them: the manifest in the annotation.
	for name, apiVersion := range map[string]string{"old": "example.kup.dev/v1beta1", "new": "example.kup.dev/v1"} {
		manifest := `{"apiVersion":"` + apiVersion + `","kind":"Gadget","metadata":{"name":"` + name + `","namespace":"shop"},"spec":{"size":3}}`
		g := &unstructured.Unstructured{}
		_ = json.Unmarshal([]byte(manifest), &g.Object)
		g.SetAnnotations(map[string]string{"kubectl.kubernetes.io/last-applied-configuration": manifest})
		g.SetAPIVersion("example.kup.dev/v1")
		deadline := time.Now().Add(time.Minute)
		for {
			_, err := dyn.Resource(gadgets).Namespace("shop").Create(ctx, g, metav1.CreateOptions{})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	// A Secret applied with kubectl: its last-applied annotation holds the
	// value, and must not reach the twin.
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api-key", Namespace: "shop", Annotations: map[string]string{
		"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"api-key","namespace":"shop"},"stringData":{"key":"CANARY-last-applied"}}`}},
		StringData: map[string]string{"key": "CANARY-last-applied"}}
	if _, err := prod.Client().CoreV1().Secrets("shop").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Two Services, then a quota of one: production holds what the twin,
	// which writes the quota first, refuses. The rehearsal names it and
	// goes on.
	cs := prod.Client()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "quota"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"svc-a", "svc-b"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "quota"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		if _, err := cs.CoreV1().Services("quota").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rq := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "one-service", Namespace: "quota"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceServices: resource.MustParse("1")}}}
	if _, err := cs.CoreV1().ResourceQuotas("quota").Create(ctx, rq, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Too large for the bounds given: refused before any twin starts,
	// saying how large and what to do.
	out, errOut, code := kupSplit(t, "rehearse", "--kubeconfig="+prod.Kubeconfig, "--to", "v1.37.2", "--max-twin-nodes", "2")
	_ = out
	if code != exitUsage || !strings.Contains(errOut, "4 nodes") || !strings.Contains(errOut, "--node-sample") || !strings.Contains(errOut, "--namespaces") {
		t.Errorf("too large: exit %d, want %d naming the size and --namespaces/--node-sample:\n%s", code, exitUsage, tail(errOut, 5))
	}
	if _, err := sandbox.Load(state, "rehearsal"); err == nil {
		t.Error("a twin was started for a cluster too large to rehearse")
	}

	after := filepath.Join(t.TempDir(), "crds-after.json")
	if err := os.WriteFile(after, []byte(strings.Replace(gadgetCRD, "%s", "false", 1)), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, code = kupSplit(t, "rehearse", "--kubeconfig="+prod.Kubeconfig, "--to", "v1.37.2", "-o", "json", "--upgrade-time", "1s",
		"--delete-emptydir-data", "--apply-after-hops", after)
	rep := rehearsal(t, out)
	assertTwinGone(t, state, "rehearsal")
	t.Logf("exit %d, outcome %s (%s), refused %v, makespan %s in %d waves", code, rep.Outcome, rep.Reason, rep.Refused, rep.Prediction.Makespan, len(rep.Prediction.Waves))
	if rep.Outcome != "succeeded" {
		t.Errorf("the upgrade in the twin %s: %s\n%s", rep.Outcome, rep.Reason, tail(errOut, 30))
	}
	if len(rep.Refused) != 1 || !strings.Contains(rep.Refused[0].Key, "Gadget shop/old") || !strings.Contains(rep.Refused[0].Reason, "v1.37.2 does not serve example.kup.dev/v1beta1") {
		t.Errorf("refused = %+v, want exactly Gadget shop/old, not served by v1.37.2", rep.Refused)
	}
	if rep.Passed || code != exitError {
		t.Errorf("passed=%v exit %d: a refused manifest fails the rehearsal (exit %d)", rep.Passed, code, exitError)
	}
	var refusedService bool
	for _, f := range rep.NotWritten {
		refusedService = refusedService || strings.HasPrefix(f.Key, "Service quota/")
	}
	if !refusedService {
		t.Errorf("not written = %+v, want a Service in namespace quota named", rep.NotWritten)
	}
	if strings.Contains(out+errOut, "CANARY-last-applied") {
		t.Error("a Secret's last-applied value appears in the rehearsal's output")
	}
}

// lastJSON decodes the last line of kup apply -o json (events stream
// first, the report last).
func lastJSON(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("no report on the last line of kup apply -o json: %v\n%s", err, tail(out, 5))
	}
}

func wavesOf(ws []rehearse.Wave) []int {
	var out []int
	for _, w := range ws {
		out = append(out, len(w.Nodes))
	}
	return out
}

func upgradeWaves(ws []report.WaveRecord) []int {
	var out []int
	for _, w := range ws {
		out = append(out, len(w.Nodes))
	}
	return out
}

// TestApplyRequiresAPassingRehearsal: with --require-rehearsal, kup apply
// refuses (changing nothing) until a rehearsal of the same cluster, target
// and flags has passed, then runs; the real makespan is logged against
// the prediction.
func TestApplyRequiresAPassingRehearsal(t *testing.T) {
	state := t.TempDir()
	t.Setenv("KUP_STATE_DIR", state)
	prod := sandboxtest.Start(t, sandbox.Options{Name: "prod", StateDir: state, Version: "v1.35.4", Nodes: 6, Workloads: "default", PodReadyDelay: time.Second})
	stopTwinAfter(t, state, "rehearsal")
	kc := "--kubeconfig=" + prod.Kubeconfig
	flags := []string{"--to", "v1.37.2", "--max-unavailable", "2", "--delete-emptydir-data", "--upgrade-time", "1s"}
	at := func() string { v, _ := prod.ServerVersion(context.Background()); return v }

	_, errOut, code := kupSplit(t, append([]string{"apply", kc, "--require-rehearsal"}, flags...)...)
	if code != exitError || !strings.Contains(errOut, "never rehearsed") || at() != "v1.35.4" {
		t.Fatalf("apply before any rehearsal: exit %d, production at %s:\n%s", code, at(), tail(errOut, 5))
	}
	out, errOut, code := kupSplit(t, append([]string{"rehearse", kc, "-o", "json"}, flags...)...)
	rep := rehearsal(t, out)
	assertTwinGone(t, state, "rehearsal")
	if code != exitOK || !rep.Passed {
		t.Fatalf("rehearse: exit %d, passed=%v (%s)\n%s", code, rep.Passed, rep.Reason, tail(errOut, 30))
	}
	other := []string{"apply", kc, "--require-rehearsal", "--to", "v1.37.2", "--max-unavailable", "3", "--delete-emptydir-data", "--upgrade-time", "1s"}
	_, errOut, code = kupSplit(t, other...)
	if code != exitError || !strings.Contains(errOut, "another plan") || at() != "v1.35.4" {
		t.Fatalf("apply of another plan: exit %d, production at %s:\n%s", code, at(), tail(errOut, 5))
	}
	out, errOut, code = kupSplit(t, append([]string{"apply", kc, "--require-rehearsal", "-o", "json"}, flags...)...)
	if code != exitOK || at() != "v1.37.2" {
		t.Fatalf("apply after the rehearsal: exit %d, production at %s:\n%s", code, at(), tail(errOut, 20))
	}
	if !strings.Contains(errOut, "rehearsal of") {
		t.Errorf("apply did not say which rehearsal it relied on:\n%s", tail(errOut, 5))
	}
	var real report.UpgradeReport
	lastJSON(t, out, &real)
	p := rep.Prediction
	t.Logf("makespan: predicted %s, real %s (ratio %.2f); waves predicted %v, real %v; whole upgrade predicted %s",
		p.Makespan.Round(time.Millisecond), real.Rollout.Makespan.Round(time.Millisecond), float64(real.Rollout.Makespan)/float64(p.Makespan),
		wavesOf(p.Waves), upgradeWaves(real.Waves), p.Total.Round(time.Second))
}

// TestRehearsalPredictsProduction is issue 11's second acceptance item,
// measured: the "production" sandbox (v1.35.4, 40 nodes, default
// workloads and problems) is rehearsed to v1.37.2 with the problems
// waived, then upgraded for real with the same flags. The figures —
// makespan predicted and real, waves, blocked drains — are logged; the
// test asserts what must not differ: the PDBs that blocked drains.
func TestRehearsalPredictsProduction(t *testing.T) {
	state := t.TempDir()
	t.Setenv("KUP_STATE_DIR", state)
	prod := sandboxtest.Start(t, sandbox.Options{Name: "prod", StateDir: state, Version: "v1.35.4", Nodes: 40, Workloads: "default", WithProblems: true, PodReadyDelay: 2 * time.Second})
	stopTwinAfter(t, state, "rehearsal")
	kc := "--kubeconfig=" + prod.Kubeconfig
	flags := []string{"--to", "v1.37.2", "--waive", "KUP-NODE-001,KUP-PDB-001,KUP-PDB-002", "--max-unavailable", "20%", "--delete-emptydir-data", "--force",
		"--upgrade-time", "2s", "--drain-timeout", "20s", "--on-drain-timeout", "skip-node", "--on-failure", "continue"}

	start := time.Now()
	out, errOut, code := kupSplit(t, append([]string{"rehearse", kc, "-o", "json"}, flags...)...)
	rehearsalTook := time.Since(start)
	rep := rehearsal(t, out)
	t.Logf("rehearsal: exit %d in %s, outcome %s (%s)", code, rehearsalTook.Round(time.Second), rep.Outcome, rep.Reason)
	if rep.Prediction.Makespan == 0 {
		t.Fatalf("the rehearsal predicted nothing:\n%s", tail(errOut, 40))
	}
	start = time.Now()
	out, errOut, code = kupSplit(t, append([]string{"apply", kc, "-o", "json"}, flags...)...)
	realTook := time.Since(start)
	var real report.UpgradeReport
	lastJSON(t, out, &real)
	t.Logf("real upgrade: exit %d in %s, outcome %s (%s)", code, realTook.Round(time.Second), real.Outcome, real.Reason)

	var predicted rehearse.Report
	predicted.FromUpgrade(&real)
	p := rep.Prediction
	t.Logf("node makespan: predicted %s, real %s (ratio %.2f); whole upgrade: predicted %s, real %s (ratio %.2f)",
		p.Makespan.Round(time.Millisecond), real.Rollout.Makespan.Round(time.Millisecond), float64(real.Rollout.Makespan)/float64(p.Makespan),
		p.Total.Round(time.Second), predicted.Prediction.Total.Round(time.Second), float64(predicted.Prediction.Total)/float64(p.Total))
	t.Logf("waves: predicted %d %v, real %d %v", len(p.Waves), wavesOf(p.Waves), len(real.Waves), upgradeWaves(real.Waves))
	pdbs := func(ds []rehearse.BlockedDrain) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.PDB)
		}
		slices.Sort(out)
		return out
	}
	var realBlocked, predictedBlocked []string
	for _, d := range predicted.BlockedDrains {
		realBlocked = append(realBlocked, d.Node)
	}
	for _, d := range rep.BlockedDrains {
		for _, n := range d.RealNodes {
			if !slices.Contains(predictedBlocked, n) {
				predictedBlocked = append(predictedBlocked, n)
			}
		}
	}
	slices.Sort(realBlocked)
	slices.Sort(predictedBlocked)
	t.Logf("blocked drains: rehearsal PDBs %v on real nodes %v; real upgrade PDBs %v on nodes %v", pdbs(rep.BlockedDrains), predictedBlocked, pdbs(predicted.BlockedDrains), realBlocked)
	// A node blocked for two reasons reports one: the real upgrade may
	// name fewer budgets than the twin (whose scheduler spread the pods
	// differently), never another one.
	for _, p := range pdbs(predicted.BlockedDrains) {
		if !slices.Contains(pdbs(rep.BlockedDrains), p) {
			t.Errorf("the real upgrade was blocked by PDB %s, which the rehearsal did not name (it named %v)", p, pdbs(rep.BlockedDrains))
		}
	}
	if len(realBlocked) == 0 {
		t.Error("production has problems but no drain was blocked")
	}
	if !slices.Equal(predictedBlocked, realBlocked) {
		t.Errorf("the rehearsal predicted blocked drains on real nodes %v; the real upgrade blocked on %v", predictedBlocked, realBlocked)
	}
}
