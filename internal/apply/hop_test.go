package apply

import (
	"strings"
	"testing"

	"github.com/kup-project/kup/internal/version"
)

// TestHopDetail: only a hop from a version to itself (finishing what an
// earlier run left part-way) carries a word in the report and summary.
func TestHopDetail(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     string
	}{
		{"v1.36.3", "v1.37.2", ""},
		{"v1.36.3", "v1.36.4", ""},
		{"v1.37.2", "v1.37.2", "earlier run left part-way (the API server was already at v1.37.2)"},
	} {
		got := hopDetail(&version.Hop{From: version.MustParse(tc.from), To: version.MustParse(tc.to)})
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("hop %s → %s: detail %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
}
