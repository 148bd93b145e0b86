package action_test

import (
	"context"
	"errors"
	"os/exec"
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
	"github.com/kup-project/kup/internal/version"
)

func TestMain(m *testing.M) { sandboxtest.Main(m) }

// TestPlanReportsWhatAKilledRunLeft: `kup nodes upgrade` killed with
// SIGKILL (a laptop that slept, an OOM kill) while its canary upgrades
// leaves that node cordoned and every node not done tainted. kup plan
// says so, for the next upgrade and (nodes only) for the version the run
// was going to: KUP-NODE-004 on the cordoned node, not KUP-NODE-003 (a
// cordon kup keeps "as found"), and KUP-NODE-005 naming every tainted
// node, both with the version to run again to. The canary not Ready
// inside its upgrade is that finding too, not a blocker. kup apply to
// the version clears both.
func TestPlanReportsWhatAKilledRunLeft(t *testing.T) {
	// The kubelets go to the control plane's version; then the plan for
	// the next minor finds what the killed run left.
	const to, next = "v1.36.3", "v1.37.2"
	c := sandboxtest.Start(t, sandbox.Options{Version: to, NodeVersion: "v1.35.4", Nodes: 4, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs := c.Client()
	kup := func(upgradeTime string) *exec.Cmd {
		// The killed run's upgrade lock expires 5 s after it stops
		// renewing it (a minute by default), for kup apply below.
		return kupCommand(t, c, "nodes", "upgrade", "--to", to, "--upgrade-time", upgradeTime, "--delete-emptydir-data", "--max-unavailable", "1", "--lock-ttl", "5s")
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

	// kup status tells from the nodes themselves: `kup nodes upgrade`
	// keeps no journal.
	if b, err := kupCommand(t, c, "status").CombinedOutput(); err != nil || !strings.Contains(string(b), "  "+canary+": run to "+to+", last step upgrade") ||
		!strings.Contains(string(b), "cordoned by kup") || !strings.Contains(string(b), "4 node(s) carry kup's pending taint of a run to "+to) ||
		!strings.Contains(string(b), "finish them with kup apply --to "+to) {
		t.Errorf("kup status after the kill (%v):\n%s", err, b)
	}

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
	if len(cordonedByKup) != 1 || cordonedByKup[0].Objects[0].Name != canary || !strings.Contains(cordonedByKup[0].Message, "a run to "+to+" resumes it, and any kup run that upgrades the node uncordons it") {
		t.Errorf("findings %s: %+v, want one on %s naming %s", checks.NodeKupCordoned, cordonedByKup, canary, to)
	}
	if len(asFound) != 0 {
		t.Errorf("the node kup cordoned is reported as cordoned before kup: %+v", asFound)
	}
	if len(pending) != 1 || !slices.Equal(pending[0].Objects, tainted) || !strings.Contains(pending[0].Message, "kup run to "+to) {
		t.Errorf("findings %s: %+v, want one naming %v and %s", checks.NodeKupPending, pending, tainted, to)
	}

	// The plan for the version the killed run was going to: the control
	// plane is there already, so it is the nodes' rolls (NodesOnly, as
	// kup plan and kup apply's preflight ask) with the same findings;
	// without NodesOnly there is nothing to plan.
	p := planFor(c, to)
	p.NodesOnly = true
	nodesOnly, err := p.Run(ctx)
	if err != nil {
		t.Fatalf("nodes-only plan to %s: %v", to, err)
	}
	behind := 0
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.KubeletVersion != to {
			behind++
		}
	}
	waved := 0
	for _, w := range nodesOnly.Rollout.Waves {
		waved += len(w.Nodes)
	}
	if !strings.HasPrefix(nodesOnly.Backup.When, "before the first node") {
		t.Errorf("nodes-only plan: backup %q, want it before the first node", nodesOnly.Backup.When)
	}
	if behind == 0 || nodesOnly.NodesToRoll != behind || waved != behind || len(nodesOnly.Path.Hops) != 0 {
		t.Errorf("nodes-only plan: %d nodes to roll in waves of %d nodes, %d hops; want the %d nodes behind %s and no hop", nodesOnly.NodesToRoll, waved, len(nodesOnly.Path.Hops), behind, to)
	}
	for _, id := range []string{checks.NodeKupCordoned, checks.NodeKupPending} {
		if !slices.ContainsFunc(nodesOnly.Findings, func(f checks.Finding) bool { return f.ID == id }) {
			t.Errorf("nodes-only plan: no %s finding", id)
		}
	}
	if _, err := planFor(c, to).Run(ctx); !errors.Is(err, version.ErrSameVersion) {
		t.Errorf("plan to %s without NodesOnly: %v, want %v", to, err, version.ErrSameVersion)
	}

	// A real node inside its upgrade is not Ready: its kubelet is being
	// replaced. That is the killed run's doing, not a sick node: no
	// KUP-NODE-001 blocker, which would stop the very run that finishes it.
	if err := c.StopKubelet(ctx, canary); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := cs.CoreV1().Nodes().Get(ctx, canary, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
			return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		}) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%s stays Ready with its kubelet stopped", canary)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if res, err = planFor(c, next).Run(ctx); err != nil {
		t.Fatal(err)
	}
	inUpgrade := false
	for _, f := range res.Findings {
		if f.ID == checks.NodeNotReady {
			t.Errorf("%s not Ready inside the killed run's upgrade is a blocker: %s", canary, f.Message)
		}
		if f.ID == checks.NodeKupCordoned && f.Objects[0].Name == canary && strings.Contains(f.Message, "stopped inside the node's upgrade") {
			inUpgrade = true
		}
	}
	if !inUpgrade {
		t.Errorf("no %s finding says %s was left inside its upgrade: %+v", checks.NodeKupCordoned, canary, res.Findings)
	}

	// As the findings say: run again to the version, and both are gone.
	// kup apply this time: a new run, whose preflight (nodes only) the
	// not-Ready canary does not stop. First the killed run's upgrade
	// lock (TTL 5 s) expires, so that kup status says who holds it and
	// that it stopped renewing it.
	time.Sleep(6 * time.Second)
	if b, err := kupCommand(t, c, "status").CombinedOutput(); err != nil || !strings.Contains(string(b), "nodes upgrade to "+to+" holds the upgrade lock but stopped renewing it") {
		t.Errorf("kup status once the killed run's lock expired (%v): want it to say that run holds the lock and stopped renewing it:\n%s", err, b)
	}
	again := kupCommand(t, c, "apply", "--to", to, "--upgrade-time", "1s", "--delete-emptydir-data", "--max-unavailable", "1", "--skip-backup")
	if b, err := again.CombinedOutput(); err != nil {
		t.Fatalf("kup apply: %v\n%s", err, b)
	}
	res, err = planFor(c, next).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		if f.ID == checks.NodeKupCordoned || f.ID == checks.NodeKupPending || f.ID == checks.NodeCordoned || f.ID == checks.NodeNotReady {
			t.Errorf("after the run finished: %s %v: %s", f.ID, f.Objects, f.Message)
		}
	}
}
