package action

import "testing"

func TestRolloutShape(t *testing.T) {
	for _, tc := range []struct {
		waves      int
		continuous bool
		down       int
		want       string
	}{
		{15, false, 12, "in 15 wave(s), at most 12 down at once"},
		{70, true, 38, "admitted continuously (70 start(s)), at most 38 down at once"},
		{0, false, 0, "in 0 wave(s)"},
	} {
		if got := RolloutShape(tc.waves, tc.continuous, tc.down); got != tc.want {
			t.Errorf("RolloutShape(%d, %v, %d) = %q, want %q", tc.waves, tc.continuous, tc.down, got, tc.want)
		}
	}
}
