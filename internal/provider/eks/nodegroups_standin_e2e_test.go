package eks_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kup-project/kup/internal/provider/eks"
	"github.com/kup-project/kup/internal/provider/eks/eksstandin"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestNodegroupStuckOnPDBWithStandin: a node group update whose drain is
// held by a PodDisruptionBudget fails in EKS with PodEvictionFailure
// ("Reached max retries…", no PDB named); kup's error names the PDB.
// Then, with the budget relaxed, the same call finishes the group with
// the maxUnavailable kup asked for.
func TestNodegroupStuckOnPDBWithStandin(t *testing.T) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", NodeVersion: "v1.35.4", Nodes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := eksstandin.LabelNodegroup(ctx, c, "ng-a", sandbox.NodeName(0), sandbox.NodeName(1), sandbox.NodeName(2)); err != nil {
		t.Fatal(err)
	}
	all := intstr.FromInt32(3)
	if err := c.Apply(ctx, sandbox.Workload{Namespace: "shop", Name: "pinned", Kind: "Deployment", Replicas: 3,
		PDB: &sandbox.PDBSpec{Name: "pinned", MinAvailable: &all}}); err != nil {
		t.Fatal(err)
	}
	waitPDBSettled(ctx, t, c, "shop", "pinned", 3)
	s, err := eksstandin.Start(eksstandin.Options{Name: "demo", Sandbox: c, Releases: releases, Nodegroups: []string{"ng-a"}, EvictionLimit: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	awsEnv(t, s)
	p, err := eks.New(ctx, "demo", "", c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.Poll, p.NodegroupPoll = fastPoll, fastPoll
	p.Progress = func(s string) { t.Log(s) }

	managed, err := p.ManagedNodes(ctx)
	if err != nil || len(managed) != 3 {
		t.Fatalf("ManagedNodes = %v, %v; want the 3 nodes of ng-a", managed, err)
	}
	err = p.UpgradeNodeGroups(ctx, "v1.36.3", map[string]int{"ng-a": 1})
	var ue *eks.UpdateError
	if !errors.As(err, &ue) || ue.Errors[0].ErrorCode != "PodEvictionFailure" {
		t.Fatalf("want an EKS PodEvictionFailure, got %v", err)
	}
	if !strings.Contains(err.Error(), "PodDisruptionBudget shop/pinned") {
		t.Fatalf("the error does not name the PDB that held the drain:\n%v", err)
	}
	t.Logf("reported: %v", err)
	if _, maxU := s.Nodegroup("ng-a"); maxU != 1 {
		t.Errorf("node group maxUnavailable = %d, want the 1 kup asked for", maxU)
	}

	// Relax the budget; the update goes through, two nodes at a time.
	cs := c.Client()
	pdb, err := cs.PolicyV1().PodDisruptionBudgets("shop").Get(ctx, "pinned", metav1GetOptions)
	if err != nil {
		t.Fatal(err)
	}
	one := intstr.FromInt32(1)
	pdb.Spec.MinAvailable = &one
	if _, err := cs.PolicyV1().PodDisruptionBudgets("shop").Update(ctx, pdb, metav1UpdateOptions); err != nil {
		t.Fatal(err)
	}
	if err := p.UpgradeNodeGroups(ctx, "v1.36.3", map[string]int{"ng-a": 2}); err != nil {
		t.Fatalf("node group update after relaxing the PDB: %v", err)
	}
	if v, maxU := s.Nodegroup("ng-a"); v != "1.36" || maxU != 2 {
		t.Errorf("node group ng-a: version %s, maxUnavailable %d; want 1.36 and 2", v, maxU)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1ListOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.KubeletVersion != "v1.36.3" || n.Spec.Unschedulable {
			t.Errorf("node %s: kubelet %s, unschedulable %v; want v1.36.3, schedulable", n.Name, n.Status.NodeInfo.KubeletVersion, n.Spec.Unschedulable)
		}
	}
}
