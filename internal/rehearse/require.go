package rehearse

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// DefaultMaxAge is how old a rehearsal may be for --require-rehearsal: a
// day, so a rehearsal run the evening before a morning upgrade counts.
const DefaultMaxAge = 24 * time.Hour

// LoadReports reads every rehearsal.json under dir (one directory per
// rehearsal), newest first; unreadable ones are skipped.
func LoadReports(dir string) ([]Report, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*", "rehearsal.json"))
	if err != nil {
		return nil, err
	}
	var out []Report
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var r Report
		if json.Unmarshal(data, &r) == nil && r.Kind == ReportKind {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Finished.After(out[j].Finished) })
	return out, nil
}

// ErrNoRehearsal is wrapped by Require's refusals.
var ErrNoRehearsal = errors.New("no passing rehearsal")

// Require finds a passing rehearsal of the same cluster (the caller read
// the reports of its fingerprint), plan and target, finished within
// maxAge of now. The error says what the nearest candidate lacked.
func Require(reports []Report, planHash, to string, now time.Time, maxAge time.Duration) (*Report, error) {
	if len(reports) == 0 {
		return nil, fmt.Errorf("%w: this cluster was never rehearsed (run `kup rehearse` with the same flags first)", ErrNoRehearsal)
	}
	var why []string
	for i := range reports {
		r := &reports[i]
		switch {
		case r.To != to:
			why = append(why, fmt.Sprintf("%s rehearsed %s, not %s", stamp(r), r.To, to))
		case r.PlanHash != planHash:
			why = append(why, fmt.Sprintf("%s rehearsed another plan (different flags)", stamp(r)))
		case !r.Passed:
			why = append(why, fmt.Sprintf("%s failed: %s", stamp(r), firstLine(r.Reason, len(r.Refused))))
		case now.Sub(r.Finished) > maxAge:
			why = append(why, fmt.Sprintf("%s passed but is %s old (bound %s)", stamp(r), now.Sub(r.Finished).Round(time.Minute), maxAge))
		default:
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w of this plan to %s younger than %s: the latest — %s", ErrNoRehearsal, to, maxAge, why[0])
}

func stamp(r *Report) string { return "the rehearsal of " + r.Finished.Local().Format(time.RFC3339) }

func firstLine(reason string, refused int) string {
	if reason != "" {
		return reason
	}
	return fmt.Sprintf("%d manifest(s) refused by the target version", refused)
}
