package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/plan"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/report"
)

func newPlanCommand() *cobra.Command {
	// A control plane at --to with nodes behind it is planned: the
	// nodes' rolls, their waves and every check.
	a := &action.Plan{NodesOnly: true}
	var output, maxUnavailable string
	var noColor, listAll bool
	var save string
	var flags *genericclioptions.ConfigFlags
	var pf providerFlags
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Find everything that would make the upgrade to --to fail or hurt, and show the plan",
		Long: `kup plan reads the cluster once, computes the upgrade path to --to, runs
every preflight check, and shows the findings (blockers, warnings, what
could not be checked, information), the etcd backup kup will take and the
node waves it would run. It changes nothing.

Exit codes: 0 nothing blocks, 3 blockers found (unless every one is waived
with --waive ID), 1 error, 2 bad usage.`,
		Example: `  kup plan --to v1.37.2
  kup plan --to v1.37 --manifests ./deploy --max-unavailable 20% --zone-by-zone
  kup plan --to v1.37.2 -o json | jq '.findings[] | select(.severity=="blocker")'
  kup plan --to v1.37.2 --waive KUP-WL-002 --waive KUP-DRAIN-001`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" && output != "yaml" {
				return usageError("-o %q: want table, json or yaml (a plan for kup apply is saved with --save FILE)", output)
			}
			a.MaxUnavailable = intstr.Parse(maxUnavailable)
			if _, err := intstr.GetScaledValueFromIntOrPercent(&a.MaxUnavailable, 100, false); err != nil || a.MaxUnavailable.IntValue() < 0 {
				return usageError("--max-unavailable %q: want a count (3) or a percentage (10%%)", maxUnavailable)
			}
			if a.BudgetRounds < 1 || a.BudgetRounds > plan.MaxBudgetRounds {
				return usageError("--budget-rounds %d: want 1 to %d (kup apply --budget-rounds 0 chooses from what it measures during the rollout)", a.BudgetRounds, plan.MaxBudgetRounds)
			}
			if err := pf.takeCluster(flags); err != nil {
				return err
			}
			cfg, err := restConfig(flags)
			if err != nil {
				return usageError("no cluster to read (%v): pass --kubeconfig/--context", err)
			}
			a.Config = cfg
			if p, err := pf.eksControlPlane(cmd, cfg); err != nil {
				return err
			} else if p != nil {
				a.ControlPlane = p
			} else {
				a.ControlPlane = detectControlPlane(cfg.Host)
			}
			if sp, ok := a.ControlPlane.(*sandboxprovider.ControlPlane); ok {
				a.EtcdEndpoint = fmt.Sprintf("http://127.0.0.1:%d", sp.Cluster.Ports.EtcdClient)
			}
			res, err := a.Run(cmd.Context())
			if res != nil && save != "" {
				if serr := action.SavePlanFile(save, res); serr != nil {
					return serr
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "plan saved to %s; execute exactly it with: kup apply %s\n", save, save)
			}
			if res != nil {
				out := cmd.OutOrStdout()
				color := !noColor && os.Getenv("NO_COLOR") == "" && isTerminal(out)
				if perr := action.PrintPlan(out, res, output, report.PlanTableOptions{Color: color, ListAll: listAll}); perr != nil {
					return perr
				}
			}
			return planResultError(err, output != "table")
		},
	}
	flags = clusterFlags(cmd)
	pf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&a.To, "to", "", "target Kubernetes version (v1.37.2, or v1.37 for its newest patch)")
	f.StringArrayVar(&a.Manifests, "manifests", nil, "manifest file or directory to scan for removed APIs (repeatable)")
	// The defaults are kup apply's: the plan previews what apply would do.
	f.StringVar(&maxUnavailable, "max-unavailable", "10%", "most nodes down at once: a count or a percentage of the nodes in scope (as kup apply)")
	f.BoolVar(&a.ZoneByZone, "zone-by-zone", false, "keep every wave inside one zone and finish a zone before the next")
	f.IntVar(&a.BudgetRounds, "budget-rounds", 1, "how many times a wave may spend each PDB's budget (as kup apply); 1 never waits inside a wave")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	f.BoolVar(&noColor, "no-color", false, "never colour the output (NO_COLOR does the same)")
	f.BoolVar(&listAll, "nodes", false, "list every node and object instead of the first few")
	f.StringVar(&save, "save", "", "also write the plan to this file, for `kup apply FILE` (which refuses it if the cluster changed)")
	f.StringArrayVar(&a.Waive, "waive", nil, "accept the findings of this check ID (repeatable); a plan whose every blocker is waived exits 0")
	return cmd
}

// planResultError maps the plan's error to kup's exit codes: blockers
// are exit 3, the rest as for every command. The report already says why
// a plan is blocked, so that error is not printed again.
func planResultError(err error, printed bool) error {
	var re *action.ResultError
	if errors.As(err, &re) && re.Code == action.CodeBlockers {
		return &codedError{code: exitBlockers, err: silent{err}}
	}
	return resultError(err, printed)
}

// isTerminal reports whether w is a character device (a terminal), the
// only place colour belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
