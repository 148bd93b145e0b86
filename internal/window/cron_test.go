package window

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// openings lists the first n opening times of w from t.
func openings(w *Window, t time.Time, n int) []string {
	var out []string
	for len(out) < n {
		s, e := w.Next(t)
		if s.IsZero() {
			break
		}
		out = append(out, s.UTC().Format(time.RFC3339))
		t = e
	}
	return out
}

func TestCronOpenings(t *testing.T) {
	for _, tc := range []struct {
		expr, from string
		want       []string
	}{
		// 2026-03-28 is a Saturday.
		{"0 2 * * 6", "2026-03-25T00:00:00Z", []string{"2026-03-28T02:00:00Z", "2026-04-04T02:00:00Z", "2026-04-11T02:00:00Z"}},
		{"0 2 * * sat", "2026-03-25T00:00:00Z", []string{"2026-03-28T02:00:00Z", "2026-04-04T02:00:00Z"}},
		{"*/15 9-10 * * 1-5", "2026-03-27T10:40:00Z", []string{"2026-03-27T10:45:00Z", "2026-03-30T09:00:00Z", "2026-03-30T09:15:00Z"}},
		{"0,30 22 * * MON-SUN", "2026-03-25T22:10:00Z", []string{"2026-03-25T22:30:00Z", "2026-03-26T22:00:00Z"}},
		// Both day fields restricted: either matches (Vixie). 2026-03-01 is
		// a Sunday, the 2nd a Monday.
		{"0 0 1,15 * 1", "2026-03-01T00:00:00Z", []string{"2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z", "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z"}},
		// A day-of-month led by * makes both fields required: Fridays that
		// fall on the 1st, 11th, 21st or 31st.
		{"0 0 */10 * 5", "2026-01-01T00:00:00Z", []string{"2026-05-01T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-21T00:00:00Z"}},
		{"0 12 * * 7", "2026-03-25T00:00:00Z", []string{"2026-03-29T12:00:00Z"}},
		{"0 3 1-7 JAN,jul *", "2026-03-25T00:00:00Z", []string{"2026-07-01T03:00:00Z", "2026-07-02T03:00:00Z"}},
		{"@weekly", "2026-03-25T00:00:00Z", []string{"2026-03-29T00:00:00Z", "2026-04-05T00:00:00Z"}},
		{"@monthly", "2026-03-25T00:00:00Z", []string{"2026-04-01T00:00:00Z"}},
		{"@hourly", "2026-03-25T10:01:00Z", []string{"2026-03-25T11:00:00Z"}},
		{"0 0 29 2 *", "2026-03-25T00:00:00Z", []string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		{"10-20/5 4 * * *", "2026-03-25T00:00:00Z", []string{"2026-03-25T04:10:00Z", "2026-03-25T04:15:00Z", "2026-03-25T04:20:00Z", "2026-03-26T04:10:00Z"}},
	} {
		w, err := ParseCron(tc.expr, time.Minute, nil)
		if err != nil {
			t.Errorf("ParseCron(%q): %v", tc.expr, err)
			continue
		}
		got := openings(w, utc(tc.from), len(tc.want))
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s from %s:\n got %v\nwant %v", tc.expr, tc.from, got, tc.want)
		}
	}
}

func TestCronWindow(t *testing.T) {
	w, err := ParseCron("0 2 * * 6", 4*time.Hour, berlin(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := w.String(), `cron "0 2 * * 6" for 4h Europe/Berlin`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	probe(t, w, []at{
		// Saturday 2026-07-04 02:00 CEST is 00:00Z.
		{"2026-07-04T03:00:00Z", true, "2026-07-04T00:00:00Z", "2026-07-04T04:00:00Z", time.Hour},
		{"2026-07-04T04:00:00Z", false, "2026-07-11T00:00:00Z", "2026-07-11T04:00:00Z", 0},
	})
}

// Vixie cron on a daylight-saving change: a time the clocks skip fires
// when they jump, a repeated time fires once, the first time.
func TestCronDaylightSaving(t *testing.T) {
	loc := berlin(t)
	w, err := ParseCron("30 2 * * *", time.Hour, loc)
	if err != nil {
		t.Fatal(err)
	}
	probe(t, w, []at{
		{"2026-03-29T00:00:00Z", false, "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", 0},
		{"2026-10-25T00:00:00Z", false, "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", 0},
		// 02:40 CET, the second pass through the hour: still the one window.
		{"2026-10-25T01:40:00Z", false, "2026-10-26T01:30:00Z", "2026-10-26T02:30:00Z", 0},
	})
	every, err := ParseCron("*/10 2 * * *", 5*time.Minute, loc)
	if err != nil {
		t.Fatal(err)
	}
	got := openings(every, utc("2026-03-29T00:00:00Z"), 2)
	want := []string{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("*/10 2 * * * over the spring change: got %v, want %v (the six skipped times fire once)", got, want)
	}
}

func TestCronErrors(t *testing.T) {
	for _, tc := range []struct {
		expr   string
		d      time.Duration
		part   string
		reason string
	}{
		{"0 2 * * 8", time.Hour, `day-of-week field "8"`, "0-7"},
		{"60 * * * *", time.Hour, `minute field "60"`, "0-59"},
		{"0 2 * *", time.Hour, "4 fields", "5 fields"},
		{"0 2 30 2 *", time.Hour, `day-of-month field "30" with month field "2"`, "never opens"},
		{"5/15 * * * *", time.Hour, `minute field "5/15"`, "5-59/15"},
		{"*/0 * * * *", time.Hour, `minute field "*/0"`, "step"},
		{"0 5-2 * * *", time.Hour, `hour field "5-2"`, "backwards"},
		{"0 2 * foo *", time.Hour, `month field "foo"`, "JAN-DEC"},
		{"0 2 ,1 * *", time.Hour, `day-of-month field ",1"`, "empty item"},
		{"@reboot", time.Hour, `macro "@reboot"`, "not a time"},
		{"0 2 * * 6", 0, "duration 0s", "more than 0"},
		{"0 2 * * 6", 8 * 24 * time.Hour, "duration 192h0m0s", "at most 168h"},
	} {
		_, err := ParseCron(tc.expr, tc.d, nil)
		var we *Error
		if !errors.As(err, &we) {
			t.Errorf("ParseCron(%q, %s) = %v, want a *window.Error", tc.expr, tc.d, err)
			continue
		}
		if we.Part != tc.part || !strings.Contains(we.Reason, tc.reason) || !strings.Contains(err.Error(), exampleCron) {
			t.Errorf("ParseCron(%q, %s): %q; want part %s and a reason containing %q", tc.expr, tc.d, err, tc.part, tc.reason)
		}
	}
}
