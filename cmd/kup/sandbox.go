package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kup-project/kup/internal/sandbox"
)

func newSandboxCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a real local Kubernetes cluster (etcd, apiserver, controller-manager, scheduler; kwok nodes)",
		Long: `A sandbox is a real control plane built from the Go module proxy, with
nodes simulated by kwok. It is kup's demo and the cluster its tests run
against. Binaries are built once into the cache (KUP_CACHE_DIR, default
~/.cache/kup); state lives in KUP_STATE_DIR (default ~/.local/state/kup).`,
	}
	cmd.AddCommand(newSandboxUpCommand(), newSandboxDownCommand(), newSandboxStatusCommand(), newSandboxKubeconfigCommand(), newSandboxPrepareCommand())
	return cmd
}

func newSandboxUpCommand() *cobra.Command {
	opts := sandbox.Options{Name: "default", Version: "v1.36.3", Nodes: 10, Workloads: "default"}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a sandbox cluster (builds the binaries on first use)",
		Example: `  kup sandbox up --version v1.36.3 --nodes 50
  kup sandbox up --name demo --workloads default --with-problems --pod-ready-delay 5s
  export KUBECONFIG=$(kup sandbox kubeconfig --name demo)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Progress = cmd.ErrOrStderr()
			c, err := sandbox.Start(cmd.Context(), opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Sandbox %q is running Kubernetes %s with %d nodes.\n", c.Name, c.Version, c.NodeCount)
			fmt.Fprintf(out, "  export KUBECONFIG=%s\n", c.Kubeconfig)
			fmt.Fprintf(out, "  kubectl get nodes\n")
			fmt.Fprintf(out, "Stop it with: kup sandbox down --name %s\n", c.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Name, "name", opts.Name, "name of the sandbox (several can run side by side)")
	f.StringVar(&opts.Version, "version", opts.Version, "Kubernetes version of the control plane (an exact release the Go module proxy serves)")
	f.StringVar(&opts.NodeVersion, "node-version", "", "kubelet/kube-proxy version of the nodes (default: --version); a comma-separated list is assigned round-robin, e.g. v1.36.3,v1.34.4")
	f.IntVar(&opts.Nodes, "nodes", opts.Nodes, "number of simulated nodes")
	f.StringVar(&opts.Workloads, "workloads", opts.Workloads, "seeded workloads: default (Deployments, a StatefulSet and a DaemonSet with PDBs) or none")
	f.BoolVar(&opts.WithProblems, "with-problems", false, "also seed what a preflight must catch (blocking PDBs, an unmanaged pod, a crash loop, a NotReady node, …)")
	f.IntVar(&opts.Deployments, "deployments", 0, "extra Deployments (with 10% maxUnavailable PDBs) for scale tests")
	f.IntVar(&opts.Replicas, "replicas", 0, "replicas of each extra Deployment")
	f.DurationVar(&opts.PodReadyDelay, "pod-ready-delay", 0, "how long a pod takes to become Ready (makes PDBs bite as in life)")
	f.DurationVar(&opts.KubeletRestart, "kubelet-restart", time.Second, "how long a node stays NotReady when its kubelet is upgraded")
	f.StringVar(&opts.BinDir, "bin-dir", "", "use kube-apiserver, kube-controller-manager, kube-scheduler and etcd from this directory instead of building them")
	return cmd
}

func newSandboxDownCommand() *cobra.Command {
	var name string
	var all bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a sandbox and remove its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var targets []*sandbox.Cluster
			if all {
				cs, err := sandbox.List("")
				if err != nil {
					return err
				}
				targets = cs
			} else {
				c, err := sandbox.Load("", name)
				if err != nil {
					return err
				}
				targets = []*sandbox.Cluster{c}
			}
			for _, c := range targets {
				if err := c.StopContext(cmd.Context()); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Sandbox %q stopped and removed.\n", c.Name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "default", "name of the sandbox")
	cmd.Flags().BoolVar(&all, "all", false, "stop every sandbox")
	return cmd
}

func newSandboxStatusCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the sandboxes, their processes, versions and ports",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cs []*sandbox.Cluster
			if name != "" {
				c, err := sandbox.Load("", name)
				if err != nil {
					return err
				}
				cs = []*sandbox.Cluster{c}
			} else {
				var err error
				if cs, err = sandbox.List(""); err != nil {
					return err
				}
			}
			if len(cs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No sandboxes. Start one with: kup sandbox up")
				return nil
			}
			for _, c := range cs {
				fmt.Fprint(cmd.OutOrStdout(), c.Describe())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "only this sandbox")
	return cmd
}

func newSandboxKubeconfigCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the path of a sandbox's kubeconfig (last line), for export KUBECONFIG=$(…)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sandbox.Load("", name)
			if err != nil {
				return err
			}
			if !c.Running() {
				fmt.Fprintf(os.Stderr, "warning: sandbox %q is not running (kup sandbox up --name %s)\n", name, name)
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.Kubeconfig)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "default", "name of the sandbox")
	return cmd
}

func newSandboxPrepareCommand() *cobra.Command {
	var versions []string
	var binDir string
	cmd := &cobra.Command{
		Use:   "prepare",
		Short: "Build and cache the sandbox binaries for the given Kubernetes versions (etcd and kwok too)",
		Long: `Builds kube-apiserver, kube-controller-manager and kube-scheduler for each
--version from the Go module proxy (about 4 minutes per version on 2 cores,
seconds when cached), plus etcd and kwok, into the cache. Later sandbox
starts and upgrades reuse them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bins, err := sandbox.NewBinaries(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			bins.BinDir = binDir
			ctx := cmd.Context()
			if _, err := bins.Etcd(ctx, sandbox.DefaultEtcdVersion); err != nil {
				return err
			}
			if _, err := bins.Kwok(ctx, sandbox.DefaultKwokVersion); err != nil {
				return err
			}
			for _, v := range versions {
				dir, err := bins.Kubernetes(ctx, v)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Kubernetes %s: %s\n", v, dir)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&versions, "version", []string{"v1.36.3"}, "Kubernetes versions to prepare (repeatable)")
	cmd.Flags().StringVar(&binDir, "bin-dir", "", "check binaries in this directory instead of building")
	return cmd
}
