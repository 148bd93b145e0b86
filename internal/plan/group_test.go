package plan

import "testing"

func TestGroupLimit(t *testing.T) {
	wave := func(i, n int, k LimitKind) Wave {
		w := Wave{Index: i, Limit: Limit{Kind: k, Reason: string(k)}}
		for range n {
			w.Nodes = append(w.Nodes, "n")
		}
		return w
	}
	for _, tc := range []struct {
		name  string
		waves []Wave
		want  int
	}{
		{name: "no waves: one at a time", want: 1},
		{name: "one wave takes them all", waves: []Wave{wave(1, 4, LimitNoMoreNodes)}, want: 4},
		{name: "the tightest rule-limited wave", waves: []Wave{wave(1, 3, LimitPDB), wave(2, 2, LimitPDB), wave(3, 1, LimitNoMoreNodes)}, want: 2},
		{name: "canary waves do not count", waves: []Wave{wave(1, 1, LimitCanary), wave(2, 3, LimitMaxUnavailable), wave(3, 3, LimitNoMoreNodes)}, want: 3},
		{name: "the last remainder does not count", waves: []Wave{wave(1, 3, LimitCapacity), wave(2, 1, LimitNoMoreNodes)}, want: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := GroupLimit(Plan{Waves: tc.waves})
			if got != tc.want || why == "" {
				t.Errorf("GroupLimit = %d (%q), want %d with a reason", got, why, tc.want)
			}
		})
	}
}
