package sandbox

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultReadyTimeout is how long a swapped-in control-plane component
// may take to serve at its new version before the old binary is put back.
// A kube-apiserver on a sandbox's etcd is ready in seconds; 90 s leaves
// room for a loaded machine.
const DefaultReadyTimeout = 90 * time.Second

// rollbackTimeout bounds putting the old binary back and waiting for it.
// It runs even when the caller's context has ended.
const rollbackTimeout = 3 * time.Minute

// UpgradeOptions tune UpgradeControlPlane.
type UpgradeOptions struct {
	// ReadyTimeout bounds how long each new component may take to show
	// positive evidence (readyz/healthz and the version it reports)
	// before it is stopped and the old binary started again. Default
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Binary, when set, is asked for each component's binary at version;
	// a non-empty answer replaces the built one. Tests inject a broken
	// kube-apiserver this way: the binary cache is never touched.
	Binary func(component, version string) string
}

func (o UpgradeOptions) readyTimeout() time.Duration {
	if o.ReadyTimeout > 0 {
		return o.ReadyTimeout
	}
	return DefaultReadyTimeout
}

// SwapError is a component that did not come up at its new version. The
// old binary has been put back when RolledBackTo is set; RollbackErr says
// why that failed otherwise (the component is then down).
type SwapError struct {
	Component string
	Version   string
	// Log is the component's log file; the failed start is at its end.
	Log string
	// Timeout is the deadline the new binary had.
	Timeout time.Duration
	// RolledBackTo is the version running again after the rollback.
	RolledBackTo string
	RollbackErr  error
	Err          error
}

func (e *SwapError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s did not become ready (readyz/healthz and reported version) within %s: %v", e.Component, e.Version, e.Timeout, e.Err)
	if e.Log != "" && !strings.Contains(e.Err.Error(), e.Log) {
		fmt.Fprintf(&b, " (log: %s)", e.Log)
	}
	switch {
	case e.RollbackErr != nil:
		fmt.Fprintf(&b, "; putting the old %s back also failed: %v — %s is DOWN", e.Component, e.RollbackErr, e.Component)
	case e.RolledBackTo != "":
		fmt.Fprintf(&b, "; rolled back: %s %s serves again", e.Component, e.RolledBackTo)
	}
	return b.String()
}

func (e *SwapError) Unwrap() error { return e.Err }

// SetControlPlaneVersion is UpgradeControlPlane with the default options.
func (c *Cluster) SetControlPlaneVersion(ctx context.Context, version string) error {
	return c.UpgradeControlPlane(ctx, version, UpgradeOptions{})
}

// UpgradeControlPlane moves the control plane to version by swapping
// binaries on the same etcd: kube-apiserver first, then
// kube-controller-manager, then kube-scheduler — the order the
// version-skew policy requires (no component newer than the apiserver).
// Each step waits for positive evidence (readyz/healthz and the version
// the component reports) before the next starts; a component that shows
// none before the deadline is stopped and its old binary started again
// (a *SwapError says so), and the remaining components are left alone.
//
// The components run without an emulated version afterwards (a plain
// hop). The new binaries are built (first use) before anything is
// stopped, so a failed build leaves the cluster as it was. A component
// already running at version is skipped, so calling it again after a
// failure finishes the hop instead of restarting what already moved.
func (c *Cluster) UpgradeControlPlane(ctx context.Context, version string, opts UpgradeOptions) error {
	dir, err := c.bins.Kubernetes(ctx, version)
	if err != nil {
		return fmt.Errorf("control plane to %s: %w", version, err)
	}
	for _, comp := range ControlPlaneComponents {
		if p := c.Processes[comp]; p != nil && p.Version == version && p.Alive() && argsEmulation(p.Args) == "" {
			continue
		}
		bin := filepath.Join(dir, comp)
		if opts.Binary != nil {
			if b := opts.Binary(comp, version); b != "" {
				bin = b
			}
		}
		if err := c.swap(ctx, comp, componentLaunch{bin: bin, version: version}, opts.readyTimeout()); err != nil {
			return fmt.Errorf("control plane to %s: %w", version, err)
		}
	}
	c.Version = version
	return c.save()
}

// SwapComponent replaces one running control-plane component with bin at
// version, keeping what it emulates, and puts the old binary back if the
// new one does not serve within DefaultReadyTimeout (see
// UpgradeControlPlane).
func (c *Cluster) SwapComponent(ctx context.Context, component, bin, version string) error {
	return c.swap(ctx, component, componentLaunch{bin: bin, version: version, emulate: c.emulation(component)}, DefaultReadyTimeout)
}

// componentLaunch is how a control-plane component is (to be) started:
// its binary, the version it reports, the minor it emulates ("" none).
type componentLaunch struct{ bin, version, emulate string }

// swap stops the old process (waiting for it to exit: the port stays held
// during graceful shutdown), starts next and waits up to timeout for it
// to serve at its version and emulated version; on failure it stops the
// new process and starts the old binary again, emulating what it did.
func (c *Cluster) swap(ctx context.Context, component string, next componentLaunch, timeout time.Duration) error {
	version := next.version
	var prev *componentLaunch
	if old := c.Processes[component]; old != nil {
		if old.Binary != "" {
			prev = &componentLaunch{bin: old.Binary, version: old.Version, emulate: argsEmulation(old.Args)}
		}
		c.progressf("stopping %s %s%s", component, old.Version, emulating(argsEmulation(old.Args)))
		// kube-apiserver's graceful shutdown waits a full request timeout
		// (60 s) for open connections here; nothing in a sandbox needs that
		// drain, and all state is in etcd, so the grace period is short.
		if err := old.Stop(ctx, 5*time.Second); err != nil {
			return fmt.Errorf("stopping %s %s: %w", component, old.Version, err)
		}
	}
	// Recorded before the start: a kup killed from here on leaves a
	// record that restarts the component as asked (EnsureRunning).
	c.setEmulation(component, next.emulate)
	c.progressf("starting %s %s%s", component, version, emulating(next.emulate))
	sctx, cancel := context.WithTimeout(ctx, timeout)
	err := c.startComponent(sctx, component, next.bin, version)
	if err == nil {
		// Positive evidence of the emulated version too: a binary that
		// ignored the flag must not pass for one that honours it.
		err = c.waitEmulation(sctx, component, effectiveEmulation(version, next.emulate))
	}
	cancel()
	if err == nil {
		return c.save()
	}
	se := &SwapError{Component: component, Version: version + emulating(next.emulate), Timeout: timeout, Err: err}
	if p := c.Processes[component]; p != nil {
		se.Log = p.Log
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		// The deadline was ours, not the caller's: say what the component
		// answered last, since the expired wait no longer can.
		path := "/healthz"
		if component == APIServer {
			path = "/readyz"
		}
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		perr := httpOK(pctx, c.httpClient(), fmt.Sprintf("https://127.0.0.1:%d%s", c.componentPort(component), path))
		pcancel()
		last := "it answers now, too late"
		if perr != nil {
			last = perr.Error()
		}
		se.Err = fmt.Errorf("no positive evidence before the deadline (%s: %s): %w", path, last, err)
	}

	// The rollback runs even if the caller gave up: a sandbox without an
	// apiserver is worse than one at the old version.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer rcancel()
	if p := c.Processes[component]; p != nil {
		if serr := stopStarted(rctx, p); serr != nil {
			se.RollbackErr = fmt.Errorf("stopping the failed %s %s: %w", component, version, serr)
			_ = c.save()
			return se
		}
	}
	if prev == nil {
		_ = c.save()
		return se
	}
	c.progressf("%s %s did not become ready; putting %s %s%s back", component, version, component, prev.version, emulating(prev.emulate))
	c.setEmulation(component, prev.emulate)
	if rerr := c.startComponent(rctx, component, prev.bin, prev.version); rerr != nil {
		se.RollbackErr = rerr
	} else {
		se.RolledBackTo = prev.version + emulating(prev.emulate)
	}
	if serr := c.save(); serr != nil && se.RollbackErr == nil {
		se.RollbackErr = fmt.Errorf("saving the sandbox state: %w", serr)
	}
	return se
}

// emulating is " emulating 1.36" for progress lines, "" for none.
func emulating(e string) string {
	if e == "" {
		return ""
	}
	return " emulating " + e
}

// stopStarted stops a process this Cluster value started and returns
// once it has been reaped. Process.Stop alone trusts /proc, where a
// wrapper script that has not exec'd its binary yet does not look like
// the binary: such a process would be left running.
func stopStarted(ctx context.Context, p *Process) error {
	if err := p.Stop(ctx, 5*time.Second); err != nil {
		return err
	}
	if p.exited == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s (pid %d): %w", p.Name, p.PID, ctx.Err())
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) is still running after SIGKILL", p.Name, p.PID)
	}
}
