package kubeadm

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/kup-project/kup/internal/provider"
)

// NodeUpgrader upgrades a worker that kup has cordoned and drained, by
// the "Upgrading Linux nodes" runbook: repository → kubeadm →
// `kubeadm upgrade node` → kubelet and kubectl → daemon-reload → restart
// the kubelet. (The runbook drains after `kubeadm upgrade node`; kup
// drains first, which that command — it only rewrites the kubelet's
// configuration — does not mind.) kup then waits for the node to be
// Ready at the version.
type NodeUpgrader struct {
	Hosts *Hosts
}

var _ provider.NodeUpgrader = (*NodeUpgrader)(nil)

func (u *NodeUpgrader) Name() string { return "kubeadm" }

// MaxMinorsPerRoll is 1: `kubeadm upgrade node` fetches the kubelet
// configuration the control plane published for its own minor, and
// kubeadm supports upgrading only from one minor to the next ("Skipping
// MINOR versions when upgrading is unsupported",
// https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/;
// kubeadm's own skew against the kubelet,
// https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/create-cluster-kubeadm/#kubeadm-s-skew-against-the-kubelet).
// The package repository is per minor too, so one roll is one minor.
func (u *NodeUpgrader) MaxMinorsPerRoll() int { return 1 }

// UpgradeNode runs the worker runbook on node's host. A failed step
// stops it; holds it lifted are put back; the error names the node, the
// step, the command and its exit status.
func (u *NodeUpgrader) UpgradeNode(ctx context.Context, node *corev1.Node, target string) error {
	v, err := parseTarget(target)
	if err != nil {
		return err
	}
	m, err := u.Hosts.machine(ctx, node)
	if err != nil {
		return err
	}
	defer m.restoreHolds(ctx)
	if err := m.installKubeadm(ctx, v); err != nil {
		return err
	}
	if err := m.run(ctx, UpgradeNodeStep()); err != nil {
		return err
	}
	return m.installKubelet(ctx, v)
}
