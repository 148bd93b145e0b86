package main

import (
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/action"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
)

func newBackupCommand() *cobra.Command {
	a := &action.Backup{}
	var ef etcdFlags
	var flags *genericclioptions.ConfigFlags
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Take a verified etcd snapshot (with a manifest beside it)",
		Long: `Streams a snapshot from one etcd member over its API, checks etcd's
sha256 trailer, verifies it with etcdutl's status and a trial restore, and
only then puts it at its final path (mode 0600, in a 0700 directory) with a
JSON manifest beside it. A failed or interrupted backup leaves nothing at
the final path.

For a cluster started by kup sandbox the etcd endpoint is found from the
kubeconfig; for others give --etcd-endpoint and the TLS flags as for
etcdctl. A snapshot holds every Secret of the cluster: encrypt it with
--encrypt-to before it leaves the host.`,
		Example: `  kup backup
  kup backup -o /srv/backups/prod/before-1.37.db \
    --etcd-endpoint https://10.0.0.1:2379 --etcd-cacert ca.crt --etcd-cert client.crt --etcd-key client.key
  kup backup --encrypt-to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.Etcd = ef.endpoint()
			cfg, cfgErr := restConfig(flags)
			if cfgErr == nil {
				a.ClusterName = kubeconfigClusterName(flags, cfg.Host)
				if c, err := sandboxprovider.Detect(cfg.Host); err == nil {
					sp := &sandboxprovider.ControlPlane{Cluster: c}
					a.ClusterName = sp.ClusterName()
					if a.Etcd.URL == "" {
						a.Etcd = sp.EtcdEndpoint()
					}
				}
				a.KubernetesVersions = serverVersion(cfg)
			}
			if a.Etcd.URL == "" {
				return usageError("no etcd endpoint: pass --etcd-endpoint (and --etcd-cacert, --etcd-cert, --etcd-key for TLS), as for etcdctl; kup finds etcd by itself only for a kup sandbox")
			}
			m, err := a.Run(cmd.Context())
			if err != nil {
				return resultError(err, false)
			}
			action.WriteBackup(cmd.OutOrStdout(), m)
			return nil
		},
	}
	flags = clusterFlags(cmd)
	f := cmd.Flags()
	// -o is the path, as for etcdctl snapshot save; kubectl's flags have
	// no -o, so nothing clashes.
	f.StringVarP(&a.Path, "output", "o", "", "snapshot path (default <state dir>/backups/<cluster>/<time>.db); never replaces an existing file")
	f.StringArrayVar(&a.EncryptTo, "encrypt-to", nil, "encrypt to this age recipient (age1… or an ssh public key); repeatable; only the encrypted file (PATH.age) is kept")
	ef.add(cmd)
	return cmd
}

// serverVersion is the apiserver's version for the manifest, or nothing
// if the API does not answer quickly: a backup does not need the API.
func serverVersion(cfg *rest.Config) []string {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return nil
	}
	return []string{v.GitVersion}
}

func newRestoreCommand() *cobra.Command {
	a := &action.Restore{}
	var yes bool
	var flags *genericclioptions.ConfigFlags
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT",
		Short: "Restore an etcd snapshot into a kup sandbox (other clusters: print the procedure)",
		Long: `Verifies the snapshot (sha256 trailer, etcdutl status, a trial restore,
and its manifest), then, for a cluster started by kup sandbox, stops the
control plane, restores into a new etcd data directory, starts everything
on it and checks every object of the snapshot is back with the same UID.
If anything fails the old data is put back.

For any other cluster kup prints the exact manual procedure (etcdutl
snapshot restore into a new data directory on every member, point etcd at
it, restart the apiservers) and changes nothing: it will not guess at your
etcd members, data directories and manifests.`,
		Example: `  kup restore ~/.local/state/kup/backups/sandbox-default/20261125T160000Z.db --yes
  kup restore backup.db.age --identity ~/.config/age/key.txt --yes`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("kup restore takes one argument, the snapshot file (got %d)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			a.Snapshot, a.Out = args[0], cmd.OutOrStdout()
			if cfg, err := restConfig(flags); err == nil {
				if c, err := sandboxprovider.Detect(cfg.Host); err == nil {
					if !yes {
						return usageError("restoring replaces all of sandbox %q's data with %s: everything written since the snapshot is lost; re-run with --yes", c.Name, a.Snapshot)
					}
					c.SetProgress(indent{cmd.ErrOrStderr()})
					a.Restorer = &sandboxprovider.ControlPlane{Cluster: c}
				}
			}
			res, err := a.Run(cmd.Context())
			action.WriteRestore(cmd.OutOrStdout(), res)
			return resultError(err, false)
		},
	}
	flags = clusterFlags(cmd)
	cmd.Flags().StringVarP(&a.IdentityFile, "identity", "i", "", "age identity file (or ssh private key) to decrypt an encrypted snapshot")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm: the sandbox's current data is replaced by the snapshot's")
	return cmd
}
