package rollbacksafe

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func window(st State, outcome Outcome) *Window {
	return &Window{State: st, From: "v1.36.3", To: "v1.37.2", Started: t0, Opened: t0.Add(time.Minute), Raised: t0.Add(time.Hour), Outcome: outcome}
}

// TestDecide is the whole life of a window: every state × every step.
func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		w           *Window
		s           Step
		want        Decision
		restoreOnly bool
		why         string // substring of the refusal
	}{
		{nil, StepOne, Start, false, ""},
		{nil, StepTwo, Refuse, false, "no rollback window"},
		{nil, StepRollback, Refuse, true, "no rollback window"},
		{window(StateOpening, ""), StepOne, Resume, false, ""},
		{window(StateOpening, ""), StepTwo, Refuse, false, "step one is not finished"},
		{window(StateOpening, ""), StepRollback, Start, false, ""},
		{window(StateOpen, ""), StepOne, Done, false, ""},
		{window(StateOpen, ""), StepTwo, Start, false, ""},
		{window(StateOpen, ""), StepRollback, Start, false, ""},
		{window(StateCompleting, ""), StepOne, Done, false, ""},
		{window(StateCompleting, ""), StepTwo, Resume, false, ""},
		{window(StateCompleting, ""), StepRollback, Refuse, true, "step two of the upgrade v1.36.3 → v1.37.2 began at 2026-11-25T13:00:00Z"},
		{window(StateRollingBack, ""), StepOne, Refuse, false, "rollback of this window is under way"},
		{window(StateRollingBack, ""), StepTwo, Refuse, false, "rollback of this window is under way"},
		{window(StateRollingBack, ""), StepRollback, Resume, false, ""},
		{window(StateClosed, OutcomeCompleted), StepOne, Start, false, ""},
		{window(StateClosed, OutcomeCompleted), StepTwo, Done, false, ""},
		{window(StateClosed, OutcomeCompleted), StepRollback, Refuse, true, "closed at 2026-11-25T13:00:00Z when step two raised the emulated version to 1.37"},
		{window(StateClosed, OutcomeRolledBack), StepOne, Start, false, ""},
		{window(StateClosed, OutcomeRolledBack), StepTwo, Refuse, false, "was rolled back"},
		{window(StateClosed, OutcomeRolledBack), StepRollback, Done, false, ""},
		{window("window-sideways", ""), StepOne, Refuse, false, "unknown state"},
	} {
		st := StateNone
		if tc.w != nil {
			st = tc.w.State
		}
		got, r := Decide(tc.w, tc.s)
		if got != tc.want {
			t.Errorf("%q %s/%s: %s, want %s", st, tc.s, outcomeOf(tc.w), got, tc.want)
			continue
		}
		if (got == Refuse) != (r != nil) {
			t.Errorf("%q %s: decision %s with refusal %v", st, tc.s, got, r)
			continue
		}
		if r != nil && (r.RestoreOnly != tc.restoreOnly || !strings.Contains(r.Error(), tc.why)) {
			t.Errorf("%q %s: refusal %q (restore only %v), want %q (restore only %v)", st, tc.s, r.Error(), r.RestoreOnly, tc.why, tc.restoreOnly)
		}
	}
}

func outcomeOf(w *Window) Outcome {
	if w == nil {
		return ""
	}
	return w.Outcome
}

// TestWindowLife walks the transitions Begin and End make, including a
// step begun twice (a killed kup's resume), and checks the record after
// each.
func TestWindowLife(t *testing.T) {
	type move struct {
		begin     bool
		s         Step
		wantState State
		wantErr   string
	}
	for _, tc := range []struct {
		name  string
		moves []move
		check func(t *testing.T, w *Window)
	}{
		{"open, complete", []move{
			{true, StepOne, StateOpening, ""},
			{true, StepOne, StateOpening, ""}, // killed in step one, resumed
			{false, StepOne, StateOpen, ""},
			{true, StepTwo, StateCompleting, ""},
			{true, StepTwo, StateCompleting, ""}, // killed in step two, resumed
			{false, StepTwo, StateClosed, ""},
			{true, StepRollback, StateClosed, "cannot safely run"},
			{true, StepTwo, StateClosed, "already done"},
		}, func(t *testing.T, w *Window) {
			if w.Outcome != OutcomeCompleted || !w.Raised.Equal(t0.Add(3)) || !w.Opened.Equal(t0.Add(2)) || !w.Started.Equal(t0) {
				t.Errorf("completed window %+v: want started t0, opened t0+2, raised at the first step-two begin (t0+3)", w)
			}
		}},
		{"open, roll back, open again", []move{
			{true, StepOne, StateOpening, ""},
			{false, StepOne, StateOpen, ""},
			{true, StepRollback, StateRollingBack, ""},
			{true, StepRollback, StateRollingBack, ""},
			{false, StepRollback, StateClosed, ""},
			{true, StepTwo, StateClosed, "was rolled back"},
			{true, StepOne, StateOpening, ""},
		}, func(t *testing.T, w *Window) {
			if w.Outcome != "" || !w.Closed.IsZero() || !w.Opened.IsZero() || !w.Started.Equal(t0.Add(6)) {
				t.Errorf("reopened window %+v: want a fresh record started at t0+6", w)
			}
		}},
		{"roll back in the middle of step one", []move{
			{true, StepOne, StateOpening, ""},
			{true, StepRollback, StateRollingBack, ""},
			{false, StepOne, StateRollingBack, "not \"window-opening\""},
			{false, StepRollback, StateClosed, ""},
		}, func(t *testing.T, w *Window) {
			if w.Outcome != OutcomeRolledBack {
				t.Errorf("outcome %q", w.Outcome)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWindow(v("v1.36.3"), v("v1.37.2"))
			w.Backup = &Snapshot{Path: "/b/1.db", Revision: 7}
			for i, m := range tc.moves {
				now := t0.Add(time.Duration(i))
				var err error
				if m.begin {
					err = w.Begin(m.s, now)
				} else {
					err = w.End(m.s, now, 0)
				}
				if (m.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), m.wantErr)) {
					t.Fatalf("move %d (%s begin=%v): err %v, want %q", i, m.s, m.begin, err, m.wantErr)
				}
				if w.State != m.wantState {
					t.Fatalf("move %d (%s begin=%v): state %q, want %q", i, m.s, m.begin, w.State, m.wantState)
				}
			}
			if w.Backup == nil || w.Backup.Revision != 7 {
				t.Errorf("the backup record was lost: %+v", w.Backup)
			}
			tc.check(t, w)
		})
	}
}

func TestSoakAndAge(t *testing.T) {
	w := NewWindow(v("v1.36.3"), v("v1.37.2"))
	if err := w.Begin(StepOne, t0); err != nil {
		t.Fatal(err)
	}
	if got := w.Age(t0.Add(time.Minute)); got != time.Minute {
		t.Errorf("opening window's age %s, want 1m (since step one began)", got)
	}
	if err := w.End(StepOne, t0.Add(2*time.Minute), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if !w.SoakUntil.Equal(t0.Add(12 * time.Minute)) {
		t.Errorf("soak until %s, want t0+12m", w.SoakUntil)
	}
	if got := w.Age(t0.Add(5 * time.Minute)); got != 3*time.Minute {
		t.Errorf("open window's age %s, want 3m (since it opened)", got)
	}
	d := w.Describe(t0.Add(5 * time.Minute))
	for _, want := range []string{"OPEN for 3m0s", "v1.37.2 binaries emulating 1.36", "`kup rollback` returns to v1.36.3", "soak ends in 7m0s"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe: %q lacks %q", d, want)
		}
	}
	if d := w.Describe(t0.Add(20 * time.Minute)); !strings.Contains(d, "soak ended 8m0s ago") {
		t.Errorf("Describe after the soak: %q", d)
	}
	if err := w.Begin(StepTwo, t0.Add(20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := w.Age(t0.Add(30 * time.Minute)); got != 0 {
		t.Errorf("completing window's age %s, want 0: the window ended when step two began", got)
	}
	w2 := NewWindow(v("v1.36.3"), v("v1.37.2"))
	_ = w2.Begin(StepOne, t0)
	_ = w2.End(StepOne, t0, 0)
	if !w2.SoakUntil.IsZero() {
		t.Errorf("no soak asked for, yet soak until %s", w2.SoakUntil)
	}
}

func TestRestoreOnlyError(t *testing.T) {
	_, r := Decide(window(StateClosed, OutcomeCompleted), StepRollback)
	snaps := []Snapshot{
		{Path: "/b/old.db", Revision: 10, Created: t0.Add(-time.Hour)},
		{Path: "/b/new.db", Revision: 4242, Created: t0},
		{Path: "/b/mid.db", Revision: 99, Created: t0.Add(-time.Minute)},
	}
	e := &RestoreOnlyError{Refusal: r, Newest: Newest(snaps), Now: t0.Add(90 * time.Minute)}
	var err error = e
	if !errors.Is(err, ErrRestoreOnly) {
		t.Error("not ErrRestoreOnly")
	}
	msg := err.Error()
	for _, want := range []string{
		"kup rollback refused", "Only a snapshot restore remains",
		"/b/new.db (etcd revision 4242, taken 2026-11-25T12:00:00Z, 1h30m0s ago)",
		"`kup restore /b/new.db`", "loses every write made since",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	none := (&RestoreOnlyError{Refusal: r, Searched: []string{"/b"}}).Error()
	if !strings.Contains(none, "knows no snapshot of this cluster (looked in /b)") {
		t.Errorf("without snapshots: %q", none)
	}
	_, r2 := Decide(window(StateCompleting, ""), StepRollback)
	if m := (&RestoreOnlyError{Refusal: r2}).Error(); !strings.Contains(m, "Otherwise: finish step two with `kup controlplane complete`") {
		t.Errorf("refusal while completing: %q", m)
	}
	if Newest(nil) != nil {
		t.Error("Newest of none")
	}
}
