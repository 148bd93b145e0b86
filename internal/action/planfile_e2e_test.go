package action_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestSavedPlanRefusedWhenClusterChanged: a plan saved by `kup plan
// --save` holds while the cluster is as planned, and is refused — naming
// what changed — once a node appears, when it is too old, or for another
// cluster.
func TestSavedPlanRefusedWhenClusterChanged(t *testing.T) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", Nodes: 4, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := &action.Plan{Config: c.RESTConfig(), To: "v1.37.2", MaxUnavailable: intstr.FromInt32(2), Kubectl: "-"}
	res, err := p.Run(ctx)
	if res == nil {
		t.Fatalf("plan: %v", err)
	}
	path := filepath.Join(t.TempDir(), "upgrade.plan")
	if err := action.SavePlanFile(path, res); err != nil {
		t.Fatal(err)
	}
	loaded, err := action.LoadPlanFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.To != "v1.37.2" || loaded.From != "v1.36.3" || loaded.Policy.MaxUnavailable.IntValue() != 2 {
		t.Errorf("loaded plan: to %s from %s policy %+v", loaded.To, loaded.From, loaded.Policy)
	}
	now := time.Now()
	if err := action.CheckPlanStillHolds(ctx, c.RESTConfig(), loaded, time.Hour, now); err != nil {
		t.Fatalf("an unchanged cluster must accept its plan: %v", err)
	}
	if err := action.CheckPlanStillHolds(ctx, c.RESTConfig(), loaded, time.Minute, now.Add(2*time.Hour)); err == nil || !strings.Contains(err.Error(), "old") {
		t.Errorf("a two-hour-old plan with a one-minute limit: %v", err)
	}
	other := c.RESTConfig()
	other.Host = "https://127.0.0.1:1"
	if err := action.CheckPlanStillHolds(ctx, other, loaded, time.Hour, now); err == nil || !strings.Contains(err.Error(), "made for cluster") {
		t.Errorf("another cluster: %v", err)
	}
	// A node joins: the plan does not know it.
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "late-joiner", Annotations: map[string]string{sandbox.KwokNodeAnnotation: "fake"}},
		Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.36.3"}}}
	if _, err := c.Client().CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = action.CheckPlanStillHolds(ctx, c.RESTConfig(), loaded, time.Hour, now)
	if err == nil || !strings.Contains(err.Error(), "late-joiner") {
		t.Errorf("a new node must invalidate the plan, naming it: %v", err)
	}
	if _, err := action.LoadPlanFile(filepath.Join(t.TempDir(), "missing.plan")); err == nil {
		t.Error("a missing plan file must be an error")
	}
}
