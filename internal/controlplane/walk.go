package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/version"
)

// Defaults for Options.
const (
	// DefaultGateTimeout bounds each health gate: how long a control plane
	// that just moved may take to be ready at its new version with every
	// component healthy.
	DefaultGateTimeout = 5 * time.Minute
	// DefaultPreflightTimeout bounds the health check before anything
	// moves: a control plane that is not healthy then is not upgraded.
	DefaultPreflightTimeout = time.Minute
)

// gatePoll is how often a gate looks again (a variable for the tests).
var gatePoll = time.Second

// Steps an Event or a StopError names.
const (
	StepRead      = "read"
	StepPreflight = "preflight"
	StepBackup    = "backup"
	StepUpgrade   = "upgrade"
	StepGate      = "health gate"
	StepDone      = "done"
)

// Walker upgrades a control plane hop by hop.
type Walker struct {
	ControlPlane provider.ControlPlane
	// Client reads the nodes (kubelet versions for the skew gate).
	Client kubernetes.Interface
	// Backup takes the etcd backup before the first hop; it must return
	// only a verified snapshot. Nil requires Options.SkipBackup.
	Backup  func(ctx context.Context) (*backup.Manifest, error)
	Options Options
}

// Options tune a walk.
type Options struct {
	// Target is the version to reach (an exact release, or a minor for
	// its newest installable patch).
	Target version.Version
	// Releases is the release table; nil means the embedded one.
	Releases *version.Releases
	// SkipBackup walks without a backup (the user said so).
	SkipBackup bool
	// GateTimeout and PreflightTimeout: see the defaults.
	GateTimeout, PreflightTimeout time.Duration
	// Retry is the backoff for reads interrupted by an apiserver
	// restart. Zero means DefaultRetry.
	Retry wait.Backoff
	// Resume is the command that continues the walk, quoted in the
	// advice when it stops. Default "kup controlplane upgrade --to TARGET".
	Resume string
	// Progress, if set, receives one event per step.
	Progress func(Event)
}

// Event is one line of progress.
type Event struct {
	Time    time.Time
	Hop, Of int // 0 before the first hop
	Step    string
	Message string
}

// Result is what a walk did: the route, the backup, each hop's outcome,
// and the components as they run at the end (or where it stopped).
type Result struct {
	Provider      string               `json:"provider"`
	Route         *Route               `json:"route,omitempty"`
	Backup        *backup.Manifest     `json:"backup,omitempty"`
	BackupSkipped bool                 `json:"backupSkipped,omitempty"`
	Hops          []HopResult          `json:"hops"`
	Components    []provider.Component `json:"components,omitempty"`
	Took          time.Duration        `json:"took"`
}

// Hop outcomes.
const (
	OutcomeDone       = "done"
	OutcomeFailed     = "failed"
	OutcomeNotStarted = "not started"
)

// HopResult is one hop's outcome.
type HopResult struct {
	Hop
	Outcome string        `json:"outcome"`
	Took    time.Duration `json:"took,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// StopError is a walk that stopped: where, why, what runs now and what
// to do. Hop is 0 when it stopped before the first hop (nothing moved).
type StopError struct {
	Hop  Hop
	Of   int
	Step string
	Err  error
	// Done lists the hops that completed before the stop.
	Done []Hop
	// Running is the control plane as read after the stop; RunningErr
	// says why it could not be read.
	Running    []provider.Component
	RunningErr error
	// Backup is the snapshot taken before the first hop, if any.
	Backup string
	// Advice is what to do next.
	Advice string
}

func (e *StopError) Error() string {
	var b strings.Builder
	if e.Hop.Index == 0 {
		fmt.Fprintf(&b, "stopped before the first hop, at the %s: %v; nothing was changed", e.Step, e.Err)
	} else {
		fmt.Fprintf(&b, "stopped at hop %d of %d (%s → %s), at the %s: %v", e.Hop.Index, e.Of, e.Hop.From, e.Hop.To, e.Step, e.Err)
		if len(e.Done) > 0 {
			var done []string
			for _, h := range e.Done {
				done = append(done, fmt.Sprintf("hop %d to %s", h.Index, h.To))
			}
			fmt.Fprintf(&b, "; completed: %s", strings.Join(done, ", "))
		}
		if e.RunningErr != nil {
			fmt.Fprintf(&b, "; what runs now could not be read: %v", e.RunningErr)
		} else if len(e.Running) > 0 {
			fmt.Fprintf(&b, "; running now: %s", describe(e.Running))
		}
	}
	if e.Advice != "" {
		b.WriteString(". ")
		b.WriteString(e.Advice)
	}
	return b.String()
}

func (e *StopError) Unwrap() error { return e.Err }

// describe renders components as "kube-apiserver v1.36.3, …".
func describe(cs []provider.Component) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Name+" "+c.Version)
	}
	return strings.Join(s, ", ")
}

func (w *Walker) emit(hop, of int, step, format string, args ...any) {
	if w.Options.Progress != nil {
		w.Options.Progress(Event{Time: time.Now(), Hop: hop, Of: of, Step: step, Message: fmt.Sprintf(format, args...)})
	}
}

func (w *Walker) retry() wait.Backoff {
	if w.Options.Retry.Steps > 0 {
		return w.Options.Retry
	}
	return DefaultRetry
}

func (w *Walker) resume() string {
	if w.Options.Resume != "" {
		return w.Options.Resume
	}
	return "kup controlplane upgrade --to " + w.Options.Target.String()
}

// Run walks the route. The result is returned even with an error, for
// the report; a failure after the walk started is a *StopError.
func (w *Walker) Run(ctx context.Context) (*Result, error) {
	started := time.Now()
	cp := w.ControlPlane
	res := &Result{Provider: cp.Name(), Hops: []HopResult{}}
	defer func() { res.Took = time.Since(started) }()
	before := func(step string, err error, advice string) (*Result, error) {
		return res, &StopError{Step: step, Err: err, Advice: advice}
	}
	if w.Backup == nil && !w.Options.SkipBackup {
		return before(StepBackup, errors.New("no way to take the etcd backup was given"), "give the etcd endpoint, or skip the backup explicitly")
	}

	w.emit(0, 0, StepRead, "reading the control plane (%s provider) and the nodes", cp.Name())
	st, err := w.readState(ctx)
	if err != nil {
		return before(StepRead, err, "check that the cluster is reachable, then try again")
	}
	res.Components = st.Components
	route, err := PlanRoute(RouteInput{State: st, Target: w.Options.Target, Releases: w.Options.Releases, Provider: cp.Name(), Capabilities: cp.Capabilities()})
	if err != nil {
		return before(StepRead, err, "")
	}
	res.Route = route
	for _, n := range route.Notes {
		w.emit(0, 0, StepRead, "note: %s", n)
	}
	of := len(route.Hops)
	for _, h := range route.Hops {
		res.Hops = append(res.Hops, HopResult{Hop: h, Outcome: OutcomeNotStarted})
	}
	if of == 0 {
		w.emit(0, 0, StepDone, "the control plane is already at %s; nothing to do", route.To)
		return res, nil
	}
	var hops []string
	for _, h := range route.Hops {
		hops = append(hops, h.To.String())
	}
	w.emit(0, of, StepRead, "route: %s → %s in %d hop(s): %s", route.From, route.To, of, strings.Join(hops, " → "))

	w.emit(0, of, StepPreflight, "checking the control plane is healthy before anything moves")
	if _, err := w.gate(ctx, version.Version{}, w.preflightTimeout()); err != nil {
		return before(StepPreflight, err, "make the control plane healthy first; kup never starts an upgrade on a sick control plane")
	}

	var backupPath string
	if w.Options.SkipBackup {
		res.BackupSkipped = true
		w.emit(0, of, StepBackup, "skipped (--skip-backup): there is no way back if a hop damages etcd's data")
	} else {
		w.emit(0, of, StepBackup, "taking an etcd snapshot before the first hop")
		m, err := w.Backup(ctx)
		if err != nil {
			return before(StepBackup, err, "fix the backup (or pass --skip-backup knowingly), then try again")
		}
		res.Backup, backupPath = m, m.Path
		w.emit(0, of, StepBackup, "%s: revision %d, %d keys, verified (%s)", m.Path, m.Revision, m.TotalKeys, strings.Join(m.Verified, ", "))
	}

	var done []Hop
	for i, h := range route.Hops {
		hr := &res.Hops[i]
		hopStart := time.Now()
		stop := func(step string, err error) (*Result, error) {
			hr.Outcome, hr.Error, hr.Took = OutcomeFailed, err.Error(), time.Since(hopStart)
			se := &StopError{Hop: h, Of: of, Step: step, Err: err, Done: done, Backup: backupPath}
			w.account(ctx, se, route)
			res.Components = se.Running
			return res, se
		}
		verb := "upgrading"
		if h.Finish {
			verb = "finishing"
		}
		w.emit(h.Index, of, StepUpgrade, "%s the control plane %s → %s", verb, h.From, h.To)
		if err := cp.Upgrade(ctx, h.To.String()); err != nil {
			return stop(StepUpgrade, err)
		}
		w.emit(h.Index, of, StepGate, "waiting for every component healthy at %s and every kubelet within skew", h.To)
		health, err := w.gate(ctx, h.To, w.gateTimeout())
		if err != nil {
			return stop(StepGate, err)
		}
		hr.Outcome, hr.Took = OutcomeDone, time.Since(hopStart)
		res.Components = health.Components
		done = append(done, h)
		w.emit(h.Index, of, StepDone, "control plane at %s (%s)", h.To, hr.Took.Round(100*time.Millisecond))
	}
	return res, nil
}

func (w *Walker) gateTimeout() time.Duration {
	if w.Options.GateTimeout > 0 {
		return w.Options.GateTimeout
	}
	return DefaultGateTimeout
}

func (w *Walker) preflightTimeout() time.Duration {
	if w.Options.PreflightTimeout > 0 {
		return w.Options.PreflightTimeout
	}
	return DefaultPreflightTimeout
}

// readState reads the components and the kubelets, retrying reads an
// apiserver restart interrupts.
func (w *Walker) readState(ctx context.Context) (State, error) {
	var st State
	err := retryTransient(ctx, w.retry(), func(ctx context.Context) error {
		cs, err := w.ControlPlane.Components(ctx)
		st.Components = cs
		return err
	})
	if err != nil {
		return st, fmt.Errorf("reading the control plane's components: %w", err)
	}
	st.Kubelets, err = w.kubelets(ctx)
	return st, err
}

// kubelets maps node names to kubelet versions: one LIST.
func (w *Walker) kubelets(ctx context.Context) (map[string]version.Version, error) {
	out := map[string]version.Version{}
	err := retryTransient(ctx, w.retry(), func(ctx context.Context) error {
		list, err := w.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err
		}
		clear(out)
		for _, n := range list.Items {
			v, err := version.Parse(n.Status.NodeInfo.KubeletVersion)
			if err != nil {
				return fmt.Errorf("node %s reports kubelet version %q: %w", n.Name, n.Status.NodeInfo.KubeletVersion, err)
			}
			out[n.Name] = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	return out, nil
}

// gate waits until the provider reports a healthy control plane, every
// moving component at want (any version when want is zero), and no
// component or kubelet outside the version-skew policy. Reads that fail
// while the apiserver settles are retried until the deadline; the error
// lists what was still wrong.
func (w *Walker) gate(ctx context.Context, want version.Version, timeout time.Duration) (*provider.Health, error) {
	deadline := time.Now().Add(timeout)
	for {
		h, problems := w.check(ctx, want)
		if len(problems) == 0 {
			return h, nil
		}
		if err := ctx.Err(); err != nil {
			return h, fmt.Errorf("%s: %w", strings.Join(problems, "; "), err)
		}
		if time.Now().After(deadline) {
			what := "healthy"
			if !want.IsZero() {
				what = "healthy at " + want.String()
			}
			return h, fmt.Errorf("the control plane was not %s within %s: %s", what, timeout, strings.Join(problems, "; "))
		}
		select {
		case <-ctx.Done():
		case <-time.After(gatePoll):
		}
	}
}

// check is one look for gate.
func (w *Walker) check(ctx context.Context, want version.Version) (*provider.Health, []string) {
	h, err := w.ControlPlane.Health(ctx)
	if err != nil {
		return nil, []string{"health could not be judged: " + err.Error()}
	}
	problems := append([]string(nil), h.Problems...)
	seen := map[string]bool{}
	for _, c := range h.Components {
		if !moving[c.Name] {
			continue
		}
		seen[c.Name] = true
		if want.IsZero() {
			continue
		}
		v, err := version.Parse(c.Version)
		if err != nil || v.Compare(want) != 0 {
			problems = append(problems, fmt.Sprintf("%s at %s reports %s, want %s", c.Name, c.Instance, c.Version, want))
		}
	}
	if !seen[apiServer] && len(h.Problems) == 0 {
		problems = append(problems, "the provider reports no kube-apiserver")
	}
	if len(problems) > 0 {
		return h, problems
	}
	kubelets, err := w.kubelets(ctx)
	if err != nil {
		return h, []string{err.Error()}
	}
	cv, err := clusterVersions(State{Components: h.Components, Kubelets: kubelets})
	if err != nil {
		return h, []string{err.Error()}
	}
	for _, v := range version.CheckSkew(cv) {
		problems = append(problems, v.String())
	}
	return h, problems
}

// account fills in what runs after a stop and what to do about it.
func (w *Walker) account(ctx context.Context, se *StopError, route *Route) {
	// The caller's context may be what ended the walk; the account is
	// still owed. The apiserver may be coming back: retry for a while.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
	defer cancel()
	se.RunningErr = retryTransient(rctx, w.retry(), func(ctx context.Context) error {
		cs, err := w.ControlPlane.Components(ctx)
		se.Running = cs
		return err
	})
	if se.RunningErr != nil {
		se.Running = nil
	}
	h := se.Hop
	backupHint := ""
	if se.Backup != "" {
		backupHint = fmt.Sprintf(" The etcd backup taken before the first hop is %s; restore it (`kup restore %s`) only to undo the whole upgrade: everything written since is lost.", se.Backup, se.Backup)
	}
	versions := map[string]bool{}
	for _, c := range se.Running {
		if moving[c.Name] {
			versions[c.Version] = true
		}
	}
	var at []string
	for v := range versions {
		at = append(at, v)
	}
	sort.Strings(at)
	switch {
	case se.RunningErr != nil:
		se.Advice = fmt.Sprintf("The control plane is not answering. Read the components' logs (named above), start them again at %s or %s, then re-run `%s`.%s", h.From, h.To, w.resume(), backupHint)
	case se.Step == StepGate:
		se.Advice = fmt.Sprintf("Hop %d moved the control plane to %s but the health gate did not pass, so hop %d was not started. Find out why (the problems are listed above), then re-run `%s`: it gates again before going on.%s",
			h.Index, h.To, h.Index+1, w.resume(), backupHint)
	case len(at) == 1 && at[0] == h.From.String():
		se.Advice = fmt.Sprintf("The control plane is back at %s and serving; no component of hop %d stayed moved. Read the log named above, fix the cause, then re-run `%s`: it resumes from %s.%s",
			h.From, h.Index, w.resume(), h.From, backupHint)
	default:
		se.Advice = fmt.Sprintf("Hop %d is half done (versions now: %s, within the skew policy only while kube-apiserver is the newest). Fix the cause, then re-run `%s`: it finishes hop %d before going on to %s.%s",
			h.Index, strings.Join(at, ", "), w.resume(), h.Index, route.To, backupHint)
	}
}
