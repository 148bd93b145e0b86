package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EtcdMember is the identity the sandbox's etcd runs with. A data
// directory restored for it must carry the same member name, peer URL
// and cluster token, or etcd will not start on it.
type EtcdMember struct {
	Name           string
	PeerURL        string
	InitialCluster string
	ClusterToken   string
}

// etcdMember matches the flags startEtcd passes (etcd's default token).
func (c *Cluster) etcdMember() EtcdMember {
	peer := fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdPeer)
	return EtcdMember{Name: "sandbox", PeerURL: peer, InitialCluster: "sandbox=" + peer, ClusterToken: "etcd-cluster"}
}

// launch is how a process was started: binary and version.
type launch struct{ bin, version string }

// restoreOrder stops the writers first: the apiserver, so nothing more is
// written, then the controllers, then etcd itself.
// kwok goes first and comes back last: a simulated kubelet may hold a
// delayed action (a pod's deletion finishing a second after it began,
// see stagePodDelete) that would land on the restored pod of the same
// name and UID; a restarted kwok starts from the restored state, as a
// real kubelet reconciles against it.
var restoreOrder = []string{Kwok, APIServer, ControllerManager, Scheduler, Etcd}

// RestoreEtcd replaces the sandbox's etcd data with what restore writes
// into a new, empty data directory: it stops kwok, kube-apiserver,
// kube-controller-manager, kube-scheduler and etcd (in that order), moves
// the old data directory aside to "etcd.before-restore-<time>", calls
// restore, and starts etcd, the three components and kwok again with the
// binaries and versions they ran with, waiting for each as Start does,
// then for the nodes kwok keeps Ready. If restore or the restart fails, the old data directory is put
// back (the failed one is kept as "etcd.failed-restore-<time>") and the
// control plane restarted on it.
//
// restore is a callback so that this package does not depend on the
// backup package; it must not touch anything but dataDir.
func (c *Cluster) RestoreEtcd(ctx context.Context, restore func(ctx context.Context, dataDir string, member EtcdMember) error) error {
	procs, err := c.launches(ctx)
	if err != nil {
		return fmt.Errorf("restoring etcd of sandbox %q: %w", c.Name, err)
	}
	readyBefore := c.readyNodes(ctx)

	for _, name := range restoreOrder {
		p := c.Processes[name]
		if p == nil {
			continue
		}
		c.progressf("stopping %s for the etcd restore", name)
		if err := p.Stop(ctx, 5*time.Second); err != nil {
			return fmt.Errorf("restoring etcd of sandbox %q: stopping %s: %w", c.Name, name, err)
		}
	}

	dataDir := filepath.Join(c.Dir, "etcd")
	stamp := time.Now().UTC().Format("20060102T150405.000Z")
	aside := filepath.Join(c.Dir, "etcd.before-restore-"+stamp)
	if err := os.Rename(dataDir, aside); err != nil {
		return c.restartAfter(ctx, procs, fmt.Errorf("moving the etcd data directory aside: %w", err))
	}
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		return c.rollBack(ctx, procs, aside, stamp, fmt.Errorf("creating a new etcd data directory: %w", err))
	}
	c.progressf("restoring etcd into %s (old data kept in %s)", dataDir, aside)
	if err := restore(ctx, dataDir, c.etcdMember()); err != nil {
		return c.rollBack(ctx, procs, aside, stamp, fmt.Errorf("restore: %w", err))
	}
	if err := c.startControlPlane(ctx, procs); err != nil {
		return c.rollBack(ctx, procs, aside, stamp, fmt.Errorf("starting on the restored data: %w", err))
	}
	if err := c.save(); err != nil {
		return err
	}
	return c.waitReadyNodes(ctx, readyBefore)
}

// launches records how each process to restart was started. A process
// the sandbox has no record of (it may have died: a damaged etcd is a
// reason to restore) is started from the binaries of the sandbox's
// versions, built before anything is stopped.
func (c *Cluster) launches(ctx context.Context) (map[string]launch, error) {
	out := map[string]launch{}
	for _, name := range restoreOrder {
		if p := c.Processes[name]; p != nil && p.Binary != "" {
			out[name] = launch{p.Binary, p.Version}
			continue
		}
		if name == Kwok {
			bin, err := c.bins.Kwok(ctx, c.KwokVersion)
			if err != nil {
				return nil, err
			}
			out[name] = launch{bin, c.KwokVersion}
			continue
		}
		if name == Etcd {
			bin, err := c.bins.Etcd(ctx, c.EtcdVersion)
			if err != nil {
				return nil, err
			}
			out[name] = launch{bin, c.EtcdVersion}
			continue
		}
		dir, err := c.bins.Kubernetes(ctx, c.Version)
		if err != nil {
			return nil, err
		}
		out[name] = launch{filepath.Join(dir, name), c.Version}
	}
	return out, nil
}

// startControlPlane starts etcd, then the apiserver, controller-manager
// and scheduler, each waited for, then kwok.
func (c *Cluster) startControlPlane(ctx context.Context, procs map[string]launch) error {
	c.progressf("starting etcd %s", procs[Etcd].version)
	if err := c.startEtcd(ctx, procs[Etcd].bin); err != nil {
		return err
	}
	for _, name := range ControlPlaneComponents {
		p := procs[name]
		c.progressf("starting %s %s", name, p.version)
		if err := c.startComponent(ctx, name, p.bin, p.version); err != nil {
			return err
		}
	}
	if k, ok := procs[Kwok]; ok {
		c.progressf("starting kwok %s (simulated kubelets)", k.version)
		return c.startKwok(ctx, k.bin)
	}
	return nil
}

// rollBack puts the old data directory back and restarts on it; cause is
// returned with whatever else went wrong.
func (c *Cluster) rollBack(ctx context.Context, procs map[string]launch, aside, stamp string, cause error) error {
	ctx = context.WithoutCancel(ctx) // the rollback must run even if ctx ended
	for _, name := range restoreOrder {
		if p := c.Processes[name]; p != nil {
			_ = p.Stop(ctx, 5*time.Second)
		}
	}
	dataDir := filepath.Join(c.Dir, "etcd")
	failed := filepath.Join(c.Dir, "etcd.failed-restore-"+stamp)
	if err := os.Rename(dataDir, failed); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restoring etcd of sandbox %q: %w; and moving the restored data aside failed: %v (old data is in %s)", c.Name, cause, err, aside)
	}
	if err := os.Rename(aside, dataDir); err != nil {
		return fmt.Errorf("restoring etcd of sandbox %q: %w; and putting the old data back failed: %v (old data is in %s)", c.Name, cause, err, aside)
	}
	return c.restartAfter(ctx, procs, cause)
}

// restartAfter restarts the control plane after a failed restore.
func (c *Cluster) restartAfter(ctx context.Context, procs map[string]launch, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	err := c.startControlPlane(ctx, procs)
	if serr := c.save(); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("restoring etcd of sandbox %q: %w; restarting on the old data also failed: %v", c.Name, cause, err)
	}
	return fmt.Errorf("restoring etcd of sandbox %q: %w (the old data is back and the control plane restarted on it)", c.Name, cause)
}

// readyNodes counts Ready nodes, or -1 when it cannot tell.
func (c *Cluster) readyNodes(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return -1
	}
	ready := 0
	for i := range list.Items {
		if nodeReady(&list.Items[i]) {
			ready++
		}
	}
	return ready
}

// waitReadyNodes waits until as many nodes are Ready as were before the
// restore (no more than the restored data holds): kwok's heartbeats
// stopped while the apiserver was down, so leases may have run out.
func (c *Cluster) waitReadyNodes(ctx context.Context, want int) error {
	if want <= 0 {
		return nil
	}
	timeout := 2*time.Minute + time.Duration(want)*100*time.Millisecond
	return waitFor(ctx, timeout, "nodes Ready after the etcd restore", c.Processes[Kwok], func(ctx context.Context) error {
		list, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for i := range list.Items {
			if nodeReady(&list.Items[i]) {
				ready++
			}
		}
		if ready < min(want, len(list.Items)) {
			return fmt.Errorf("%d of %d nodes Ready", ready, min(want, len(list.Items)))
		}
		return nil
	})
}
