package action_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/checks"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sandboxtest.RemoveKupBinary()
	os.Exit(code)
}

// TestPlanReportsWhatAKilledRunLeft: `kup nodes upgrade` killed with
// SIGKILL (a laptop that slept, an OOM kill) while its canary upgrades
// leaves that node cordoned and every node not done tainted. kup plan
// for the next upgrade says so: KUP-NODE-004 on the cordoned node, not KUP-NODE-003 (a cordon
// kup keeps "as found"), and KUP-NODE-005 naming every tainted node, both
// with the version to run again to; running again clears both.
func TestPlanReportsWhatAKilledRunLeft(t *testing.T) {
	// The kubelets go to the control plane's version; then the plan for
	// the next minor finds what the killed run left.
	const to, next = "v1.36.3", "v1.37.2"
	c := sandboxtest.Start(t, sandbox.Options{Version: to, NodeVersion: "v1.35.4", Nodes: 4, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs := c.Client()
	kup := func(upgradeTime string) *exec.Cmd {
		cmd := exec.Command(sandboxtest.KupBinary(t), "nodes", "upgrade", "--to", to, "--kubeconfig", c.Kubeconfig,
			"--upgrade-time", upgradeTime, "--delete-emptydir-data", "--max-unavailable", "1")
		cmd.Env = append(os.Environ(), "KUP_STATE_DIR="+filepath.Dir(filepath.Dir(c.Dir)), "NO_COLOR=1")
		return cmd
	}

	// Killed while the canary's upgrade (a minute long) runs.
	run := kup("60s")
	var out strings.Builder
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	var canary string
	for canary == "" {
		if ctx.Err() != nil {
			t.Fatalf("no node reached its upgrade:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range nodes.Items {
			if st, ok := rollout.StateOf(&nodes.Items[i]); ok && st.Phase == rollout.StepUpgrade {
				canary = nodes.Items[i].Name
			}
		}
	}
	if err := run.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = run.Wait()
	t.Logf("killed kup while %s upgraded; its output so far: %q", canary, out.String())

	res, err := planFor(c, next).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tainted []checks.Object
	for _, n := range nodes.Items {
		if slices.ContainsFunc(n.Spec.Taints, func(tt corev1.Taint) bool { return tt.Key == rollout.PendingTaint }) {
			tainted = append(tainted, checks.Object{Kind: "Node", Name: n.Name})
		}
	}
	// Every node: the waiting ones, and the canary, which loses it when
	// it is done.
	if len(tainted) != 4 {
		t.Fatalf("the killed run left its pending taint on %v, want all 4 nodes", tainted)
	}
	var cordonedByKup, pending, asFound []checks.Finding
	for _, f := range res.Findings {
		switch f.ID {
		case checks.NodeKupCordoned:
			cordonedByKup = append(cordonedByKup, f)
		case checks.NodeKupPending:
			pending = append(pending, f)
		case checks.NodeCordoned:
			asFound = append(asFound, f)
		}
	}
	if len(cordonedByKup) != 1 || cordonedByKup[0].Objects[0].Name != canary || !strings.Contains(cordonedByKup[0].Message, "a run to "+to+" resumes and uncordons it") {
		t.Errorf("findings %s: %+v, want one on %s naming %s", checks.NodeKupCordoned, cordonedByKup, canary, to)
	}
	if len(asFound) != 0 {
		t.Errorf("the node kup cordoned is reported as cordoned before kup: %+v", asFound)
	}
	if len(pending) != 1 || !slices.Equal(pending[0].Objects, tainted) || !strings.Contains(pending[0].Message, "kup run to "+to) {
		t.Errorf("findings %s: %+v, want one naming %v and %s", checks.NodeKupPending, pending, tainted, to)
	}

	// As the findings say: run again to the version, and both are gone.
	again := kup("1s")
	if b, err := again.CombinedOutput(); err != nil {
		t.Fatalf("kup nodes upgrade again: %v\n%s", err, b)
	}
	res, err = planFor(c, next).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		if f.ID == checks.NodeKupCordoned || f.ID == checks.NodeKupPending || f.ID == checks.NodeCordoned {
			t.Errorf("after the run finished: %s %v: %s", f.ID, f.Objects, f.Message)
		}
	}
}
