// Package apply runs a whole upgrade: preflight gate → etcd backup →
// control-plane hops (with the node rolls the skew policy forces before a
// hop) → node waves → verification → report. It is the executor of the
// architecture: every step checks the world before acting and is recorded
// in the journal before and after it runs, so a kup killed at any point
// and started again continues where the cluster is — it re-derives the
// remaining path from the cluster's versions rather than from memory.
//
// Decisions (path, waves, checks) are made by the pure packages; changes
// are made only through providers.
package apply

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/inventory"
	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/kube"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/verify"
	"github.com/kup-project/kup/internal/version"
)

// Window is a maintenance window (see internal/window).
type Window interface {
	// Next returns the current window if t is inside one, else the next.
	Next(t time.Time) (start, end time.Time)
	String() string
}

// Preflight runs the checks and returns the blockers not waived, and every
// finding for the report.
type Preflight func(ctx context.Context, target string) (blockers []report.FindingSummary, all []report.FindingSummary, err error)

// Backup takes and verifies the etcd snapshot.
type Backup func(ctx context.Context) (*report.BackupRecord, error)

// Options configure an apply.
type Options struct {
	Target string `json:"target"`
	// Rollout is the node policy; Target is set per roll.
	Rollout rollout.Options `json:"-"`
	// RolloutPolicy is what is persisted of the rollout options.
	RolloutPolicy json.RawMessage `json:"rolloutPolicy,omitempty"`
	// NodeMaxMinorsPerRoll comes from the node upgrader.
	NodeMaxMinorsPerRoll int `json:"nodeMaxMinorsPerRoll,omitempty"`
	// Window, when set, confines changes to maintenance windows.
	Window Window `json:"-"`
	// WaveEstimate is how long a wave is expected to take (the window
	// needs at least this much left to start one). Default 5m.
	WaveEstimate time.Duration `json:"-"`
	// Preflight and Backup are supplied by the caller (they depend on the
	// provider); nil Backup means no backup, recorded as skipped with
	// SkipBackupReason.
	Preflight        Preflight `json:"-"`
	Backup           Backup    `json:"-"`
	SkipBackupReason string    `json:"skipBackupReason,omitempty"`
	// ReportDir receives upgrade-report.{json,md,html} (default: the state
	// dir's reports/<run id>).
	ReportDir string `json:"-"`
	// DiscardJournal drops an unfinished run of another target.
	DiscardJournal bool `json:"-"`
	// LockTTL is the lock's lease (default journal.DefaultTTL).
	LockTTL time.Duration `json:"-"`
	// Progress receives events (phases, hops, rollout events).
	Progress func(Event) `json:"-"`
	// Pause, when closed, stops before the next wave or hop (first Ctrl-C).
	Pause <-chan struct{} `json:"-"`
	// JournalDir overrides the local journal mirror's directory.
	JournalDir string `json:"-"`
}

// Event is one line of progress.
type Event struct {
	Time    time.Time `json:"time"`
	Phase   string    `json:"phase"`
	Wave    int       `json:"wave,omitempty"`
	Node    string    `json:"node,omitempty"`
	Step    string    `json:"step,omitempty"`
	Message string    `json:"message"`
}

// Applier runs upgrades of one cluster.
type Applier struct {
	Config       *rest.Config
	ControlPlane provider.ControlPlane
	Upgrader     provider.NodeUpgrader
	Options      Options

	cs      kubernetes.Interface
	store   *journal.Store
	j       *journal.Journal
	rep     *report.UpgradeReport
	mu      sync.Mutex
	samples map[string]*report.Series
}

// ErrBlockers is what the error of a run its preflight stopped is (errors.Is):
// blockers not waived, nothing changed.
var ErrBlockers = errors.New("the preflight found blockers")

type blockersError struct{ error }

func (blockersError) Is(target error) bool { return target == ErrBlockers }

// ErrPaused means the run stopped on request and can be resumed.
var ErrPaused = errors.New("paused")

func (a *Applier) emit(phase, format string, args ...any) {
	if a.Options.Progress != nil {
		a.Options.Progress(Event{Time: time.Now(), Phase: phase, Message: fmt.Sprintf(format, args...)})
	}
}

// Run performs (or resumes) the upgrade and returns the report; the
// report is also written to ReportDir. The error says why it stopped and
// whether running it again resumes.
func (a *Applier) Run(ctx context.Context) (*report.UpgradeReport, error) {
	o := &a.Options
	if _, err := version.Parse(o.Target); err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	if a.ControlPlane == nil {
		return nil, errors.New("no control-plane provider for this cluster (today: kup sandbox clusters; kubeadm over SSH and EKS are coming)")
	}
	if _, groups := a.ControlPlane.(provider.NodeGroups); a.Upgrader == nil && !groups {
		return nil, errors.New("no node upgrader: pass --upgrader")
	}
	cfg := kube.Resilient(kube.Fast(a.Config), 0)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	a.cs = cs
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("cannot reach the Kubernetes API at %s: %w (check --kubeconfig and --context)", a.Config.Host, err)
	}
	runID := newRunID()
	lock, err := journal.Acquire(ctx, cs, journal.Identity()+" run "+runID, o.LockTTL, func(m string) { a.emit("lock", "%s", m) })
	if err != nil {
		return nil, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = lock.Release(rctx)
	}()
	if err := refuseInWindow(ctx, cs, a.Config.Host, o.JournalDir); err != nil {
		return nil, err
	}
	a.store = &journal.Store{Client: cs, Cluster: a.Config.Host, LocalDir: o.JournalDir}
	j, err := a.store.Load(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case j != nil && !j.Finished() && j.Target != o.Target && !o.DiscardJournal:
		return nil, fmt.Errorf("an unfinished upgrade to %s (run %s, phase %s) is recorded for this cluster; finish it with `kup apply --to %s`, or drop it with --discard-journal", j.Target, j.RunID, j.Phase, j.Target)
	case j != nil && !j.Finished() && j.Target == o.Target:
		j.Resumes++
		j.Holder = journal.Identity()
		j.MarkInterrupted(time.Now().UTC())
		a.emit("resume", "resuming run %s (phase %s, resume #%d): continuing from what the cluster says", j.RunID, j.Phase, j.Resumes)
	default:
		j = &journal.Journal{Schema: 1, RunID: runID, Cluster: a.Config.Host, Target: o.Target, Started: time.Now().UTC(), Phase: journal.PhasePreflight, Holder: journal.Identity()}
	}
	a.j = j
	a.rep = &report.UpgradeReport{Cluster: a.Config.Host, RunID: j.RunID, To: o.Target, Started: j.Started, Resumes: j.Resumes}
	a.restoreReport()

	err = a.run(ctx, lock)
	a.finish(ctx, err)
	return a.rep, err
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// save writes the journal; a failure to write even the local mirror stops
// the run (kup must not act without a record).
func (a *Applier) save(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	raw, _ := json.Marshal(a.rep)
	if a.j.Extra == nil {
		a.j.Extra = map[string]json.RawMessage{}
	}
	a.j.Extra["report"] = raw
	if err := a.store.Save(context.WithoutCancel(ctx), a.j); err != nil {
		return fmt.Errorf("recording progress in the journal: %w", err)
	}
	return nil
}

// restoreReport continues the report of a resumed run.
func (a *Applier) restoreReport() {
	raw := a.j.Extra["report"]
	if len(raw) == 0 {
		return
	}
	var prev report.UpgradeReport
	if json.Unmarshal(raw, &prev) == nil {
		resumes := a.j.Resumes
		*a.rep = prev
		a.rep.Resumes = resumes
	}
}

// begin and end record a step before and after it runs.
func (a *Applier) begin(ctx context.Context, id, detail string) error {
	a.j.Steps = append(a.j.Steps, journal.Step{ID: id, Status: journal.StatusStarted, Started: time.Now().UTC(), Detail: detail})
	return a.save(ctx)
}

func (a *Applier) end(ctx context.Context, id, status, detail string) error {
	if s := a.j.Step(id); s != nil && s.Status == journal.StatusStarted {
		s.Status, s.Ended = status, time.Now().UTC()
		if detail != "" {
			s.Detail = detail
		}
	} else {
		a.j.Steps = append(a.j.Steps, journal.Step{ID: id, Status: status, Started: time.Now().UTC(), Ended: time.Now().UTC(), Detail: detail})
	}
	return a.save(ctx)
}

func (a *Applier) phase(ctx context.Context, p string) error {
	a.j.Phase = p
	a.emit(p, "phase %s", p)
	return a.save(ctx)
}

func (a *Applier) paused() bool {
	select {
	case <-a.Options.Pause:
		return true
	default:
		return false
	}
}

func (a *Applier) run(ctx context.Context, lock *journal.Lock) error {
	o := &a.Options
	// 1. Preflight and baseline: once per run, before anything changes.
	if !a.j.Done("preflight") {
		if err := a.phase(ctx, journal.PhasePreflight); err != nil {
			return err
		}
		if err := a.begin(ctx, "preflight", ""); err != nil {
			return err
		}
		snap, err := inventory.Read(ctx, a.Config, inventory.Options{ControlPlane: a.ControlPlane, Kubectl: "-"})
		if err != nil {
			return err
		}
		cv, _ := snap.ClusterVersions()
		if len(cv.APIServers) == 0 {
			return fmt.Errorf("cannot read the apiserver version")
		}
		from := cv.APIServers[0]
		a.j.From, a.rep.From = from.String(), from.String()
		p, err := version.Path(from, version.MustParse(o.Target), version.DefaultReleases(), a.pathOptions(&cv))
		switch {
		case errors.Is(err, version.ErrSameVersion):
			// The control plane is there already; nodes may not be.
			a.emit(journal.PhasePreflight, "control plane already at %s; only nodes behind it will be rolled", o.Target)
			p = &version.UpgradePath{From: from, To: from}
		case err != nil:
			_ = a.end(ctx, "preflight", journal.StatusFailed, err.Error())
			return err
		}
		a.rep.Path = p
		for _, h := range p.Hops {
			a.j.Hops = append(a.j.Hops, h.To.String())
		}
		if o.Preflight != nil {
			blockers, all, err := o.Preflight(ctx, o.Target)
			if err != nil {
				_ = a.end(ctx, "preflight", journal.StatusFailed, err.Error())
				return fmt.Errorf("preflight: %w", err)
			}
			a.rep.Findings = all
			if len(blockers) > 0 {
				var ids []string
				for _, b := range blockers {
					ids = append(ids, b.ID+" ("+b.Title+")")
				}
				err := blockersError{fmt.Errorf("preflight found %d blocker(s): %s; fix them, or waive an ID with --waive ID after reading `kup plan --to %s`", len(blockers), strings.Join(ids, "; "), o.Target)}
				_ = a.end(ctx, "preflight", journal.StatusFailed, err.Error())
				a.j.Phase = journal.PhaseFailed
				return err
			}
		}
		b, err := verify.Take(ctx, a.cs)
		if err != nil {
			return fmt.Errorf("taking the verification baseline: %w", err)
		}
		a.j.Baseline, _ = json.Marshal(b)
		if err := a.end(ctx, "preflight", journal.StatusDone, fmt.Sprintf("%d hop(s): %s", len(p.Hops), strings.Join(a.j.Hops, " → "))); err != nil {
			return err
		}
	}

	// 2. Backup before the first change.
	if !a.j.Done("backup") {
		if err := a.phase(ctx, journal.PhaseBackup); err != nil {
			return err
		}
		if o.Backup == nil {
			a.rep.Backup = &report.BackupRecord{Skipped: o.SkipBackupReason}
			if err := a.end(ctx, "backup", journal.StatusSkipped, o.SkipBackupReason); err != nil {
				return err
			}
		} else {
			if err := a.begin(ctx, "backup", ""); err != nil {
				return err
			}
			rec, err := o.Backup(ctx)
			if err != nil {
				_ = a.end(ctx, "backup", journal.StatusFailed, err.Error())
				return fmt.Errorf("etcd backup (nothing was changed): %w", err)
			}
			a.rep.Backup = rec
			a.emit(journal.PhaseBackup, "etcd snapshot %s verified (revision %d, %d keys)", rec.Path, rec.Revision, rec.Keys)
			if err := a.end(ctx, "backup", journal.StatusDone, rec.Path); err != nil {
				return err
			}
		}
	}

	// 3 and 4. Hops and node rolls, re-derived from the cluster each time.
	stopSampling := a.sampleAvailability(ctx)
	defer stopSampling()
	// An independent referee for the report: PDB violations and the worst
	// availability any protected Deployment reached while kup worked.
	if w, err := rollout.Watch(ctx, a.cs); err == nil {
		defer func() {
			w.Stop()
			a.mu.Lock()
			defer a.mu.Unlock()
			a.rep.Rollout.PDBViolations += len(w.Violations())
			worst, _ := w.WorstAvailability()
			if a.rep.Rollout.WorstAvailability == 0 || worst < a.rep.Rollout.WorstAvailability {
				a.rep.Rollout.WorstAvailability = worst
			}
		}()
	}
	for {
		if err := lock.Lost(); err != nil {
			return err
		}
		if o.Window != nil {
			if err := a.waitForWindow(ctx); err != nil {
				return err
			}
		}
		if a.paused() {
			return ErrPaused
		}
		snap, err := inventory.Read(ctx, a.Config, inventory.Options{ControlPlane: a.ControlPlane, Kubectl: "-"})
		if err != nil {
			return err
		}
		cv, _ := snap.ClusterVersions()
		if len(cv.APIServers) == 0 {
			return errors.New("cannot read the apiserver version")
		}
		cur := oldest(cv.APIServers)
		target := version.MustParse(o.Target)
		if cur.Compare(target) > 0 {
			return fmt.Errorf("the control plane runs %s, newer than the target %s; nothing to do (kup never downgrades)", cur, target)
		}
		var hop *version.Hop
		var rolls []version.NodeRoll
		if !controllersAt(cv, cur) {
			// A hop interrupted after the apiserver moved: finish it
			// before anything else (the skew policy forbids a
			// controller-manager or scheduler more than one minor behind).
			hop = &version.Hop{Index: 0, Kind: "finish", From: cur, To: cur, Reason: "finishing a hop interrupted after kube-apiserver moved: controller-manager and scheduler follow it"}
		} else if cur.Compare(target) < 0 {
			p, err := version.Path(cur, target, version.DefaultReleases(), a.pathOptions(&cv))
			if err != nil && !errors.Is(err, version.ErrSameVersion) {
				return fmt.Errorf("re-deriving the path from %s: %w", cur, err)
			}
			if p != nil && len(p.Hops) > 0 {
				hop = &p.Hops[0]
				rolls = hop.NodeRolls
			}
		}
		if hop == nil {
			// Control plane at the target: roll every node still behind.
			if err := a.phase(ctx, journal.PhaseNodes); err != nil {
				return err
			}
			if err := a.rollNodes(ctx, o.Target, nil); err != nil {
				return err
			}
			break
		}
		if err := a.phase(ctx, journal.PhaseControlPlane); err != nil {
			return err
		}
		// Nodes the skew policy would break must move before the hop.
		byTarget := map[string][]string{}
		for _, r := range rolls {
			byTarget[r.To.String()] = append(byTarget[r.To.String()], r.Node)
		}
		for _, to := range sortedKeys(byTarget) {
			if err := a.rollNodes(ctx, to, byTarget[to]); err != nil {
				return err
			}
		}
		if err := a.groupsFollow(ctx, cur); err != nil {
			return err
		}
		if err := a.hop(ctx, hop); err != nil {
			return err
		}
	}

	// 5. Verify against the baseline.
	if err := a.phase(ctx, journal.PhaseVerify); err != nil {
		return err
	}
	var b verify.Baseline
	if err := json.Unmarshal(a.j.Baseline, &b); err != nil {
		return fmt.Errorf("the journal's baseline is unreadable: %w", err)
	}
	removed := map[string]bool{}
	rec, err := verify.Run(ctx, a.cs, &b, verify.Options{Target: o.Target, Removed: removed, Since: a.j.Started})
	if err != nil {
		return fmt.Errorf("verifying: %w", err)
	}
	a.rep.Verify = rec
	if !rec.Passed {
		var failed []string
		for _, c := range rec.Checks {
			if !c.Passed {
				failed = append(failed, c.Name+": "+c.Detail)
			}
		}
		_ = a.end(ctx, "verify", journal.StatusFailed, strings.Join(failed, "; "))
		return fmt.Errorf("verification failed: %s", strings.Join(failed, "; "))
	}
	if err := a.end(ctx, "verify", journal.StatusDone, ""); err != nil {
		return err
	}
	return nil
}

func (a *Applier) pathOptions(cv *version.ClusterVersions) version.PathOptions {
	opts := version.PathOptions{Cluster: cv, NodeMaxMinorsPerRoll: a.Options.NodeMaxMinorsPerRoll}
	if a.Upgrader != nil && a.Upgrader.MaxMinorsPerRoll() > 0 {
		opts.NodeMaxMinorsPerRoll = a.Upgrader.MaxMinorsPerRoll()
	}
	if inst := a.ControlPlane.Capabilities().Installable; inst != nil {
		opts.Installable = func(v version.Version) bool { return inst(v.String()) }
	}
	return opts
}

// controllersAt reports whether every controller-manager and scheduler
// runs v (a hop interrupted after the apiserver moved leaves them behind).
func controllersAt(cv version.ClusterVersions, v version.Version) bool {
	for _, c := range append(append([]version.Version{}, cv.ControllerManagers...), cv.Schedulers...) {
		if c.Compare(v) != 0 {
			return false
		}
	}
	return true
}

func oldest(vs []version.Version) version.Version {
	o := vs[0]
	for _, v := range vs[1:] {
		if v.Compare(o) < 0 {
			o = v
		}
	}
	return o
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// hop moves the control plane one hop, then gates on its health.
func (a *Applier) hop(ctx context.Context, h *version.Hop) error {
	id := fmt.Sprintf("hop %s→%s", h.From, h.To)
	if h.From.Compare(h.To) == 0 {
		id = "finish hop to " + h.To.String()
	}
	if err := a.begin(ctx, id, h.Reason); err != nil {
		return err
	}
	rec := report.HopRecord{Index: len(a.rep.Hops) + 1, From: h.From.String(), To: h.To.String(), Started: time.Now().UTC()}
	rec.Detail = hopDetail(h)
	a.emit(journal.PhaseControlPlane, "control plane %s → %s (%s)", h.From, h.To, a.ControlPlane.Name())
	err := a.ControlPlane.Upgrade(ctx, h.To.String())
	rec.Finished = time.Now().UTC()
	if err != nil {
		rec.Outcome, rec.Detail = "failed", err.Error()
		a.rep.Hops = append(a.rep.Hops, rec)
		_ = a.end(ctx, id, journal.StatusFailed, err.Error())
		return fmt.Errorf("control-plane hop %s → %s: %w", h.From, h.To, err)
	}
	// Health gate: every component reports the hop's version.
	comps, err := a.ControlPlane.Components(ctx)
	if err != nil {
		_ = a.end(ctx, id, journal.StatusFailed, err.Error())
		return fmt.Errorf("after hop to %s: %w", h.To, err)
	}
	for _, c := range comps {
		if c.Name == "etcd" {
			continue
		}
		if !servesHop(a.ControlPlane.Capabilities(), c.Version, h.To) {
			err := fmt.Errorf("after hop to %s: %s %s reports %s", h.To, c.Name, c.Instance, c.Version)
			_ = a.end(ctx, id, journal.StatusFailed, err.Error())
			return err
		}
	}
	// …and the provider judges the whole control plane healthy (readyz
	// of every apiserver, component health, kube-system pods).
	if err := a.healthy(ctx, h.To.String()); err != nil {
		_ = a.end(ctx, id, journal.StatusFailed, err.Error())
		return err
	}
	rec.Outcome = "done"
	a.rep.Hops = append(a.rep.Hops, rec)
	a.emit(journal.PhaseControlPlane, "control plane at %s", h.To)
	return a.end(ctx, id, journal.StatusDone, "")
}

// hopDetail says what a hop from a version to itself is: read as
// "v1.36.3 → v1.36.3" it looks like a hop that did nothing, when it
// finished one an earlier run left part-way. Other hops need no word.
func hopDetail(h *version.Hop) string {
	if h.From.Compare(h.To) != 0 {
		return ""
	}
	return fmt.Sprintf("finished a hop an earlier run left part-way (the API server was already at %s)", h.To)
}

// servesHop reports whether a component at got has finished hop to: the
// exact release, or its minor when the provider chooses patches (EKS).
func servesHop(caps provider.Capabilities, got string, to version.Version) bool {
	if got == to.String() {
		return true
	}
	v, err := version.Parse(got)
	return caps.PatchByProvider && err == nil && v.Major() == to.Major() && v.Minor() == to.Minor()
}

// rollNodes rolls nodes (nil: every node behind) to version in waves.
func (a *Applier) rollNodes(ctx context.Context, to string, nodes []string) error {
	id := "nodes→" + to
	if len(nodes) > 0 {
		id += " (" + fmt.Sprint(len(nodes)) + " forced before a hop)"
	}
	if ng, ok := a.ControlPlane.(provider.NodeGroups); ok && len(nodes) == 0 {
		// The provider rolls its node groups; kup's waves take the rest.
		rest, err := a.rollGroups(ctx, ng, to)
		if err != nil {
			return err
		}
		if len(rest) == 0 {
			return nil
		}
		if a.Upgrader == nil {
			return fmt.Errorf("rolling nodes to %s: %d node(s) are in no managed node group (%s): say how kup upgrades them with --upgrader", to, len(rest), strings.Join(rest, ", "))
		}
		nodes = rest
	}
	if a.Upgrader == nil {
		return fmt.Errorf("rolling nodes to %s before a hop (%s): no --upgrader for nodes the provider does not roll", to, strings.Join(nodes, ", "))
	}
	if err := a.begin(ctx, id, strings.Join(nodes, ",")); err != nil {
		return err
	}
	ro := a.Options.Rollout
	ro.Target, ro.Nodes, ro.Pause = to, nodes, a.Options.Pause
	user := ro.Progress
	ro.Progress = func(e rollout.Event) {
		if user != nil {
			user(e)
		}
		if a.Options.Progress != nil {
			a.Options.Progress(Event{Time: e.Time, Phase: journal.PhaseNodes, Wave: e.Wave, Node: e.Node, Step: e.Step, Message: e.Message})
		}
		if e.Step == rollout.StepWave || e.Step == rollout.StepDone || e.Step == rollout.StepFailed {
			if e.Node != "" {
				a.mu.Lock()
				a.j.Steps = append(a.j.Steps, journal.Step{ID: "node " + e.Node + "→" + to, Status: map[string]string{rollout.StepDone: journal.StatusDone, rollout.StepFailed: journal.StatusFailed}[e.Step], Started: e.Time, Ended: e.Time, Detail: e.Message})
				a.mu.Unlock()
			}
			_ = a.save(ctx)
		}
	}
	r := &rollout.Roller{Client: a.cs, Upgrader: a.Upgrader, Options: ro}
	res, err := r.Run(ctx)
	a.addRollout(res)
	if err != nil {
		status := journal.StatusFailed
		if errors.Is(err, rollout.ErrPaused) {
			_ = a.end(ctx, id, journal.StatusInterrupted, "paused")
			return ErrPaused
		}
		_ = a.end(ctx, id, status, err.Error())
		return fmt.Errorf("rolling nodes to %s: %w", to, err)
	}
	return a.end(ctx, id, journal.StatusDone, "")
}

// addRollout folds a rollout's result into the report.
func (a *Applier) addRollout(res *rollout.Result) {
	if res == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	base := len(a.rep.Waves)
	for _, w := range res.Waves {
		a.rep.Waves = append(a.rep.Waves, report.WaveRecord{Index: base + w.Index, Nodes: w.Nodes, Limit: w.Limit.Reason, Started: w.Started, Finished: w.Finished})
	}
	for _, n := range res.Nodes {
		if n.Outcome == "not-started" && len(n.Steps) == 0 {
			continue
		}
		nt := report.NodeTimeline{Node: n.Node, Wave: base + n.Wave, From: n.From, To: res.Target, Outcome: n.Outcome, Reason: n.Reason, LeftCordoned: n.LeftCordoned, Evicted: n.Evicted}
		for _, s := range n.Steps {
			nt.Spans = append(nt.Spans, report.Span{Step: s.Step, Start: s.Start, End: s.End})
		}
		a.rep.Nodes = append(a.rep.Nodes, nt)
	}
	sort.Slice(a.rep.Nodes, func(i, j int) bool {
		if a.rep.Nodes[i].Wave != a.rep.Nodes[j].Wave {
			return a.rep.Nodes[i].Wave < a.rep.Nodes[j].Wave
		}
		return a.rep.Nodes[i].Node < a.rep.Nodes[j].Node
	})
	st := &a.rep.Rollout
	st.Waves = len(a.rep.Waves)
	st.Continuous = st.Continuous || res.Continuous
	st.MostDown = max(st.MostDown, res.MostDown())
	st.Evictions += res.Evictions
	st.Refusals += res.Refusals
	st.Makespan += res.Makespan
	if b := res.BoundMakespan(); b > 0 {
		st.LowerBound += b
		if res.OverlapBound == 0 {
			// Waves one after another: the bound's count of waves means
			// something next to the waves run.
			st.LowerBoundWaves += res.Bound.Waves
		}
	}
	pods := res.EvictablePods
	if st.EvictionsPerPod > 0 && st.Nodes > 0 {
		pods += int(float64(st.Evictions-res.Evictions) / st.EvictionsPerPod)
	}
	if pods > 0 {
		st.EvictionsPerPod = float64(st.Evictions) / float64(pods)
	}
	st.Nodes += len(res.Nodes)
	for _, n := range res.Nodes {
		if n.Outcome == "upgraded" {
			st.Upgraded++
		}
	}
}

// waitForWindow blocks until a maintenance window is open with at least
// one wave's worth of time left.
func (a *Applier) waitForWindow(ctx context.Context) error {
	need := a.Options.WaveEstimate
	if need == 0 {
		need = 5 * time.Minute
	}
	for {
		now := time.Now()
		start, end := a.Options.Window.Next(now)
		if !now.Before(start) && end.Sub(now) >= need {
			return nil
		}
		if !now.Before(start) { // inside, but too little left: next window
			start, _ = a.Options.Window.Next(end.Add(time.Second))
		}
		a.j.Phase = journal.PhaseWaiting
		_ = a.save(ctx)
		a.emit(journal.PhaseWaiting, "outside the maintenance window %s (or less than %s left); waiting until %s", a.Options.Window, need, start.Local().Format(time.RFC1123))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.Options.Pause:
			return ErrPaused
		case <-time.After(time.Until(start)):
		}
	}
}

// sampleAvailability records the availability of PDB-protected workloads
// every 2 s while nodes roll, for the report's charts.
func (a *Applier) sampleAvailability(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	if a.samples == nil {
		a.samples = map[string]*report.Series{}
	}
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			a.sampleOnce(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		a.mu.Lock()
		defer a.mu.Unlock()
		a.rep.Availability = a.rep.Availability[:0]
		for _, k := range sortedSeries(a.samples) {
			a.rep.Availability = append(a.rep.Availability, *a.samples[k])
		}
	}
}

func sortedSeries(m map[string]*report.Series) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (a *Applier) sampleOnce(ctx context.Context) {
	s, err := sampleWorkloads(ctx, a.cs)
	if err != nil {
		return
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range s {
		ser := a.samples[w.key]
		if ser == nil {
			ser = &report.Series{Workload: w.key, PDB: w.pdb, Desired: w.desired, MinAvailable: w.minAvailable}
			a.samples[w.key] = ser
		}
		// Keep the series small: only changes (and the first point).
		if n := len(ser.Points); n == 0 || ser.Points[n-1].Available != w.available {
			ser.Points = append(ser.Points, report.Point{T: now, Available: w.available})
		}
	}
}

// finish completes the report and the journal, whatever happened.
func (a *Applier) finish(ctx context.Context, err error) {
	a.rep.Finished = time.Now().UTC()
	switch {
	case err == nil:
		a.rep.Outcome = "succeeded"
		a.rep.Reason = "" // a resumed run's earlier failure is not this outcome's reason
		a.j.Phase = journal.PhaseDone
	case errors.Is(err, ErrPaused) || errors.Is(err, context.Canceled):
		a.rep.Outcome = "interrupted"
		a.rep.Reason = "stopped on request; run the same `kup apply` again to resume"
		a.j.Phase = journal.PhaseInterrupted
	default:
		a.rep.Outcome = "failed"
		a.rep.Reason = err.Error()
		if a.j.Phase != journal.PhaseFailed {
			a.j.Reason = err.Error()
		}
	}
	a.rep.StillCordoned = nil
	if nodes, lerr := a.cs.CoreV1().Nodes().List(context.WithoutCancel(ctx), listAll); lerr == nil {
		reasons := map[string]string{}
		for _, n := range a.rep.Nodes {
			if n.LeftCordoned {
				reasons[n.Node] = n.Reason
			}
		}
		for _, n := range nodes.Items {
			if n.Spec.Unschedulable {
				why := reasons[n.Name]
				if why == "" {
					why = "cordoned (not by this run, or interrupted mid-node: the next `kup apply` resumes it)"
				}
				a.rep.StillCordoned = append(a.rep.StillCordoned, report.CordonedNode{Node: n.Name, Reason: why})
			}
		}
	}
	_ = a.save(ctx)
	if werr := a.writeReport(); werr != nil {
		a.emit("report", "writing the report failed: %v", werr)
	}
}

// ReportPath is where the HTML report of the last Run was written.
func (a *Applier) ReportPath() string {
	return filepath.Join(a.reportDir(), "upgrade-report.html")
}

func (a *Applier) reportDir() string {
	if a.Options.ReportDir != "" {
		return a.Options.ReportDir
	}
	d, err := journal.StateDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "reports", a.j.RunID)
}

func (a *Applier) writeReport() error {
	dir := a.reportDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, write := range reportWriters(a.rep) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		werr := write(f)
		cerr := f.Close()
		if werr != nil {
			return fmt.Errorf("writing %s: %w", name, werr)
		}
		if cerr != nil {
			return cerr
		}
	}
	return nil
}

// healthy waits up to two minutes for the provider to judge the control
// plane healthy after a hop (kube-system pods restarting need a moment).
func (a *Applier) healthy(ctx context.Context, v string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		h, err := a.ControlPlane.Health(ctx)
		if err == nil && h.Healthy() {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("after hop to %s: judging control-plane health: %w", v, err)
			}
			return fmt.Errorf("after hop to %s: control plane unhealthy: %s", v, strings.Join(h.Problems, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// refuseInWindow stops an apply while a rollback window is open (kup
// controlplane upgrade --rollback-safe): rolling kubelets to the new minor
// would put them above the apiserver's emulated version (KEP-4330 skew)
// and block `kup rollback`; the window ends first.
func refuseInWindow(ctx context.Context, cs kubernetes.Interface, host, dir string) error {
	st := &journal.Store{Client: cs, Cluster: host, LocalDir: dir, Name: journal.WindowName}
	w, err := st.Load(ctx)
	if err != nil || w == nil {
		return err
	}
	switch w.Phase {
	case "window-opening", "window-open", "window-completing", "window-rolling-back":
		return fmt.Errorf("a rollback window %s → %s is recorded for this cluster (%s): end it with `kup controlplane complete` or `kup rollback` before kup apply (kup status shows it)", w.From, w.Target, w.Phase)
	}
	return nil
}
