// Package provider defines the only code that changes the world: the
// control plane (upgrade it, say what runs), the node upgrader (upgrade one
// node's kubelet) and their capabilities. Implementations live in
// sub-packages (sandbox, later kubeadm over SSH, exec, managed clouds);
// kup picks one explicitly — there is no registration by init().
package provider

import (
	"context"

	corev1 "k8s.io/api/core/v1"
)

// Component is one running instance of a control-plane component.
type Component struct {
	// Name is kube-apiserver, kube-controller-manager, kube-scheduler,
	// cloud-controller-manager or etcd.
	Name string `json:"name"`
	// Instance tells instances of an HA control plane apart (a node name,
	// an address, a pod name).
	Instance string `json:"instance"`
	Version  string `json:"version"`
	// Source says where the version was read: "pod image", "/version",
	// "build info metric", "provider".
	Source string `json:"source"`
}

// Capabilities is what a control-plane provider can and cannot do, so
// the planner never schedules what the provider cannot perform.
type Capabilities struct {
	// Installable reports whether the provider can install a version
	// (the sandbox: those the Go module proxy serves; kubeadm: those in the
	// package repository). Nil means any released version.
	Installable func(version string) bool `json:"-"`
	// InstallableNote explains the restriction, for the plan's output.
	InstallableNote string `json:"installableNote,omitempty"`
	// Rollback is true when the provider can return the control plane to
	// the previous minor (only with emulated versions, or EKS's window).
	Rollback bool `json:"rollback"`
	// Emulation is true when the provider can start kube-apiserver,
	// kube-controller-manager and kube-scheduler with --emulated-version
	// (KEP-4330) and implements Emulator: the two-step, rollback-safe
	// minor upgrade. kubeadm can, through the extraArgs of its
	// ClusterConfiguration; managed clouds decide for themselves.
	Emulation bool `json:"emulation,omitempty"`
	// PatchByProvider is true when the provider is asked for a minor and
	// chooses the patch itself (EKS): a hop is done when the control plane
	// serves the hop's minor.
	PatchByProvider bool `json:"patchByProvider,omitempty"`
	// NodeGroupsFollowEachHop is true when the provider refuses a hop
	// while one of its node groups is behind the control plane (EKS:
	// managed node groups must match the cluster's version before
	// UpdateClusterVersion), so the groups roll after every hop, not once
	// at the end.
	NodeGroupsFollowEachHop bool `json:"nodeGroupsFollowEachHop,omitempty"`
	// EtcdNote, when set, says the provider runs etcd out of kup's reach
	// and why kup takes no snapshot (a managed control plane).
	EtcdNote string `json:"etcdNote,omitempty"`
}

// ControlPlane upgrades and reports on a cluster's control plane.
type ControlPlane interface {
	// Name is the provider's name as given to --provider.
	Name() string
	Capabilities() Capabilities
	// Components reports every control-plane component instance the
	// provider can see, with its version.
	Components(ctx context.Context) ([]Component, error)
	// Upgrade moves the whole control plane to version — one hop — and
	// returns once every component serves at that version. It never
	// skips a minor: the caller walks the path.
	Upgrade(ctx context.Context, version string) error
	// Health judges the control plane now: readyz of every
	// kube-apiserver, each component's version, the kube-system pods.
	// The error is for "could not judge at all"; a component that cannot
	// be reached is a Problem, never a pass.
	Health(ctx context.Context) (*Health, error)
}

// Emulator is a control-plane provider that can run the components'
// binaries emulating an older minor (KEP-4330 compatibility versions,
// `--emulated-version`), which is what makes a minor upgrade
// rollback-safe. The caller decides the order; the provider moves one
// component (every instance of it) at a time.
type Emulator interface {
	// RunComponent makes every instance of component (kube-apiserver,
	// kube-controller-manager or kube-scheduler) run the binaries of
	// version emulating the minor emulate ("1.36"; empty for the
	// binary's own minor), and returns once each serves and reports both.
	// An instance already running so is left alone.
	RunComponent(ctx context.Context, component, version, emulate string) error
	// Emulation reports every control-plane component instance's binary
	// version and emulated version, as the instance itself reports them.
	Emulation(ctx context.Context) ([]EmulatedComponent, error)
}

// EmulatedComponent is a component instance with the minor it emulates.
type EmulatedComponent struct {
	Component
	// Emulated is the emulated version the instance reports ("1.36"):
	// /version's emulationMajor.emulationMinor for the apiserver, the
	// version_info metric's emulation label for the others.
	Emulated string `json:"emulated"`
}

// Health is a control-plane provider's verdict at one moment.
type Health struct {
	// Components are the instances seen, with the versions they report.
	Components []Component `json:"components"`
	// Problems are the reasons the control plane is not healthy, each
	// naming the instance; empty means healthy.
	Problems []string `json:"problems,omitempty"`
}

// Healthy reports whether nothing is wrong.
func (h *Health) Healthy() bool { return h != nil && len(h.Problems) == 0 }

// NodeUpgrader upgrades the kubelet of one node that kup has already
// cordoned and drained.
type NodeUpgrader interface {
	Name() string
	// MaxMinorsPerRoll is how many minors one upgrade may move a kubelet
	// (0: as many as the skew policy allows). kubeadm's `upgrade node`
	// moves one; the planner honours the stricter limit.
	MaxMinorsPerRoll() int
	// UpgradeNode installs version on node and returns when the upgrade
	// has been started on the machine; kup itself waits for the node to
	// be Ready at the version.
	UpgradeNode(ctx context.Context, node *corev1.Node, version string) error
}

// NodeGroups is a control-plane provider that also rolls some nodes
// itself — EKS managed node groups: the provider drains and replaces
// them; kup chooses how many of each group may be down at once (from the
// PodDisruptionBudgets, through the wave planner) and follows along.
// Nodes outside every group go through kup's own waves and NodeUpgrader.
type NodeGroups interface {
	// ManagedNodes maps every node the provider rolls itself to its group.
	ManagedNodes(ctx context.Context) (map[string]string, error)
	// UpgradeNodeGroups moves every group to version, group by group, with
	// at most maxUnavailable[group] of its nodes down at a time, and
	// returns when all are done or one fails (the error names the group
	// and what held it).
	UpgradeNodeGroups(ctx context.Context, version string, maxUnavailable map[string]int) error
}
