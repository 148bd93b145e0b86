package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kup-project/kup/internal/buildinfo"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kup",
		Short: "Upgrade Kubernetes clusters without drama",
		Long: `kup upgrades Kubernetes clusters safely: it tells you whether you can,
plans every step, backs up etcd, upgrades the control plane one minor at a
time, rolls the nodes as fast as PodDisruptionBudgets allow, proves the
result, and survives being killed half-way.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Unknown flags and bad arguments are usage errors (exit code 2).
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &codedError{code: exitUsage, err: err}
	})
	root.AddCommand(newVersionCommand())
	root.AddCommand(newSandboxCommand())
	root.AddCommand(newDemoCommand())
	root.AddCommand(newVersionsCommand())
	root.AddCommand(newNodesCommand())
	root.AddCommand(newApplyCommand())
	root.AddCommand(newStatusCommand())
	root.AddCommand(newVerifyCommand())
	root.AddCommand(newPlanCommand())
	root.AddCommand(newControlPlaneCommand())
	root.AddCommand(newBackupCommand())
	root.AddCommand(newRestoreCommand())
	root.AddCommand(newEKSRollbackCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kup's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "kup %s\n", buildinfo.String())
			return err
		},
	}
}

// clusterFlags adds kubectl's connection flags (--kubeconfig, --context, …)
// to a command that talks to a cluster, so they behave exactly as kubectl's.
func clusterFlags(cmd *cobra.Command) *genericclioptions.ConfigFlags {
	f := genericclioptions.NewConfigFlags(true)
	f.AddFlags(cmd.Flags())
	return f
}
