package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kup-project/kup/internal/drain"
	"github.com/kup-project/kup/internal/plan"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestRolloutThirtyNodes is the rollout issue's acceptance test: control
// plane at v1.37.2, 30 nodes rolled from v1.36.3 to v1.37.2 kubelets in
// PDB-aware waves, with an independent watcher seeing no PDB violated and
// every node uncordoned at the end. It runs twice, on fresh sandboxes:
// with overlapping waves, and with nodes admitted continuously as budgets
// come back (Options.Continuous).
func TestRolloutThirtyNodes(t *testing.T) {
	t.Parallel() // its own sandbox, no package state changed (see export_test.go)
	for _, continuous := range []bool{false, true} {
		name := "overlapping-waves"
		if continuous {
			name = "continuous"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rolloutThirtyNodes(t, continuous)
		})
	}
}

func rolloutThirtyNodes(t *testing.T, continuous bool) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.37.2", NodeVersion: "v1.36.3", Nodes: 30, Workloads: "default", PodReadyDelay: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cs := c.Client()

	w, err := rollout.Watch(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	var events atomic.Int64
	// The rollout's own client counts the LISTs of one node's pods: a
	// drain lists its node's pods once, then waits for the evicted ones to
	// go — polling a LIST of them without the live cache, reading the
	// cache with it and asking the API server only to confirm.
	var nodeLists atomic.Int64
	cfg := c.RESTConfig()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/pods") && strings.Contains(req.URL.Query().Get("fieldSelector"), "spec.nodeName=") && req.URL.Query().Get("watch") != "true" {
				nodeLists.Add(1)
			}
			return rt.RoundTrip(req)
		})
	}
	rcs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &rollout.Roller{
		Client: rcs,
		// An upgrade longer than a pod's readiness, as in real clusters:
		// budgets come back while a wave's nodes still upgrade, which is
		// when the next wave may start.
		Upgrader: &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: 5 * time.Second},
		Options: rollout.Options{
			Target:     "v1.37.2",
			Policy:     plan.Policy{MaxUnavailable: intstr.FromString("20%")},
			Drain:      drain.Options{DeleteEmptyDirData: true, Timeout: 3 * time.Minute},
			Overlap:    true,
			Continuous: continuous,
			Progress: func(e rollout.Event) {
				events.Add(1)
				t.Logf("%s wave=%d %s %s: %s", e.Time.Format("15:04:05.000"), e.Wave, e.Node, e.Step, e.Message)
			},
		},
	}
	res, err := r.Run(ctx)
	w.Stop()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("the watcher saw %d PDB violation(s): %+v", len(v), v)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.KubeletVersion != "v1.37.2" {
			t.Errorf("node %s still at kubelet %s", n.Name, n.Status.NodeInfo.KubeletVersion)
		}
		if n.Spec.Unschedulable {
			t.Errorf("node %s left cordoned", n.Name)
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == rollout.PendingTaint {
				t.Errorf("node %s still carries the pending taint", n.Name)
			}
		}
	}
	if len(res.Nodes) != 30 {
		t.Errorf("result covers %d nodes, want 30", len(res.Nodes))
	}
	t.Logf("LISTs of a node's pods: %d for %d nodes", nodeLists.Load(), len(res.Nodes))
	if continuous && nodeLists.Load() > 3*int64(len(res.Nodes)) {
		t.Errorf("%d LISTs of a node's pods for %d nodes; want at most 3 a node with the live cache (one to drain, the rest to confirm the pods are gone)", nodeLists.Load(), len(res.Nodes))
	}
	for _, nr := range res.Nodes {
		if nr.Outcome != "upgraded" {
			t.Errorf("node %s: outcome %s (%s)", nr.Node, nr.Outcome, nr.Reason)
		}
	}
	// Waves: the first is the canary; more than one node goes at once
	// afterwards (the point of waves), and never more than 20% of 30.
	if len(res.Waves) < 2 || len(res.Waves[0].Nodes) != 1 {
		t.Errorf("waves %+v: want a single-node canary first", res.Waves)
	}
	widest := 0
	for _, wv := range res.Waves {
		widest = max(widest, len(wv.Nodes))
		if len(wv.Nodes) > 6 {
			t.Errorf("wave %d has %d nodes, more than 20%% of 30", wv.Index, len(wv.Nodes))
		}
	}
	if widest < 2 {
		t.Errorf("no wave drained more than one node: %+v", res.Waves)
	}
	// Overlapping waves: the next wave drains while the last one's nodes
	// upgrade, yet never more than 20% of the nodes are down at once.
	down, overlapped := res.MostDown(), false
	for i := 1; i < len(res.Waves); i++ {
		if res.Waves[i].Started.Before(res.Waves[i-1].Finished) {
			overlapped = true
		}
	}
	if down > 6 {
		t.Errorf("%d nodes were down at once, more than 20%% of 30", down)
	}
	if !overlapped {
		t.Errorf("no wave started before the one before it finished: %+v", res.Waves)
	}
	t.Logf("at most %d nodes down at once", down)
	if res.Evictions == 0 || res.EvictablePods == 0 {
		t.Errorf("evictions %d of %d evictable pods: the drains did nothing", res.Evictions, res.EvictablePods)
	}
	// The pending taint steers evicted pods to upgraded nodes: pods are
	// moved about once each, not once per wave.
	if epp := res.EvictionsPerPod(); epp > 1.5 {
		t.Errorf("%.2f evictions per pod; the pending taint should keep it near 1", epp)
	}
	// `kubectl describe node` tells the story.
	evs, err := cs.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + sandbox.NodeName(7) + ",involvedObject.kind=Node"})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, e := range evs.Items {
		if e.Source.Component == rollout.EventSource {
			reasons[e.Reason] = true
		}
	}
	for _, want := range []string{"KupCordon", "KupDrained", "KupUpgraded", "KupDone"} {
		if !reasons[want] {
			t.Errorf("node %s has no %s event (has %v)", sandbox.NodeName(7), want, reasons)
		}
	}
	t.Logf("%d waves, %d evictions for %d pods (%.2f per pod), %d refusals, makespan %s",
		len(res.Waves), res.Evictions, res.EvictablePods, res.EvictionsPerPod(), res.Refusals, res.Makespan.Round(time.Second))
}

// TestRolloutStopsOnFailure: an injected node-upgrade failure stops the
// rollout with that node named and cordoned (its kubelet may have
// changed), a node that never comes back is named too, and no other node
// is left cordoned.
func TestRolloutStopsOnFailure(t *testing.T) {
	t.Parallel() // its own sandbox, no package state changed (see export_test.go)
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.37.2", NodeVersion: "v1.36.3", Nodes: 8, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs := c.Client()
	var upgrades atomic.Int64
	var victim atomic.Value
	up := &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: 500 * time.Millisecond, Fail: func(node string) error {
		if upgrades.Add(1) == 2 { // the first node after the canary
			victim.Store(node)
			return errors.New("injected: package install failed")
		}
		return nil
	}}
	// As kup nodes upgrade runs by default: nodes admitted continuously,
	// so others are in flight when the victim fails; they finish and are
	// uncordoned, and nothing more is admitted.
	r := &rollout.Roller{Client: cs, Upgrader: up, Options: testOptions(3)}
	res, err := r.Run(ctx)
	bad, _ := victim.Load().(string)
	if err == nil || bad == "" || !strings.Contains(err.Error(), bad) {
		t.Fatalf("want the rollout to stop naming the failed node %q, got %v", bad, err)
	}
	if !res.Stopped {
		t.Error("result not marked stopped")
	}
	failed := res.Failed()
	if len(failed) != 1 || failed[0].Node != bad || !failed[0].LeftCordoned || !strings.Contains(failed[0].Reason, "injected") {
		t.Errorf("failed nodes %+v, want only %s, left cordoned with the injected reason", failed, bad)
	}
	assertCordoned(ctx, t, c, map[string]bool{bad: true})

	// A node that never comes back: its kubelet stops for good during the
	// upgrade. The rollout names it after ReadyTimeout; nothing else stays
	// cordoned.
	if err := cs.CoreV1().Nodes().Delete(ctx, bad, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err) // take the first victim out of the way
	}
	var stuck atomic.Value
	up2 := &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: 200 * time.Millisecond}
	hang := &hangingUpgrader{NodeUpgrader: up2, c: c, stuck: &stuck}
	r2 := &rollout.Roller{Client: cs, Upgrader: hang, Options: rollout.Options{
		Target: "v1.37.2", Policy: plan.Policy{MaxUnavailable: intstr.FromInt32(1)}, ReadyTimeout: 5 * time.Second,
		Drain: drain.Options{DeleteEmptyDirData: true, Timeout: 2 * time.Minute},
	}}
	res2, err := r2.Run(ctx)
	hung, _ := stuck.Load().(string)
	if err == nil || hung == "" || !strings.Contains(err.Error(), hung) || !strings.Contains(err.Error(), "did not become Ready") {
		t.Fatalf("want the rollout to stop naming %q as never Ready, got %v", hung, err)
	}
	if f := res2.Failed(); len(f) != 1 || f[0].Node != hung || !f[0].LeftCordoned {
		t.Errorf("failed nodes %+v, want %s left cordoned", f, hung)
	}
	assertCordoned(ctx, t, c, map[string]bool{hung: true})
}

// hangingUpgrader stops the kubelet of the first node it upgrades for
// good, as a machine that does not come back after a reboot.
type hangingUpgrader struct {
	*sandboxprovider.NodeUpgrader
	c     *sandbox.Cluster
	stuck *atomic.Value
}

func (h *hangingUpgrader) UpgradeNode(ctx context.Context, node *corev1.Node, version string) error {
	if h.stuck.CompareAndSwap(nil, node.Name) {
		return h.c.StopKubelet(ctx, node.Name)
	}
	return h.NodeUpgrader.UpgradeNode(ctx, node, version)
}

func assertCordoned(ctx context.Context, t *testing.T, c *sandbox.Cluster, want map[string]bool) {
	t.Helper()
	nodes, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Spec.Unschedulable != want[n.Name] {
			t.Errorf("node %s: cordoned=%v, want %v", n.Name, n.Spec.Unschedulable, want[n.Name])
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == rollout.PendingTaint {
				t.Errorf("node %s still carries the pending taint after the rollout stopped", n.Name)
			}
		}
	}
}

// TestRolloutAutoBudgetRounds: with AutoBudgetRounds, the canary wave
// runs with one round (nothing measured yet); once a node upgrade (8 s)
// and replacement readiness (about 1 s) have been measured, waves spend
// budgets more than once, their drains waiting on 429s for the
// replacements — and the watcher still sees no PDB violated.
func TestRolloutAutoBudgetRounds(t *testing.T) {
	t.Parallel() // its own sandbox, no package state changed (see export_test.go)
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.37.2", NodeVersion: "v1.36.3", Nodes: 20, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cs := c.Client()
	w, err := rollout.Watch(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	r := &rollout.Roller{
		Client:   cs,
		Upgrader: &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: 8 * time.Second},
		Options: rollout.Options{
			Target:           "v1.37.2",
			Policy:           plan.Policy{MaxUnavailable: intstr.FromString("50%")},
			AutoBudgetRounds: true,
			Drain:            drain.Options{DeleteEmptyDirData: true, Timeout: 3 * time.Minute},
			Progress: func(e rollout.Event) {
				t.Logf("%s wave=%d %s %s: %s", e.Time.Format("15:04:05.000"), e.Wave, e.Node, e.Step, e.Message)
			},
		},
	}
	res, err := r.Run(ctx)
	w.Stop()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("the watcher saw %d PDB violation(s): %+v", len(v), v)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.KubeletVersion != "v1.37.2" || n.Spec.Unschedulable {
			t.Errorf("node %s: kubelet %s, cordoned %v", n.Name, n.Status.NodeInfo.KubeletVersion, n.Spec.Unschedulable)
		}
	}
	if len(res.Waves) == 0 || res.Waves[0].Rounds != 1 {
		t.Fatalf("waves %+v: want the canary with 1 budget round", res.Waves)
	}
	most := 0
	for _, wv := range res.Waves {
		most = max(most, wv.Rounds)
		if wv.Rounds < 1 || wv.Rounds > 3 {
			t.Errorf("wave %d ran with %d budget rounds, want 1 to 3", wv.Index, wv.Rounds)
		}
	}
	if most < 2 {
		t.Errorf("no wave spent a budget twice although a node upgrade (8 s) far outlasts pod readiness (1 s): %+v", res.Waves)
	}
	t.Logf("%d waves (most rounds %d), %d evictions for %d pods (%.2f per pod), %d refusals, makespan %s",
		len(res.Waves), most, res.Evictions, res.EvictablePods, res.EvictionsPerPod(), res.Refusals, res.Makespan.Round(time.Second))
}

// TestRolloutSkipsADeletedNode: a node deleted while the rollout runs (a
// scale-down, a spot reclaim, a machine replaced by its operator) is
// recorded as deleted and not rolled; the rollout finishes the others
// instead of stopping on it. The node goes while the canary upgrades, so
// it is still among the nodes to roll.
func TestRolloutSkipsADeletedNode(t *testing.T) {
	t.Parallel() // its own sandbox, no package state changed (see export_test.go)
	for _, continuous := range []bool{false, true} {
		name := "overlapping-waves"
		if continuous {
			name = "continuous"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := sandboxtest.Start(t, sandbox.Options{Version: "v1.37.2", NodeVersion: "v1.36.3", Nodes: 5, Workloads: "default", PodReadyDelay: time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cs := c.Client()
			var gone atomic.Value
			up := &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: 300 * time.Millisecond, Fail: func(node string) error {
				victim := "node-004"
				if node == victim {
					victim = "node-003"
				}
				if gone.CompareAndSwap(nil, victim) {
					if err := cs.CoreV1().Nodes().Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
						return err
					}
				}
				return nil
			}}
			opts := testOptions(2)
			opts.Continuous = continuous
			r := &rollout.Roller{Client: cs, Upgrader: up, Options: opts}
			res, err := r.Run(ctx)
			victim, _ := gone.Load().(string)
			if err != nil {
				t.Fatalf("the rollout stopped on a deleted node (%s): %v", victim, err)
			}
			if nr := res.Nodes[victim]; nr == nil || nr.Outcome != "deleted" || nr.LeftCordoned || len(nr.Steps) != 0 {
				t.Errorf("deleted node %s: result %+v, want outcome deleted, untouched", victim, nr)
			}
			nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(nodes.Items) != 4 {
				t.Errorf("%d nodes after the rollout, want the 4 not deleted", len(nodes.Items))
			}
			for _, n := range nodes.Items {
				if nr := res.Nodes[n.Name]; nr == nil || nr.Outcome != "upgraded" {
					t.Errorf("node %s: result %+v, want upgraded", n.Name, nr)
				}
			}
			assertCordoned(ctx, t, c, map[string]bool{})
		})
	}
	// The canary itself deleted as it is admitted: the next node is a
	// canary too, and runs alone before any other node starts.
	t.Run("the-canary", func(t *testing.T) {
		c := sandboxtest.Start(t, sandbox.Options{Version: "v1.37.2", NodeVersion: "v1.36.3", Nodes: 5, Workloads: "default", PodReadyDelay: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cs := c.Client()
		var victim string
		opts := testOptions(2)
		opts.Progress = func(e rollout.Event) {
			// Called as wave 1 starts, before its node is read.
			if e.Step == rollout.StepWave && victim == "" && strings.HasPrefix(e.Message, "wave 1:") {
				victim = strings.Trim(strings.Fields(e.Message)[4], "[]")
				if err := cs.CoreV1().Nodes().Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
					t.Errorf("deleting the canary %s: %v", victim, err)
				}
			}
		}
		r := &rollout.Roller{Client: cs, Upgrader: &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: 2 * time.Second}, Options: opts}
		res, err := r.Run(ctx)
		if err != nil {
			t.Fatalf("the rollout stopped on the deleted canary (%s): %v", victim, err)
		}
		if nr := res.Nodes[victim]; nr == nil || nr.Outcome != "deleted" {
			t.Fatalf("deleted canary %s: result %+v, want outcome deleted", victim, nr)
		}
		if len(res.Waves) < 3 || len(res.Waves[1].Nodes) != 1 {
			t.Fatalf("waves %+v: want a second single-node canary after the deleted one", res.Waves)
		}
		if second, next := res.Waves[1], res.Waves[2]; next.Started.Before(second.Finished) {
			t.Errorf("wave 3 %v started at %s, before the second canary %v finished at %s", next.Nodes, next.Started.Format("15:04:05.000"), second.Nodes, second.Finished.Format("15:04:05.000"))
		}
		assertCordoned(ctx, t, c, map[string]bool{})
	})
}

// testOptions are what most e2e tests roll with, as kup nodes upgrade
// does by default: to v1.37.2, waves overlapping and nodes admitted
// continuously, emptyDir pods evictable, a 2-minute drain deadline.
func testOptions(maxUnavailable int32) rollout.Options {
	return rollout.Options{
		Target: "v1.37.2", Policy: plan.Policy{MaxUnavailable: intstr.FromInt32(maxUnavailable)},
		Overlap: true, Continuous: true,
		Drain: drain.Options{DeleteEmptyDirData: true, Timeout: 2 * time.Minute},
	}
}

// countingUpgrader records which nodes were upgraded.
type countingUpgrader struct {
	*sandboxprovider.NodeUpgrader
	mu  sync.Mutex
	got map[string]int
}

func (u *countingUpgrader) UpgradeNode(ctx context.Context, node *corev1.Node, version string) error {
	u.mu.Lock()
	u.got[node.Name]++
	u.mu.Unlock()
	return u.NodeUpgrader.UpgradeNode(ctx, node, version)
}

// TestRolloutFinishesAKilledRun seeds the states a kup killed mid-node
// leaves behind and checks the next run finishes each one: the
// write-ahead cordon record with and without the cordon, a node upgraded
// but not uncordoned, one uncordoned but not recorded done — neither of
// those drained or upgraded again — and a node its operator cordoned,
// upgraded and left cordoned. A node killed inside its upgrade — kubelet
// at the target but never started again — gets the upgrade run once more,
// without a drain. The nodes left mid-way go first. A node that a killed
// run to another version cordoned is kup's too: it goes first, and is
// upgraded and uncordoned.
func TestRolloutFinishesAKilledRun(t *testing.T) {
	t.Parallel() // its own sandbox, no package state changed (see export_test.go)
	const target = "v1.37.2"
	c := sandboxtest.Start(t, sandbox.Options{Version: target, NodeVersion: "v1.36.3", Nodes: 9, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs := c.Client()
	runTo := target
	seed := func(node, phase string, cordon bool) {
		t.Helper()
		if phase != "" {
			st, _ := json.Marshal(rollout.NodeState{Target: runTo, Phase: phase, CordonedByKup: true, Updated: time.Now().UTC()})
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{rollout.StateAnnotation: string(st)}}})
			if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if cordon {
			if _, err := (&drain.Drainer{Client: cs}).Cordon(ctx, node); err != nil {
				t.Fatal(err)
			}
		}
	}
	seed("node-000", rollout.StepCordon, false)  // killed between the record and the cordon
	seed("node-001", rollout.StepCordon, true)   // killed after the cordon
	seed("node-002", rollout.StepUpgrade, true)  // killed after the upgrade, before the uncordon
	seed("node-003", rollout.StepUpgrade, false) // killed after the uncordon, before "done"
	seed("node-004", "", true)                   // cordoned by its operator
	seed("node-005", rollout.StepUpgrade, true)  // killed inside the upgrade
	runTo = "v1.37.1"
	seed("node-007", rollout.StepDrain, true) // cordoned by a killed run to another version
	seed("node-008", rollout.StepDrain, true) // the same, and its kubelet at the target since
	for _, n := range []string{"node-002", "node-003", "node-005", "node-008"} {
		if err := c.SetNodeVersion(ctx, n, target); err != nil {
			t.Fatal(err)
		}
	}
	// node-005's new kubelet was never started again.
	if err := c.StopKubelet(ctx, "node-005"); err != nil {
		t.Fatal(err)
	}
	pods := func(node string) int {
		l, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	before := map[string]int{"node-002": pods("node-002"), "node-003": pods("node-003"), "node-005": pods("node-005"), "node-008": pods("node-008")}

	up := &countingUpgrader{NodeUpgrader: &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: 200 * time.Millisecond}, got: map[string]int{}}
	r := &rollout.Roller{Client: cs, Upgrader: up, Options: rollout.Options{
		Target: target, Policy: plan.Policy{MaxUnavailable: intstr.FromInt32(2)},
		Drain: drain.Options{DeleteEmptyDirData: true, Timeout: 2 * time.Minute},
	}}
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	assertCordoned(ctx, t, c, map[string]bool{"node-004": true})
	for _, n := range []string{"node-000", "node-001", "node-004", "node-006", "node-007"} {
		if up.got[n] != 1 {
			t.Errorf("%s upgraded %d times, want 1", n, up.got[n])
		}
	}
	for _, n := range []string{"node-002", "node-003", "node-005", "node-008"} {
		want := 0 // finished only
		if n == "node-005" {
			want = 1 // the cut-short upgrade run again
		}
		nr := res.Nodes[n]
		if up.got[n] != want || nr == nil || nr.Evicted != 0 || nr.Outcome != "upgraded" {
			t.Errorf("%s: upgraded %d times, result %+v; want finished without a drain, upgraded %d time(s)", n, up.got[n], nr, want)
		}
		if got := pods(n); got < before[n] {
			t.Errorf("%s: %d pods, %d before: drained again", n, got, before[n])
		}
	}
	// The nodes the killed run left mid-way go before any other.
	for _, n := range []string{"node-000", "node-001", "node-002", "node-003", "node-005", "node-007", "node-008"} {
		for _, other := range []string{"node-004", "node-006"} {
			if a, b := res.Nodes[n], res.Nodes[other]; a == nil || b == nil || a.Wave >= b.Wave {
				t.Errorf("%s (left mid-way) did not go before %s: waves %+v", n, other, res.Waves)
			}
		}
	}
	if nr := res.Nodes["node-004"]; nr == nil || !nr.WasCordoned || !nr.LeftCordoned {
		t.Errorf("node-004 (the operator's cordon): %+v, want left cordoned", nr)
	}
	if nr := res.Nodes["node-007"]; nr == nil || nr.WasCordoned || nr.LeftCordoned || nr.Outcome != "upgraded" {
		t.Errorf("node-007 (cordoned by a run to another version): %+v, want upgraded and uncordoned", nr)
	}
	if nr := res.Nodes["node-008"]; nr == nil || nr.WasCordoned || nr.LeftCordoned {
		t.Errorf("node-008 (at the target, cordoned by a run to another version): %+v, want uncordoned", nr)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		var st rollout.NodeState
		if err := json.Unmarshal([]byte(n.Annotations[rollout.StateAnnotation]), &st); err != nil || st.Phase != rollout.StepDone || n.Status.NodeInfo.KubeletVersion != target {
			t.Errorf("node %s: kubelet %s, state %q, want %s and done", n.Name, n.Status.NodeInfo.KubeletVersion, n.Annotations[rollout.StateAnnotation], target)
		}
	}
}
