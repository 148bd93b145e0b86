package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kup-project/kup/internal/sandbox"
)

func newDemoCommand() *cobra.Command {
	opts := sandbox.Options{Name: "demo", Version: "v1.36.3", Nodes: 50, Workloads: "default", PodReadyDelay: 2 * time.Second}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Bring up a sandbox cluster and show it (first run builds the binaries)",
		Long: `Starts a real local cluster — etcd, kube-apiserver, kube-controller-manager
and kube-scheduler built from source, 50 kwok-simulated nodes, realistic
workloads with PodDisruptionBudgets — and shows what runs there. A demo
sandbox left from an earlier run is replaced.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if old, err := sandbox.Load("", opts.Name); err == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "replacing the earlier demo sandbox\n")
				if err := old.StopContext(ctx); err != nil {
					return err
				}
			}
			opts.Progress = cmd.ErrOrStderr()
			c, err := sandbox.Start(ctx, opts)
			if err != nil {
				return err
			}
			summary, err := c.Summary(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprint(out, summary)
			fmt.Fprintf(out, "\nExplore it:  export KUBECONFIG=%s; kubectl get nodes,pdb -A\n", c.Kubeconfig)
			fmt.Fprintf(out, "Stop it:     go run ./cmd/kup sandbox down --name %s\n", c.Name)
			return nil
		},
	}
	cmd.Flags().IntVar(&opts.Nodes, "nodes", opts.Nodes, "number of simulated nodes")
	cmd.Flags().StringVar(&opts.Version, "version", opts.Version, "Kubernetes version to start at")
	return cmd
}
