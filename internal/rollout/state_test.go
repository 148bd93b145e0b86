package rollout

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNodeStateRecords covers how a run reads what an earlier, killed run
// recorded on a node: whether the cordon is kup's, and whether only the
// finish (Ready, uncordon, done) is left.
func TestNodeStateRecords(t *testing.T) {
	const target = "v1.37.2"
	node := func(st *NodeState, kubelet string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{}}}
		n.Status.NodeInfo.KubeletVersion = kubelet
		if st != nil {
			b, _ := json.Marshal(st)
			n.Annotations[StateAnnotation] = string(b)
		}
		return n
	}
	for _, tc := range []struct {
		name         string
		st           *NodeState
		kubelet      string
		ours, finish bool
	}{
		{"no record", nil, "v1.36.3", false, false},
		// The write-ahead record: killed between it and the cordon.
		{"cordon recorded, not yet upgraded", &NodeState{Target: target, Phase: StepCordon, CordonedByKup: true}, "v1.36.3", true, false},
		{"operator's cordon recorded", &NodeState{Target: target, Phase: StepCordon, CordonedByKup: false}, "v1.36.3", false, false},
		{"drained", &NodeState{Target: target, Phase: StepDrain, CordonedByKup: true}, "v1.36.3", true, false},
		{"upgrading, kubelet not there yet", &NodeState{Target: target, Phase: StepUpgrade, CordonedByKup: true}, "v1.36.3", true, false},
		// Killed after the upgrade (or after the uncordon) before "done".
		{"upgraded, not recorded done", &NodeState{Target: target, Phase: StepUpgrade, CordonedByKup: true}, target, true, true},
		{"done", &NodeState{Target: target, Phase: StepDone}, target, false, false},
		// A run to another version cordoned it: the cordon is kup's all the
		// same, but only that run's own finish is skipped.
		{"other target", &NodeState{Target: "v1.36.3", Phase: StepUpgrade, CordonedByKup: true}, target, true, false},
		{"failed", &NodeState{Target: target, Phase: StepFailed, CordonedByKup: true}, target, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := node(tc.st, tc.kubelet)
			if got := KupOwnsCordon(n); got != tc.ours {
				t.Errorf("KupOwnsCordon = %v, want %v", got, tc.ours)
			}
			if got := upgradedByEarlierRun(n, target); got != tc.finish {
				t.Errorf("upgradedByEarlierRun = %v, want %v", got, tc.finish)
			}
		})
	}
	bad := node(nil, target)
	bad.Annotations[StateAnnotation] = "{not json"
	if KupOwnsCordon(bad) || upgradedByEarlierRun(bad, target) {
		t.Error("a malformed record must count as no record")
	}
}

// TestDue: which nodes a run to a version has work on.
func TestDue(t *testing.T) {
	const target = "v1.37.2"
	for _, tc := range []struct {
		name    string
		st      *NodeState
		kubelet string
		want    bool
	}{
		{"behind", nil, "v1.36.3", true},
		{"at the target", nil, target, false},
		{"done by a kup run", &NodeState{Target: target, Phase: StepDone}, target, false},
		{"upgraded by a killed run, not recorded done", &NodeState{Target: target, Phase: StepUpgrade, CordonedByKup: true}, target, true},
		{"at the target, cordoned by a killed run to another version", &NodeState{Target: "v1.37.1", Phase: StepDrain, CordonedByKup: true}, target, true},
		{"at the target, the operator's cordon recorded", &NodeState{Target: "v1.37.1", Phase: StepDrain}, target, false},
	} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{}}}
		n.Status.NodeInfo.KubeletVersion = tc.kubelet
		if tc.st != nil {
			b, _ := json.Marshal(tc.st)
			n.Annotations[StateAnnotation] = string(b)
		}
		if got := Due(n, target); got != tc.want {
			t.Errorf("%s: Due = %v, want %v", tc.name, got, tc.want)
		}
	}
}
