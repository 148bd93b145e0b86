package rehearse

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRequire(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ok := Report{To: "v1.37.2", PlanHash: "p", Passed: true, Finished: now.Add(-time.Hour)}
	failed := Report{To: "v1.37.2", PlanHash: "p", Reason: "drain blocked", Finished: now.Add(-time.Minute)}
	old := Report{To: "v1.37.2", PlanHash: "p", Passed: true, Finished: now.Add(-48 * time.Hour)}
	other := Report{To: "v1.37.2", PlanHash: "q", Passed: true, Finished: now.Add(-time.Minute)}
	target := Report{To: "v1.36.3", PlanHash: "p", Passed: true, Finished: now.Add(-time.Minute)}
	for _, tc := range []struct {
		name    string
		reports []Report
		want    string // "" = ok accepted
	}{
		{"never rehearsed", nil, "never rehearsed"},
		{"a passing one, newest failed: the passing one counts", []Report{failed, ok}, ""},
		{"only a failed one", []Report{failed}, "failed: drain blocked"},
		{"too old", []Report{old}, "48h0m0s old"},
		{"another plan", []Report{other}, "another plan"},
		{"another target", []Report{target}, "rehearsed v1.36.3, not v1.37.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Require(tc.reports, "p", "v1.37.2", now, DefaultMaxAge)
			if tc.want == "" {
				if err != nil || r == nil || !r.Passed {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrNoRehearsal) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrNoRehearsal saying %q", err, tc.want)
			}
		})
	}
}
