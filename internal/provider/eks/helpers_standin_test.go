package eks_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/sandbox"
)

var (
	metav1GetOptions    = metav1.GetOptions{}
	metav1UpdateOptions = metav1.UpdateOptions{}
	metav1ListOptions   = metav1.ListOptions{}
)

// waitPDBSettled waits until the disruption controller has counted the
// PDB's pods healthy.
func waitPDBSettled(ctx context.Context, t *testing.T, c *sandbox.Cluster, ns, name string, healthy int32) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pdb, err := c.Client().PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && pdb.Status.CurrentHealthy >= healthy && pdb.Status.ObservedGeneration == pdb.Generation {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PDB %s/%s not settled at %d healthy: %+v, %v", ns, name, healthy, pdb, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
