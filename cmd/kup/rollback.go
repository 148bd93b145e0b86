package main

import (
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kup-project/kup/internal/action"
)

func newRollbackCommand() *cobra.Command {
	var backupDir, maxUnavailable string
	var pf providerFlags
	var ef etcdFlags
	var flags *genericclioptions.ConfigFlags
	var rs rollbackSafeFlags
	var gate time.Duration
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Return the control plane to the old minor during a rollback window",
		Long: `During the rollback window of kup controlplane upgrade --rollback-safe
(the new binaries emulating the old minor), returns kube-scheduler, then
kube-controller-manager, then kube-apiserver to the old binaries, checks
the control plane is healthy and every object in etcd is still there with
its UID, and ends the window.

After step two (kup controlplane complete) it refuses: the control plane
may have stored objects the old binaries cannot read, so only a snapshot
restore remains, and kup names the newest snapshot and what restoring it
would lose. Running it again after an interruption finishes it.

With --provider eks --cluster NAME it uses EKS's own rollback instead: within
7 days of an in-place upgrade, when the rollback readiness insights allow it
(https://docs.aws.amazon.com/eks/latest/userguide/rollback-cluster.html),
managed node groups go back first (maxUnavailable from kup's wave planner),
then the control plane; outside the window kup refuses and says why.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pf.name == "eks" {
				return runEKSRollback(cmd, flags, &pf, maxUnavailable)
			}
			cfg, cp, err := controlPlaneFor(cmd, flags, pf.name)
			if err != nil {
				return err
			}
			w := rs.action(cfg, cp)
			w.GateTimeout, w.Progress, w.BackupDir, w.Etcd = gate, cmd.ErrOrStderr(), backupDir, ef.endpoint()
			w.ClusterName = kubeconfigClusterName(flags, cfg.Host)
			res, err := w.Rollback(cmd.Context())
			action.WriteWindowResult(cmd.OutOrStdout(), res)
			return resultError(err, false)
		},
	}
	flags = clusterFlags(cmd)
	f := cmd.Flags()
	pf.add(cmd)
	f.StringVar(&maxUnavailable, "max-unavailable", "10%", "with --provider eks: most nodes of a node group down at once (the planner may choose fewer): a count or a percentage")
	f.StringVar(&backupDir, "backup-dir", "", "where to look for snapshots when only a restore can go back (default <state dir>/backups/<cluster>)")
	f.DurationVar(&gate, "gate-timeout", 0, "deadline for the control plane to be healthy at the old version (default 5m)")
	rs.addLock(cmd)
	ef.add(cmd)
	return cmd
}
