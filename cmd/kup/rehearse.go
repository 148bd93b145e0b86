package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/rehearse"
	"github.com/kup-project/kup/internal/sandbox"
)

type rehearseFlags struct {
	apply      applyFlags
	twin       action.TwinBuild
	keepTwin   bool
	afterHops  []string
	reportRoot string
}

func newRehearseCommand() *cobra.Command {
	var f rehearseFlags
	var flags *genericclioptions.ConfigFlags
	cmd := &cobra.Command{
		Use:   "rehearse --to VERSION [apply flags…]",
		Short: "Upgrade a local sandbox twin of the cluster first, and report what the real upgrade will meet",
		Long: `Reads the cluster (read-only: one LIST per type, never a write) and starts a
sandbox twin of it: the same control-plane version (or the nearest patch the
sandbox can install), every node as a simulated node of the same name, labels,
taints, capacity and kubelet version, the same namespaces, CRDs and custom
resources, workloads, PodDisruptionBudgets, services, config maps, quotas and
priority classes. Secrets are never copied: the twin gets empty placeholders of
the same name and type. Each workload's pods become Ready after the delay
measured in the real cluster, so budgets bite as they do there.

Then it runs ` + "`kup apply`" + ` on the twin with the same flags, re-applies every
object's last-applied configuration to the twin's upgraded apiserver (dry run),
and writes a rehearsal report: passed or failed, blockers, blocked drains and
the budgets that held them, manifests the new version refuses, the predicted
makespan and waves, and how the twin differs from the real cluster.
` + "`kup apply --require-rehearsal`" + ` refuses to run without a passing one.`,
		Example: `  kup rehearse --to v1.37.2 --max-unavailable 20%
  kup rehearse --to v1.37.2 --namespaces shop,data --node-sample 100`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.apply.target == "" {
				return usageError("--to is required")
			}
			cfg, err := restConfig(flags)
			if err != nil {
				return usageError("no cluster (%v): pass --kubeconfig/--context", err)
			}
			started := time.Now().UTC()
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			fingerprint, err := action.ClusterFingerprint(ctx, cfg)
			if err != nil {
				return err
			}
			f.twin.Config, f.twin.Progress = cfg, stderr
			tw, err := f.twin.Run(ctx)
			if err != nil {
				return resultError(err, false)
			}
			if !f.keepTwin {
				defer func() {
					fmt.Fprintf(stderr, "stopping the twin %q\n", tw.Twin.Name)
					_ = tw.Twin.StopContext(context.WithoutCancel(ctx))
				}()
			}
			root := f.reportRoot
			if root == "" {
				state, err := journal.StateDir()
				if err != nil {
					return err
				}
				root = filepath.Join(state, "rehearsals", fingerprint)
			}
			dir := filepath.Join(root, started.Format("20060102-150405"))
			f.apply.reportDir = filepath.Join(dir, "twin-upgrade")
			if f.apply.backupDir == "" {
				f.apply.backupDir = filepath.Join(dir, "twin-backup")
			}
			twinHost := tw.Twin.RESTConfig().Host
			// The twin's progress goes to stderr as lines; -o json is the
			// rehearsal report's format, on stdout.
			output := f.apply.output
			f.apply.output = "text"
			a, err := buildApplier(cmd, twinHost, &f.apply)
			if err != nil {
				return err
			}
			a.Config = tw.Twin.RESTConfig()
			fmt.Fprintf(stderr, "── kup apply --to %s on the twin ──\n", f.apply.target)
			up, applyErr := a.Run(ctx)
			if f.apply.closeProgress != nil {
				f.apply.closeProgress()
			}
			// The control-plane hops ran through the sandbox provider's
			// own view of the twin and recorded the new processes on disk:
			// read them back, or the twin would be stopped (and its hops
			// continued) from a stale list of processes.
			if fresh, err := sandbox.Load(f.twin.StateDir, tw.Twin.Name); err == nil {
				tw.Twin = fresh
			}
			if errors.Is(applyErr, context.Canceled) {
				return applyErr
			}

			rep := &rehearse.Report{APIVersion: rehearse.ReportAPIVersion, Kind: rehearse.ReportKind,
				Cluster: cfg.Host, Fingerprint: fingerprint, To: f.apply.target, TwinVersion: tw.Version, Started: started,
				PlanHash: planHash(cmd), NotWritten: tw.Built.Failed, Differences: tw.Differences, UpgradeReport: a.ReportPath()}
			if up == nil && applyErr != nil {
				rep.Outcome, rep.Reason = "failed", applyErr.Error()
			}
			refused, rerr := action.ReapplyOnTwin(ctx, tw, f.apply.target, f.afterHops, stderr)
			if rerr != nil {
				rep.Differences = append(rep.Differences, rehearse.Difference{What: "the manifests could not be re-applied to the target version: " + rerr.Error(), Effect: "manifests the new version refuses are not known"})
			}
			rep.Refused = refused
			rep.FromUpgrade(up)
			rep.MapToReal(tw.Source)
			if rep.From == "" {
				rep.From = tw.Source.Server
			}
			rep.Finished = time.Now().UTC()
			if err := rep.Save(dir); err != nil {
				return fmt.Errorf("writing the rehearsal report: %w", err)
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				_ = enc.Encode(rep)
			} else {
				_ = rep.WriteText(out)
				fmt.Fprintf(out, "\nRehearsal report: %s\n", filepath.Join(dir, "rehearsal.{md,json}"))
				if f.keepTwin {
					fmt.Fprintf(out, "The twin keeps running: export KUBECONFIG=%s (stop it: kup sandbox down --name %s)\n", tw.Twin.Kubeconfig, tw.Twin.Name)
				}
			}
			if !rep.Passed {
				code := exitError
				if len(rep.Blockers) > 0 {
					code = exitBlockers
				}
				return &codedError{code: code, err: silent{fmt.Errorf("the rehearsal failed: %s", firstNonEmpty(rep.Reason, fmt.Sprintf("%d manifest(s) refused by %s", len(rep.Refused), f.apply.target)))}}
			}
			return nil
		},
	}
	flags = clusterFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.apply.target, "to", "", "target Kubernetes version (required)")
	fl.StringSliceVar(&f.apply.waive, "waive", nil, "preflight blocker IDs to accept (repeatable), as for kup apply")
	fl.BoolVar(&f.apply.skipBackup, "skip-backup", false, "do not take an etcd snapshot of the twin first")
	fl.StringVarP(&f.apply.output, "output", "o", "text", "text or json")
	fl.BoolVar(&f.apply.noColor, "no-color", false, "no colour in the live progress (also NO_COLOR)")
	fl.DurationVar(&f.apply.lockTTL, "lock-ttl", journal.DefaultTTL, "as for kup apply")
	f.apply.rf.add(cmd)
	fl.StringSliceVar(&f.twin.Namespaces, "namespaces", nil, "rehearse only these namespaces' objects (all nodes are kept unless --node-sample)")
	fl.IntVar(&f.twin.NodeSample, "node-sample", 0, "rehearse on this many of the nodes (round-robin over zones); 0 = all")
	fl.IntVar(&f.twin.MaxNodes, "max-twin-nodes", action.DefaultTwinMaxNodes, "refuse to build a twin of more nodes than this")
	fl.IntVar(&f.twin.MaxPods, "max-twin-pods", action.DefaultTwinMaxPods, "refuse to build a twin of more pods than this")
	fl.StringVar(&f.twin.Name, "twin-name", "rehearsal", "name of the twin sandbox")
	fl.BoolVar(&f.keepTwin, "keep-twin", false, "leave the twin running afterwards, to look around in it")
	fl.StringSliceVar(&f.afterHops, "apply-after-hops", nil, "manifests (files or directories) applied to the twin once its control plane is at the target — e.g. the CRDs an operator upgrade brings along — before the last-applied configurations are re-applied")
	fl.StringVar(&f.reportRoot, "report-dir", "", "where rehearsal reports go (default: the state dir's rehearsals/<cluster>/)")
	return cmd
}

// planShapingFlags are the flags that change what an upgrade does: two
// runs with the same values (and target) execute the same plan.
var planShapingFlags = []string{"to", "waive", "skip-backup", "max-unavailable", "zone-by-zone", "selector", "delete-emptydir-data",
	"delete-local-data", "force", "disable-eviction", "drain-timeout", "ready-timeout", "gate-timeout", "soak", "on-failure", "max-failures", "on-drain-timeout"}

// planHash identifies the plan a command would execute, from the values
// of the plan-shaping flags, for --require-rehearsal.
func planHash(cmd *cobra.Command) string {
	var parts []string
	for _, name := range planShapingFlags {
		if fl := cmd.Flags().Lookup(name); fl != nil {
			parts = append(parts, name+"="+fl.Value.String())
		}
	}
	return rehearse.PlanHash(parts)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// requireRehearsalFlags are kup apply's --require-rehearsal and its bounds.
type requireRehearsalFlags struct {
	require bool
	maxAge  time.Duration
	dir     string
}

func (r *requireRehearsalFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&r.require, "require-rehearsal", false, "refuse unless `kup rehearse` passed for this cluster, target and flags recently (see --rehearsal-max-age)")
	fl.DurationVar(&r.maxAge, "rehearsal-max-age", rehearse.DefaultMaxAge, "with --require-rehearsal: how old the passing rehearsal may be")
	fl.StringVar(&r.dir, "rehearsal-dir", "", "with --require-rehearsal: where kup rehearse wrote its reports (its --report-dir; default: the state dir's rehearsals/<cluster>/)")
}

// check refuses, before anything is changed, an apply that policy says
// must be rehearsed first and was not (or not passing, or not this plan).
func (r *requireRehearsalFlags) check(cmd *cobra.Command, cfg *rest.Config) error {
	if !r.require {
		return nil
	}
	ctx := cmd.Context()
	fingerprint, err := action.ClusterFingerprint(ctx, cfg)
	if err != nil {
		return err
	}
	dir := r.dir
	if dir == "" {
		state, err := journal.StateDir()
		if err != nil {
			return err
		}
		dir = filepath.Join(state, "rehearsals", fingerprint)
	}
	reports, err := rehearse.LoadReports(dir)
	if err != nil {
		return err
	}
	// A --rehearsal-dir may hold other clusters' rehearsals.
	var mine []rehearse.Report
	for _, rep := range reports {
		if rep.Fingerprint == fingerprint {
			mine = append(mine, rep)
		}
	}
	to := cmd.Flags().Lookup("to").Value.String()
	rep, err := rehearse.Require(mine, planHash(cmd), to, time.Now(), r.maxAge)
	if err != nil {
		return &codedError{code: exitError, err: fmt.Errorf("--require-rehearsal: %w (reports in %s); nothing was changed", err, dir)}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "rehearsal of %s passed for this plan: predicted node makespan %s over %d wave(s)\n",
		rep.Finished.Local().Format(time.RFC3339), rep.Prediction.Makespan.Round(time.Second), len(rep.Prediction.Waves))
	return nil
}
