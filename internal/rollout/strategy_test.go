package rollout

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kup-project/kup/internal/plan"
)

// TestNextWaveStrategiesTakeEachNodeOnce walks the comparison strategies
// the way Run does — take a wave, then remove its nodes from remaining in
// place — and checks that every node is taken exactly once and that the
// waves kept for the Result still name the nodes they ran. (A wave that
// aliased remaining once made fixed batches roll some nodes twice and
// others never.)
func TestNextWaveStrategiesTakeEachNodeOnce(t *testing.T) {
	for _, tc := range []struct {
		strategy Strategy
		batch    int
		nodes    int
	}{
		{StrategySequential, 0, 5},
		{StrategyFixedBatch, 1, 4},
		{StrategyFixedBatch, 3, 10},
		{StrategyFixedBatch, 4, 8},
		{StrategyFixedBatch, 20, 7},
	} {
		t.Run(fmt.Sprintf("%s-%d-of-%d", tc.strategy, tc.batch, tc.nodes), func(t *testing.T) {
			r := &Roller{Options: Options{Strategy: tc.strategy, BatchSize: tc.batch}}
			var todo []string
			for i := range tc.nodes {
				todo = append(todo, fmt.Sprintf("node-%02d", i))
			}
			remaining := slices.Clone(todo)
			var waves [][]string
			var taken []string
			for len(remaining) > 0 && len(waves) <= tc.nodes {
				w, _, _ := r.nextWave(nil, remaining, nil, 0)
				waves = append(waves, w.Nodes)
				for _, n := range w.Nodes {
					taken = append(taken, n)
					remaining = remove(remaining, n)
				}
			}
			if !slices.Equal(taken, todo) {
				t.Errorf("nodes taken %v, want each of %v once, in order", taken, todo)
			}
			if got := slices.Concat(waves...); !slices.Equal(got, todo) {
				t.Errorf("waves %v no longer name the nodes they took", waves)
			}
			size := max(tc.batch, 1)
			for i, w := range waves {
				if want := min(size, tc.nodes-i*size); len(w) != want {
					t.Errorf("wave %d has %d nodes, want %d", i+1, len(w), want)
				}
			}
		})
	}
}

// TestMayOverlap: which waves let the next one start early.
func TestMayOverlap(t *testing.T) {
	on := Options{Overlap: true, Strategy: StrategyWaves}
	with := func(f func(*Options)) Options { o := on; f(&o); return o }
	worker, cp := plan.Wave{Nodes: []string{"n1"}}, plan.Wave{Nodes: []string{"cp"}, ControlPlane: true}
	for _, tc := range []struct {
		name        string
		o           Options
		wave        plan.Wave
		anyUpgraded bool
		want        bool
	}{
		{"a worker wave after the canary", on, worker, true, true},
		{"the canary", on, worker, false, false},
		{"a control-plane wave", on, cp, true, false},
		{"overlap off", with(func(o *Options) { o.Overlap = false }), worker, true, false},
		{"zone by zone", with(func(o *Options) { o.Policy.ZoneByZone = true }), worker, true, false},
		{"a soak", with(func(o *Options) { o.Soak = time.Minute }), worker, true, false},
		{"sequential", with(func(o *Options) { o.Strategy = StrategySequential }), worker, true, false},
		{"fixed batches", with(func(o *Options) { o.Strategy = StrategyFixedBatch }), worker, true, false},
		{"strategy left empty, as the dry run sees it", with(func(o *Options) { o.Strategy = "" }), worker, true, true},
	} {
		if got := mayOverlap(tc.o, tc.wave, tc.anyUpgraded); got != tc.want {
			t.Errorf("%s: mayOverlap = %v, want %v", tc.name, got, tc.want)
		}
	}
}
