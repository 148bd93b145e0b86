// Package exec is the node upgrader that runs the user's own command for
// each node — a script, an Ansible playbook, a call into their automation —
// with the node's name, address and the target version filled into a
// template. kup cordons, drains and waits; the command only upgrades.
package exec

import (
	"bytes"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kup-project/kup/internal/provider"
)

// Upgrader runs Command (a text/template over Vars) with `sh -c`.
type Upgrader struct {
	// Command is e.g. `ssh {{.Address}} sudo /usr/local/bin/upgrade-kubelet {{.Version}}`.
	Command string
	// Timeout bounds one run (default 30m).
	Timeout time.Duration
	// MaxMinors is what one run may move a kubelet (0: no limit of its own).
	MaxMinors int

	mu      sync.Mutex
	outputs map[string]Output
	tmpl    *template.Template
}

// Vars are what the command template can use; they are also exported to
// the command's environment as KUP_NODE, KUP_ADDRESS, KUP_VERSION.
type Vars struct {
	Node    string
	Address string
	Version string
}

// Output is one run's captured output, for the report.
type Output struct {
	Command  string        `json:"command"`
	Stdout   string        `json:"stdout"`
	Stderr   string        `json:"stderr"`
	ExitCode int           `json:"exitCode"`
	Duration time.Duration `json:"duration"`
}

var _ provider.NodeUpgrader = (*Upgrader)(nil)

// New parses the command template, failing early on a bad one.
func New(command string) (*Upgrader, error) {
	if strings.TrimSpace(command) == "" {
		return nil, fmt.Errorf("exec upgrader: --exec-command is empty")
	}
	t, err := template.New("exec-command").Option("missingkey=error").Parse(command)
	if err != nil {
		return nil, fmt.Errorf("exec upgrader: parsing --exec-command %q: %w", command, err)
	}
	if err := t.Execute(&bytes.Buffer{}, Vars{}); err != nil {
		return nil, fmt.Errorf("exec upgrader: --exec-command %q: %w (fields: .Node .Address .Version)", command, err)
	}
	return &Upgrader{Command: command, tmpl: t, outputs: map[string]Output{}}, nil
}

func (u *Upgrader) Name() string          { return "exec" }
func (u *Upgrader) MaxMinorsPerRoll() int { return u.MaxMinors }

// UpgradeNode runs the command for node and fails on a non-zero exit,
// quoting the end of its stderr.
func (u *Upgrader) UpgradeNode(ctx context.Context, node *corev1.Node, version string) error {
	v := Vars{Node: node.Name, Address: address(node), Version: version}
	var cmdline bytes.Buffer
	if err := u.tmpl.Execute(&cmdline, v); err != nil {
		return fmt.Errorf("exec upgrader: node %s: %w", node.Name, err)
	}
	timeout := u.Timeout
	if timeout == 0 {
		timeout = 30 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := osexec.CommandContext(ctx, "/bin/sh", "-c", cmdline.String())
	cmd.Env = append(os.Environ(), "KUP_NODE="+v.Node, "KUP_ADDRESS="+v.Address, "KUP_VERSION="+v.Version)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	out := Output{Command: cmdline.String(), Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	if cmd.ProcessState != nil {
		out.ExitCode = cmd.ProcessState.ExitCode()
	}
	u.mu.Lock()
	u.outputs[node.Name] = out
	u.mu.Unlock()
	if err != nil {
		tail := strings.TrimSpace(stderr.String())
		if i := strings.LastIndex(tail, "\n"); i >= 0 {
			tail = tail[i+1:]
		}
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("exec upgrader: node %s: command did not finish within %s", node.Name, timeout)
		}
		return fmt.Errorf("exec upgrader: node %s: command exited %d: %s", node.Name, out.ExitCode, tail)
	}
	return nil
}

// Outputs returns what each node's command printed.
func (u *Upgrader) Outputs() map[string]Output {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]Output, len(u.outputs))
	for k, v := range u.outputs {
		out[k] = v
	}
	return out
}

func address(n *corev1.Node) string {
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range n.Status.Addresses {
			if a.Type == t {
				return a.Address
			}
		}
	}
	return n.Name
}
