package checks

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/rollout"
)

func TestHealth(t *testing.T) {
	warn := func(reason, kind, name string, count int32) corev1.Event {
		return corev1.Event{Type: corev1.EventTypeWarning, Reason: reason, Count: count, Message: reason + " on " + name,
			InvolvedObject: corev1.ObjectReference{Kind: kind, Namespace: "ns", Name: name},
			LastTimestamp:  metav1.Time{Time: testNow}}
	}
	for _, tc := range []struct {
		name   string
		nodes  []corev1.Node
		pods   []corev1.Pod
		events []corev1.Event
		want   []string
	}{
		{name: "healthy cluster", nodes: []corev1.Node{mkNode("a")}, pods: []corev1.Pod{mkPod("ns", "p", "a")}},
		{
			name:  "node states",
			nodes: []corev1.Node{mkNode("down", withCondition(corev1.NodeReady, corev1.ConditionUnknown, "NodeStatusUnknown")), mkNode("new", noConditions), mkNode("full", withCondition(corev1.NodeDiskPressure, corev1.ConditionTrue, "")), mkNode("ok", withCondition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "")), mkNode("off", cordoned)},
			want:  []string{"blocker KUP-NODE-001 Node down", "blocker KUP-NODE-001 Node new", "warning KUP-NODE-002 Node full", "info KUP-NODE-003 Node off"},
		},
		{
			name:  "pod states grouped by workload",
			nodes: []corev1.Node{mkNode("a")},
			pods: []corev1.Pod{
				mkPod("ns", "web-1", "", ownedBy("StatefulSet", "web"), phase(corev1.PodPending)),
				mkPod("ns", "web-2", "", ownedBy("StatefulSet", "web"), phase(corev1.PodPending)),
				mkPod("ns", "crash", "a", crashLoop),
				mkPod("ns", "slow", "a", ownedBy("DaemonSet", "agent"), notReady),
				mkPod("ns", "going", "a", notReady, terminating),
				mkPod("ns", "done", "a", phase(corev1.PodSucceeded), notReady),
			},
			want: []string{"warning KUP-POD-001 StatefulSet ns/web", "warning KUP-POD-002 Pod ns/crash", "warning KUP-POD-003 DaemonSet ns/agent"},
		},
		{
			name:   "events grouped by reason and kind",
			nodes:  []corev1.Node{mkNode("a")},
			events: []corev1.Event{warn("BackOff", "Pod", "x", 3), warn("BackOff", "Pod", "y", 0), warn("BackOff", "Node", "a", 1), warn("FailedMount", "Pod", "x", 2), {Type: corev1.EventTypeNormal, Reason: "Started"}},
			want:   []string{"info KUP-EVT-001 Pod ns/x", "info KUP-EVT-001 Node ns/a", "info KUP-EVT-001 Pod ns/x"},
		},
	} {
		s := snapshot(tc.nodes, tc.pods)
		s.Events = tc.events
		checkKeys(t, tc.name, Health(Input{Snapshot: s}), tc.want)
	}
}

// kupState records a kup run's state on the node as the rollout writes
// it; raw replaces the annotation with text as it is.
// down: the kubelet stopped posting status.
func down(n *corev1.Node) {
	n.Status.Conditions[0] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown"}
}

func kupState(target, phase string, cordonedByKup bool) nodeOpt {
	return func(n *corev1.Node) {
		st, _ := json.Marshal(rollout.NodeState{Target: target, Phase: phase, CordonedByKup: cordonedByKup, Updated: testNow.Add(-time.Hour)})
		n.Annotations = map[string]string{rollout.StateAnnotation: string(st)}
	}
}

func rawState(text string) nodeOpt {
	return func(n *corev1.Node) { n.Annotations = map[string]string{rollout.StateAnnotation: text} }
}

func pending(target string) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: rollout.PendingTaint, Value: target, Effect: corev1.TaintEffectPreferNoSchedule})
	}
}

// TestHealthKupLeftovers: what an unfinished kup run leaves on nodes — a
// cordon it owns, its pending taint — is reported as kup's to give back,
// not as a cordon kup keeps "as found".
func TestHealthKupLeftovers(t *testing.T) {
	const to = "v1.37.2"
	for _, tc := range []struct {
		name  string
		nodes []corev1.Node
		want  []string
	}{
		{name: "cordoned by kup mid-drain", nodes: []corev1.Node{mkNode("a", cordoned, kupState(to, rollout.StepDrain, true))}, want: []string{"warning KUP-NODE-004 Node a"}},
		{name: "cordoned by kup, upgrade failed", nodes: []corev1.Node{mkNode("a", cordoned, kupState(to, rollout.StepFailed, true))}, want: []string{"warning KUP-NODE-004 Node a"}},
		{name: "not Ready inside kup's upgrade", nodes: []corev1.Node{mkNode("a", cordoned, down, kupState(to, rollout.StepUpgrade, true)), mkNode("b", cordoned, down, kupState(to, rollout.StepReady, true))}, want: []string{"warning KUP-NODE-004 Node a", "warning KUP-NODE-004 Node b"}},
		{name: "not Ready, kup's upgrade failed", nodes: []corev1.Node{mkNode("a", cordoned, down, kupState(to, rollout.StepFailed, true))}, want: []string{"blocker KUP-NODE-001 Node a", "warning KUP-NODE-004 Node a"}},
		{name: "not Ready while kup drains it", nodes: []corev1.Node{mkNode("a", cordoned, down, kupState(to, rollout.StepDrain, true))}, want: []string{"blocker KUP-NODE-001 Node a", "warning KUP-NODE-004 Node a"}},
		{name: "not Ready inside kup's upgrade, uncordoned by hand", nodes: []corev1.Node{mkNode("a", down, kupState(to, rollout.StepUpgrade, true))}, want: []string{"blocker KUP-NODE-001 Node a"}},
		{name: "not Ready in an upgrade, the cordon its operator's", nodes: []corev1.Node{mkNode("a", cordoned, down, kupState(to, rollout.StepUpgrade, false))}, want: []string{"blocker KUP-NODE-001 Node a", "info KUP-NODE-003 Node a"}},
		{name: "cordoned before kup came", nodes: []corev1.Node{mkNode("a", cordoned, kupState(to, rollout.StepDrain, false))}, want: []string{"info KUP-NODE-003 Node a"}},
		{name: "cordoned again after kup was done", nodes: []corev1.Node{mkNode("a", cordoned, kupState(to, rollout.StepDone, false))}, want: []string{"info KUP-NODE-003 Node a"}},
		{name: "kup's state but uncordoned by hand", nodes: []corev1.Node{mkNode("a", kupState(to, rollout.StepDrain, true))}},
		{name: "unreadable state", nodes: []corev1.Node{mkNode("a", cordoned, rawState("{not json"))}, want: []string{"info KUP-NODE-003 Node a"}},
		{name: "a user's PreferNoSchedule taint", nodes: []corev1.Node{mkNode("a", taint("example.com/slow"))}},
		{
			name: "pending taints grouped by version",
			nodes: []corev1.Node{
				mkNode("n1", pending(to)), mkNode("n2", pending(to)), mkNode("n3", pending(to)), mkNode("n4", pending(to)),
				mkNode("n5", pending(to)), mkNode("n6", pending(to)), mkNode("n7", pending(to)), mkNode("old", pending("v1.36.3")), mkNode("clean"),
			},
			want: []string{"warning KUP-NODE-005 Node n1", "warning KUP-NODE-005 Node old"},
		},
	} {
		checkKeys(t, tc.name, Health(Input{Snapshot: snapshot(tc.nodes, nil)}), tc.want)
	}

	// The messages name the version to run again to, and the nodes.
	fs := Health(Input{Snapshot: snapshot([]corev1.Node{
		mkNode("a", cordoned, kupState(to, rollout.StepDrain, true)),
		mkNode("b", cordoned, kupState(to, rollout.StepFailed, true)),
		mkNode("c", cordoned, down, kupState(to, rollout.StepUpgrade, true)),
		mkNode("n1", pending(to)), mkNode("n2", pending(to)), mkNode("n3", pending(to)), mkNode("n4", pending(to)),
		mkNode("n5", pending(to)), mkNode("n6", pending(to)), mkNode("n7", pending(to)),
	}, nil)})
	want := map[string]string{
		"a":  "node a was cordoned by a kup run to v1.37.2 that is under way or did not finish (its last step: drain, recorded 2026-11-25 11:00 UTC); a run to v1.37.2 resumes it, and any kup run that upgrades the node uncordons it",
		"b":  "node b was left cordoned by a kup run to v1.37.2 when its upgrade failed (its state annotation upgrade.kup.dev/state, recorded 2026-11-25 11:00 UTC)",
		"c":  "node c was cordoned by a kup run to v1.37.2 that stopped inside the node's upgrade (its last step: upgrade, recorded 2026-11-25 11:00 UTC) and is not Ready, its kubelet not back; a run to v1.37.2 runs the upgrade again, and any kup run that upgrades the node uncordons it",
		"n1": "7 node(s) carry kup's taint upgrade.kup.dev/pending:PreferNoSchedule from a kup run to v1.37.2 that is under way or did not finish: n1, n2, n3, n4, n5, and 2 more",
	}
	for _, f := range fs {
		if w, ok := want[f.Objects[0].Name]; ok {
			if f.Message != w {
				t.Errorf("%s on %s:\n got %s\nwant %s", f.ID, f.Objects[0].Name, f.Message, w)
			}
			delete(want, f.Objects[0].Name)
		}
	}
	for n := range want {
		t.Errorf("no finding on %s", n)
	}
	for _, f := range fs {
		if f.ID == NodeKupPending && len(f.Objects) != 7 {
			t.Errorf("the pending-taint finding names %d nodes, want all 7", len(f.Objects))
		}
	}
}

func TestHealthMessages(t *testing.T) {
	s := snapshot(nil, nil)
	s.Events = []corev1.Event{
		{Type: corev1.EventTypeWarning, Reason: "BackOff", Count: 3, Message: "old", InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "x"}, LastTimestamp: metav1.Time{Time: testNow.Add(-50 * 60e9)}},
		{Type: corev1.EventTypeWarning, Reason: "BackOff", Count: 0, Message: "newest", InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "y"}, LastTimestamp: metav1.Time{Time: testNow}},
	}
	fs := Health(Input{Snapshot: s})
	if len(fs) != 1 || !strings.HasPrefix(fs[0].Message, "4 × BackOff on 2 Pods") || !strings.Contains(fs[0].Message, "latest: newest") {
		t.Errorf("want one group counting 4 events on 2 pods with the newest message, got %+v", fs)
	}
	s = snapshot([]corev1.Node{mkNode("off", cordoned)}, nil)
	if fs := Health(Input{Snapshot: s}); len(fs) != 1 || !strings.Contains(fs[0].Message, "leave it cordoned") {
		t.Errorf("a cordoned node's finding must say kup leaves it cordoned: %+v", fs)
	}
}
