// Package sandbox is the provider for clusters started by `kup sandbox`:
// the control plane is upgraded by swapping binaries on the same etcd and
// a node by restarting its simulated kubelet at the new version. It is the
// provider the demo and every end-to-end test use.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kup-project/kup/internal/provider"
	sbx "github.com/kup-project/kup/internal/sandbox"
)

// ControlPlane drives a sandbox's control plane.
type ControlPlane struct {
	Cluster *sbx.Cluster
	// ReadyTimeout and Binary are passed to the sandbox's
	// UpgradeControlPlane (a deadline per component before its old binary
	// is put back; a binary override tests inject failures with).
	ReadyTimeout time.Duration
	Binary       func(component, version string) string
}

var _ provider.ControlPlane = (*ControlPlane)(nil)

func (p *ControlPlane) Name() string { return "sandbox" }

// Capabilities: the sandbox can install what the Go module proxy serves
// of k8s.io/kubernetes (or what is already in the binary cache), and can
// start every component with --emulated-version (emulation.go), so it can
// go back to the older binaries on the same etcd within a rollback window
// (kup controlplane upgrade --rollback-safe, kup rollback).
func (p *ControlPlane) Capabilities() provider.Capabilities {
	return provider.Capabilities{
		Installable:     servedVersions,
		InstallableNote: "the sandbox builds k8s.io/kubernetes from the Go module proxy, so only versions the proxy serves can be installed",
		Rollback:        true,
		Emulation:       true,
	}
}

// Components reads each component's version from the component itself:
// /version for the apiserver, the kubernetes_build_info metric for the
// controller-manager and scheduler. etcd's comes from the sandbox record.
func (p *ControlPlane) Components(ctx context.Context) ([]provider.Component, error) {
	var out []provider.Component
	for _, name := range sbx.ControlPlaneComponents {
		v, err := p.Cluster.ComponentVersion(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("reading %s version of sandbox %q: %w", name, p.Cluster.Name, err)
		}
		src := "build info metric"
		if name == sbx.APIServer {
			src = "/version"
		}
		out = append(out, provider.Component{Name: name, Instance: "127.0.0.1", Version: v, Source: src})
	}
	out = append(out, provider.Component{Name: "etcd", Instance: "127.0.0.1", Version: p.Cluster.EtcdVersion, Source: "provider"})
	return out, nil
}

// Upgrade swaps the control plane to version (apiserver, then
// controller-manager, then scheduler); a component that does not serve
// in time is rolled back to its old binary.
func (p *ControlPlane) Upgrade(ctx context.Context, version string) error {
	return p.Cluster.UpgradeControlPlane(ctx, version, sbx.UpgradeOptions{ReadyTimeout: p.ReadyTimeout, Binary: p.Binary})
}

// NodeUpgrader "upgrades" a simulated node: it waits UpgradeTime (the time
// a real package install and kubelet restart take), then restarts the
// node's kubelet at the new version.
type NodeUpgrader struct {
	Cluster     *sbx.Cluster
	UpgradeTime time.Duration
	// Fail, when set, is consulted before each upgrade; a non-nil error
	// fails that node's upgrade (tests inject failures with it).
	Fail func(node string) error
}

var _ provider.NodeUpgrader = (*NodeUpgrader)(nil)

func (u *NodeUpgrader) Name() string          { return "sandbox" }
func (u *NodeUpgrader) MaxMinorsPerRoll() int { return 0 }

func (u *NodeUpgrader) UpgradeNode(ctx context.Context, node *corev1.Node, version string) error {
	if u.Fail != nil {
		if err := u.Fail(node.Name); err != nil {
			return fmt.Errorf("upgrading node %s to %s: %w", node.Name, version, err)
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(u.UpgradeTime):
	}
	return u.Cluster.SetNodeVersion(ctx, node.Name, version)
}

// ErrNotSandbox: the cluster is not one `kup sandbox` runs.
var ErrNotSandbox = errors.New("not a running kup sandbox")

// Detect returns the sandbox whose API server is host (as in a
// kubeconfig: https://127.0.0.1:PORT), so a cluster `kup sandbox` started is
// recognised from the kubeconfig alone.
func Detect(host string) (*sbx.Cluster, error) {
	cs, err := sbx.List("")
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if strings.TrimRight(host, "/") != fmt.Sprintf("https://127.0.0.1:%d", c.Ports.APIServer) || len(c.Processes) == 0 {
			continue
		}
		alive := 0
		for _, p := range c.Processes {
			if p.Alive() {
				alive++
			}
		}
		if alive == 0 {
			continue // a leftover record of a sandbox that is gone
		}
		{
			// A kup killed mid-swap can leave a component stopped, or
			// shutting down, or starting: bring the sandbox back to
			// serving, as a kubelet restarts a static pod.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if _, err := c.EnsureRunning(ctx); err != nil {
				return nil, fmt.Errorf("sandbox %q has stopped components and restarting them failed: %w", c.Name, err)
			}
		}
		return c, nil
	}
	return nil, ErrNotSandbox
}

var (
	servedOnce sync.Once
	served     map[string]bool
)

// servedVersions asks the Go module proxy once per process which
// k8s.io/kubernetes versions it serves. If it cannot be asked, any version
// is assumed installable and a failed build reports the problem.
func servedVersions(v string) bool {
	servedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "list", "-m", "-versions", "k8s.io/kubernetes").Output()
		if err != nil {
			return
		}
		served = map[string]bool{}
		for _, f := range strings.Fields(string(out))[1:] {
			served[f] = true
		}
	})
	if served == nil {
		return true
	}
	return served["v"+strings.TrimPrefix(v, "v")]
}

// ServedVersions lists the k8s.io/kubernetes versions the sandbox can
// install (what the Go module proxy serves), or nil when the proxy could
// not be asked.
func ServedVersions() []string {
	servedVersions("")
	if served == nil {
		return nil
	}
	out := make([]string, 0, len(served))
	for v := range served {
		out = append(out, v)
	}
	return out
}
