// Package kubeadm is the provider for clusters built with kubeadm and
// upgraded by hand over SSH: it drives exactly the official runbook on
// each host — move the pkgs.k8s.io repository to the hop's minor, install
// kubeadm, `kubeadm upgrade apply` on the first control-plane node and
// `kubeadm upgrade node` everywhere else, then kubelet and kubectl and a
// kubelet restart — through internal/sshexec, so every command is
// host-key-checked, recorded with its exit status and kept free of
// secrets.
//
// It decides nothing about order or parallelism beyond the runbook's
// own (control-plane nodes one at a time, health gate between them):
// workers are rolled by internal/rollout through NodeUpgrader. It never
// skips a minor, never installs a version other than the one asked, and
// never leaves a package hold it lifted lifted after a failure if it can
// put it back.
package kubeadm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/kup-project/kup/internal/sshexec"
	"github.com/kup-project/kup/internal/version"
)

// Runner runs one command on one host: *sshexec.Executor.
type Runner interface {
	Run(ctx context.Context, h sshexec.Host, c sshexec.Command) (*sshexec.Result, error)
}

// Hosts is how the providers reach a node's machine: the resolver maps
// a node to its SSH endpoint, the runner runs commands there. The
// package manager each host uses is detected once and remembered.
type Hosts struct {
	Runner   Runner
	Resolver *sshexec.Resolver

	mu  sync.Mutex
	pms map[string]PackageManager
}

// StepError is a runbook step that failed on a node.
type StepError struct {
	Node string
	Step string
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("kubeadm runbook on node %s, step %q: %v", e.Node, e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// machine is one node's host during one operation.
type machine struct {
	hosts *Hosts
	node  string
	host  sshexec.Host
	pm    PackageManager
	// unheld is set while a hold this run lifted is not back.
	unheld bool
}

// machine resolves node's host and detects its package manager.
func (hs *Hosts) machine(ctx context.Context, node *corev1.Node) (*machine, error) {
	if hs == nil || hs.Runner == nil || hs.Resolver == nil {
		return nil, errors.New("kubeadm provider: no SSH runner or resolver configured")
	}
	h, err := hs.Resolver.Host(node)
	if err != nil {
		return nil, err
	}
	m := &machine{hosts: hs, node: node.Name, host: h}
	hs.mu.Lock()
	pm, ok := hs.pms[node.Name]
	hs.mu.Unlock()
	if !ok {
		res, err := hs.Runner.Run(ctx, h, sshexec.Command{Step: "detect the package manager", Script: detectScript})
		if err != nil {
			return nil, &StepError{Node: node.Name, Step: "detect the package manager", Err: err}
		}
		if pm, err = parseDetect(res.Stdout); err != nil {
			return nil, &StepError{Node: node.Name, Step: "detect the package manager", Err: err}
		}
		hs.mu.Lock()
		if hs.pms == nil {
			hs.pms = map[string]PackageManager{}
		}
		hs.pms[node.Name] = pm
		hs.mu.Unlock()
	}
	m.pm = pm
	return m, nil
}

// run runs cmds in order and stops at the first failure.
func (m *machine) run(ctx context.Context, cmds ...sshexec.Command) error {
	for _, c := range cmds {
		if len(c.Args) > 1 && c.Args[0] == "apt-mark" && c.Args[1] == "unhold" {
			m.unheld = true
		}
		if _, err := m.hosts.Runner.Run(ctx, m.host, c); err != nil {
			return &StepError{Node: m.node, Step: c.Step, Err: err}
		}
		if len(c.Args) > 1 && c.Args[0] == "apt-mark" && c.Args[1] == "hold" {
			m.unheld = false
		}
	}
	return nil
}

// restoreHolds puts back holds a failed step left lifted. Best effort,
// and recorded like any command: the failure that got here is the one
// to report.
func (m *machine) restoreHolds(ctx context.Context) {
	if !m.unheld {
		return
	}
	if c, ok := RestoreHoldsStep(m.pm); ok {
		if _, err := m.hosts.Runner.Run(context.WithoutCancel(ctx), m.host, c); err == nil {
			m.unheld = false
		}
	}
}

// installKubeadm moves the repository, installs kubeadm at v and checks
// the binary now says v.
func (m *machine) installKubeadm(ctx context.Context, v version.Version) error {
	steps := append(RepoSteps(m.pm, v), InstallKubeadmSteps(m.pm, v)...)
	if err := m.run(ctx, steps...); err != nil {
		return err
	}
	c := KubeadmVersionStep()
	res, err := m.hosts.Runner.Run(ctx, m.host, c)
	if err != nil {
		return &StepError{Node: m.node, Step: c.Step, Err: err}
	}
	if got := strings.TrimSpace(res.Stdout); got != v.String() {
		return &StepError{Node: m.node, Step: c.Step, Err: fmt.Errorf("kubeadm reports %q after installing %s: the package repository may not carry it", got, v)}
	}
	return nil
}

// installKubelet installs kubelet and kubectl at v and restarts the
// kubelet on them.
func (m *machine) installKubelet(ctx context.Context, v version.Version) error {
	return m.run(ctx, append(InstallKubeletSteps(m.pm, v), RestartKubeletSteps()...)...)
}

// parseTarget reads the version kup was asked for; kubeadm and the
// packages know only upstream versions.
func parseTarget(s string) (version.Version, error) {
	v, err := version.Parse(s)
	if err != nil {
		return v, err
	}
	v = v.Upstream()
	if v.IsMinorOnly() {
		return v, fmt.Errorf("kubeadm needs an exact version such as v1.37.2, not %s", v)
	}
	return v, nil
}
