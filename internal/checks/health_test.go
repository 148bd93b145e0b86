package checks

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
