package action

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kup-project/kup/internal/rollout"
)

// TestNodeLeftovers: kup status names the nodes kup runs began and did
// not finish, from their state annotations, and how to finish them.
func TestNodeLeftovers(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	node := func(name string, st *rollout.NodeState, cordoned bool, ready corev1.ConditionStatus, taint string) corev1.Node {
		n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Unschedulable: cordoned}}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
		if st != nil {
			b, _ := json.Marshal(st)
			n.Annotations = map[string]string{rollout.StateAnnotation: string(b)}
		}
		if taint != "" {
			n.Spec.Taints = []corev1.Taint{{Key: rollout.PendingTaint, Value: taint, Effect: corev1.TaintEffectPreferNoSchedule}}
		}
		return n
	}
	at := func(target, phase string, byKup bool) *rollout.NodeState {
		return &rollout.NodeState{Target: target, Phase: phase, CordonedByKup: byKup, Updated: now.Add(-3 * time.Minute)}
	}
	if got := nodeLeftovers([]corev1.Node{
		node("done", at("v1.37.2", rollout.StepDone, false), false, corev1.ConditionTrue, ""),
		node("never", nil, true, corev1.ConditionTrue, ""),
	}, now); got != nil {
		t.Errorf("finished and untouched nodes: %q, want nothing", got)
	}
	got := strings.Join(nodeLeftovers([]corev1.Node{
		node("b", at("v1.37.2", rollout.StepUpgrade, true), true, corev1.ConditionUnknown, "v1.37.2"),
		node("a", at("v1.37.2", rollout.StepDrain, false), true, corev1.ConditionTrue, "v1.37.2"),
		node("c", at("v1.36.3", rollout.StepFailed, true), true, corev1.ConditionTrue, ""),
		node("d", nil, false, corev1.ConditionTrue, "v1.37.2"),
		node("e", at("v1.37.2", rollout.StepCordon, true), false, corev1.ConditionTrue, ""),
	}, now), "\n")
	want := strings.Join([]string{
		"Nodes kup runs have not finished (their state annotation " + rollout.StateAnnotation + "):",
		"  a: run to v1.37.2, last step drain 3m0s ago; cordoned by its operator (kup leaves that)",
		"  b: run to v1.37.2, last step upgrade 3m0s ago; cordoned by kup; Ready=Unknown",
		"  c: run to v1.36.3, last step failed 3m0s ago; cordoned by kup",
		"  e: run to v1.37.2, last step cordon 3m0s ago; not cordoned",
		"  3 node(s) carry kup's pending taint of a run to v1.37.2",
		"If no kup run is under way, finish them with kup apply --to v1.36.3, or kup apply --to v1.37.2 (or kup nodes upgrade --to the same version).",
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestLockHolder: kup status says whether a kup is at work from the
// upgrade lock: held and renewed, held by one that stopped renewing it
// (killed), or free.
func TestLockHolder(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	lease := func(holder string, renewedAgo time.Duration, ttl int32) *coordinationv1.Lease {
		l := &coordinationv1.Lease{}
		if holder != "" {
			l.Spec.HolderIdentity = ptr.To(holder)
			l.Spec.RenewTime = &metav1.MicroTime{Time: now.Add(-renewedAgo)}
		}
		if ttl > 0 {
			l.Spec.LeaseDurationSeconds = ptr.To(ttl)
		}
		return l
	}
	for _, tc := range []struct {
		name string
		l    *coordinationv1.Lease
		want string
	}{
		{"free (released)", lease("", 0, 60), "no kup (the upgrade lock is free)"},
		{"at work", lease("ana@laptop pid 7 nodes upgrade to v1.37.2", 3*time.Second, 60), "ana@laptop pid 7 nodes upgrade to v1.37.2 (it renewed the upgrade lock 3s ago; another kup waits for it to finish)"},
		{"stopped renewing", lease("ana@laptop pid 7 run x", 5*time.Minute, 60), "no kup; ana@laptop pid 7 run x holds the upgrade lock but stopped renewing it 5m0s ago (killed, or asleep): the next kup takes it over"},
		{"its own TTL", lease("ana@laptop pid 7 run x", 8*time.Second, 5), "stopped renewing it 8s ago"},
		{"no TTL recorded: kup's default", lease("ana@laptop pid 7 run x", 30*time.Second, 0), "renewed the upgrade lock 30s ago"},
	} {
		if got := lockHolder(tc.l, now); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
