package window

import (
	"testing"
	"time"
)

// FuzzParse: Parse never panics; what it accepts prints back to a spec that
// parses to the same window, and the window opens within a week.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Sat 02:00-06:00 Europe/Berlin", "Mon-Fri 22:00-02:00", "Sat,Sun 00:00-24:00 UTC",
		"daily 01:00-05:00", "01:00-05:00", "Fri-Mon 1:00-3:00 Asia/Tokyo", "Sat 24:00-01:00",
		"Sat 02:00-06:00 ../x", "", "-", ",", "Mon- 1:00-2:00", "Sat 2:-3:00",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		w, err := Parse(spec)
		if err != nil {
			if w != nil {
				t.Fatalf("Parse(%q) returned a window and an error", spec)
			}
			return
		}
		again, err := Parse(w.String())
		if err != nil || again.String() != w.String() {
			t.Fatalf("Parse(%q) = %s, which reads back as %v, %v", spec, w, again, err)
		}
		s, e := w.Next(now)
		if s.IsZero() || !e.After(s) || s.Sub(now) > 8*24*time.Hour {
			t.Fatalf("%s: Next(%s) = %s – %s", w, now, s, e)
		}
	})
}

// FuzzParseCron: ParseCron never panics, and an accepted expression opens.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"0 2 * * 6", "*/15 9-17 * * MON-FRI", "@daily", "0 0 29 2 *", "1-5/0 * * * *", "* * * * *", "0 0 31 4 *"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		w, err := ParseCron(expr, time.Hour, nil)
		if err != nil {
			return
		}
		if s, e := w.Next(now); s.IsZero() || !e.After(s) {
			t.Fatalf("%s: Next(%s) = %s – %s", w, now, s, e)
		}
	})
}
