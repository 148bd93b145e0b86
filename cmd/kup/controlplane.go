package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/provider"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
)

func newControlPlaneCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "controlplane", Short: "Control-plane operations"}
	cmd.AddCommand(newControlPlaneUpgradeCommand(), newControlPlaneCompleteCommand())
	return cmd
}

func newControlPlaneUpgradeCommand() *cobra.Command {
	a := &action.ControlPlaneUpgrade{}
	var providerName string
	var ef etcdFlags
	var flags *genericclioptions.ConfigFlags
	var rs rollbackSafeFlags
	cmd := &cobra.Command{
		Use:   "upgrade --to VERSION",
		Short: "Upgrade the control plane one minor at a time: etcd backup first, health gate between hops",
		Long: `Takes a verified etcd snapshot, then moves the control plane one minor
per hop (the newest patch of each minor the provider can install) to
VERSION: kube-apiserver first, then kube-controller-manager, then
kube-scheduler. The next hop starts only once every component serves at
the new version, the kube-system pods are healthy and every kubelet is
still within the version-skew policy. Nodes are not touched: a path that
needs nodes rolled first is refused (see kup nodes upgrade).

If a hop fails, kup says where it stopped, what runs now and what to do;
running the same command again continues from there.

With --rollback-safe (one minor, from v1.33 on; KEP-4330 compatibility
versions) the upgrade takes two steps. Step one moves every component to
the new binaries emulating the current minor (--emulated-version), so
nothing the old binaries cannot read is written: the cluster is in its
rollback window, and kup rollback returns to the old binaries with every
object intact. Step two (kup controlplane complete, or by itself after
--soak) raises the emulated version to the new minor and ends the window.`,
		Example: `  kup controlplane upgrade --to v1.37.2
  kup controlplane upgrade --to v1.37.2 --rollback-safe               # then: kup controlplane complete, or kup rollback
  kup controlplane upgrade --to v1.37.2 --rollback-safe --soak 24h    # completes by itself after a day
  kup controlplane upgrade --to v1.37 --backup-dir /srv/backups
  kup controlplane upgrade --to v1.37.2 --skip-backup     # no way back`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.To == "" {
				return usageError("--to is required")
			}
			if a.SkipBackup && a.BackupDir != "" {
				return usageError("--skip-backup and --backup-dir contradict each other")
			}
			cfg, cp, err := controlPlaneFor(cmd, flags, providerName)
			if err != nil {
				return err
			}
			if rs.safe {
				w := rs.action(cfg, cp)
				w.To, w.SkipBackup, w.BackupDir, w.EncryptTo, w.Etcd = a.To, a.SkipBackup, a.BackupDir, a.EncryptTo, ef.endpoint()
				w.GateTimeout = a.GateTimeout
				w.ClusterName = kubeconfigClusterName(flags, cfg.Host)
				w.AutoComplete = cmd.Flags().Changed("soak")
				w.Progress = cmd.ErrOrStderr()
				res, err := w.Open(cmd.Context())
				action.WriteWindowResult(cmd.OutOrStdout(), res)
				return resultError(err, false)
			}
			if cmd.Flags().Changed("soak") {
				return usageError("--soak needs --rollback-safe")
			}
			a.Config, a.ControlPlane, a.Etcd = cfg, cp, ef.endpoint()
			a.ClusterName = kubeconfigClusterName(flags, cfg.Host)
			a.Progress, a.LockTTL = cmd.ErrOrStderr(), rs.lockTTL
			res, err := a.Run(cmd.Context())
			action.WriteControlPlaneResult(cmd.OutOrStdout(), res)
			return resultError(err, false)
		},
	}
	flags = clusterFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&a.To, "to", "", "target Kubernetes version (v1.37.2, or v1.37 for its newest installable patch)")
	f.StringVar(&providerName, "provider", "", "how the control plane is run: sandbox (detected for clusters kup sandbox started); kubeadm, eks, gke and aks are not supported yet")
	f.StringVar(&a.BackupDir, "backup-dir", "", "directory for the etcd snapshot taken before the first hop (default <state dir>/backups/<cluster>)")
	f.BoolVar(&a.SkipBackup, "skip-backup", false, "upgrade without an etcd snapshot first: there is no way back if a hop damages the data")
	f.StringArrayVar(&a.EncryptTo, "encrypt-to", nil, "encrypt the snapshot to this age recipient (age1… or an ssh public key); repeatable")
	f.StringVar(&a.ReleasesFile, "releases", "", "release table file overriding the embedded one (JSON or YAML)")
	f.DurationVar(&a.GateTimeout, "gate-timeout", 0, "deadline for the control plane to be healthy at each hop's version (default 5m)")
	f.BoolVar(&rs.safe, "rollback-safe", false, "two steps with an emulated version (KEP-4330): a rollback window until the emulated version is raised (kup controlplane complete, kup rollback)")
	f.DurationVar(&rs.soak, "soak", 0, "with --rollback-safe: keep the window open this long, then raise the emulated version (step two) without asking")
	rs.addLock(cmd)
	ef.add(cmd)
	return cmd
}

// rollbackSafeFlags are the flags of the rollback-window commands.
type rollbackSafeFlags struct {
	safe    bool
	soak    time.Duration
	lockTTL time.Duration
}

func (f *rollbackSafeFlags) addLock(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&f.lockTTL, "lock-ttl", journal.DefaultTTL, "how long the upgrade lock outlives a kup that stopped renewing it (killed)")
}

// controlPlaneFor resolves the cluster and its control-plane provider
// (--provider, or a kup sandbox detected), with a sandbox's progress
// lines indented on stderr.
func controlPlaneFor(cmd *cobra.Command, flags *genericclioptions.ConfigFlags, providerName string) (*rest.Config, provider.ControlPlane, error) {
	cfg, err := restConfig(flags)
	if err != nil {
		return nil, nil, usageError("no cluster (%v): pass --kubeconfig/--context", err)
	}
	cp, err := controlPlaneProvider(providerName, cfg.Host)
	if err != nil {
		return nil, nil, err
	}
	if sp, ok := cp.(*sandboxprovider.ControlPlane); ok {
		sp.Cluster.SetProgress(indent{cmd.ErrOrStderr()})
	}
	return cfg, cp, nil
}

func (f *rollbackSafeFlags) action(cfg *rest.Config, cp provider.ControlPlane) *action.RollbackSafe {
	return &action.RollbackSafe{Config: cfg, ControlPlane: cp, Soak: f.soak, LockTTL: f.lockTTL}
}

func newControlPlaneCompleteCommand() *cobra.Command {
	var providerName string
	var flags *genericclioptions.ConfigFlags
	var rs rollbackSafeFlags
	var gate time.Duration
	cmd := &cobra.Command{
		Use:   "complete",
		Short: "End a rollback window: raise the emulated version to the new minor (step two)",
		Long: `Step two of kup controlplane upgrade --rollback-safe: raises the emulated
version of kube-apiserver, then kube-controller-manager, then
kube-scheduler, to the new binaries' own minor (the order KEP-4330 requires:
no component emulates a newer minor than the apiserver). From the first
raised component on, kup rollback is no longer possible: only a snapshot
restore goes back. Running it again after an interruption finishes it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, cp, err := controlPlaneFor(cmd, flags, providerName)
			if err != nil {
				return err
			}
			w := rs.action(cfg, cp)
			w.GateTimeout, w.Progress = gate, cmd.ErrOrStderr()
			res, err := w.Complete(cmd.Context())
			action.WriteWindowResult(cmd.OutOrStdout(), res)
			return resultError(err, false)
		},
	}
	flags = clusterFlags(cmd)
	cmd.Flags().StringVar(&providerName, "provider", "", "how the control plane is run: sandbox (detected for clusters kup sandbox started)")
	cmd.Flags().DurationVar(&gate, "gate-timeout", 0, "deadline for the control plane to be healthy after the step (default 5m)")
	rs.addLock(cmd)
	return cmd
}

// providers kup has, and those users ask for that it does not have yet.
var (
	controlPlaneProviders = []string{"sandbox"}
	plannedProviders      = []string{"kubeadm", "eks", "gke", "aks"}
)

// controlPlaneProvider picks the provider: named with --provider, or
// detected for a cluster `kup sandbox` started.
func controlPlaneProvider(name, host string) (provider.ControlPlane, error) {
	have := strings.Join(controlPlaneProviders, ", ")
	switch name {
	case "":
		if c, err := sandboxprovider.Detect(host); err == nil {
			return &sandboxprovider.ControlPlane{Cluster: c}, nil
		}
		return nil, fmt.Errorf("%s is not a cluster kup can upgrade the control plane of yet: the providers kup has are %s (clusters started by `kup sandbox`); %s are not supported yet", host, have, strings.Join(plannedProviders, ", "))
	case "sandbox":
		c, err := sandboxprovider.Detect(host)
		if err != nil {
			return nil, fmt.Errorf("--provider sandbox: %s is not a running kup sandbox (kup sandbox status lists them)", host)
		}
		return &sandboxprovider.ControlPlane{Cluster: c}, nil
	}
	for _, p := range plannedProviders {
		if name == p {
			return nil, fmt.Errorf("--provider %s is not supported yet; the control-plane providers kup has are: %s", name, have)
		}
	}
	return nil, usageError("--provider %q: unknown; kup has %s (and %s are planned)", name, have, strings.Join(plannedProviders, ", "))
}

// kubeconfigClusterName is the kubeconfig's name for the cluster of the
// chosen context, for backup paths; the API host when there is none.
func kubeconfigClusterName(flags *genericclioptions.ConfigFlags, host string) string {
	if flags.ClusterName != nil && *flags.ClusterName != "" {
		return *flags.ClusterName
	}
	raw, err := flags.ToRawKubeConfigLoader().RawConfig()
	if err == nil {
		ctx := raw.CurrentContext
		if flags.Context != nil && *flags.Context != "" {
			ctx = *flags.Context
		}
		if c := raw.Contexts[ctx]; c != nil && c.Cluster != "" {
			return c.Cluster
		}
	}
	return host
}

// etcdFlags are etcdctl's connection flags, for commands that talk to
// etcd.
type etcdFlags struct{ url, cacert, cert, key string }

func (f *etcdFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "etcd-endpoint", "", "the one etcd member to snapshot, as etcdctl's --endpoints (e.g. https://10.0.0.1:2379); found by itself for a kup sandbox")
	fl.StringVar(&f.cacert, "etcd-cacert", "", "CA bundle that signs etcd's serving certificate, as etcdctl's --cacert")
	fl.StringVar(&f.cert, "etcd-cert", "", "client certificate for etcd, as etcdctl's --cert")
	fl.StringVar(&f.key, "etcd-key", "", "client key for etcd, as etcdctl's --key")
	// etcdctl spells it --endpoints; accept that too.
	prev := fl.GetNormalizeFunc()
	fl.SetNormalizeFunc(func(f *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "etcd-endpoints" {
			name = "etcd-endpoint"
		}
		return prev(f, name)
	})
}

func (f *etcdFlags) endpoint() backup.Endpoint {
	return backup.Endpoint{URL: f.url, CACert: f.cacert, Cert: f.cert, Key: f.key}
}

// indent prefixes every line a provider prints, so its steps read as
// detail under kup's own.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	s := strings.TrimRight(string(p), "\n")
	_, err := fmt.Fprintf(i.w, "           %s\n", strings.ReplaceAll(s, "\n", "\n           "))
	return len(p), err
}
