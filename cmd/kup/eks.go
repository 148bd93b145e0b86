package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/apply"
	"github.com/kup-project/kup/internal/plan"
	eksprovider "github.com/kup-project/kup/internal/provider/eks"
)

// providerFlags choose the control-plane provider of plan and apply.
// With --provider eks, kubectl's --cluster names the EKS cluster (as
// eksctl's --cluster does) rather than a kubeconfig entry: the kubeconfig's
// context (or --context) still reaches the API server.
type providerFlags struct {
	name   string
	region string
	poll   time.Duration
	// cluster is the EKS cluster's name, taken from --cluster.
	cluster string
}

func (f *providerFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.name, "provider", "", "how the control plane is run: sandbox (detected for clusters kup sandbox started), kubeadm (the kubeadm runbook over SSH, see --ssh-*; kup apply only) or eks (with --cluster NAME, the EKS cluster's name or ARN, and --region)")
	cmd.Flags().StringVar(&f.region, "region", "", "with --provider eks: the AWS region (default: AWS_REGION or the profile's)")
	cmd.Flags().DurationVar(&f.poll, "eks-poll", 0, "with --provider eks: first DescribeUpdate after this long (default 5s, 10s for node groups), doubling from there")
	_ = cmd.Flags().MarkHidden("eks-poll")
}

// takeCluster reads --cluster for --provider eks and removes it from the
// kubeconfig flags, where it would name a kubeconfig cluster entry. An
// ARN gives both the name and the region.
func (f *providerFlags) takeCluster(flags *genericclioptions.ConfigFlags) error {
	switch f.name {
	case "", "sandbox", "kubeadm":
		return nil
	case "eks":
	default:
		return usageError("--provider %q: want sandbox, kubeadm or eks", f.name)
	}
	if flags.ClusterName == nil || *flags.ClusterName == "" {
		return usageError("--provider eks needs --cluster NAME (the EKS cluster's name or ARN)")
	}
	f.cluster = *flags.ClusterName
	*flags.ClusterName = ""
	// arn:aws:eks:REGION:ACCOUNT:cluster/NAME
	if parts := strings.Split(f.cluster, ":"); len(parts) == 6 && parts[0] == "arn" && strings.HasPrefix(parts[5], "cluster/") {
		if f.region == "" {
			f.region = parts[3]
		}
		f.cluster = strings.TrimPrefix(parts[5], "cluster/")
	}
	return nil
}

// eksControlPlane makes the EKS provider for the cluster f names; nil
// when the provider is not eks.
func (f *providerFlags) eksControlPlane(cmd *cobra.Command, kube *rest.Config) (*eksprovider.ControlPlane, error) {
	if f.name != "eks" {
		return nil, nil
	}
	p, err := eksprovider.New(cmd.Context(), f.cluster, f.region, kube)
	if err != nil {
		return nil, usageError("%v", err)
	}
	if f.poll > 0 {
		p.Poll.Initial, p.NodegroupPoll.Initial = f.poll, f.poll
	}
	return p, nil
}

// configureEKS makes a the applier of an EKS cluster: the EKS control
// plane and node groups, no etcd backup (EKS runs etcd and gives no access
// to it), and kup's node upgrader only when one is named, for nodes in no
// managed node group.
func (f *applyFlags) configureEKS(cmd *cobra.Command, a *apply.Applier) error {
	p, err := f.pf.eksControlPlane(cmd, f.cfg)
	if err != nil {
		return err
	}
	p.Progress = func(s string) {
		if a.Options.Progress != nil {
			a.Options.Progress(apply.Event{Time: time.Now(), Phase: "eks", Message: s})
		}
	}
	a.ControlPlane = p
	a.Options.SkipBackupReason = p.Capabilities().EtcdNote
	return nil
}

// runEKSRollback is `kup rollback --provider eks`: refuse with the reason
// outside EKS's window, else the managed node groups back one minor, then
// the control plane (see eksprovider.ControlPlane.RollBack).
func runEKSRollback(cmd *cobra.Command, flags *genericclioptions.ConfigFlags, pf *providerFlags, maxUnavailable string) error {
	if err := pf.takeCluster(flags); err != nil {
		return err
	}
	if pf.name != "eks" {
		return usageError("kup rollback --provider eks --cluster NAME: only EKS can return its control plane to the previous minor")
	}
	kube, err := restConfig(flags)
	if err != nil {
		return usageError("no cluster (%v): pass --kubeconfig/--context", err)
	}
	mu := intstr.Parse(maxUnavailable)
	if _, err := intstr.GetScaledValueFromIntOrPercent(&mu, 100, false); err != nil {
		return usageError("--max-unavailable %q: want a count (3) or a percentage (10%%)", maxUnavailable)
	}
	p, err := pf.eksControlPlane(cmd, kube)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	p.Progress = func(s string) { fmt.Fprintf(out, "%s %s\n", time.Now().Format("15:04:05"), s) }
	ctx := cmd.Context()
	rb, err := p.RollbackCheck(ctx, time.Now())
	if err != nil {
		return fmt.Errorf("kup rollback of EKS cluster %s refused: %w", pf.cluster, err)
	}
	fmt.Fprintf(out, "Rolling EKS cluster %s back %s → %s (upgrade %s of %s; window open until %s): node groups first, then the control plane.\n",
		pf.cluster, rb.From, rb.To, rb.UpgradeID, rb.UpgradedAt.UTC().Format(time.RFC3339), rb.Until.UTC().Format(time.RFC3339))
	managed, err := p.ManagedNodes(ctx)
	if err != nil {
		return err
	}
	groups := map[string][]string{}
	for node, g := range managed {
		groups[g] = append(groups[g], node)
	}
	cs, err := kubernetes.NewForConfig(kube)
	if err != nil {
		return err
	}
	limits, reasons, err := apply.GroupLimits(ctx, cs, groups, plan.Policy{MaxUnavailable: mu})
	if err != nil {
		return err
	}
	for _, g := range slices.Sorted(maps.Keys(limits)) {
		fmt.Fprintf(out, "  node group %s: at most %d node(s) at a time (%s)\n", g, limits[g], reasons[g])
	}
	if err := p.RollBack(ctx, rb, limits); err != nil {
		return err
	}
	fmt.Fprintf(out, "EKS cluster %s rolled back to %s: node groups, then the control plane. Add-ons were left as they are; check them with kup plan.\n", pf.cluster, rb.To)
	return nil
}
