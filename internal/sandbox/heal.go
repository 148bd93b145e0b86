package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EnsureRunning restarts any process of the sandbox that is not running,
// at the version its record names — what a kubelet does for static pods.
// A kup killed in the middle of a binary swap (old apiserver stopped, new
// one not yet started) leaves the sandbox without an apiserver; the next
// kup calls this before talking to the cluster. It reports what it
// restarted.
func (c *Cluster) EnsureRunning(ctx context.Context) ([]string, error) {
	var restarted []string
	apiRestarted := false
	for _, name := range []string{Etcd, APIServer, ControllerManager, Scheduler, Kwok} {
		p := c.Processes[name]
		if p == nil {
			continue
		}
		if apiRestarted && (name == ControllerManager || name == Scheduler) && p.Alive() {
			// In a real control plane both run with leader election: an
			// apiserver away longer than the renew deadline (10 s) costs
			// them their lease, they exit, and the kubelet starts them
			// again with fresh caches. The sandbox runs them without it,
			// so they would carry caches across the outage — and the
			// scheduler's does not survive a StatefulSet pod recreated
			// under the same name meanwhile ("Scheduler cache is
			// corrupted"): the new pod was never scheduled, holding its
			// PDB at 0 (TestApplyInterruptions failed in CI this way).
			// Do what the kubelet would.
			if err := p.Stop(ctx, 10*time.Second); err != nil {
				return restarted, fmt.Errorf("restarting %s of sandbox %q after the apiserver came back: %w", name, c.Name, err)
			}
		} else if p.Alive() {
			// Alive is not enough: a kup killed while stopping or starting
			// this component leaves it shutting down (kube-apiserver takes
			// up to a minute) or still starting. Wait for one or the other.
			if c.waitServingOrGone(ctx, name, p) {
				continue
			}
		}
		c.killOrphans(name)
		var err error
		switch name {
		case Etcd:
			err = c.startEtcd(ctx, p.Binary)
		case Kwok:
			if err = c.startKwok(ctx, p.Binary); err == nil {
				c.Processes[Kwok].Version = p.Version
			}
		default:
			bin := p.Binary
			if !fileExists(bin) {
				dir, berr := c.bins.Kubernetes(ctx, p.Version)
				if berr != nil {
					return restarted, berr
				}
				bin = filepath.Join(dir, name)
			}
			err = c.startComponent(ctx, name, bin, p.Version)
		}
		if err != nil {
			return restarted, fmt.Errorf("restarting %s %s of sandbox %q: %w", name, p.Version, c.Name, err)
		}
		restarted = append(restarted, name+" "+p.Version)
		if name == Etcd || name == APIServer {
			apiRestarted = true
		}
	}
	if len(restarted) > 0 {
		if err := c.save(); err != nil {
			return restarted, err
		}
		return restarted, c.finishDeletions(ctx)
	}
	return nil, nil
}

// finishDeletions removes pods left terminating on the simulated nodes.
// kwok removes a deleted pod a second after its deletion (stagePodDelete)
// and drops that action for good when it fails with anything but
// "connection refused" — as it does when the apiserver goes down at that
// moment — so the pod would stay terminating forever, holding its PDB at
// 0 disruptions allowed. A kubelet would finish the job once the
// apiserver is back; this does it for kwok.
func (c *Cluster) finishDeletions(ctx context.Context) error {
	cs := c.Client()
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("sandbox %q: listing pods left terminating: %w", c.Name, err)
	}
	zero := int64(0)
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil || time.Since(p.DeletionTimestamp.Time) < 2*time.Second {
			continue
		}
		uid := p.UID
		err := cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("sandbox %q: removing pod %s/%s left terminating: %w", c.Name, p.Namespace, p.Name, err)
		}
		c.progressf("removed pod %s/%s, terminating since %s (its simulated kubelet lost the deletion)", p.Namespace, p.Name, p.DeletionTimestamp.Format(time.RFC3339))
	}
	return nil
}

// killOrphans kills processes of component that belong to this sandbox
// (their command line names its directory) but are not the recorded one:
// started by a kup killed before it could record them.
func (c *Cluster) killOrphans(component string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	recorded := 0
	if p := c.Processes[component]; p != nil {
		recorded = p.PID
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == recorded || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != component || !strings.Contains(string(cmdline), c.Dir+"/") {
			continue
		}
		orphan := &Process{Name: component, PID: pid, Binary: args[0]}
		_ = orphan.Stop(context.Background(), 2*time.Second)
	}
}

// waitServingOrGone waits up to 15 s for a running control-plane component
// to serve its health endpoint (true) or to exit (false). A component
// that does neither is killed (false), so the caller starts a fresh one.
func (c *Cluster) waitServingOrGone(ctx context.Context, name string, p *Process) bool {
	path := "/healthz"
	switch name {
	case APIServer:
		path = "/readyz"
	case ControllerManager, Scheduler:
	default:
		return true // etcd and kwok: alive is what we can tell
	}
	url := fmt.Sprintf("https://127.0.0.1:%d%s", c.componentPort(name), path)
	hc := c.httpClient()
	// A starting component serves within seconds; one still not serving
	// after 15 s is shutting down (kube-apiserver's graceful shutdown takes
	// a minute) or stuck. Waiting that minute out would let every node
	// lease expire — the node lifecycle controller would then mark every
	// pod NotReady — so it is killed and started fresh.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return false
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := httpOK(cctx, hc, url)
		cancel()
		if err == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return true
		case <-time.After(500 * time.Millisecond):
		}
	}
	_ = p.Stop(ctx, 0)
	return false
}
