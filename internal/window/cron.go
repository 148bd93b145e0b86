package window

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// schedule is a parsed 5-field cron expression: one bit per allowed value.
type schedule struct {
	minute, hour, dom, month, dow uint64
	// domStar and dowStar record a field that starts with "*": Vixie cron
	// then requires both day fields to match, otherwise either.
	domStar, dowStar bool
	expr             string
}

// cronField describes one of the five fields.
type cronField struct {
	name     string
	min, max int
	names    []string // names[i] stands for min+i
	hint     string
}

var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59, hint: "values run 0-59"},
	{name: "hour", min: 0, max: 23, hint: "values run 0-23"},
	{name: "day-of-month", min: 1, max: 31, hint: "values run 1-31"},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}, hint: "values run 1-12 or JAN-DEC"},
	// 7 is Sunday too, as in Vixie cron.
	{name: "day-of-week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}, hint: "values run 0-7 (0 and 7 are Sunday) or SUN-SAT"},
}

var cronMacros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// parseSchedule reads a 5-field cron expression or a macro.
func parseSchedule(expr string) (*schedule, error) {
	fail := func(part, reason string) (*schedule, error) {
		return nil, &Error{Input: expr, Part: part, Reason: reason, Example: exampleCron}
	}
	fields := strings.Fields(expr)
	if len(fields) == 1 && strings.HasPrefix(fields[0], "@") {
		m, ok := cronMacros[strings.ToLower(fields[0])]
		if !ok {
			return fail(fmt.Sprintf("macro %q", fields[0]), "known macros are @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly (@reboot is not a time)")
		}
		fields = strings.Fields(m)
	}
	if len(fields) != 5 {
		return fail(fmt.Sprintf("%d fields", len(fields)), "a cron expression has 5 fields: minute hour day-of-month month day-of-week")
	}
	s := &schedule{expr: strings.Join(strings.Fields(expr), " ")}
	bits := [5]*uint64{&s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	for i, f := range fields {
		b, err := cronFields[i].parse(f)
		if err != nil {
			return fail(fmt.Sprintf("%s field %q", cronFields[i].name, f), err.Error())
		}
		*bits[i] = b
	}
	if s.dow&(1<<7) != 0 {
		s.dow = s.dow&^(1<<7) | 1
	}
	s.domStar = strings.HasPrefix(fields[2], "*")
	s.dowStar = strings.HasPrefix(fields[4], "*")
	if !s.firesEver() {
		return fail(fmt.Sprintf("day-of-month field %q with month field %q", fields[2], fields[3]), "no month has such a day, so the window never opens")
	}
	return s, nil
}

// firesEver reports whether some day matches: only a day-of-month that no
// chosen month has (30 February) can fail.
func (s *schedule) firesEver() bool {
	if !s.domStar && !s.dowStar {
		return true // either day field may match, and every weekday comes
	}
	// Leap-year lengths: 29 February counts, it comes every four years.
	length := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	for m := 1; m <= 12; m++ {
		if s.month&(1<<m) == 0 {
			continue
		}
		for d := 1; d <= length[m]; d++ {
			if s.dom&(1<<d) != 0 {
				return true
			}
		}
	}
	return false
}

// matchesDay reports whether the civil date day (a UTC midnight) opens
// windows.
func (s *schedule) matchesDay(day time.Time) bool {
	if s.month&(1<<int(day.Month())) == 0 {
		return false
	}
	domOK := s.dom&(1<<day.Day()) != 0
	dowOK := s.dow&(1<<int(day.Weekday())) != 0
	if s.domStar || s.dowStar {
		return domOK && dowOK
	}
	return domOK || dowOK
}

// parse reads one field: a comma list of *, N, N-M, each with an optional
// /STEP ("*/15", "1-31/2").
func (f cronField) parse(s string) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(s, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case rng == "":
			return 0, fmt.Errorf("an empty item; %s", f.hint)
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = f.value(b); err != nil {
					return 0, err
				}
				// MON-SUN: a Sunday ending a range is day 7.
				if f.name == "day-of-week" && hi == 0 && lo > 0 {
					hi = 7
				}
				if hi < lo {
					return 0, fmt.Errorf("range %s runs backwards; write it low-high", rng)
				}
			} else if hasStep {
				return 0, fmt.Errorf("a step needs a range or *: write %s-%d/%s", a, f.max, stepText)
			}
		}
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > f.max {
				return 0, fmt.Errorf("step %q must be a number from 1 to %d", stepText, f.max)
			}
			step = n
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

// value reads a number or a name within the field's bounds.
func (f cronField) value(s string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	if !digits(s) || len(s) > 2 {
		return 0, fmt.Errorf("%q is not a value; %s", s, f.hint)
	}
	n, _ := strconv.Atoi(s)
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%d is out of range; %s", n, f.hint)
	}
	return n, nil
}
