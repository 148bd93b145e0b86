package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/drain"
	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/plan"
	"github.com/kup-project/kup/internal/provider"
	execprovider "github.com/kup-project/kup/internal/provider/exec"
	kubeadmprovider "github.com/kup-project/kup/internal/provider/kubeadm"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/rollout"
)

func newNodesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "nodes", Short: "Node operations"}
	cmd.AddCommand(newNodesUpgradeCommand())
	return cmd
}

// rolloutFlags are the node-rollout flags shared by `nodes upgrade` and
// (later) `apply`.
type rolloutFlags struct {
	maxUnavailable string
	zoneByZone     bool
	selector       string
	upgrader       string
	execCommand    string
	upgradeTime    time.Duration
	opts           rollout.Options
	// ssh and secrets configure --upgrader kubeadm; secrets are the
	// cluster credentials the SSH records must never show.
	ssh     sshFlags
	secrets []string
}

func (f *rolloutFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.maxUnavailable, "max-unavailable", "10%", "most nodes down at once: a count or a percentage of the nodes in scope")
	fl.BoolVar(&f.zoneByZone, "zone-by-zone", false, "keep every wave inside one zone and finish a zone before the next")
	fl.IntVar(&f.opts.Policy.BudgetRounds, "budget-rounds", 1, "how many times a wave may spend each PDB's budget, its drains waiting for replacement pods in between: 1 never waits; more means fewer, longer waves (worth it when pods get Ready much faster than a node upgrades); 0 lets kup choose after each wave from the measured node upgrade and pod readiness times")
	fl.BoolVar(&f.opts.Overlap, "overlap-waves", true, "start draining the next wave while the last wave's nodes upgrade, once its drains are done (live PDB budgets and --max-unavailable still bound it); false waits for every wave to finish")
	fl.BoolVar(&f.opts.Continuous, "continuous", true, "with --overlap-waves: admit nodes as soon as PDB budgets and --max-unavailable slots come back, counting the evictions still to come from drains under way, instead of waiting for the newest wave's drains; health gates are checked as waves finish and hold admission when one stays unmet for 30s")
	fl.StringVarP(&f.selector, "selector", "l", "", "only roll nodes matching this label selector")
	fl.StringVar(&f.upgrader, "upgrader", "", "how a node is upgraded: sandbox (kup sandbox clusters; the default there), exec (--exec-command) or kubeadm (the kubeadm runbook over SSH, see --ssh-*)")
	fl.StringVar(&f.execCommand, "exec-command", "", "with --upgrader exec: command run per node, a Go template with {{.Node}} {{.Address}} {{.Version}}")
	fl.DurationVar(&f.upgradeTime, "upgrade-time", 5*time.Second, "with --upgrader sandbox: simulated package install and kubelet restart time")
	fl.DurationVar(&f.opts.Drain.Timeout, "drain-timeout", drain.DefaultTimeout, "deadline for draining one node")
	fl.BoolVar(&f.opts.Drain.DeleteEmptyDirData, "delete-emptydir-data", false, "evict pods with emptyDir volumes (their data is lost), like kubectl drain")
	fl.BoolVar(&f.opts.Drain.DeleteLocalData, "delete-local-data", false, "evict pods with hostPath volumes or local PersistentVolumes (their data stays behind)")
	fl.BoolVar(&f.opts.Drain.Force, "force", false, "delete pods that no controller will recreate, like kubectl drain --force")
	fl.BoolVar(&f.opts.Drain.DisableEviction, "disable-eviction", false, "delete pods instead of evicting them: bypasses PodDisruptionBudgets")
	fl.DurationVar(&f.opts.ReadyTimeout, "ready-timeout", 10*time.Minute, "deadline for an upgraded node to be Ready at the new version")
	fl.DurationVar(&f.opts.GateTimeout, "gate-timeout", 10*time.Minute, "deadline for workloads to recover after each wave")
	fl.DurationVar(&f.opts.Soak, "soak", 0, "wait this long after each wave's health gate")
	fl.StringVar(&f.opts.OnFailure, "on-failure", rollout.OnFailureStop, "stop or continue when a node fails")
	fl.IntVar(&f.opts.MaxFailures, "max-failures", 0, "with --on-failure=continue, stop after this many failed nodes (0: no limit)")
	fl.StringVar(&f.opts.OnDrainTimeout, "on-drain-timeout", rollout.OnFailureStop, "stop, or skip-node: quarantine a node that cannot be drained in time (left cordoned, pods untouched) and go on")
	f.ssh.add(cmd)
}

// build validates the flags and returns the rollout options and upgrader.
func (f *rolloutFlags) build(host string, needUpgrader bool) (rollout.Options, provider.NodeUpgrader, error) {
	o := f.opts
	mu := intstr.Parse(f.maxUnavailable)
	if _, err := intstr.GetScaledValueFromIntOrPercent(&mu, 100, false); err != nil || mu.IntValue() < 0 {
		return o, nil, usageError("--max-unavailable %q: want a count (3) or a percentage (10%%)", f.maxUnavailable)
	}
	o.Policy.MaxUnavailable = mu
	o.Policy.ZoneByZone = f.zoneByZone
	if r := o.Policy.BudgetRounds; r < 0 || r > plan.MaxBudgetRounds {
		return o, nil, usageError("--budget-rounds %d: want 0 (choose from measurements) or 1 to %d", r, plan.MaxBudgetRounds)
	}
	if o.Policy.BudgetRounds == 0 {
		o.AutoBudgetRounds = true
	}
	if f.selector != "" {
		sel, err := metav1.ParseToLabelSelector(f.selector)
		if err != nil {
			return o, nil, usageError("--selector: %v", err)
		}
		o.Policy.NodeSelector = sel
	}
	switch o.OnFailure {
	case rollout.OnFailureStop, rollout.OnFailureContinue:
	default:
		return o, nil, usageError("--on-failure %q: want stop or continue", o.OnFailure)
	}
	switch o.OnDrainTimeout {
	case rollout.OnFailureStop, rollout.OnDrainTimeoutSkip:
	default:
		return o, nil, usageError("--on-drain-timeout %q: want stop or skip-node", o.OnDrainTimeout)
	}
	if !needUpgrader {
		return o, nil, nil
	}
	upgrader := f.upgrader
	if upgrader == "" {
		_, err := sandboxprovider.Detect(host)
		if err != nil && !errors.Is(err, sandboxprovider.ErrNotSandbox) {
			return o, nil, err
		}
		if err == nil {
			upgrader = "sandbox"
		} else if f.execCommand != "" {
			upgrader = "exec"
		} else {
			return o, nil, usageError("say how nodes are upgraded: --upgrader kubeadm (over SSH), or --upgrader exec --exec-command '…'")
		}
	}
	switch upgrader {
	case "sandbox":
		c, err := sandboxprovider.Detect(host)
		if err != nil {
			return o, nil, usageError("--upgrader sandbox: %s is not a running kup sandbox", host)
		}
		return o, &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: f.upgradeTime}, nil
	case "exec":
		u, err := execprovider.New(f.execCommand)
		if err != nil {
			return o, nil, usageError("%v", err)
		}
		return o, u, nil
	case "kubeadm":
		hosts, err := f.ssh.build(f.secrets...)
		if err != nil {
			return o, nil, err
		}
		return o, &kubeadmprovider.NodeUpgrader{Hosts: hosts}, nil
	}
	return o, nil, usageError("--upgrader %q: want sandbox, exec or kubeadm", upgrader)
}

func newNodesUpgradeCommand() *cobra.Command {
	var rf rolloutFlags
	var flags *genericclioptions.ConfigFlags
	a := &action.NodesUpgrade{}
	cmd := &cobra.Command{
		Use:   "upgrade --to VERSION",
		Short: "Roll the nodes' kubelets to VERSION in PodDisruptionBudget-aware waves",
		Long: `Cordons, drains (Eviction API, honouring PodDisruptionBudgets), upgrades and
uncordons the nodes in waves as wide as the budgets, spare capacity and
--max-unavailable allow, re-planned from the live cluster before every wave.
The first wave is a single canary node; a health gate follows every wave.
The control plane must already run VERSION or newer.`,
		Example: `  kup nodes upgrade --to v1.37.2 --dry-run
  kup nodes upgrade --to v1.37.2 --max-unavailable 20% --delete-emptydir-data`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.Options.Target == "" {
				return usageError("--to is required")
			}
			cfg, err := restConfig(flags)
			if err != nil {
				return usageError("no cluster (%v): pass --kubeconfig/--context", err)
			}
			target := a.Options.Target
			rf.secrets = configSecrets(cfg)
			defer rf.ssh.close()
			opts, up, err := rf.build(cfg.Host, !a.DryRun)
			if err != nil {
				return err
			}
			opts.Target = target
			opts.Progress = action.ProgressPrinter(cmd.ErrOrStderr())
			a.Config, a.Upgrader, a.Options, a.Out = cfg, up, opts, cmd.OutOrStdout()
			a.PerNode = rf.upgradeTime + 30*time.Second
			res, err := a.Run(cmd.Context())
			action.WriteRolloutSummary(cmd.OutOrStdout(), res)
			return resultError(err, false)
		},
	}
	cmd.Flags().StringVar(&a.Options.Target, "to", "", "kubelet version to roll the nodes to (required)")
	cmd.Flags().BoolVar(&a.DryRun, "dry-run", false, "print the waves and the makespan lower bound; change nothing")
	cmd.Flags().DurationVar(&a.PodReady, "pod-ready-time", 10*time.Second, "with --dry-run: typical time for a moved pod to become Ready, for the makespan bound")
	cmd.Flags().DurationVar(&a.LockTTL, "lock-ttl", journal.DefaultTTL, "how long the upgrade lock outlives a kup that stopped renewing it (killed)")
	rf.add(cmd)
	flags = clusterFlags(cmd)
	return cmd
}
