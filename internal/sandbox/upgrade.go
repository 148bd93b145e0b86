package sandbox

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// SetControlPlaneVersion moves the control plane to version by swapping
// binaries on the same etcd: kube-apiserver first, then
// kube-controller-manager, then kube-scheduler — the order the
// version-skew policy requires (no component newer than the apiserver).
// Each step waits for positive evidence (readyz/healthz and the version
// the component reports) before the next starts. The new binaries are
// built (first use) before anything is stopped, so a failed build leaves
// the cluster as it was.
func (c *Cluster) SetControlPlaneVersion(ctx context.Context, version string) error {
	dir, err := c.bins.Kubernetes(ctx, version)
	if err != nil {
		return fmt.Errorf("control plane to %s: %w", version, err)
	}
	for _, comp := range ControlPlaneComponents {
		if err := c.SwapComponent(ctx, comp, filepath.Join(dir, comp), version); err != nil {
			return fmt.Errorf("control plane to %s: %w", version, err)
		}
	}
	c.Version = version
	return c.save()
}

// SwapComponent replaces one running control-plane component with bin at
// version. It waits for the old process to exit before starting the new
// one (the port stays held during graceful shutdown).
func (c *Cluster) SwapComponent(ctx context.Context, component, bin, version string) error {
	if old := c.Processes[component]; old != nil {
		c.progressf("stopping %s %s", component, old.Version)
		// kube-apiserver's graceful shutdown waits a full request timeout
		// (60 s) for open connections here; nothing in a sandbox needs that
		// drain, and all state is in etcd, so the grace period is short.
		if err := old.Stop(ctx, 5*time.Second); err != nil {
			return err
		}
	}
	c.progressf("starting %s %s", component, version)
	err := c.startComponent(ctx, component, bin, version)
	if serr := c.save(); err == nil {
		err = serr
	}
	return err
}
