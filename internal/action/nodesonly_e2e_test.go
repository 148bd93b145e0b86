package action_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kup-project/kup/internal/checks"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestApplyChecksANodesOnlyUpgrade: kup apply --to V on a cluster whose
// control plane is at V already and whose kubelets are behind (the
// control plane upgraded in a provider's console, or by an earlier run)
// runs the preflight any apply runs. A PodDisruptionBudget that allows
// no disruption stops it before a node is cordoned, naming the budget;
// with the budget gone, the same command rolls every node. (It used to
// skip the preflight there: two of the three nodes rolled before the
// rollout found it could not drain the third, and stopped half done.)
func TestApplyChecksANodesOnlyUpgrade(t *testing.T) {
	t.Parallel()
	const to = "v1.36.3"
	c := sandboxtest.Start(t, sandbox.Options{Version: to, NodeVersion: "v1.35.4", Nodes: 3, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs := c.Client()

	// One replica under minAvailable 1: no disruption ever allowed.
	minOne := intstr.FromInt32(1)
	if err := c.Apply(ctx, sandbox.Workload{Namespace: "default", Name: "singleton", Kind: "Deployment", Replicas: 1,
		PDB: &sandbox.PDBSpec{Name: "singleton", MinAvailable: &minOne}}); err != nil {
		t.Fatal(err)
	}
	for {
		got, err := cs.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "singleton", metav1.GetOptions{})
		if err == nil && got.Status.ObservedGeneration >= got.Generation && got.Status.ExpectedPods == 1 && got.Status.CurrentHealthy == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the budget's status never counted its pod: %+v (%v)", got, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	apply := func() (string, int) {
		cmd := kupCommand(t, c, "apply", "--to", to, "--upgrade-time", "1s", "--delete-emptydir-data", "--max-unavailable", "2", "--skip-backup")
		out, err := cmd.CombinedOutput()
		if err != nil && cmd.ProcessState == nil {
			t.Fatal(err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	kubelets := func() (behind, cordoned []string) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes.Items {
			if n.Status.NodeInfo.KubeletVersion != to {
				behind = append(behind, n.Name)
			}
			if n.Spec.Unschedulable {
				cordoned = append(cordoned, n.Name)
			}
		}
		return behind, cordoned
	}

	out, code := apply()
	if code != 3 || !strings.Contains(out, "preflight found 1 blocker(s): "+checks.PDBZeroBudget) {
		t.Fatalf("apply with a budget of 0: exit %d, want 3 (blockers) naming %s\n%s", code, checks.PDBZeroBudget, out)
	}
	if behind, cordoned := kubelets(); len(behind) != 3 || len(cordoned) != 0 {
		t.Errorf("after the refused apply: %v behind %s, %v cordoned; want all 3 behind, none cordoned", behind, to, cordoned)
	}

	if err := cs.PolicyV1().PodDisruptionBudgets("default").Delete(ctx, "singleton", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	out, code = apply()
	if code != 0 {
		t.Fatalf("apply without the budget: exit %d\n%s", code, out)
	}
	if behind, cordoned := kubelets(); len(behind) != 0 || len(cordoned) != 0 {
		t.Errorf("after the apply: %v behind %s, %v cordoned; want none\n%s", behind, to, cordoned, out)
	}
}
