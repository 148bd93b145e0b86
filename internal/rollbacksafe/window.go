package rollbacksafe

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kup-project/kup/internal/version"
)

// State is where a rollback window stands, as the journal records it.
type State string

const (
	// StateNone: no window is recorded.
	StateNone State = ""
	// StateOpening: step one is under way (some components may already
	// run the new binaries, all emulating the old minor).
	StateOpening State = "window-opening"
	// StateOpen: step one is done and verified; `kup rollback` is safe.
	StateOpen State = "window-open"
	// StateCompleting: step two is under way. The window has ended: from
	// the first raised component on, a rollback is no longer safe.
	StateCompleting State = "window-completing"
	// StateRollingBack: `kup rollback` is under way.
	StateRollingBack State = "window-rolling-back"
	// StateClosed: completed (emulated version raised) or rolled back.
	StateClosed State = "window-closed"
)

// Outcome says how a closed window ended.
type Outcome string

const (
	OutcomeCompleted  Outcome = "completed"
	OutcomeRolledBack Outcome = "rolled-back"
)

// Snapshot is an etcd snapshot as a refusal names it.
type Snapshot struct {
	Path     string    `json:"path"`
	Revision int64     `json:"revision"`
	Created  time.Time `json:"created"`
}

// Window is one rollback window: an upgrade From → To taken in two steps.
// The journal stores it (JSON) beside the run's steps.
type Window struct {
	State State  `json:"state"`
	From  string `json:"from"`
	To    string `json:"to"`
	// Started is when step one began; Opened when it was done (the
	// window's age counts from there); SoakUntil when `kup controlplane
	// upgrade --soak` completes it by itself; Raised when step two began
	// (the window's end); Closed when it closed.
	Started   time.Time `json:"started"`
	Opened    time.Time `json:"opened,omitzero"`
	SoakUntil time.Time `json:"soakUntil,omitzero"`
	Raised    time.Time `json:"raised,omitzero"`
	Closed    time.Time `json:"closed,omitzero"`
	Outcome   Outcome   `json:"outcome,omitempty"`
	// Backup is the snapshot taken before step one, if any.
	Backup *Snapshot `json:"backup,omitempty"`
}

// NewWindow is a window about to open.
func NewWindow(from, to version.Version) *Window {
	return &Window{From: from.String(), To: to.String()}
}

// Versions parses From and To.
func (w *Window) Versions() (from, to version.Version, err error) {
	if from, err = version.Parse(w.From); err != nil {
		return from, to, fmt.Errorf("the rollback window's from version: %w", err)
	}
	if to, err = version.Parse(w.To); err != nil {
		return from, to, fmt.Errorf("the rollback window's to version: %w", err)
	}
	return from, to, nil
}

// Emulated is the minor the new binaries emulate while the window is open.
func (w *Window) Emulated() string {
	from, err := version.Parse(w.From)
	if err != nil {
		return ""
	}
	return from.MinorString()
}

// Decision is what a command does given the window.
type Decision string

const (
	// Start the step (for step one: a new window).
	Start Decision = "start"
	// Resume the step: a kup stopped in the middle of it.
	Resume Decision = "resume"
	// Done: the step already happened; nothing to do.
	Done Decision = "done"
	// Refuse: see the *Refusal.
	Refuse Decision = "refuse"
)

// Refusal is a step the window's state does not allow, with what to do.
type Refusal struct {
	State State
	Step  Step
	Why   string
	Do    string
	// RestoreOnly: a rollback was asked for where only a snapshot restore
	// can go back (RestoreOnlyError adds which snapshot and what it loses).
	RestoreOnly bool
}

func (r *Refusal) Error() string {
	if r.Do == "" {
		return r.Why
	}
	return r.Why + "; " + r.Do
}

// Decide says what a request for step does with the window w (nil or
// StateNone: none recorded). The table is the whole life of a window:
//
//	state        step one   step two   rollback
//	none/closed  start      refuse     refuse (restore only; done if rolled back)
//	opening      resume     refuse     start
//	open         done       start      start
//	completing   done       resume     refuse (restore only)
//	rolling back refuse     refuse     resume
//	closed       start      done (completed) / refuse (rolled back)
//
// A kup killed in the middle of a step leaves the state of that step, so
// the same command resumes it; a step already done is not redone.
func Decide(w *Window, s Step) (Decision, *Refusal) {
	st := StateNone
	if w != nil {
		st = w.State
	}
	refuse := func(why, do string) (Decision, *Refusal) {
		return Refuse, &Refusal{State: st, Step: s, Why: why, Do: do}
	}
	upgrade := "kup controlplane upgrade --to VERSION --rollback-safe"
	if w != nil && w.To != "" {
		upgrade = "kup controlplane upgrade --to " + w.To + " --rollback-safe"
	}
	switch s {
	case StepOne:
		switch st {
		case StateNone, StateClosed:
			return Start, nil
		case StateOpening:
			return Resume, nil
		case StateOpen, StateCompleting:
			return Done, nil
		case StateRollingBack:
			return refuse("a rollback of this window is under way", "finish it with `kup rollback` first")
		}
	case StepTwo:
		switch st {
		case StateNone:
			return refuse("no rollback window is recorded for this cluster", "open one with "+quote(upgrade))
		case StateOpening:
			return refuse("step one is not finished (some components may still run the old binaries)", "finish it with "+quote(upgrade)+", or go back with `kup rollback`")
		case StateOpen:
			return Start, nil
		case StateCompleting:
			return Resume, nil
		case StateRollingBack:
			return refuse("a rollback of this window is under way", "finish it with `kup rollback`")
		case StateClosed:
			if w.Outcome == OutcomeCompleted {
				return Done, nil
			}
			return refuse(fmt.Sprintf("the window %s → %s was rolled back", w.From, w.To), "open a new one with "+quote(upgrade))
		}
	case StepRollback:
		switch st {
		case StateNone:
			r := &Refusal{State: st, Step: s, RestoreOnly: true,
				Why: "no rollback window is recorded for this cluster: kup opens one only with `kup controlplane upgrade --to VERSION --rollback-safe`, and without one there is no safe way back to an older minor"}
			return Refuse, r
		case StateOpening, StateOpen:
			return Start, nil
		case StateRollingBack:
			return Resume, nil
		case StateCompleting:
			return Refuse, &Refusal{State: st, Step: s, RestoreOnly: true,
				Why: fmt.Sprintf("step two of the upgrade %s → %s began%s: the control plane may already serve %s's APIs and have stored objects %s cannot read, so the old binaries cannot safely run on this etcd again",
					w.From, w.To, at(w.Raised), minorOf(w.To), w.From),
				Do: "finish step two with `kup controlplane complete`"}
		case StateClosed:
			if w.Outcome == OutcomeRolledBack {
				return Done, nil
			}
			return Refuse, &Refusal{State: st, Step: s, RestoreOnly: true,
				Why: fmt.Sprintf("the rollback window of the upgrade %s → %s closed%s when step two raised the emulated version to %s: the control plane serves %s's APIs and may have stored objects %s cannot read, so the old binaries cannot safely run on this etcd again",
					w.From, w.To, at(w.Raised), minorOf(w.To), minorOf(w.To), w.From)}
		}
	}
	return refuse(fmt.Sprintf("the rollback window is in an unknown state %q", st), "inspect it with `kup status`")
}

// Begin moves the window into step s at now. It refuses a transition
// Decide would not allow, so a caller cannot corrupt the record.
func (w *Window) Begin(s Step, now time.Time) error {
	d, r := Decide(w, s)
	if r != nil {
		return r
	}
	if d == Done {
		return fmt.Errorf("%s of the window %s → %s is already done", s, w.From, w.To)
	}
	switch s {
	case StepOne:
		if d == Start {
			*w = Window{From: w.From, To: w.To, Backup: w.Backup}
			w.Started = now
		}
		w.State = StateOpening
	case StepTwo:
		if d == Start {
			w.Raised = now
		}
		w.State = StateCompleting
	case StepRollback:
		w.State = StateRollingBack
	}
	return nil
}

// End records that step s finished at now: the window is open after step
// one (with a soak > 0, to be completed by itself at now+soak), closed
// after the others.
func (w *Window) End(s Step, now time.Time, soak time.Duration) error {
	want := map[Step]State{StepOne: StateOpening, StepTwo: StateCompleting, StepRollback: StateRollingBack}[s]
	if w.State != want {
		return fmt.Errorf("ending %s: the window is %q, not %q", s, w.State, want)
	}
	switch s {
	case StepOne:
		w.State, w.Opened = StateOpen, now
		if soak > 0 {
			w.SoakUntil = now.Add(soak)
		}
	case StepTwo:
		w.State, w.Closed, w.Outcome = StateClosed, now, OutcomeCompleted
	case StepRollback:
		w.State, w.Closed, w.Outcome = StateClosed, now, OutcomeRolledBack
	}
	return nil
}

// Age is how long the window has been open (since step one began while it
// is still opening); zero when it is not open.
func (w *Window) Age(now time.Time) time.Duration {
	switch w.State {
	case StateOpen, StateRollingBack:
		if !w.Opened.IsZero() {
			return now.Sub(w.Opened)
		}
		return now.Sub(w.Started)
	case StateOpening:
		return now.Sub(w.Started)
	}
	return 0
}

// Describe is one line for `kup status` and the commands' results.
func (w *Window) Describe(now time.Time) string {
	short := func(d time.Duration) string { return d.Round(time.Second).String() }
	switch w.State {
	case StateOpening:
		return fmt.Sprintf("opening for %s: step one (%s → %s, emulating %s) is under way or was interrupted; `kup controlplane upgrade --to %s --rollback-safe` finishes it, `kup rollback` goes back",
			short(w.Age(now)), w.From, w.To, w.Emulated(), w.To)
	case StateOpen:
		s := fmt.Sprintf("OPEN for %s (since %s): %s binaries emulating %s; `kup rollback` returns to %s, `kup controlplane complete` raises the emulated version to %s",
			short(w.Age(now)), w.Opened.UTC().Format(time.RFC3339), w.To, w.Emulated(), w.From, minorOf(w.To))
		if !w.SoakUntil.IsZero() {
			if left := w.SoakUntil.Sub(now); left > 0 {
				s += fmt.Sprintf("; soak ends in %s", short(left))
			} else {
				s += fmt.Sprintf("; soak ended %s ago", short(-left))
			}
		}
		return s
	case StateCompleting:
		return fmt.Sprintf("completing since %s: step two is raising the emulated version to %s (no rollback any more); `kup controlplane complete` finishes it",
			w.Raised.UTC().Format(time.RFC3339), minorOf(w.To))
	case StateRollingBack:
		return fmt.Sprintf("rolling back to %s (open for %s): `kup rollback` finishes it", w.From, short(w.Age(now)))
	case StateClosed:
		if w.Outcome == OutcomeRolledBack {
			return fmt.Sprintf("closed: rolled back to %s at %s", w.From, w.Closed.UTC().Format(time.RFC3339))
		}
		return fmt.Sprintf("closed: completed at %s (%s emulating %s; a rollback now needs a snapshot restore)", w.Closed.UTC().Format(time.RFC3339), w.To, minorOf(w.To))
	}
	return "no rollback window"
}

// RestoreOnlyError is a refused rollback with what is left: a snapshot
// restore, and what it would lose.
type RestoreOnlyError struct {
	Refusal *Refusal
	// Newest is the newest snapshot kup knows of; nil when none.
	Newest *Snapshot
	// Searched are the places looked in for snapshots.
	Searched []string
	Now      time.Time
}

// ErrRestoreOnly matches every RestoreOnlyError (errors.Is).
var ErrRestoreOnly = errors.New("only a snapshot restore can go back")

func (e *RestoreOnlyError) Is(target error) bool { return target == ErrRestoreOnly }

func (e *RestoreOnlyError) Error() string {
	var b strings.Builder
	b.WriteString("kup rollback refused: ")
	b.WriteString(e.Refusal.Why)
	b.WriteString(". Only a snapshot restore remains")
	if e.Newest == nil {
		where := ""
		if len(e.Searched) > 0 {
			where = " (looked in " + strings.Join(e.Searched, ", ") + ")"
		}
		fmt.Fprintf(&b, ", and kup knows no snapshot of this cluster%s: without one there is no way back", where)
	} else {
		s := e.Newest
		ago := ""
		if !e.Now.IsZero() && !s.Created.IsZero() {
			ago = fmt.Sprintf(", %s ago", e.Now.Sub(s.Created).Round(time.Second))
		}
		fmt.Fprintf(&b, ": the newest snapshot is %s (etcd revision %d, taken %s%s); restoring it (`kup restore %s`) loses every write made since — every object created, changed or deleted after %s, the upgrade's own changes included",
			s.Path, s.Revision, s.Created.UTC().Format(time.RFC3339), ago, s.Path, s.Created.UTC().Format(time.RFC3339))
	}
	if e.Refusal.Do != "" {
		b.WriteString(". Otherwise: ")
		b.WriteString(e.Refusal.Do)
	}
	return b.String()
}

// Newest picks the newest of the snapshots (by creation time); nil for
// none.
func Newest(snaps []Snapshot) *Snapshot {
	var best *Snapshot
	for i := range snaps {
		if best == nil || snaps[i].Created.After(best.Created) {
			best = &snaps[i]
		}
	}
	return best
}

func at(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " at " + t.UTC().Format(time.RFC3339)
}

func minorOf(v string) string {
	p, err := version.Parse(v)
	if err != nil {
		return v
	}
	return p.MinorString()
}

func quote(cmd string) string { return "`" + cmd + "`" }
