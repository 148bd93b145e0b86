package main

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kup-project/kup/internal/action"
)

func newVerifyCommand() *cobra.Command {
	a := &action.Verify{}
	var flags *genericclioptions.ConfigFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the cluster against the baseline kup apply took before the upgrade",
		Long: `Every node Ready at the target, every Deployment, StatefulSet and DaemonSet
at least as available as before, kube-system healthy, no new kinds of Warning
events since the upgrade started, and every API served before still served.
kup apply runs this at its end; run it again any time after.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := restConfig(flags)
			if err != nil {
				return usageError("no cluster (%v): pass --kubeconfig/--context", err)
			}
			a.Config, a.Out = cfg, cmd.OutOrStdout()
			_, err = a.Run(cmd.Context())
			return resultError(err, false)
		},
	}
	cmd.Flags().StringVar(&a.Target, "to", "", "the version nodes and control plane must run (default: the recorded upgrade's target)")
	flags = clusterFlags(cmd)
	return cmd
}
