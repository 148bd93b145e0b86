package main

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// newEKSRollbackCommand is `kup rollback` for EKS clusters (to be merged
// with the sandbox's `kup rollback`: --provider eks dispatches here).
func newEKSRollbackCommand() *cobra.Command {
	var flags *genericclioptions.ConfigFlags
	var pf providerFlags
	var maxUnavailable string
	cmd := &cobra.Command{
		Use:   "rollback --provider eks --cluster NAME",
		Short: "Return an EKS control plane to the previous minor, node groups first, within 7 days of the upgrade",
		Long: `EKS can return a cluster's control plane to the previous Kubernetes minor
within 7 days of an in-place upgrade, when its rollback readiness insights
allow it (https://docs.aws.amazon.com/eks/latest/userguide/rollback-cluster.html).
Managed node groups must go back first: kup rolls each back with the
maxUnavailable its wave planner allows, then asks EKS for the control plane.
Outside the window kup refuses and says why. Add-ons are left as they are.`,
		Example: `  kup rollback --provider eks --cluster prod-eu --region eu-west-1`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEKSRollback(cmd, flags, &pf, maxUnavailable)
		},
	}
	flags = clusterFlags(cmd)
	pf.add(cmd)
	cmd.Flags().StringVar(&maxUnavailable, "max-unavailable", "10%", "most nodes of a node group down at once (the planner may choose fewer): a count or a percentage")
	return cmd
}
