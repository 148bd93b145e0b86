package action

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/kube"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/rollbacksafe"
	"github.com/kup-project/kup/internal/version"
)

// CodeRestoreOnly: `kup rollback` refused because only a snapshot restore
// can go back (exit 1).
const CodeRestoreOnly = "restore-only"

// CodeWindowRefused: the rollback window's state does not allow the step
// (exit 1).
const CodeWindowRefused = "window-refused"

// RollbackSafe runs the rollback window of a control-plane minor upgrade
// (KEP-4330 emulated versions): Open is `kup controlplane upgrade
// --rollback-safe`, Complete is `kup controlplane complete`, Rollback is
// `kup rollback`. What each step may do is decided by rollbacksafe.Decide
// from the window the journal records (journal.WindowName); every
// component move is recorded before and after it runs, so a killed kup's
// next run resumes the step it was in, and the provider's own report of
// what runs and emulates is checked after every step (the cluster, not
// the journal, says whether a step is done).
type RollbackSafe struct {
	Config       *rest.Config
	ControlPlane provider.ControlPlane
	// To is the exact version step one moves to (Open only).
	To string
	// Soak, with AutoComplete, is how long Open keeps the window open
	// before running step two itself (--soak); without AutoComplete the
	// window stays open until Complete or Rollback.
	Soak         time.Duration
	AutoComplete bool
	// SkipBackup opens the window without an etcd snapshot first.
	SkipBackup bool
	// BackupDir receives the snapshot (default DefaultBackupDir of the
	// cluster); Rollback looks there for the newest snapshot when it
	// must refuse.
	BackupDir   string
	Etcd        backup.Endpoint
	EncryptTo   []string
	ClusterName string
	// GateTimeout bounds the health check after each step (default 5m).
	GateTimeout time.Duration
	// JournalDir holds the journal's local mirror (default: the state
	// dir's journals/).
	JournalDir string
	// LockTTL is the upgrade lock's lease (default journal.DefaultTTL).
	LockTTL  time.Duration
	Progress io.Writer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// WindowResult is what a window command did.
type WindowResult struct {
	Step     rollbacksafe.Step     `json:"step"`
	Decision rollbacksafe.Decision `json:"decision"`
	// Steps are the steps this run carried out (Open with a soak: both).
	Steps  []rollbacksafe.Step  `json:"steps,omitempty"`
	Window *rollbacksafe.Window `json:"window,omitempty"`
	Backup *backup.Manifest     `json:"backup,omitempty"`
	// Components are what the control plane runs and emulates at the end.
	Components []provider.EmulatedComponent `json:"components,omitempty"`
	// Integrity compares every object in etcd before and after a
	// rollback (UIDs); empty when etcd could not be reached.
	Integrity     []ResourceCheck `json:"integrity,omitempty"`
	IntegrityNote string          `json:"integrityNote,omitempty"`
	Now           time.Time       `json:"now"`
}

// windowRun is one command's hold on the window: the lock, the journal
// and the emulator.
type windowRun struct {
	a     *RollbackSafe
	cs    kubernetes.Interface
	em    provider.Emulator
	lock  *journal.Lock
	store *journal.Store
	j     *journal.Journal
	w     *rollbacksafe.Window
	res   *WindowResult
}

func (a *RollbackSafe) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *RollbackSafe) emit(format string, args ...any) {
	if a.Progress != nil {
		fmt.Fprintf(a.Progress, "%s %s\n", a.now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

// start takes the lock and loads the window.
func (a *RollbackSafe) start(ctx context.Context, step rollbacksafe.Step) (*windowRun, error) {
	em, ok := a.ControlPlane.(provider.Emulator)
	if !ok || !a.ControlPlane.Capabilities().Emulation {
		return nil, &ResultError{Code: CodeNotUpgradable, Err: fmt.Errorf("the %s provider cannot start the control plane with --emulated-version (KEP-4330), so it has no rollback window", a.ControlPlane.Name())}
	}
	cs, err := kubernetes.NewForConfig(kube.Resilient(kube.Fast(a.Config), 0))
	if err != nil {
		return nil, err
	}
	r := &windowRun{a: a, cs: cs, em: em, res: &WindowResult{Step: step}}
	r.lock, err = journal.Acquire(ctx, cs, journal.Identity()+" rollback window", a.LockTTL, func(m string) { a.emit("%s", m) })
	if err != nil {
		return nil, err
	}
	r.store = &journal.Store{Client: cs, Cluster: a.Config.Host, LocalDir: a.JournalDir, Name: journal.WindowName}
	r.j, err = r.store.Load(ctx)
	if err != nil {
		r.release(ctx)
		return nil, err
	}
	if r.j != nil {
		if raw := r.j.Extra["window"]; len(raw) > 0 {
			r.w = &rollbacksafe.Window{}
			if err := json.Unmarshal(raw, r.w); err != nil {
				r.release(ctx)
				return nil, fmt.Errorf("the rollback window recorded in ConfigMap %s/%s is corrupt: %w", journal.Namespace, journal.WindowName, err)
			}
		}
		if n := r.j.MarkInterrupted(a.now().UTC()); n > 0 {
			r.j.Resumes++
			state := rollbacksafe.StateNone
			if r.w != nil {
				state = r.w.State
			}
			a.emit("resuming: %d move(s) of a kup that stopped were left unfinished (window %q); continuing from what the control plane reports", n, state)
		}
		r.j.Holder = journal.Identity()
	}
	return r, nil
}

// release gives the lock back, once (Open releases it to soak and may
// be deferred again).
func (r *windowRun) release(ctx context.Context) {
	if r.lock == nil {
		return
	}
	l := r.lock
	r.lock = nil
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = l.Release(rctx)
}

// save records the window; kup must not move anything without a record.
func (r *windowRun) save(ctx context.Context) error {
	raw, err := json.Marshal(r.w)
	if err != nil {
		return err
	}
	if r.j == nil {
		r.j = &journal.Journal{Schema: 1, RunID: newWindowID(r.a.now()), Cluster: r.a.Config.Host, Started: r.a.now().UTC(), Holder: journal.Identity()}
	}
	if r.j.Extra == nil {
		r.j.Extra = map[string]json.RawMessage{}
	}
	r.j.Extra["window"] = raw
	r.j.From, r.j.Target, r.j.Phase = r.w.From, r.w.To, string(r.w.State)
	if err := r.store.Save(context.WithoutCancel(ctx), r.j); err != nil {
		return fmt.Errorf("recording the rollback window in the journal: %w", err)
	}
	return nil
}

func newWindowID(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "window-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// record appends a step record (status started, done or failed) and saves.
func (r *windowRun) record(ctx context.Context, id, status, detail string) error {
	now := r.a.now().UTC()
	if s := r.j.Step(id); s != nil && s.Status == journal.StatusStarted && status != journal.StatusStarted {
		s.Status, s.Ended = status, now
		if detail != "" {
			s.Detail = detail
		}
	} else {
		r.j.Steps = append(r.j.Steps, journal.Step{ID: id, Status: status, Started: now, Detail: detail})
	}
	return r.save(ctx)
}

// refused turns a Decide refusal into the command's error.
func refused(rf *rollbacksafe.Refusal) error {
	return &ResultError{Code: CodeWindowRefused, Err: rf}
}

// Open is step one: every component to To emulating the current minor
// (after an etcd snapshot), verified, recorded as an open window; with
// AutoComplete, step two follows once the soak has passed.
func (a *RollbackSafe) Open(ctx context.Context) (*WindowResult, error) {
	if a.To == "" {
		return nil, &ResultError{Code: CodeUsage, Err: errors.New("--to is required")}
	}
	to, err := version.Parse(a.To)
	if err != nil || to.IsMinorOnly() {
		return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("--to %q: a rollback-safe upgrade needs an exact version such as v1.37.2", a.To)}
	}
	r, err := a.start(ctx, rollbacksafe.StepOne)
	if err != nil {
		return nil, err
	}
	defer r.release(ctx)
	res := r.res
	if r.w != nil && r.w.State != rollbacksafe.StateClosed && r.w.To != to.String() {
		return r.finish(ctx), &ResultError{Code: CodeWindowRefused, Err: fmt.Errorf("a rollback window %s → %s is %s: finish it (`kup controlplane complete` or `kup rollback`) before upgrading to %s", r.w.From, r.w.To, r.w.State, to)}
	}
	d, rf := rollbacksafe.Decide(r.w, rollbacksafe.StepOne)
	res.Decision = d
	switch d {
	case rollbacksafe.Refuse:
		return r.finish(ctx), refused(rf)
	case rollbacksafe.Start:
		if err := r.openNew(ctx, to); err != nil {
			return r.finish(ctx), err
		}
		fallthrough
	case rollbacksafe.Resume:
		if err := r.step(ctx, rollbacksafe.StepOne); err != nil {
			return r.finish(ctx), err
		}
	case rollbacksafe.Done:
		a.emit("step one is already done: %s", r.w.Describe(a.now()))
	}
	if !a.AutoComplete || r.w.State != rollbacksafe.StateOpen && r.w.State != rollbacksafe.StateCompleting {
		return r.finish(ctx), nil
	}
	if r.w.State == rollbacksafe.StateOpen {
		until := r.w.SoakUntil
		if until.IsZero() {
			until = r.w.Opened.Add(a.Soak)
		}
		if wait := until.Sub(a.now()); wait > 0 {
			a.emit("soaking: the window stays open until %s (%s); `kup rollback` from another terminal goes back", until.Local().Format(time.RFC3339), wait.Round(time.Second))
			// The lock is released while soaking, so `kup rollback` can
			// take it; the window is then re-read before step two.
			r.release(ctx)
			select {
			case <-ctx.Done():
				return r.res, fmt.Errorf("soaking the rollback window %s → %s: %w (the window stays open: `kup controlplane complete` or `kup rollback`)", r.w.From, r.w.To, ctx.Err())
			case <-time.After(wait):
			}
			r2, err := a.start(ctx, rollbacksafe.StepTwo)
			if err != nil {
				return res, err
			}
			r2.res = res
			r = r2
		}
	}
	return a.complete(ctx, r)
}

// openNew takes the snapshot and records a window about to open.
func (r *windowRun) openNew(ctx context.Context, to version.Version) error {
	a := r.a
	cs, err := r.em.Emulation(ctx)
	if err != nil {
		return fmt.Errorf("reading what the control plane runs before step one: %w", err)
	}
	from, err := oneVersion(cs)
	if err != nil {
		return &ResultError{Code: CodeNotUpgradable, Err: fmt.Errorf("before a rollback-safe upgrade: %w (finish the plain upgrade first: kup controlplane upgrade)", err)}
	}
	if raised := rollbacksafe.Raised(cs, from); len(raised) > 0 {
		return &ResultError{Code: CodeNotUpgradable, Err: fmt.Errorf("before a rollback-safe upgrade: %s", strings.Join(raised, "; "))}
	}
	caps := a.ControlPlane.Capabilities()
	v := rollbacksafe.HopSafety(rollbacksafe.HopInput{Index: 1, From: from, To: to, Provider: a.ControlPlane.Name(), Capabilities: &caps})
	if !v.Safe {
		return &ResultError{Code: CodeNotUpgradable, Err: fmt.Errorf("%s → %s cannot be rollback-safe: %s", from, to, v.Reason)}
	}
	if caps.Installable != nil && !caps.Installable(to.String()) {
		return &ResultError{Code: CodeNotUpgradable, Err: fmt.Errorf("the %s provider cannot install %s: %s", a.ControlPlane.Name(), to, caps.InstallableNote)}
	}
	kubelets, err := r.kubelets(ctx)
	if err != nil {
		return err
	}
	if newer := rollbacksafe.KubeletsBlockingRollback(kubelets, from); len(newer) > 0 {
		return &ResultError{Code: CodeNotUpgradable, Err: fmt.Errorf("kubelets newer than %s would block a rollback to it: %s", from.MinorString(), strings.Join(newer, ", "))}
	}
	w := rollbacksafe.NewWindow(from, to)
	if !a.SkipBackup {
		m, err := r.backup(ctx, from)
		if err != nil {
			return fmt.Errorf("etcd backup before step one (nothing was changed): %w", err)
		}
		r.res.Backup = m
		w.Backup = &rollbacksafe.Snapshot{Path: m.Path, Revision: m.Revision, Created: m.Created}
		a.emit("✓ etcd snapshot %s (revision %d, %d keys, verified)", m.Path, m.Revision, m.TotalKeys)
	}
	if err := w.Begin(rollbacksafe.StepOne, a.now().UTC()); err != nil {
		return err
	}
	r.w = r.freshJournal(w)
	a.emit("opening a rollback window %s → %s: %s", from, to, v.Reason)
	return r.save(ctx)
}

// freshJournal starts a new record for a new window (the previous,
// closed one is replaced).
func (r *windowRun) freshJournal(w *rollbacksafe.Window) *rollbacksafe.Window {
	runID := newWindowID(r.a.now())
	if r.j == nil {
		r.j = &journal.Journal{Schema: 1}
	}
	seq := r.j.Seq // keep the sequence rising: the newer copy wins on load
	*r.j = journal.Journal{Schema: 1, RunID: runID, Cluster: r.a.Config.Host, Started: r.a.now().UTC(), Holder: journal.Identity(), Seq: seq}
	return w
}

func (r *windowRun) backup(ctx context.Context, from version.Version) (*backup.Manifest, error) {
	a := r.a
	etcd := a.Etcd
	if p, ok := a.ControlPlane.(EtcdProvider); ok {
		etcd = p.EtcdEndpoint()
	}
	if etcd.URL == "" {
		return nil, &ResultError{Code: CodeUsage, Err: errors.New("no way to reach etcd for the snapshot before step one: give --etcd-endpoint (and TLS flags), or --skip-backup knowingly")}
	}
	dir, err := a.backupDir()
	if err != nil {
		return nil, err
	}
	b := &Backup{Etcd: etcd, Path: filepath.Join(dir, backupFileName(a.now())), ClusterName: a.clusterName(), KubernetesVersions: []string{from.String()}, EncryptTo: a.EncryptTo}
	return b.Run(ctx)
}

func (a *RollbackSafe) clusterName() string {
	if n, ok := a.ControlPlane.(clusterNamer); ok {
		return n.ClusterName()
	}
	return a.ClusterName
}

func (a *RollbackSafe) backupDir() (string, error) {
	if a.BackupDir != "" {
		return a.BackupDir, nil
	}
	return DefaultBackupDir(a.clusterName())
}

// Complete is step two: the emulated version raised to the new minor,
// apiserver first; the window closes.
func (a *RollbackSafe) Complete(ctx context.Context) (*WindowResult, error) {
	r, err := a.start(ctx, rollbacksafe.StepTwo)
	if err != nil {
		return nil, err
	}
	return a.complete(ctx, r)
}

func (a *RollbackSafe) complete(ctx context.Context, r *windowRun) (*WindowResult, error) {
	defer r.release(ctx)
	r.res.Step = rollbacksafe.StepTwo
	d, rf := rollbacksafe.Decide(r.w, rollbacksafe.StepTwo)
	r.res.Decision = d
	switch d {
	case rollbacksafe.Refuse:
		return r.finish(ctx), refused(rf)
	case rollbacksafe.Done:
		a.emit("step two is already done: %s", r.w.Describe(a.now()))
		return r.finish(ctx), nil
	}
	if err := r.step(ctx, rollbacksafe.StepTwo); err != nil {
		return r.finish(ctx), err
	}
	return r.finish(ctx), nil
}

// Rollback returns the control plane to the window's old binaries, checks
// every object in etcd is still there with its UID, and closes the
// window; after step two it refuses with what a snapshot restore would
// lose.
func (a *RollbackSafe) Rollback(ctx context.Context) (*WindowResult, error) {
	r, err := a.start(ctx, rollbacksafe.StepRollback)
	if err != nil {
		return nil, err
	}
	defer r.release(ctx)
	d, rf := rollbacksafe.Decide(r.w, rollbacksafe.StepRollback)
	r.res.Decision = d
	switch d {
	case rollbacksafe.Refuse:
		if rf.RestoreOnly {
			return r.finish(ctx), &ResultError{Code: CodeRestoreOnly, Err: r.restoreOnly(rf)}
		}
		return r.finish(ctx), refused(rf)
	case rollbacksafe.Done:
		a.emit("already rolled back: %s", r.w.Describe(a.now()))
		return r.finish(ctx), nil
	}
	from, _, err := r.w.Versions()
	if err != nil {
		return r.finish(ctx), err
	}
	// Trust the cluster over the journal: a component raised outside
	// the window (a plain upgrade run meanwhile) ends it as surely as
	// step two.
	cs, err := r.em.Emulation(ctx)
	if err != nil {
		return r.finish(ctx), fmt.Errorf("reading what the control plane emulates before the rollback: %w", err)
	}
	if raised := rollbacksafe.Raised(cs, from); len(raised) > 0 {
		rf := &rollbacksafe.Refusal{State: r.w.State, Step: rollbacksafe.StepRollback, RestoreOnly: true,
			Why: fmt.Sprintf("the journal records the window %s → %s as %s, but the control plane already serves a newer minor (%s): it may have stored objects %s cannot read", r.w.From, r.w.To, r.w.State, strings.Join(raised, "; "), r.w.From)}
		return r.finish(ctx), &ResultError{Code: CodeRestoreOnly, Err: r.restoreOnly(rf)}
	}
	kubelets, err := r.kubelets(ctx)
	if err != nil {
		return r.finish(ctx), err
	}
	if newer := rollbacksafe.KubeletsBlockingRollback(kubelets, from); len(newer) > 0 {
		return r.finish(ctx), &ResultError{Code: CodeWindowRefused, Err: fmt.Errorf("kup rollback refused: kubelets newer than %s were rolled out during the window (%s); the version-skew policy never allows an apiserver older than its kubelets: roll those nodes back first", from.MinorString(), strings.Join(newer, ", "))}
	}
	etcd := a.Etcd
	if p, ok := a.ControlPlane.(EtcdProvider); ok {
		etcd = p.EtcdEndpoint()
	}
	var before map[string]Object
	if etcd.URL != "" {
		if before, _, err = EtcdObjects(ctx, etcd); err != nil {
			r.res.IntegrityNote = "objects not compared: " + err.Error()
			before = nil
		}
	} else {
		r.res.IntegrityNote = "objects not compared: no etcd endpoint (--etcd-endpoint)"
	}
	if err := r.step(ctx, rollbacksafe.StepRollback); err != nil {
		return r.finish(ctx), err
	}
	if before != nil {
		after, _, err := EtcdObjects(ctx, etcd)
		if err != nil {
			r.res.IntegrityNote = "objects not compared after the rollback: " + err.Error()
		} else {
			r.res.Integrity = CompareObjects(before, after)
			var lost []string
			for _, c := range r.res.Integrity {
				if !c.Managed && len(c.Missing)+len(c.Changed) > 0 {
					lost = append(lost, fmt.Sprintf("%s: %d gone or replaced (%s)", c.Resource, len(c.Missing)+len(c.Changed), strings.Join(firstFew(append(c.Missing, c.Changed...)), ",")))
				}
			}
			if len(lost) > 0 {
				return r.finish(ctx), fmt.Errorf("rolled back to %s, but objects present before the rollback are not there with the same UID: %s (deleted by someone meanwhile, or a sign of damage: compare with the snapshot %s)", from, strings.Join(lost, "; "), snapshotPath(r.w))
			}
		}
	}
	return r.finish(ctx), nil
}

func snapshotPath(w *rollbacksafe.Window) string {
	if w.Backup == nil {
		return "(none taken)"
	}
	return w.Backup.Path
}

// step begins s in the journal, moves each component in s's order, checks
// the control plane reports exactly the target and is healthy, and ends s.
func (r *windowRun) step(ctx context.Context, s rollbacksafe.Step) error {
	a := r.a
	if err := r.w.Begin(s, a.now().UTC()); err != nil {
		return err
	}
	if err := r.save(ctx); err != nil {
		return err
	}
	r.res.Steps = append(r.res.Steps, s)
	from, to, err := r.w.Versions()
	if err != nil {
		return err
	}
	comps, why := rollbacksafe.Order(s)
	want := rollbacksafe.Target(s, from, to)
	emulate := want.Emulated.MinorString()
	if s == rollbacksafe.StepRollback {
		// The old binaries run at their own minor: no flag at all, as
		// before the window.
		emulate = ""
	}
	a.emit("%s: %s → %s, in the order %s (%s)", s, strings.Join(comps, ", "), want, strings.Join(comps, " → "), why)
	for _, c := range comps {
		id := fmt.Sprintf("%s: %s", s, c)
		if err := r.record(ctx, id, journal.StatusStarted, want.String()); err != nil {
			return err
		}
		t0 := a.now()
		if err := r.em.RunComponent(ctx, c, want.Version.String(), emulate); err != nil {
			_ = r.record(ctx, id, journal.StatusFailed, err.Error())
			return fmt.Errorf("%s of the window %s → %s: %s to %s: %w (the window stays %s; run the same command again, or see kup status)", s, r.w.From, r.w.To, c, want, err, r.w.State)
		}
		if err := r.record(ctx, id, journal.StatusDone, ""); err != nil {
			return err
		}
		a.emit("  ✓ %s %s (%s)", c, want, a.now().Sub(t0).Round(100*time.Millisecond))
	}
	if err := r.gate(ctx, comps, want); err != nil {
		return fmt.Errorf("%s of the window %s → %s: %w (the window stays %s)", s, r.w.From, r.w.To, err, r.w.State)
	}
	soak := time.Duration(0)
	if a.AutoComplete {
		soak = a.Soak
	}
	if err := r.w.End(s, a.now().UTC(), soak); err != nil {
		return err
	}
	a.emit("✓ %s done: %s", s, r.w.Describe(a.now()))
	return r.save(ctx)
}

// gate waits until every component reports want and the provider finds
// the control plane healthy.
func (r *windowRun) gate(ctx context.Context, comps []string, want rollbacksafe.Want) error {
	timeout := r.a.GateTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	for {
		var problems []string
		cs, err := r.em.Emulation(ctx)
		if err != nil {
			problems = append(problems, "reading what the components emulate: "+err.Error())
		} else {
			problems = rollbacksafe.Mismatches(cs, comps, want)
			r.res.Components = cs
		}
		if len(problems) == 0 {
			h, err := r.a.ControlPlane.Health(ctx)
			switch {
			case err != nil:
				problems = append(problems, "health could not be judged: "+err.Error())
			case !h.Healthy():
				problems = append(problems, h.Problems...)
			}
		}
		if len(problems) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the control plane was not healthy at %s within %s: %s", want, timeout, strings.Join(problems, "; "))
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (r *windowRun) kubelets(ctx context.Context) (map[string]version.Version, error) {
	list, err := r.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	out := map[string]version.Version{}
	for _, n := range list.Items {
		v, err := version.Parse(n.Status.NodeInfo.KubeletVersion)
		if err != nil {
			return nil, fmt.Errorf("node %s reports kubelet version %q: %w", n.Name, n.Status.NodeInfo.KubeletVersion, err)
		}
		out[n.Name] = v
	}
	return out, nil
}

// restoreOnly is the refusal with the newest snapshot kup knows of.
func (r *windowRun) restoreOnly(rf *rollbacksafe.Refusal) error {
	e := &rollbacksafe.RestoreOnlyError{Refusal: rf, Now: r.a.now()}
	var snaps []rollbacksafe.Snapshot
	if r.w != nil && r.w.Backup != nil {
		snaps = append(snaps, *r.w.Backup)
	}
	if dir, err := r.a.backupDir(); err == nil {
		e.Searched = append(e.Searched, dir)
		snaps = append(snaps, SnapshotsIn(dir)...)
	}
	e.Newest = rollbacksafe.Newest(snaps)
	return e
}

// SnapshotsIn lists the snapshots kup took into dir (those with a
// manifest), for a refusal to name the newest.
func SnapshotsIn(dir string) []rollbacksafe.Snapshot {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []rollbacksafe.Snapshot
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		m, err := backup.ReadManifest(filepath.Join(dir, strings.TrimSuffix(name, ".json")))
		if err != nil {
			continue
		}
		out = append(out, rollbacksafe.Snapshot{Path: m.Path, Revision: m.Revision, Created: m.Created})
	}
	return out
}

// finish fills the result with the window as it stands.
func (r *windowRun) finish(ctx context.Context) *WindowResult {
	r.res.Window = r.w
	r.res.Now = r.a.now()
	if r.res.Components == nil {
		if cs, err := r.em.Emulation(ctx); err == nil {
			r.res.Components = cs
		}
	}
	return r.res
}

// oneVersion is the single version every component runs, or why there is
// none (a half-done hop).
func oneVersion(cs []provider.EmulatedComponent) (version.Version, error) {
	var vs []string
	for _, c := range cs {
		if !slices.Contains(vs, c.Version) {
			vs = append(vs, c.Version)
		}
	}
	if len(vs) != 1 {
		return version.Version{}, fmt.Errorf("the control-plane components run different versions (%s)", strings.Join(vs, ", "))
	}
	return version.Parse(vs[0])
}

// LoadWindow reads the rollback window recorded for the cluster, nil when
// none (for kup status and kup plan).
func LoadWindow(ctx context.Context, cs kubernetes.Interface, host, journalDir string) (*rollbacksafe.Window, error) {
	st := &journal.Store{Client: cs, Cluster: host, LocalDir: journalDir, Name: journal.WindowName}
	j, err := st.Load(ctx)
	if err != nil || j == nil || len(j.Extra["window"]) == 0 {
		return nil, err
	}
	w := &rollbacksafe.Window{}
	if err := json.Unmarshal(j.Extra["window"], w); err != nil {
		return nil, fmt.Errorf("the rollback window recorded in ConfigMap %s/%s is corrupt: %w", journal.Namespace, journal.WindowName, err)
	}
	return w, nil
}

// WriteWindowResult prints what a window command did and where the
// window stands.
func WriteWindowResult(w io.Writer, res *WindowResult) {
	if res == nil {
		return
	}
	if res.Backup != nil {
		fmt.Fprintf(w, "  ✓ backup   %s (revision %d, %d keys, verified)\n", res.Backup.Path, res.Backup.Revision, res.Backup.TotalKeys)
	}
	for _, s := range res.Steps {
		fmt.Fprintf(w, "  ✓ %s\n", s)
	}
	if res.Window != nil {
		fmt.Fprintf(w, "Rollback window %s → %s: %s\n", res.Window.From, res.Window.To, res.Window.Describe(res.Now))
	}
	if len(res.Components) > 0 {
		var cs []string
		for _, c := range res.Components {
			cs = append(cs, fmt.Sprintf("%s %s emulating %s", c.Name, c.Version, c.Emulated))
		}
		fmt.Fprintf(w, "  now: %s\n", strings.Join(cs, ", "))
	}
	if len(res.Integrity) > 0 {
		same, total := 0, 0
		for _, c := range res.Integrity {
			if c.Managed {
				continue
			}
			same += c.SameUID
			total += c.InSnapshot
		}
		fmt.Fprintf(w, "  objects: %d of %d present before the rollback are there with the same UID (events, leases and other control-plane-managed records not counted)\n", same, total)
	}
	if res.IntegrityNote != "" {
		fmt.Fprintf(w, "  note: %s\n", res.IntegrityNote)
	}
}
