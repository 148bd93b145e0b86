// Package sshexec runs commands on cluster hosts over SSH, the way an
// operator following a runbook would: it verifies every host key against
// known_hosts and fails closed (an unknown host is refused unless
// AcceptNew, a changed key always is, before any command runs),
// authenticates with ssh-agent or a key file, jumps through a bastion
// when told to, runs root commands through `sudo -n` when the user is not
// root, bounds every command with a timeout, and records every command
// with its exit status.
//
// It never forwards the agent, never asks for a password, never allocates
// a terminal, and never records, prints or returns a secret: everything
// it hands out passes through a Redactor first.
package sshexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults for Options.
const (
	DefaultConnectTimeout = 15 * time.Second
	// DefaultCommandTimeout: a package install from a slow mirror can
	// take minutes; an hour is a hang.
	DefaultCommandTimeout = 10 * time.Minute
	// outputLimit is how much of each stream is kept (the end of it).
	outputLimit = 64 << 10
	// recordLimit is how much of each stream a Record carries.
	recordLimit = 4 << 10
)

// Host is one machine kup runs commands on.
type Host struct {
	// Node is the Kubernetes node it runs (for messages and records).
	Node    string `json:"node"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	User    string `json:"user"`
	// Bastion, when set, is the host the connection jumps through, as
	// with ssh -J (a direct-tcpip channel; no agent forwarding).
	Bastion *Host `json:"bastion,omitempty"`
}

// Addr is "address:port".
func (h Host) Addr() string {
	p := h.Port
	if p == 0 {
		p = DefaultPort
	}
	return net.JoinHostPort(h.Address, strconv.Itoa(p))
}

// String names the host for messages: "node-1 (ubuntu@10.0.0.5:22 via jump@bastion:22)".
func (h Host) String() string {
	if h.Node != "" && h.Node != "bastion" {
		return h.Node + " (" + h.endpoint() + ")"
	}
	return h.endpoint()
}

// endpoint is "user@address:port", and " via " the bastion's.
func (h Host) endpoint() string {
	s := h.User + "@" + h.Addr()
	if h.Bastion != nil {
		s += " via " + h.Bastion.endpoint()
	}
	return s
}

func (h Host) key() string {
	k := h.User + "@" + h.Addr()
	if h.Bastion != nil {
		k += "|" + h.Bastion.key()
	}
	return k
}

// Root reports whether commands run as root without sudo.
func (h Host) Root() bool { return h.User == "root" }

// Command is one command to run on a host.
type Command struct {
	// Step names the runbook step ("install kubeadm"), for records.
	Step string `json:"step,omitempty"`
	// Args is the command as argv; each argument is quoted for the
	// remote shell. Exactly one of Args and Script is set.
	Args []string `json:"args,omitempty"`
	// Script is a shell script, run with sh -c (quoted as one argument).
	Script string `json:"script,omitempty"`
	// Sudo runs the command as root: through `sudo -n` unless the user
	// is root. -n makes sudo fail instead of prompting.
	Sudo bool `json:"sudo,omitempty"`
	// Timeout bounds the command (default Options.CommandTimeout).
	Timeout time.Duration `json:"-"`
	// Secrets are values in the command to keep out of every record.
	Secrets []string `json:"-"`
	// SecretOutput marks a command that prints a secret (reading a
	// private key): its stdout goes to the caller only, never into a
	// record or an error, and is added to the Redactor so that no later
	// echo of it is shown either.
	SecretOutput bool `json:"-"`
}

// Line is the command line as sent to a host whose user is root or not.
func (c Command) Line(root bool) string {
	var line string
	if c.Script != "" {
		line = "sh -c " + Quote(c.Script)
	} else {
		line = Join(c.Args)
	}
	if c.Sudo && !root {
		line = "sudo -n " + line
	}
	return line
}

// Result is what a finished command returned.
type Result struct {
	Stdout     string        `json:"stdout"`
	Stderr     string        `json:"stderr"`
	ExitStatus int           `json:"exitStatus"`
	Duration   time.Duration `json:"duration"`
}

// Record is one command, as recorded for the journal and the report.
// Every string in it has been through the Redactor.
type Record struct {
	Time time.Time `json:"time"`
	Node string    `json:"node,omitempty"`
	// Host is "user@address:port" (and " via " the bastion).
	Host    string `json:"host"`
	Step    string `json:"step,omitempty"`
	Command string `json:"command"`
	// ExitStatus is the command's; -1 when it did not complete (no
	// connection, refused host key, timeout).
	ExitStatus int           `json:"exitStatus"`
	Duration   time.Duration `json:"duration"`
	// Stdout and Stderr are the last 4 KiB of each.
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Options configure an Executor.
type Options struct {
	// KnownHostsFile is checked for every host key (default
	// ~/.ssh/known_hosts). A missing file means every host is unknown.
	KnownHostsFile string
	// AcceptNew trusts a host seen for the first time and appends its
	// key to KnownHostsFile (ssh's StrictHostKeyChecking=accept-new). A
	// changed key is refused regardless.
	AcceptNew bool
	// KeyFile is a private key; KeyPassphrase decrypts it if encrypted.
	KeyFile       string
	KeyPassphrase []byte
	// AgentSocket is the ssh-agent socket (default $SSH_AUTH_SOCK);
	// NoAgent ignores any agent.
	AgentSocket string
	NoAgent     bool
	// ConnectTimeout bounds TCP connect plus handshake per host.
	ConnectTimeout time.Duration
	// CommandTimeout bounds each command without a Timeout of its own.
	CommandTimeout time.Duration
	// Redactor removes secrets from everything recorded or returned. The
	// key passphrase is added to it. Default: a new one.
	Redactor *Redactor
	// Recorder receives every command after it ends (and every host key
	// accepted with AcceptNew), already redacted. It may be called from
	// several goroutines at once.
	Recorder func(Record)
}

// Executor runs commands on hosts, keeping one connection per host.
type Executor struct {
	opts  Options
	creds *credentials
	keys  *hostKeys

	mu    sync.Mutex
	conns map[string]*hostConn
}

type hostConn struct {
	mu     sync.Mutex
	client *ssh.Client
}

// New checks the options and loads the credentials (the agent connection
// and the key file), so a bad key fails before any host is touched.
func New(o Options) (*Executor, error) {
	if o.KnownHostsFile == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("finding ~/.ssh/known_hosts (pass --ssh-known-hosts): %w", err)
		}
		o.KnownHostsFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.Redactor == nil {
		o.Redactor = NewRedactor()
	}
	if len(o.KeyPassphrase) > 0 {
		o.Redactor.Add(string(o.KeyPassphrase))
	}
	creds, err := loadCredentials(o)
	if err != nil {
		return nil, errors.New(o.Redactor.Redact(err.Error()))
	}
	e := &Executor{opts: o, creds: creds, conns: map[string]*hostConn{}}
	e.keys = &hostKeys{file: o.KnownHostsFile, acceptNew: o.AcceptNew, accepted: e.recordAccepted}
	return e, nil
}

// Redactor is the executor's, for callers that word their own messages
// around command output.
func (e *Executor) Redactor() *Redactor { return e.opts.Redactor }

// Close closes every connection and the agent connection.
func (e *Executor) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for k, hc := range e.conns {
		hc.mu.Lock()
		if hc.client != nil {
			errs = append(errs, hc.client.Close())
		}
		hc.mu.Unlock()
		delete(e.conns, k)
	}
	e.creds.close()
	return errors.Join(errs...)
}

func (e *Executor) recordAccepted(h Host, entry, typ, fp string) {
	if e.opts.Recorder == nil {
		return
	}
	e.opts.Recorder(Record{Time: time.Now(), Node: h.Node, Host: h.endpoint(), Step: "accept new host key", ExitStatus: -1,
		Command: fmt.Sprintf("(known_hosts) added %s %s %s to %s", entry, typ, fp, e.opts.KnownHostsFile)})
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Host    Host
	Command string
	Status  int
	// Tail is the last lines of stderr (or stdout when stderr is empty).
	Tail string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: `%s` exited %d", e.Host, e.Command, e.Status)
	if e.Tail != "" {
		msg += ": " + e.Tail
	}
	return msg
}

// TimeoutError is a command that did not finish in time. It may still be
// running on the host: the session was closed, which sshd passes on as a
// hang-up, but a process that ignores it carries on.
type TimeoutError struct {
	Host    Host
	Command string
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s: `%s` did not finish within %s (the session was closed; check the host for a process still running)", e.Host, e.Command, e.Timeout)
}

// Run runs c on h and returns its result. A non-zero exit is an
// *ExitError (with the Result too), a refused host key a *HostKeyError,
// a deadline a *TimeoutError. Every call is recorded.
func (e *Executor) Run(ctx context.Context, h Host, c Command) (*Result, error) {
	red := e.opts.Redactor
	for _, s := range c.Secrets {
		red.Add(s)
	}
	line := c.Line(h.Root())
	rec := Record{Time: time.Now(), Node: h.Node, Host: h.endpoint(), Step: c.Step, Command: red.Redact(line), ExitStatus: -1}
	res, err := e.run(ctx, h, c, line)
	rec.Duration = time.Since(rec.Time)
	if res != nil {
		rec.ExitStatus = res.ExitStatus
		if c.SecretOutput {
			// The whole output, and each longer line of it: an error
			// message may quote the lines joined differently.
			if s := strings.TrimSpace(res.Stdout); s != "" {
				red.Add(s)
				for _, l := range strings.Split(s, "\n") {
					if l = strings.TrimSpace(l); len(l) >= 16 {
						red.Add(l)
					}
				}
			}
			res.Stderr = red.Redact(res.Stderr)
			rec.Stdout, rec.Stderr = "", tail(res.Stderr, recordLimit)
		} else {
			// Redact before cutting: a cut through a secret would leave
			// half of it for the redactor to miss.
			res.Stdout, res.Stderr = red.Redact(res.Stdout), red.Redact(res.Stderr)
			rec.Stdout, rec.Stderr = tail(res.Stdout, recordLimit), tail(res.Stderr, recordLimit)
		}
	}
	if err != nil {
		err = redactErr(err, red)
		var xe *ExitError
		if !errors.As(err, &xe) {
			rec.Error = err.Error()
		}
	}
	if e.opts.Recorder != nil {
		e.opts.Recorder(rec)
	}
	return res, err
}

// Dial opens a TCP connection from h to addr through h's SSH connection
// (ssh -W, a direct-tcpip channel): kup reaches a service that listens
// only on the host's loopback, such as a kubeadm control plane's etcd,
// without a listener on either side. Each connection is recorded like a
// command ("ssh -W ADDR"), with exit status 0 or -1.
func (e *Executor) Dial(ctx context.Context, h Host, addr string) (net.Conn, error) {
	rec := Record{Time: time.Now(), Node: h.Node, Host: h.endpoint(), Step: "tunnel to " + addr, Command: "ssh -W " + addr, ExitStatus: -1}
	conn, err := e.dialThrough(ctx, h, addr)
	rec.Duration = time.Since(rec.Time)
	if err == nil {
		rec.ExitStatus = 0
	} else {
		err = redactErr(err, e.opts.Redactor)
		rec.Error = err.Error()
	}
	if e.opts.Recorder != nil {
		e.opts.Recorder(rec)
	}
	return conn, err
}

func (e *Executor) dialThrough(ctx context.Context, h Host, addr string) (net.Conn, error) {
	client, err := e.client(ctx, h)
	if err != nil {
		return nil, err
	}
	conn, err := client.DialContext(ctx, "tcp", addr)
	if err != nil && ctx.Err() == nil {
		// The connection may have died (host rebooted, idle timeout):
		// dial the host again once.
		e.drop(h, client)
		if client, err = e.client(ctx, h); err != nil {
			return nil, err
		}
		conn, err = client.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: connecting to %s through SSH: %w", h, addr, err)
	}
	return conn, nil
}

// redactErr passes an error's text through the redactor, keeping the
// typed errors callers test for.
func redactErr(err error, red *Redactor) error {
	var xe *ExitError
	var he *HostKeyError
	var te *TimeoutError
	switch {
	case errors.As(err, &xe):
		xe.Command, xe.Tail = red.Redact(xe.Command), red.Redact(xe.Tail)
		return xe
	case errors.As(err, &he):
		return he
	case errors.As(err, &te):
		te.Command = red.Redact(te.Command)
		return te
	}
	if s := red.Redact(err.Error()); s != err.Error() {
		return errors.New(s)
	}
	return err
}

func (e *Executor) run(ctx context.Context, h Host, c Command, line string) (*Result, error) {
	if (c.Script == "") == (len(c.Args) == 0) {
		return nil, fmt.Errorf("%s: a command needs either Args or Script", h)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = e.opts.CommandTimeout
	}
	client, err := e.client(ctx, h)
	if err != nil {
		return nil, err
	}
	sess, err := client.NewSession()
	if err != nil {
		// The connection died (host rebooted, idle timeout): dial again once.
		e.drop(h, client)
		if client, err = e.client(ctx, h); err != nil {
			return nil, err
		}
		if sess, err = client.NewSession(); err != nil {
			e.drop(h, client)
			return nil, fmt.Errorf("%s: opening a session: %w", h, err)
		}
	}
	defer sess.Close()
	stdout, stderr := &tailBuffer{limit: outputLimit}, &tailBuffer{limit: outputLimit}
	sess.Stdout, sess.Stderr = stdout, stderr
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- sess.Run(line) }()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case err = <-done:
	case <-tctx.Done():
		_ = sess.Signal(ssh.SIGTERM)
		_ = sess.Close()
		<-done
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: `%s` interrupted: %w", h, line, ctx.Err())
		}
		return nil, &TimeoutError{Host: h, Command: line, Timeout: timeout}
	}
	res := &Result{Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	var xe *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &xe):
		res.ExitStatus = xe.ExitStatus()
		t := lastLines(res.Stderr, 3)
		if t == "" && !c.SecretOutput {
			t = lastLines(res.Stdout, 3)
		}
		t += sudoHint(res.Stderr)
		return res, &ExitError{Host: h, Command: line, Status: res.ExitStatus, Tail: t}
	case errors.As(err, &missing):
		res.ExitStatus = -1
		return res, fmt.Errorf("%s: `%s` ended without an exit status (killed by a signal, or the connection dropped)", h, line)
	default:
		res.ExitStatus = -1
		return res, fmt.Errorf("%s: running `%s`: %w", h, line, err)
	}
}

// sudoHint explains sudo's refusals, which are about the account, not
// the command.
func sudoHint(stderr string) string {
	switch {
	case strings.Contains(stderr, "a password is required"):
		return " (the SSH user needs passwordless sudo — a NOPASSWD rule — or connect as root)"
	case strings.Contains(stderr, "must have a tty"):
		return " (sudo is configured with requiretty; kup never allocates a terminal: exempt the SSH user, or connect as root)"
	}
	return ""
}

// client returns the connection to h, dialling it (and its bastion) on
// first use.
func (e *Executor) client(ctx context.Context, h Host) (*ssh.Client, error) {
	e.mu.Lock()
	hc := e.conns[h.key()]
	if hc == nil {
		hc = &hostConn{}
		e.conns[h.key()] = hc
	}
	e.mu.Unlock()
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.client != nil {
		return hc.client, nil
	}
	c, err := e.dial(ctx, h)
	if err != nil {
		return nil, err
	}
	hc.client = c
	return c, nil
}

func (e *Executor) drop(h Host, c *ssh.Client) {
	e.mu.Lock()
	hc := e.conns[h.key()]
	e.mu.Unlock()
	if hc == nil {
		return
	}
	hc.mu.Lock()
	if hc.client == c {
		_ = c.Close()
		hc.client = nil
	}
	hc.mu.Unlock()
}

func (e *Executor) dial(ctx context.Context, h Host) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ConnectTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	if h.Bastion != nil {
		b, berr := e.client(ctx, *h.Bastion)
		if berr != nil {
			return nil, fmt.Errorf("%s: reaching bastion: %w", h, berr)
		}
		conn, err = b.DialContext(ctx, "tcp", h.Addr())
		if err != nil {
			return nil, fmt.Errorf("%s: connecting through bastion %s: %w", h, h.Bastion.Addr(), err)
		}
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", h.Addr())
		if err != nil {
			return nil, fmt.Errorf("%s: connecting: %w", h, err)
		}
	}
	// The handshake has no context of its own: close the connection if
	// the deadline passes first.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	var refused *HostKeyError
	cfg := &ssh.ClientConfig{
		User:              h.User,
		Auth:              []ssh.AuthMethod{e.creds.authMethod()},
		HostKeyCallback:   e.keys.callback(h, &refused),
		HostKeyAlgorithms: e.keys.algorithms(h.Addr()),
		Timeout:           e.opts.ConnectTimeout,
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, h.Addr(), cfg)
	if err != nil {
		_ = conn.Close()
		if refused != nil {
			return nil, refused
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: SSH handshake did not finish within %s", h, e.opts.ConnectTimeout)
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("%s: SSH authentication failed for user %s (no offered key was accepted: check the key or agent and the user's authorized_keys): %w", h, h.User, err)
		}
		return nil, fmt.Errorf("%s: SSH handshake: %w", h, err)
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
	cut   bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.limit; over > 0 {
		b.buf.Next(over)
		b.cut = true
	}
	return len(p), nil
}

// String is what was kept. After a cut it starts at a line boundary:
// the cut may have gone through a secret, and a fragment of one is not
// something the redactor can recognise.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return cutToLine(b.buf.String())
	}
	return b.buf.String()
}

// tail keeps the last n bytes of already-redacted s, from a line start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cutToLine(s[len(s)-n:])
}

func cutToLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	} else {
		s = ""
	}
	return "…\n" + s
}

// lastLines returns the last n non-empty lines of s, joined with " | ".
func lastLines(s string, n int) string {
	var out []string
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append([]string{l}, out...)
		}
	}
	return strings.Join(out, " | ")
}
