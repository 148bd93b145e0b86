package main

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kup-project/kup/internal/action"
)

func newStatusCommand() *cobra.Command {
	var flags *genericclioptions.ConfigFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the recorded upgrade: phase, progress, what is left, who runs it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := restConfig(flags)
			if err != nil {
				return usageError("no cluster (%v): pass --kubeconfig/--context", err)
			}
			return (&action.Status{Config: cfg, Out: cmd.OutOrStdout()}).Run(cmd.Context())
		},
	}
	flags = clusterFlags(cmd)
	return cmd
}
