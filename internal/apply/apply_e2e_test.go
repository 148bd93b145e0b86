package apply_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/apply"
	"github.com/kup-project/kup/internal/drain"
	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/plan"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestApplyTwoHopsMixedNodes is the apply issue's first acceptance test:
// a v1.35.4 sandbox whose nodes run v1.35.4 and v1.34.4 is taken to
// v1.37.2 — the control plane in two hops, each node rolled exactly once
// (v1.34 kubelets stay within n-3 of a 1.37 apiserver, so none has to move
// mid-path), verification green, the report written.
func TestApplyTwoHopsMixedNodes(t *testing.T) {
	t.Parallel() // its own sandbox and state directory
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.35.4", NodeVersion: "v1.35.4,v1.34.4", Nodes: 10, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cs := c.Client()
	rolls := countRolls(ctx, t, cs)
	w, err := rollout.Watch(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := newApplier(c, dir, "v1.37.2")
	rep, err := a.Run(ctx)
	w.Stop()
	if err != nil {
		t.Fatalf("apply failed: %v", err)
	}
	if rep.Outcome != "succeeded" {
		t.Errorf("outcome %s (%s)", rep.Outcome, rep.Reason)
	}
	if len(rep.Hops) != 2 || rep.Hops[0].To != "v1.36.3" || rep.Hops[1].To != "v1.37.2" {
		t.Errorf("hops %+v, want v1.35.4 → v1.36.3 → v1.37.2", rep.Hops)
	}
	if rep.Backup == nil || !rep.Backup.Verified || rep.Backup.Revision == 0 {
		t.Errorf("backup %+v, want a verified snapshot", rep.Backup)
	}
	if rep.Verify == nil || !rep.Verify.Passed {
		t.Errorf("verify %+v, want passed", rep.Verify)
	}
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("PDB violations: %+v", v)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := rolls()
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.KubeletVersion != "v1.37.2" || n.Spec.Unschedulable {
			t.Errorf("node %s: kubelet %s, cordoned %v", n.Name, n.Status.NodeInfo.KubeletVersion, n.Spec.Unschedulable)
		}
		if got[n.Name] != 1 {
			t.Errorf("node %s rolled %d time(s), want exactly 1", n.Name, got[n.Name])
		}
	}
	for _, name := range []string{"upgrade-report.json", "upgrade-report.md", "upgrade-report.html"} {
		if _, err := os.Stat(filepath.Join(dir, "report", name)); err != nil {
			t.Errorf("report file %s: %v", name, err)
		}
	}
	var back report.UpgradeReport
	data, _ := os.ReadFile(filepath.Join(dir, "report", "upgrade-report.json"))
	if err := json.Unmarshal(data, &back); err != nil || back.To != "v1.37.2" || len(back.Nodes) != 10 {
		t.Errorf("report JSON: err=%v, to=%s, %d nodes", err, back.To, len(back.Nodes))
	}
	// The rollout's lower bound, timed with what it measured, is in the
	// report beside its makespan.
	if back.Rollout.LowerBound <= 0 {
		t.Errorf("report: rollout makespan %s with no lower bound", back.Rollout.Makespan)
	}
	if md, _ := os.ReadFile(filepath.Join(dir, "report", "upgrade-report.md")); !strings.Contains(string(md), "vs lower bound") {
		t.Errorf("the Markdown report does not compare the makespan with its lower bound")
	}
	// The journal says done, in the cluster and locally.
	st := &journal.Store{Client: cs, Cluster: c.RESTConfig().Host, LocalDir: filepath.Join(dir, "journal")}
	j, err := st.Load(ctx)
	if err != nil || j == nil || j.Phase != journal.PhaseDone {
		t.Errorf("journal: %+v, %v; want phase done", j, err)
	}
	// A second run of the same command finds nothing to do and succeeds.
	rep2, err := newApplier(c, dir, "v1.37.2").Run(ctx)
	if err != nil || rep2.Outcome != "succeeded" || len(rep2.Hops) != 0 {
		t.Errorf("second run: %v, outcome %s, %d hops; want a no-op success", err, rep2.Outcome, len(rep2.Hops))
	}
	if again := rolls(); !sameCounts(again, got) {
		t.Errorf("the second run rolled nodes again: %v then %v", got, again)
	}
}

func newApplier(c *sandbox.Cluster, dir, target string) *apply.Applier {
	cfg := c.RESTConfig()
	a := &apply.Applier{
		Config:       cfg,
		ControlPlane: &sandboxprovider.ControlPlane{Cluster: c},
		Upgrader:     &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: 500 * time.Millisecond},
		Options: apply.Options{
			Target: target,
			Rollout: rollout.Options{
				Policy: plan.Policy{MaxUnavailable: intstr.FromString("30%")},
				Drain:  drain.Options{DeleteEmptyDirData: true, Timeout: 3 * time.Minute},
			},
			ReportDir: filepath.Join(dir, "report"),
			Progress: func(e apply.Event) {
				if testing.Verbose() {
					fmt.Fprintf(os.Stderr, "%s [%s] %s %s\n", e.Time.Format("15:04:05.0"), e.Phase, e.Node, e.Message)
				}
			},
			JournalDir: filepath.Join(dir, "journal"),
			LockTTL:    10 * time.Second,
		},
	}
	a.Options.Preflight = action.PreflightHook(cfg.Host, nil, func() *action.Plan {
		return &action.Plan{Config: cfg, MaxUnavailable: intstr.FromString("30%")}
	})
	a.Options.Backup = apply.SandboxBackup(c, filepath.Join(dir, "backups"), target)
	return a
}

// countRolls counts, per node, how many times its kubelet version
// changed, polling every 250 ms from now on (a roll takes seconds, so none
// is missed; a watch would need relisting across the apiserver restarts
// of every hop). Call the returned function for the counts.
func countRolls(ctx context.Context, t *testing.T, cs kubernetes.Interface) func() map[string]int {
	t.Helper()
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	last := map[string]string{}
	counts := map[string]int{}
	for _, n := range list.Items {
		last[n.Name] = n.Status.NodeInfo.KubeletVersion
	}
	poll := func() {
		l, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return // the apiserver is restarting
		}
		mu.Lock()
		for _, n := range l.Items {
			if v := n.Status.NodeInfo.KubeletVersion; v != last[n.Name] {
				last[n.Name] = v
				counts[n.Name]++
			}
		}
		mu.Unlock()
	}
	go func() {
		for ctx.Err() == nil {
			time.Sleep(250 * time.Millisecond)
			poll()
		}
	}()
	return func() map[string]int {
		poll()
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range counts {
			out[k] = v
		}
		return out
	}
}

func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
