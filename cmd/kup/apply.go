package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/apply"
	"github.com/kup-project/kup/internal/journal"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/report"
	sbx "github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/window"
)

type applyFlags struct {
	target         string
	waive          []string
	skipBackup     bool
	backupDir      string
	reportDir      string
	discardJournal bool
	output         string
	lockTTL        time.Duration
	window         string
	windowCron     string
	windowDuration time.Duration
	noColor        bool
	maxPlanAge     time.Duration
	closeProgress  func()
	rf             rolloutFlags
	// pf is --provider (sandbox, kubeadm or eks) with EKS's --cluster
	// and --region; cfg the cluster, for providers that need it.
	pf        providerFlags
	cfg       *rest.Config
	rehearsal requireRehearsalFlags
}

func newApplyCommand() *cobra.Command {
	var f applyFlags
	var flags *genericclioptions.ConfigFlags
	cmd := &cobra.Command{
		Use:   "apply --to VERSION | apply PLANFILE",
		Short: "Upgrade the cluster: preflight, etcd backup, control-plane hops, node waves, verify, report",
		Long: `Runs the whole upgrade. Blockers found by the preflight stop it unless waived
by ID. An etcd snapshot is taken and verified before anything changes. The
control plane moves one minor at a time; nodes are rolled as few times as the
version-skew policy allows, in PodDisruptionBudget-aware waves. Every step is
recorded in the journal (ConfigMap kup-system/kup-journal and a local mirror):
if kup stops — Ctrl-C, a crash, a laptop going to sleep — run the same command
again and it continues from what the cluster says. One kup at a time: a Lease
(kup-system/kup-apply) refuses a second one.

Ctrl-C once: the wave in flight finishes, then kup stops (resumable).
Ctrl-C twice: the node in flight is abandoned safely (uncordoned if nothing
changed on it) and kup stops (resumable).`,
		Example: `  kup apply --to v1.37.2
  kup apply --to v1.37.2 --max-unavailable 20% --delete-emptydir-data --waive KUP-POD-003`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.pf.takeCluster(flags); err != nil {
				return err
			}
			cfg, err := restConfig(flags)
			if err != nil {
				return usageError("no cluster (%v): pass --kubeconfig/--context", err)
			}
			if len(args) == 1 {
				// Execute exactly a saved plan: its target, policy and
				// waivers — if the cluster still matches it.
				p, err := action.LoadPlanFile(args[0])
				if err != nil {
					return resultError(err, false)
				}
				if f.target != "" && f.target != p.To {
					return usageError("--to %s contradicts the plan's target %s", f.target, p.To)
				}
				if err := action.CheckPlanStillHolds(cmd.Context(), cfg, p, f.maxPlanAge, time.Now()); err != nil {
					return resultError(err, false)
				}
				f.target = p.To
				f.waive = append(f.waive, p.Waived...)
				f.rf.maxUnavailable = p.Policy.MaxUnavailable.String()
				f.rf.zoneByZone = p.Policy.ZoneByZone
				if p.Policy.BudgetRounds > 0 {
					f.rf.opts.Policy.BudgetRounds = p.Policy.BudgetRounds
				}
			}
			if f.target == "" {
				return usageError("--to is required (or a plan file saved by kup plan --save)")
			}
			f.cfg, f.rf.secrets = cfg, configSecrets(cfg)
			if f.pf.name == "kubeadm" && f.rf.upgrader == "" {
				f.rf.upgrader = "kubeadm"
			}
			defer f.rf.ssh.close()
			if err := f.rehearsal.check(cmd, cfg); err != nil {
				return err
			}
			a, err := buildApplier(cmd, cfg.Host, &f)
			if err != nil {
				return err
			}
			a.Config = cfg
			pause := make(chan struct{})
			var once sync.Once
			setPauseOnInterrupt(func() { once.Do(func() { close(pause) }) })
			defer setPauseOnInterrupt(nil)
			a.Options.Pause = pause
			rep, err := a.Run(cmd.Context())
			if f.closeProgress != nil {
				f.closeProgress()
			}
			printApplyResult(cmd, a, rep, f.output)
			if errors.Is(err, apply.ErrBlockers) {
				return &codedError{code: exitBlockers, err: err}
			}
			return err
		},
	}
	flags = clusterFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.target, "to", "", "target Kubernetes version (required)")
	fl.StringSliceVar(&f.waive, "waive", nil, "preflight blocker IDs to accept (repeatable), e.g. --waive KUP-PDB-001")
	fl.BoolVar(&f.skipBackup, "skip-backup", false, "do not take an etcd snapshot first (not recommended)")
	fl.StringVar(&f.backupDir, "backup-dir", "", "where the etcd snapshot goes (default: the state dir's backups/)")
	fl.StringVar(&f.reportDir, "report-dir", "", "where the report goes (default: the state dir's reports/<run id>/)")
	fl.BoolVar(&f.discardJournal, "discard-journal", false, "drop an unfinished upgrade to another version recorded for this cluster")
	fl.StringVarP(&f.output, "output", "o", "text", "text, or json (stream events as JSON lines, then the report)")
	fl.StringVar(&f.window, "window", "", `maintenance window: start waves only inside it, e.g. "Sat 02:00-06:00 Europe/Berlin" or "Mon-Fri 22:00-02:00"`)
	fl.StringVar(&f.windowCron, "window-cron", "", `maintenance window as a cron expression for its start (with --window-duration), e.g. "0 2 * * 6"`)
	fl.DurationVar(&f.windowDuration, "window-duration", 0, "length of the --window-cron window")
	fl.DurationVar(&f.maxPlanAge, "max-plan-age", action.DefaultMaxPlanAge, "refuse a saved plan older than this")
	fl.BoolVar(&f.noColor, "no-color", false, "no colour in the live progress (also NO_COLOR)")
	fl.DurationVar(&f.lockTTL, "lock-ttl", journal.DefaultTTL, "how long the upgrade lock outlives a kup that stopped renewing it (killed)")
	f.rf.add(cmd)
	f.rehearsal.add(cmd)
	f.pf.add(cmd)
	return cmd
}

// buildApplier resolves the providers and hooks for the cluster at host.
func buildApplier(cmd *cobra.Command, host string, f *applyFlags) (*apply.Applier, error) {
	// With --provider eks, kup's own upgrader is only for nodes in no
	// managed node group, and only when named.
	eks := f.pf.name == "eks"
	ro, up, err := f.rf.build(host, !eks || f.rf.upgrader != "" || f.rf.execCommand != "")
	if err != nil {
		return nil, err
	}
	a := &apply.Applier{Upgrader: up, Options: apply.Options{Target: f.target, Rollout: ro, ReportDir: f.reportDir, DiscardJournal: f.discardJournal, LockTTL: f.lockTTL}}
	switch f.pf.name {
	case "kubeadm":
		return buildKubeadmApplier(cmd, a, f)
	case "", "sandbox", "eks":
	default:
		return nil, usageError("--provider %q: want sandbox, kubeadm or eks", f.pf.name)
	}
	var sb *sbx.Cluster
	if eks {
		if err := f.configureEKS(cmd, a); err != nil {
			return nil, err
		}
	} else if sb, err = sandboxprovider.Detect(host); err != nil {
		return nil, usageError("%s is not a kup sandbox: for a kubeadm cluster pass --provider kubeadm (the runbook over SSH, see --ssh-*), for EKS --provider eks --cluster NAME; `kup plan` and `kup nodes upgrade --upgrader exec` work on any cluster", host)
	} else {
		a.ControlPlane = &sandboxprovider.ControlPlane{Cluster: sb}
	}
	switch {
	case eks: // no backup, and configureEKS said why
	case f.skipBackup:
		a.Options.SkipBackupReason = "--skip-backup"
	default:
		dir := f.backupDir
		if dir == "" {
			state, err := journal.StateDir()
			if err != nil {
				return nil, err
			}
			dir = filepath.Join(state, "backups", sb.Name)
		}
		a.Options.Backup = apply.SandboxBackup(sb, dir, f.target)
	}
	return finishApplier(cmd, a, f, host)
}

// finishApplier sets what every provider shares: the maintenance window,
// the preflight and the progress output.
func finishApplier(cmd *cobra.Command, a *apply.Applier, f *applyFlags, host string) (*apply.Applier, error) {
	ro := a.Options.Rollout
	switch {
	case f.window != "" && f.windowCron != "":
		return nil, usageError("give --window or --window-cron, not both")
	case f.window != "":
		w, err := window.Parse(f.window)
		if err != nil {
			return nil, usageError("%v", err)
		}
		a.Options.Window = w
	case f.windowCron != "":
		w, err := window.ParseCron(f.windowCron, f.windowDuration, time.UTC)
		if err != nil {
			return nil, usageError("%v", err)
		}
		a.Options.Window = w
	}
	a.Options.Preflight = action.PreflightHook(host, f.waive, func() *action.Plan {
		p := &action.Plan{Config: a.Config, MaxUnavailable: ro.Policy.MaxUnavailable, ZoneByZone: ro.Policy.ZoneByZone, BudgetRounds: ro.Policy.BudgetRounds}
		if f.pf.name == "eks" {
			p.ControlPlane = a.ControlPlane
		}
		return p
	})
	stderr := cmd.ErrOrStderr()
	if f.output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		var mu sync.Mutex
		a.Options.Progress = func(e apply.Event) { mu.Lock(); _ = enc.Encode(e); mu.Unlock() }
	} else if isTTY(stderr) {
		live := newLiveProgress(stderr, f.target, useColor(stderr, f.noColor))
		a.Options.Progress = live.Event
		f.closeProgress = live.Close
	} else {
		a.Options.Progress = progressPrinter(stderr)
	}
	return a, nil
}

func progressPrinter(w interface{ Write([]byte) (int, error) }) func(apply.Event) {
	var mu sync.Mutex
	return func(e apply.Event) {
		mu.Lock()
		defer mu.Unlock()
		where := ""
		if e.Wave > 0 {
			where += fmt.Sprintf("wave %d ", e.Wave)
		}
		if e.Node != "" {
			where += e.Node + " "
		}
		fmt.Fprintf(w, "%s [%s] %s%s\n", e.Time.Format("15:04:05"), e.Phase, where, e.Message)
	}
}

func printApplyResult(cmd *cobra.Command, a *apply.Applier, rep *report.UpgradeReport, output string) {
	if rep == nil {
		return
	}
	out := cmd.OutOrStdout()
	if output == "json" {
		enc := json.NewEncoder(out)
		_ = enc.Encode(rep)
		return
	}
	fmt.Fprintf(out, "\nUpgrade %s → %s: %s", rep.From, rep.To, rep.Outcome)
	if rep.Reason != "" {
		fmt.Fprintf(out, " (%s)", rep.Reason)
	}
	fmt.Fprintln(out)
	if b := rep.Backup; b != nil {
		if b.Skipped != "" {
			fmt.Fprintf(out, "  backup: skipped (%s)\n", b.Skipped)
		} else {
			fmt.Fprintf(out, "  backup: %s (revision %d, %d keys, verified)\n", b.Path, b.Revision, b.Keys)
		}
	}
	for _, h := range rep.Hops {
		fmt.Fprintf(out, "  hop %d: %s → %s %s", h.Index, h.From, h.To, h.Outcome)
		if h.Detail != "" {
			fmt.Fprintf(out, " (%s)", h.Detail)
		}
		fmt.Fprintln(out)
	}
	st := rep.Rollout
	fmt.Fprintf(out, "  nodes: %d upgraded, %s; %d evictions (%.2f per pod), %d refused with 429\n", st.Upgraded, action.RolloutShape(st.Waves, st.Continuous, st.MostDown), st.Evictions, st.EvictionsPerPod, st.Refusals)
	// The ratio only means something for a run that finished: a stopped
	// one rolled a part of the nodes against a bound for all of them.
	if st.LowerBound > 0 && rep.Outcome == "succeeded" {
		fmt.Fprintf(out, "  node rollout: %s, lower bound %s (%.2f×; from the PDB budgets and max-unavailable, at the node and pod times measured)\n",
			st.Makespan.Round(time.Second), st.LowerBound.Round(time.Second), st.Makespan.Seconds()/st.LowerBound.Seconds())
	}
	if v := rep.Verify; v != nil {
		verdict := "passed"
		if !v.Passed {
			verdict = "FAILED"
		}
		fmt.Fprintf(out, "  verify: %s\n", verdict)
		for _, c := range v.Checks {
			mark := "✓"
			if !c.Passed {
				mark = "✗"
			}
			fmt.Fprintf(out, "    %s %s: %s\n", mark, c.Name, c.Detail)
		}
	}
	for _, c := range rep.StillCordoned {
		fmt.Fprintf(out, "  still cordoned: %s — %s\n", c.Node, c.Reason)
	}
	fmt.Fprintf(out, "  report: %s\n", strings.TrimSuffix(a.ReportPath(), ".html")+".{html,md,json}")
}
