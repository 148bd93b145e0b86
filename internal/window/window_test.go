package window

import (
	"errors"
	"math/rand"
	"strings"
	"testing"
	"time"
)

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseString(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"Sat 02:00-06:00 Europe/Berlin", "Sat 02:00-06:00 Europe/Berlin"},
		{"sat 2:00-06:00", "Sat 02:00-06:00 UTC"},
		{"  Mon-Fri   22:00-02:00  ", "Mon-Fri 22:00-02:00 UTC"},
		{"Sat,Sun 00:00-24:00 UTC", "Sat,Sun 00:00-24:00 UTC"},
		{"daily 01:00-05:00 America/New_York", "daily 01:00-05:00 America/New_York"},
		{"DAILY 01:00-05:00", "daily 01:00-05:00 UTC"},
		{"Fri-Mon 01:00-03:00", "Mon,Fri-Sun 01:00-03:00 UTC"},
		{"01:00-05:00 Asia/Tokyo", "daily 01:00-05:00 Asia/Tokyo"},
		{"Monday,Wednesday 03:00-04:00", "Mon,Wed 03:00-04:00 UTC"},
		{"Mon,Tue,Wed,Thu,Fri,Sat,Sun 03:00-04:00", "daily 03:00-04:00 UTC"},
		{"Sun-Sat 03:00-04:00", "daily 03:00-04:00 UTC"},
		{"Mon-Mon 03:00-04:00", "Mon 03:00-04:00 UTC"},
		{"Mon-Wed,Fri 23:30-00:15", "Mon-Wed,Fri 23:30-00:15 UTC"},
	} {
		w, err := Parse(tc.spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.spec, err)
			continue
		}
		if got := w.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.spec, got, tc.want)
		}
		again, err := Parse(w.String())
		if err != nil || again.String() != w.String() {
			t.Errorf("Parse(%q) does not read back: %v %v", w.String(), again, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		spec, part, reason string
		zoneErr            bool
	}{
		{"", "the specification", "empty", false},
		{"Sat", `days "Sat"`, "time range HH:MM-HH:MM is missing", false},
		{"Sat 02:00", `time range "02:00"`, "expected HH:MM-HH:MM", false},
		{"Sat 02:00-26:00", `end time "26:00"`, "hours run 00-23", false},
		{"Sat 02:60-03:00", `start time "02:60"`, "minutes run 00-59", false},
		{"Sat 24:00-03:00", `start time "24:00"`, "24:00 may only end a window", false},
		{"Sat 02:00-02:00", `time range "02:00-02:00"`, "00:00-24:00", false},
		{"Sta 02:00-06:00", `days "Sta"`, `"Sta" is not a day`, false},
		{"Mon-Frx 01:00-02:00", `days "Mon-Frx"`, `"Frx" is not a day`, false},
		{"Sat 0200-0600", `start time "0200"`, "expected a time HH:MM", false},
		{"Sat 02:00-06:00 Mars/Olympus_Mons", `time zone "Mars/Olympus_Mons"`, "IANA zone", true},
		{"Sat 02:00-06:00 ../../etc/passwd", `time zone "../../etc/passwd"`, "IANA zone", true},
		{"Sat 02:00-06:00 UTC extra", `"extra"`, "unexpected text", false},
	} {
		_, err := Parse(tc.spec)
		var we *Error
		if !errors.As(err, &we) {
			t.Errorf("Parse(%q) = %v, want a *window.Error", tc.spec, err)
			continue
		}
		msg := err.Error()
		if we.Part != tc.part || !strings.Contains(we.Reason, tc.reason) || !strings.Contains(msg, exampleSpec) {
			t.Errorf("Parse(%q) error %q: want part %s, reason containing %q and the example", tc.spec, msg, tc.part, tc.reason)
		}
		if tc.zoneErr != (errors.Unwrap(err) != nil) {
			t.Errorf("Parse(%q): wrapped error %v, want one: %v", tc.spec, errors.Unwrap(err), tc.zoneErr)
		}
	}
}

// at is one probe of a window: whether t is inside, the opening Next
// returns, and what Remaining says.
type at struct {
	t          string
	inside     bool
	start, end string
	remaining  time.Duration
}

func probe(t *testing.T, w *Window, cases []at) {
	t.Helper()
	for _, c := range cases {
		tt := utc(c.t)
		s, e := w.Next(tt)
		if got := w.Contains(tt); got != c.inside {
			t.Errorf("%s: Contains(%s) = %v, want %v", w, c.t, got, c.inside)
		}
		if !s.Equal(utc(c.start)) || !e.Equal(utc(c.end)) {
			t.Errorf("%s: Next(%s) = %s – %s, want %s – %s", w, c.t, s.UTC().Format(time.RFC3339), e.UTC().Format(time.RFC3339), c.start, c.end)
		}
		if got := w.Remaining(tt); got != c.remaining {
			t.Errorf("%s: Remaining(%s) = %s, want %s", w, c.t, got, c.remaining)
		}
	}
}

func TestNextUTC(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		cases []at
	}{
		// 2026-07-04 is a Saturday.
		{"Sat 02:00-06:00", []at{
			{"2026-07-04T03:00:00Z", true, "2026-07-04T02:00:00Z", "2026-07-04T06:00:00Z", 3 * time.Hour},
			{"2026-07-04T02:00:00Z", true, "2026-07-04T02:00:00Z", "2026-07-04T06:00:00Z", 4 * time.Hour},
			{"2026-07-04T01:59:59Z", false, "2026-07-04T02:00:00Z", "2026-07-04T06:00:00Z", 0},
			{"2026-07-04T06:00:00Z", false, "2026-07-11T02:00:00Z", "2026-07-11T06:00:00Z", 0},
			{"2026-07-03T12:00:00Z", false, "2026-07-04T02:00:00Z", "2026-07-04T06:00:00Z", 0},
			// A time given in another zone is the same instant.
			{"2026-07-03T23:30:00-04:00", true, "2026-07-04T02:00:00Z", "2026-07-04T06:00:00Z", 2*time.Hour + 30*time.Minute},
		}},
		{"Fri 22:00-02:00", []at{
			{"2026-07-04T01:00:00Z", true, "2026-07-03T22:00:00Z", "2026-07-04T02:00:00Z", time.Hour},
			{"2026-07-02T23:00:00Z", false, "2026-07-03T22:00:00Z", "2026-07-04T02:00:00Z", 0},
		}},
		// Two whole days that touch are one window.
		{"Sat,Sun 00:00-24:00", []at{
			{"2026-07-04T23:00:00Z", true, "2026-07-04T00:00:00Z", "2026-07-06T00:00:00Z", 25 * time.Hour},
			{"2026-07-05T23:00:00Z", true, "2026-07-05T00:00:00Z", "2026-07-06T00:00:00Z", time.Hour},
			{"2026-07-06T00:00:00Z", false, "2026-07-11T00:00:00Z", "2026-07-13T00:00:00Z", 0},
		}},
		{"Mon-Fri 09:00-17:00 America/New_York", []at{
			// 13:00 UTC is 09:00 EDT.
			{"2026-07-06T13:00:00Z", true, "2026-07-06T13:00:00Z", "2026-07-06T21:00:00Z", 8 * time.Hour},
			{"2026-07-04T13:00:00Z", false, "2026-07-06T13:00:00Z", "2026-07-06T21:00:00Z", 0},
		}},
	} {
		w, err := Parse(tc.spec)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.spec, err)
		}
		probe(t, w, tc.cases)
	}
}

func TestNeverClosingWindow(t *testing.T) {
	w, err := Parse("daily 00:00-24:00")
	if err != nil {
		t.Fatal(err)
	}
	now := utc("2026-07-04T10:00:00Z")
	if !w.Contains(now) {
		t.Fatalf("%s does not contain %s", w, now)
	}
	if r := w.Remaining(now); r < 7*24*time.Hour || r > 10*24*time.Hour {
		t.Errorf("Remaining = %s, want about the merge horizon (8 days)", r)
	}
}

// Europe/Berlin changes to summer time on 2026-03-29 (02:00 CET → 03:00
// CEST) and back on 2026-10-25 (03:00 CEST → 02:00 CET).
func TestDaylightSavingBerlin(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		cases []at
	}{
		{"Sun 02:00-06:00 Europe/Berlin", []at{
			// Spring: 02:00 does not exist; the window opens when the clocks
			// jump (01:00Z = 03:00 CEST) and lasts 3 hours.
			{"2026-03-28T12:00:00Z", false, "2026-03-29T01:00:00Z", "2026-03-29T04:00:00Z", 0},
			{"2026-03-29T00:59:59Z", false, "2026-03-29T01:00:00Z", "2026-03-29T04:00:00Z", 0},
			{"2026-03-29T01:00:00Z", true, "2026-03-29T01:00:00Z", "2026-03-29T04:00:00Z", 3 * time.Hour},
			// Autumn: opens at the first 02:00 (CEST, 00:00Z), closes at 06:00
			// CET (05:00Z): 5 hours.
			{"2026-10-24T12:00:00Z", false, "2026-10-25T00:00:00Z", "2026-10-25T05:00:00Z", 0},
			{"2026-10-25T01:30:00Z", true, "2026-10-25T00:00:00Z", "2026-10-25T05:00:00Z", 3*time.Hour + 30*time.Minute},
			{"2026-10-25T05:00:00Z", false, "2026-11-01T01:00:00Z", "2026-11-01T05:00:00Z", 0},
		}},
		{"Sat 22:00-03:00 Europe/Berlin", []at{
			// 22:00 CET → 03:00 CEST is 4 real hours.
			{"2026-03-28T23:00:00Z", true, "2026-03-28T21:00:00Z", "2026-03-29T01:00:00Z", 2 * time.Hour},
			// 22:00 CEST → 03:00 CET is 6 real hours.
			{"2026-10-25T01:30:00Z", true, "2026-10-24T20:00:00Z", "2026-10-25T02:00:00Z", 30 * time.Minute},
		}},
		// Both bounds in the skipped hour: no window that Sunday.
		{"Sun 02:15-02:45 Europe/Berlin", []at{
			{"2026-03-28T12:00:00Z", false, "2026-04-05T00:15:00Z", "2026-04-05T00:45:00Z", 0},
			// In the repeated hour: first 02:15 (CEST) to last 02:45 (CET).
			{"2026-10-25T00:50:00Z", true, "2026-10-25T00:15:00Z", "2026-10-25T01:45:00Z", 55 * time.Minute},
		}},
	} {
		w, err := Parse(tc.spec)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.spec, err)
		}
		probe(t, w, tc.cases)
	}
}

// TestConsistency sweeps windows across both Berlin changes and checks
// that Contains, Next and Remaining agree at every step.
func TestConsistency(t *testing.T) {
	loc := berlin(t)
	var windows []*Window
	for _, spec := range []string{
		"Sun 02:00-06:00 Europe/Berlin", "Sat 22:00-03:00 Europe/Berlin", "daily 02:30-02:45 Europe/Berlin",
		"Sat,Sun 00:00-24:00 Europe/Berlin", "Mon-Fri 23:00-01:00 UTC",
	} {
		w, err := Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		windows = append(windows, w)
	}
	for _, expr := range []string{"30 2 * * *", "*/20 1-3 * * 0", "0 0 * * *"} {
		w, err := ParseCron(expr, 50*time.Minute, loc)
		if err != nil {
			t.Fatal(err)
		}
		windows = append(windows, w)
	}
	for _, from := range []string{"2026-03-27T00:00:00Z", "2026-10-23T00:00:00Z"} {
		for _, w := range windows {
			for tt := utc(from); tt.Before(utc(from).Add(4 * 24 * time.Hour)); tt = tt.Add(7 * time.Minute) {
				s, e := w.Next(tt)
				if s.IsZero() || !e.After(s) {
					t.Fatalf("%s: Next(%s) = %s – %s", w, tt, s, e)
				}
				inside := !tt.Before(s)
				if w.Contains(tt) != inside {
					t.Fatalf("%s at %s: Contains = %v but Next = %s – %s", w, tt, !inside, s, e)
				}
				if r := w.Remaining(tt); inside != (r > 0) || inside && r != e.Sub(tt) {
					t.Fatalf("%s at %s: Remaining = %s, Next = %s – %s", w, tt, r, s, e)
				}
				if !w.Contains(s) || w.Contains(e) || !w.Contains(e.Add(-time.Second)) {
					t.Fatalf("%s: opening %s – %s is not closed-open", w, s, e)
				}
				if !inside && w.Contains(s.Add(-time.Second)) {
					t.Fatalf("%s: inside just before the next opening %s", w, s)
				}
			}
		}
	}
}

// TestAgainstWallClock compares the weekday form with a direct reading of
// the wall clock, on random windows in weeks without a daylight-saving
// change (where the two must agree exactly).
func TestAgainstWallClock(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"}
	for i := 0; i < 200; i++ {
		var days [7]bool
		for d := range days {
			days[d] = rng.Intn(3) == 0
		}
		days[rng.Intn(7)] = true
		start := rng.Intn(24*4) * 15
		end := rng.Intn(24*4+1) * 15
		if end == start {
			continue
		}
		spec := formatDays(days) + " " + formatClock(start) + "-" + formatClock(end) + " " + zones[rng.Intn(len(zones))]
		w, err := Parse(spec)
		if err != nil {
			t.Fatalf("Parse(%q): %v", spec, err)
		}
		for tt := utc("2026-07-01T00:00:00Z"); tt.Before(utc("2026-07-15T00:00:00Z")); tt = tt.Add(11 * time.Minute) {
			local := tt.In(w.loc)
			min := local.Hour()*60 + local.Minute()
			wd := local.Weekday()
			prev := (wd + 6) % 7
			var want bool
			if end > start {
				want = days[wd] && min >= start && min < end
			} else {
				want = days[wd] && min >= start || days[prev] && min < end
			}
			if got := w.Contains(tt); got != want {
				t.Fatalf("%s at %s (%s): Contains = %v, want %v", spec, tt, local, got, want)
			}
		}
	}
}
