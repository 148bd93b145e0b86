package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kup-project/kup/internal/sandbox"
)

func newDemoCommand() *cobra.Command {
	opts := sandbox.Options{Name: "demo", Version: "v1.36.3", Nodes: 50, Workloads: "default", PodReadyDelay: 2 * time.Second}
	target := "v1.37.2"
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Upgrade a local sandbox cluster end to end: plan, backup, control plane, node waves, verify, report",
		Long: `Starts a real local cluster — etcd, kube-apiserver, kube-controller-manager
and kube-scheduler built from source (first run: a few minutes of building,
shown), 50 kwok-simulated nodes in three zones, workloads with
PodDisruptionBudgets of every shape — then runs ` + "`kup plan`" + ` and
` + "`kup apply`" + ` to the next minor with live progress, verifies the result
and prints where the report is. A demo sandbox left from an earlier run is
replaced.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			start := time.Now()
			errOut := cmd.ErrOrStderr()
			if old, err := sandbox.Load("", opts.Name); err == nil {
				fmt.Fprintf(errOut, "replacing the earlier demo sandbox\n")
				if err := old.StopContext(ctx); err != nil {
					return err
				}
			}
			fmt.Fprintf(errOut, "── 1. a sandbox cluster: Kubernetes %s, %d nodes ──\n", opts.Version, opts.Nodes)
			opts.Progress = errOut
			c, err := sandbox.Start(ctx, opts)
			if err != nil {
				return err
			}
			kc := "--kubeconfig=" + c.Kubeconfig
			fmt.Fprintf(errOut, "\n── 2. kup plan --to %s ──\n", target)
			plan := newRootCommand()
			plan.SetArgs([]string{"plan", "--to", target, "--max-unavailable", "20%", kc})
			plan.SetOut(cmd.OutOrStdout())
			plan.SetErr(errOut)
			if err := plan.ExecuteContext(ctx); err != nil && exitCode(err) != exitBlockers {
				return fmt.Errorf("kup plan: %w", err)
			}
			fmt.Fprintf(errOut, "\n── 3. kup apply --to %s ──\n", target)
			apply := newRootCommand()
			apply.SetArgs([]string{"apply", "--to", target, "--max-unavailable", "20%", "--delete-emptydir-data", "--upgrade-time", "2s", kc})
			apply.SetOut(cmd.OutOrStdout())
			apply.SetErr(errOut)
			err = apply.ExecuteContext(ctx)
			fmt.Fprintf(cmd.OutOrStdout(), "\nDemo finished in %s.\n", time.Since(start).Round(time.Second))
			fmt.Fprintf(cmd.OutOrStdout(), "Explore the cluster:  export KUBECONFIG=%s; kubectl get nodes; kubectl describe node %s\n", c.Kubeconfig, sandbox.NodeName(0))
			fmt.Fprintf(cmd.OutOrStdout(), "Stop it:              go run ./cmd/kup sandbox down --name %s\n", c.Name)
			return err
		},
	}
	cmd.Flags().IntVar(&opts.Nodes, "nodes", opts.Nodes, "number of simulated nodes")
	cmd.Flags().StringVar(&opts.Version, "version", opts.Version, "Kubernetes version to start at")
	cmd.Flags().StringVar(&target, "to", target, "Kubernetes version to upgrade to")
	return cmd
}
