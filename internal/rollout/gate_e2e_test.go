package rollout_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestRolloutHealthGate breaks a workload while nodes are admitted
// continuously: its new pods crash-loop as soon as the first node after
// the canary upgrades. The workload has no PDB, so nothing but the health
// gate can hold the rollout.
//   - held-then-met: the gate stays unmet past its hold (30 s), so
//     admission pauses, saying why, and starts no node; once the workload
//     is repaired the gate passes and the rollout finishes.
//   - timeout: never repaired, the gate times out and stops the rollout,
//     naming the workload; the nodes in flight finish and none stays
//     cordoned.
func TestRolloutHealthGate(t *testing.T) {
	t.Parallel() // its own sandboxes, no package state changed (see export_test.go)
	for _, repair := range []bool{true, false} {
		name := "timeout"
		if repair {
			name = "held-then-met"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rolloutHealthGate(t, repair)
		})
	}
}

func rolloutHealthGate(t *testing.T, repair bool) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.37.2", NodeVersion: "v1.36.3", Nodes: 10, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cs := c.Client()
	createProbe(ctx, t, cs)

	var upgrades atomic.Int64
	broken := make(chan time.Time, 1)
	up := &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: 4 * time.Second, Fail: func(string) error {
		if upgrades.Add(1) == 2 {
			setCrashLoop(ctx, t, cs, true)
			broken <- time.Now()
		}
		return nil
	}}
	var mu sync.Mutex
	var held []rollout.Event
	var repaired time.Time
	opts := testOptions(1)
	opts.Progress = func(e rollout.Event) {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(e.Message, "admitting no node until the health gate is met") {
			held = append(held, e)
		}
	}
	if !repair {
		opts.GateTimeout = 20 * time.Second
	} else {
		go func() {
			// Repair once admission has been held a while.
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
				mu.Lock()
				n := len(held)
				mu.Unlock()
				if n > 0 {
					time.Sleep(5 * time.Second)
					mu.Lock()
					repaired = time.Now()
					mu.Unlock()
					setCrashLoop(ctx, t, cs, false)
					return
				}
			}
		}()
	}
	r := &rollout.Roller{Client: cs, Upgrader: up, Options: opts}
	res, err := r.Run(ctx)
	mu.Lock()
	defer mu.Unlock()
	var when time.Time
	select {
	case when = <-broken:
	default:
		t.Fatalf("the workload was never broken (%d upgrades); rollout: %v", upgrades.Load(), err)
	}

	if !repair {
		if err == nil || !strings.Contains(err.Error(), "health gate") || !strings.Contains(err.Error(), "gate-probe") || !strings.Contains(err.Error(), "crash-looping") {
			t.Fatalf("want the rollout stopped by the health gate naming the crash-looping gate-probe, got %v", err)
		}
		if !res.Stopped {
			t.Error("result not marked stopped")
		}
		left := 0
		for _, nr := range res.Nodes {
			if nr.Outcome != "upgraded" {
				left++
			}
		}
		if left == 0 {
			t.Error("every node was upgraded although the gate failed")
		}
		assertCordoned(ctx, t, c, map[string]bool{})
		t.Logf("stopped %s after the break with %d of %d nodes not upgraded: %v", time.Since(when).Round(time.Second), left, len(res.Nodes), err)
		return
	}

	if err != nil {
		t.Fatalf("the rollout failed although the workload was repaired: %v", err)
	}
	if len(held) == 0 {
		t.Fatal("admission was never held although the gate stayed unmet past its hold")
	}
	if !strings.Contains(held[0].Message, "gate-probe") {
		t.Errorf("the hold does not name the workload: %s", held[0].Message)
	}
	if repaired.IsZero() {
		t.Fatal("the workload was never repaired")
	}
	// Between the hold and the repair no node may be admitted. (A wave's
	// start is taken when it is admitted, before any later look can
	// hold; its cordon event may come a moment after.)
	for _, wv := range res.Waves {
		if wv.Started.After(held[0].Time) && wv.Started.Before(repaired) {
			t.Errorf("wave %d %v was admitted at %s, while admission was held (%s to %s)", wv.Index, wv.Nodes, wv.Started.Format("15:04:05.000"), held[0].Time.Format("15:04:05.000"), repaired.Format("15:04:05.000"))
		}
	}
	for n, nr := range res.Nodes {
		if nr.Outcome != "upgraded" {
			t.Errorf("node %s: %s (%s)", n, nr.Outcome, nr.Reason)
		}
	}
	assertCordoned(ctx, t, c, map[string]bool{})
	t.Logf("broken at %s, held at %s, repaired at %s, done in %s", when.Format("15:04:05"), held[0].Time.Format("15:04:05"), repaired.Format("15:04:05"), res.Makespan.Round(time.Second))
}

// createProbe creates gate-probe, two replicas without a PDB, and waits
// for them to be available.
func createProbe(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	replicas := int32(2)
	labels := map[string]string{"app": "gate-probe"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "gate-probe"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/gate-probe:1"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		got, err := cs.AppsV1().Deployments("default").Get(ctx, "gate-probe", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.AvailableReplicas == replicas {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("gate-probe never available: %v", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// setCrashLoop adds or removes the sandbox's crash-loop annotation on
// gate-probe's pod template: a rollout of crash-looping pods, or back.
func setCrashLoop(ctx context.Context, t *testing.T, cs kubernetes.Interface, on bool) {
	value := `"true"`
	if !on {
		value = "null"
	}
	patch := `{"spec":{"template":{"metadata":{"annotations":{"` + sandbox.CrashLoopAnnotation + `":` + value + `}}}}}`
	if _, err := cs.AppsV1().Deployments("default").Patch(ctx, "gate-probe", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Errorf("patching gate-probe: %v", err)
	}
}
