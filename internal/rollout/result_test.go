package rollout

import (
	"testing"
	"time"
)

// TestMostDown: nodes count as down from their first step's start to
// their last step's end; a node ending as another starts at that instant
// hands over its slot.
func TestMostDown(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	node := func(spans ...[2]int) *NodeResult {
		nr := &NodeResult{}
		for _, sp := range spans {
			nr.Steps = append(nr.Steps, StepTime{Step: StepDrain, Start: at(sp[0]), End: at(sp[1])})
		}
		return nr
	}
	for _, tc := range []struct {
		name  string
		nodes []*NodeResult
		want  int
	}{
		{"none", nil, 0},
		{"not started", []*NodeResult{{Outcome: "not-started"}}, 0},
		{"one after another", []*NodeResult{node([2]int{0, 10}), node([2]int{10, 20}), node([2]int{20, 30})}, 1},
		{"overlapping", []*NodeResult{node([2]int{0, 10}), node([2]int{5, 15}), node([2]int{8, 20}), node([2]int{16, 30})}, 3},
		// Steps recorded out of order (a step is recorded when it ends):
		// the node is down from the earliest start to the latest end.
		{"steps out of order", []*NodeResult{node([2]int{12, 20}, [2]int{0, 12}), node([2]int{5, 6})}, 2},
	} {
		res := &Result{Nodes: map[string]*NodeResult{}}
		for i, n := range tc.nodes {
			res.Nodes[string(rune('a'+i))] = n
		}
		if got := res.MostDown(); got != tc.want {
			t.Errorf("%s: MostDown %d, want %d", tc.name, got, tc.want)
		}
	}
}
