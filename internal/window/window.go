// Package window decides whether a moment falls inside a maintenance window,
// when the next window opens and how much of the current one is left, so
// that `kup apply` can wait for a window and start no wave it cannot finish
// in time.
//
// A window is written either as weekdays and a wall-clock range in a time
// zone (Parse: "Sat 02:00-06:00 Europe/Berlin", "Mon-Fri 22:00-02:00",
// "daily 01:00-05:00") or as a cron expression giving the opening times plus
// a duration (ParseCron: "0 2 * * 6" for 4h).
//
// It never reads a clock, sleeps or does I/O of its own: every answer is a
// function of the time passed in. The time-zone database is embedded
// (time/tzdata) so a zone name means the same on every machine, including a
// minimal container without /usr/share/zoneinfo.
//
// Daylight-saving changes are handled in wall-clock terms, the way an
// operator reads "02:00-06:00": a bound that falls in the hour the clocks
// skip is the moment they jump (the window is shorter that night); when an
// hour happens twice, a window opens at the first occurrence of its start
// and closes at the last occurrence of its end (the window is longer). A
// window whose both bounds fall in the skipped hour does not open that day.
// Cron opening times follow Vixie cron: a time in the skipped hour fires
// when the clocks jump, a time in the repeated hour fires once, the first
// time; the duration is then real elapsed time.
//
// The cron parser is written here rather than imported: go.mod has no cron
// library, and kup needs only the next opening time of a standard 5-field
// expression, about 150 lines, not a scheduler with goroutines and jobs.
package window

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	// The zone database travels with the binary: a window named in
	// Europe/Berlin must not depend on the host's zoneinfo files.
	_ "time/tzdata"
)

// Examples shown in errors.
const (
	exampleSpec = `"Sat 02:00-06:00 Europe/Berlin"`
	exampleCron = `"0 2 * * 6" (Saturdays at 02:00) with a duration such as 4h`
)

// MaxCronDuration bounds a cron window's duration: a longer window is not a
// maintenance window but a schedule with gaps, better written with Parse.
const MaxCronDuration = 7 * 24 * time.Hour

// mergeHorizon bounds how far Next follows windows that touch or overlap
// ("daily 00:00-24:00" never closes): past it, the end it reports is a
// lower bound.
const mergeHorizon = 8 * 24 * time.Hour

// searchDays bounds the search for the next opening: eight years cover a
// cron expression that opens only on 29 February (with a century gap).
const searchDays = 8*366 + 2

// Error says which part of a window specification is wrong, why, and shows
// a valid example.
type Error struct {
	// Input is the whole specification as given.
	Input string
	// Part is the offending piece of it ("26:00", "day-of-week field \"8\"").
	Part string
	// Reason says what is wrong with it.
	Reason string
	// Example is a valid specification of the same form.
	Example string
	// Err is the underlying error, if any (a failed zone lookup).
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("maintenance window %q: %s: %s; a valid example: %s", e.Input, e.Part, e.Reason, e.Example)
}

func (e *Error) Unwrap() error { return e.Err }

// Window is a recurring maintenance window. The zero value is not usable;
// build one with Parse or ParseCron.
type Window struct {
	loc *time.Location

	// Weekday form: the days a window opens on (indexed by time.Weekday)
	// and its wall-clock bounds in minutes after midnight; end <= start
	// means the window ends the next day, end may be 24*60 (midnight).
	days             [7]bool
	startMin, endMin int

	// Cron form: the opening times and how long each window lasts.
	cron *schedule
	dur  time.Duration
}

// Parse reads a window written as "DAYS HH:MM-HH:MM [ZONE]":
//   - DAYS: a day (Mon..Sun, or the full name, any case), a range
//     ("Mon-Fri", "Fri-Mon" wraps round the week), a list ("Sat,Sun",
//     "Mon-Wed,Fri") or "daily"; omitted, it means daily.
//   - HH:MM-HH:MM: the wall-clock range; an end not after the start crosses
//     midnight ("Fri 22:00-02:00" ends Saturday 02:00); 24:00 is allowed as
//     an end.
//   - ZONE: an IANA zone name (Europe/Berlin, America/New_York); UTC when
//     omitted.
func Parse(spec string) (*Window, error) {
	fail := func(part, reason string, err error) (*Window, error) {
		return nil, &Error{Input: spec, Part: part, Reason: reason, Example: exampleSpec, Err: err}
	}
	fields := strings.Fields(spec)
	if len(fields) == 0 {
		return fail("the specification", "it is empty", nil)
	}
	// A leading time range means every day.
	if strings.Contains(fields[0], ":") {
		fields = append([]string{"daily"}, fields...)
	}
	if len(fields) < 2 {
		return fail(fmt.Sprintf("days %q", fields[0]), "the time range HH:MM-HH:MM is missing after the days", nil)
	}
	if len(fields) > 3 {
		return fail(fmt.Sprintf("%q", strings.Join(fields[3:], " ")), "unexpected text after the time zone (expected DAYS HH:MM-HH:MM [ZONE])", nil)
	}
	w := &Window{loc: time.UTC}
	days, err := parseDays(fields[0])
	if err != nil {
		return fail(fmt.Sprintf("days %q", fields[0]), err.Error(), nil)
	}
	w.days = days

	from, to, ok := strings.Cut(fields[1], "-")
	if !ok {
		return fail(fmt.Sprintf("time range %q", fields[1]), "expected HH:MM-HH:MM", nil)
	}
	if w.startMin, err = parseClock(from, false); err != nil {
		return fail(fmt.Sprintf("start time %q", from), err.Error(), nil)
	}
	if w.endMin, err = parseClock(to, true); err != nil {
		return fail(fmt.Sprintf("end time %q", to), err.Error(), nil)
	}
	if w.startMin == w.endMin {
		return fail(fmt.Sprintf("time range %q", fields[1]), "the window is empty; for a whole day write 00:00-24:00", nil)
	}
	if len(fields) == 3 {
		loc, err := loadZone(fields[2])
		if err != nil {
			return fail(fmt.Sprintf("time zone %q", fields[2]), "not a known IANA zone name (such as Europe/Berlin or UTC)", err)
		}
		w.loc = loc
	}
	return w, nil
}

// ParseCron reads a window that opens at the times of a standard 5-field
// cron expression (minute hour day-of-month month day-of-week, with *,
// lists, ranges, steps and the names JAN-DEC, SUN-SAT; or @yearly,
// @monthly, @weekly, @daily, @hourly) read in loc (UTC when nil), and stays
// open for d. Day-of-month and day-of-week combine as in Vixie cron: when
// both are restricted (neither starts with *), a day matching either opens
// a window.
func ParseCron(expr string, d time.Duration, loc *time.Location) (*Window, error) {
	if loc == nil {
		loc = time.UTC
	}
	s, err := parseSchedule(expr)
	if err != nil {
		return nil, err
	}
	if d <= 0 || d > MaxCronDuration {
		return nil, &Error{Input: expr, Part: fmt.Sprintf("duration %s", d), Reason: fmt.Sprintf("a window lasts more than 0 and at most %s", formatDuration(MaxCronDuration)), Example: exampleCron}
	}
	return &Window{loc: loc, cron: s, dur: d}, nil
}

// Location is the zone the window's wall-clock times are read in.
func (w *Window) Location() *time.Location { return w.loc }

// Contains reports whether t falls inside a window.
func (w *Window) Contains(t time.Time) bool {
	s, e := w.find(t, false)
	return !s.IsZero() && !t.Before(s) && t.Before(e)
}

// Next returns the window t is inside, or else the next one to open. Windows
// that touch or overlap count as one (up to about a week ahead). Both times
// are zero if no window opens within eight years (an expression that
// cannot fire is refused by ParseCron, so this does not happen for a
// window built by this package).
func (w *Window) Next(t time.Time) (start, end time.Time) {
	return w.find(t, true)
}

// Remaining is how long the window t is inside stays open; 0 outside one.
func (w *Window) Remaining(t time.Time) time.Duration {
	s, e := w.find(t, true)
	if s.IsZero() || t.Before(s) {
		return 0
	}
	return e.Sub(t)
}

// String writes the window back in the form it was given, normalised:
// "Sat 02:00-06:00 Europe/Berlin", `cron "0 2 * * 6" for 4h UTC`. The
// weekday form parses back to the same window.
func (w *Window) String() string {
	if w.cron != nil {
		return fmt.Sprintf("cron %q for %s %s", w.cron.expr, formatDuration(w.dur), w.loc)
	}
	return fmt.Sprintf("%s %s-%s %s", formatDays(w.days), formatClock(w.startMin), formatClock(w.endMin), w.loc)
}

// interval is one opening of the window.
type interval struct{ start, end time.Time }

// find returns the first opening that has not ended by t; with merge, it
// extends it by every following opening that starts before it ends.
func (w *Window) find(t time.Time, merge bool) (time.Time, time.Time) {
	// Start early enough to see an opening still running at t: a weekday
	// window lasts at most a day, a cron one at most its duration.
	back := 2
	if w.cron != nil {
		back += int(w.dur / (24 * time.Hour))
	}
	day := dateOf(t.In(w.loc)).AddDate(0, 0, -back)
	var cur interval
	found := false
	for i := 0; i < searchDays+back; i++ {
		for _, iv := range w.opensOn(day.AddDate(0, 0, i)) {
			if !found {
				if iv.end.After(t) {
					cur, found = iv, true
					if !merge {
						return cur.start, cur.end
					}
				}
				continue
			}
			if iv.start.After(cur.end) || cur.end.Sub(t) > mergeHorizon {
				return cur.start, cur.end
			}
			if iv.end.After(cur.end) {
				cur.end = iv.end
			}
		}
	}
	return cur.start, cur.end
}

// opensOn lists the openings that start on the civil date day (a UTC
// midnight standing for that date in w.loc), in order.
func (w *Window) opensOn(day time.Time) []interval {
	if w.cron != nil {
		if !w.cron.matchesDay(day) {
			return nil
		}
		var out []interval
		for h := 0; h < 24; h++ {
			if w.cron.hour&(1<<h) == 0 {
				continue
			}
			for m := 0; m < 60; m++ {
				if w.cron.minute&(1<<m) == 0 {
					continue
				}
				s := wallClock(day, h*60+m, w.loc, false)
				// Times in a skipped hour all fire when the clocks jump: once.
				if n := len(out); n > 0 && out[n-1].start.Equal(s) {
					continue
				}
				out = append(out, interval{s, s.Add(w.dur)})
			}
		}
		return out
	}
	if !w.days[day.Weekday()] {
		return nil
	}
	endDay, endMin := day, w.endMin
	if w.endMin <= w.startMin {
		endDay = day.AddDate(0, 0, 1)
	}
	if endMin == 24*60 {
		endDay, endMin = endDay.AddDate(0, 0, 1), 0
	}
	s := wallClock(day, w.startMin, w.loc, false)
	e := wallClock(endDay, endMin, w.loc, true)
	if !e.After(s) {
		return nil // both bounds in a skipped hour
	}
	return []interval{{s, e}}
}

// dateOf is t's civil date as a UTC midnight, so that date arithmetic never
// meets a daylight-saving change.
func dateOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// wallClock is the instant the clocks in loc show minute min of the civil
// date day. In a skipped hour it is the moment the clocks jump; in a
// repeated hour it is the first occurrence, or the last with latest.
func wallClock(day time.Time, min int, loc *time.Location, latest bool) time.Time {
	want := day.Add(time.Duration(min) * time.Minute) // the wall clock, as UTC
	t := time.Date(want.Year(), want.Month(), want.Day(), want.Hour(), want.Minute(), 0, 0, loc)
	zoneStart, zoneEnd := t.ZoneBounds()
	if got := wallOf(t); !got.Equal(want) {
		// time.Date moved a skipped time to one side of the jump; the jump
		// itself is the bound of t's zone on the other side.
		if got.After(want) {
			return zoneStart
		}
		return zoneEnd
	}
	if !latest && !zoneStart.IsZero() {
		_, off := zoneStart.Add(-time.Second).Zone()
		if c := want.Add(-time.Duration(off) * time.Second).In(loc); c.Before(zoneStart) && wallOf(c).Equal(want) {
			return c
		}
	}
	if latest && !zoneEnd.IsZero() {
		_, off := zoneEnd.Zone()
		if c := want.Add(-time.Duration(off) * time.Second).In(loc); !c.Before(zoneEnd) && wallOf(c).Equal(want) {
			return c
		}
	}
	return t
}

// wallOf is what t's clock shows, as a UTC time.
func wallOf(t time.Time) time.Time {
	y, m, d := t.Date()
	hh, mm, ss := t.Clock()
	return time.Date(y, m, d, hh, mm, ss, t.Nanosecond(), time.UTC)
}

// loadZone resolves an IANA zone name. Only characters zone names use are
// passed on, so a specification never names a file.
func loadZone(name string) (*time.Location, error) {
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+-", r)) {
			return nil, fmt.Errorf("character %q cannot appear in a zone name", r)
		}
	}
	if strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return nil, errors.New("not a zone name")
	}
	return time.LoadLocation(name)
}

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// parseDay reads Mon..Sun or a full day name, in any case.
func parseDay(s string) (time.Weekday, bool) {
	l := strings.ToLower(s)
	for i, n := range dayNames {
		short := strings.ToLower(n)
		if l == short || l == strings.ToLower(time.Weekday(i).String()) {
			return time.Weekday(i), true
		}
	}
	return 0, false
}

func parseDays(s string) ([7]bool, error) {
	var days [7]bool
	if strings.EqualFold(s, "daily") {
		for i := range days {
			days[i] = true
		}
		return days, nil
	}
	for _, item := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(item, "-")
		from, ok := parseDay(a)
		if !ok {
			return days, fmt.Errorf("%q is not a day: use Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range such as Mon-Fri, a list such as Sat,Sun, or daily", a)
		}
		to := from
		if isRange {
			if to, ok = parseDay(b); !ok {
				return days, fmt.Errorf("%q is not a day: use Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range such as Mon-Fri, a list such as Sat,Sun, or daily", b)
			}
		}
		// A range wraps round the week: Fri-Mon is Fri, Sat, Sun, Mon.
		for d := from; ; d = (d + 1) % 7 {
			days[d] = true
			if d == to {
				break
			}
		}
	}
	return days, nil
}

// parseClock reads HH:MM (H:MM too) as minutes after midnight; 24:00 only
// as an end.
func parseClock(s string, end bool) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !digits(h) || !digits(m) {
		return 0, errors.New("expected a time HH:MM, such as 02:00")
	}
	hh, _ := strconv.Atoi(h)
	mm, _ := strconv.Atoi(m)
	switch {
	case hh == 24 && mm == 0 && end:
		return 24 * 60, nil
	case hh == 24 && mm == 0:
		return 0, errors.New("24:00 may only end a window; start at 00:00")
	case hh > 23:
		return 0, errors.New("hours run 00-23 (24:00 may end a window)")
	case mm > 59:
		return 0, errors.New("minutes run 00-59")
	}
	return hh*60 + mm, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func formatClock(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// formatDays writes days Monday first, runs of three or more as ranges:
// "Mon-Fri", "Sat,Sun", "Mon,Wed-Fri", "daily".
func formatDays(days [7]bool) string {
	order := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
	var parts []string
	for i := 0; i < len(order); {
		if !days[order[i]] {
			i++
			continue
		}
		j := i
		for j+1 < len(order) && days[order[j+1]] {
			j++
		}
		switch {
		case i == 0 && j == len(order)-1:
			return "daily"
		case j-i >= 2:
			parts = append(parts, dayNames[order[i]]+"-"+dayNames[order[j]])
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, dayNames[order[k]])
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// formatDuration drops the zero units time.Duration.String keeps: 4h, 1h30m.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
