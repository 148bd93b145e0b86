package inventory

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestStreamPodsMatchesList: the watch-list stream returns exactly the
// pods a LIST returns, without managedFields, in one request.
func TestStreamPodsMatchesList(t *testing.T) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.37.2", Nodes: 3, Workloads: "default"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	streamed, err := streamPods(ctx, c.Client())
	if err != nil {
		t.Fatalf("the sandbox's apiserver should stream a watch-list: %v", err)
	}
	listed, err := c.Client().CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(streamed) != len(listed.Items) || len(streamed) < 10 {
		t.Fatalf("streamed %d pods, listed %d", len(streamed), len(listed.Items))
	}
	uids := map[string]bool{}
	for _, p := range listed.Items {
		uids[string(p.UID)] = true
	}
	for _, p := range streamed {
		if !uids[string(p.UID)] {
			t.Errorf("streamed pod %s/%s is not in the LIST", p.Namespace, p.Name)
		}
		if len(p.ManagedFields) != 0 {
			t.Errorf("pod %s/%s kept its managedFields", p.Namespace, p.Name)
		}
	}
}
