package sshexec_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/kup-project/kup/internal/sshexec"
	"github.com/kup-project/kup/internal/sshexec/sshtest"
)

// recorder collects records for assertions.
type recorder struct {
	mu   sync.Mutex
	recs []sshexec.Record
}

func (r *recorder) record(rec sshexec.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
}

func (r *recorder) all() []sshexec.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sshexec.Record(nil), r.recs...)
}

func host(l *sshtest.Lab, h *sshtest.Host, user string) sshexec.Host {
	return sshexec.Host{Node: "node-" + h.Name, Address: h.Address, Port: h.Port, User: user}
}

func newExec(t *testing.T, o sshexec.Options) *sshexec.Executor {
	t.Helper()
	o.NoAgent = o.AgentSocket == ""
	e, err := sshexec.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// TestRunAsUserRootAndSudo: a non-root user's root commands go through
// sudo -n; root's do not; every command is recorded with its status.
func TestRunAsUserRootAndSudo(t *testing.T) {
	l := sshtest.Start(t, sshtest.Options{Hosts: 1})
	h := l.Hosts[0]
	rec := &recorder{}
	e := newExec(t, sshexec.Options{KnownHostsFile: l.KnownHosts(t, "known_hosts"), KeyFile: l.ClientKey, Recorder: rec.record})
	ctx := context.Background()
	for _, tc := range []struct {
		user string
		sudo bool
		want string
		line string
	}{
		{l.User, false, "64123", "id -u"},
		{l.User, true, "0", "sudo -n id -u"},
		{"root", true, "0", "id -u"},
	} {
		res, err := e.Run(ctx, host(l, h, tc.user), sshexec.Command{Args: []string{"id", "-u"}, Sudo: tc.sudo})
		if err != nil {
			t.Fatalf("%s sudo=%v: %v", tc.user, tc.sudo, err)
		}
		if got := strings.TrimSpace(res.Stdout); got != tc.want {
			t.Errorf("%s sudo=%v: id -u = %q, want %q", tc.user, tc.sudo, got, tc.want)
		}
	}
	_, err := e.Run(ctx, host(l, h, l.User), sshexec.Command{Script: "echo failing >&2; exit 7", Step: "fail on purpose"})
	var xe *sshexec.ExitError
	if !errors.As(err, &xe) || xe.Status != 7 || !strings.Contains(err.Error(), "failing") || !strings.Contains(err.Error(), "node-host-1") {
		t.Fatalf("want an ExitError with status 7 naming the node and quoting stderr, got %v", err)
	}
	recs := rec.all()
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4: %+v", len(recs), recs)
	}
	for i, want := range []string{"id -u", "sudo -n id -u", "id -u", `sh -c 'echo failing >&2; exit 7'`} {
		if recs[i].Command != want {
			t.Errorf("record %d: command %q, want %q", i, recs[i].Command, want)
		}
	}
	if recs[3].ExitStatus != 7 || recs[3].Step != "fail on purpose" || recs[3].Node != "node-host-1" {
		t.Errorf("last record %+v, want exit 7 with its step and node", recs[3])
	}
}

// TestUnknownHostRefused: a host missing from known_hosts is refused
// before anything runs; --ssh-accept-new trusts it and records its key,
// after which a strict executor accepts it too.
func TestUnknownHostRefused(t *testing.T) {
	l := sshtest.Start(t, sshtest.Options{Hosts: 2})
	h := l.Hosts[1]
	kh := filepath.Join(l.Dir, "ssh", "known_hosts") // does not exist yet
	marker := filepath.Join(h.Dir, "ran")
	touch := sshexec.Command{Args: []string{"touch", marker}, Sudo: true}
	ctx := context.Background()

	e := newExec(t, sshexec.Options{KnownHostsFile: kh, KeyFile: l.ClientKey})
	_, err := e.Run(ctx, host(l, h, l.User), touch)
	var he *sshexec.HostKeyError
	if !errors.As(err, &he) || he.Changed() {
		t.Fatalf("want an unknown-host HostKeyError, got %v", err)
	}
	t.Logf("refused: %v", err)
	fp := ssh.FingerprintSHA256(h.HostKey)
	for _, want := range []string{"node-host-2", h.Address, fp, "--ssh-accept-new", "unknown"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not mention %q", err, want)
		}
	}
	if _, err := os.Stat(marker); err == nil || h.Accepted() != 0 {
		t.Fatalf("the command ran or a login was accepted on a refused host (%d logins)", h.Accepted())
	}

	rec := &recorder{}
	e2 := newExec(t, sshexec.Options{KnownHostsFile: kh, KeyFile: l.ClientKey, AcceptNew: true, Recorder: rec.record})
	if _, err := e2.Run(ctx, host(l, h, l.User), touch); err != nil {
		t.Fatalf("with AcceptNew: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the command did not run after the host was accepted")
	}
	data, err := os.ReadFile(kh)
	if err != nil || !strings.Contains(string(data), "["+h.Address+"]:") {
		t.Fatalf("known_hosts after accept-new: %q, %v", data, err)
	}
	if st, _ := os.Stat(kh); st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v, want 0600", st.Mode().Perm())
	}
	if recs := rec.all(); len(recs) != 2 || recs[0].Step != "accept new host key" || !strings.Contains(recs[0].Command, fp) {
		t.Errorf("records %+v, want the accepted key recorded first", recs)
	}
	e3 := newExec(t, sshexec.Options{KnownHostsFile: kh, KeyFile: l.ClientKey})
	if _, err := e3.Run(ctx, host(l, h, l.User), sshexec.Command{Args: []string{"true"}}); err != nil {
		t.Fatalf("a strict executor refuses the key accept-new recorded: %v", err)
	}
}

// TestChangedHostKeyRefused: a host whose key changed is refused before
// any command runs — even with AcceptNew — and the message names the
// host and both fingerprints.
func TestChangedHostKeyRefused(t *testing.T) {
	l := sshtest.Start(t, sshtest.Options{Hosts: 1})
	h := l.Hosts[0]
	kh := l.KnownHosts(t, "known_hosts")
	old := ssh.FingerprintSHA256(h.HostKey)
	ctx := context.Background()
	e := newExec(t, sshexec.Options{KnownHostsFile: kh, KeyFile: l.ClientKey})
	if _, err := e.Run(ctx, host(l, h, l.User), sshexec.Command{Args: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	l.RotateHostKey(t, h)
	logins := h.Accepted()
	marker := filepath.Join(h.Dir, "ran")
	rec := &recorder{}
	e2 := newExec(t, sshexec.Options{KnownHostsFile: kh, KeyFile: l.ClientKey, AcceptNew: true, Recorder: rec.record})
	_, err := e2.Run(ctx, host(l, h, l.User), sshexec.Command{Args: []string{"touch", marker}, Sudo: true})
	var he *sshexec.HostKeyError
	if !errors.As(err, &he) || !he.Changed() {
		t.Fatalf("want a changed-key HostKeyError, got %v", err)
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{"node-host-1", "CHANGED", old, ssh.FingerprintSHA256(h.HostKey), kh + ":1", "ssh-keygen -R"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not mention %q", err, want)
		}
	}
	if _, serr := os.Stat(marker); serr == nil || h.Accepted() != logins {
		t.Fatal("a command ran, or a login happened, on a host whose key changed")
	}
	data, _ := os.ReadFile(kh)
	if strings.Count(string(data), "\n") != 1 {
		t.Errorf("known_hosts was changed for a changed key:\n%s", data)
	}
	if recs := rec.all(); len(recs) != 1 || recs[0].ExitStatus != -1 || !strings.Contains(recs[0].Error, "CHANGED") {
		t.Errorf("records %+v, want the refusal recorded", recs)
	}
}

// TestAgentAuthWithoutForwarding: keys come from ssh-agent, and the agent
// is never forwarded, even to a server that allows it.
func TestAgentAuthWithoutForwarding(t *testing.T) {
	l := sshtest.Start(t, sshtest.Options{Hosts: 1})
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: l.ClientPrivate}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = agent.ServeAgent(keyring, c); _ = c.Close() }()
		}
	}()
	e := newExec(t, sshexec.Options{KnownHostsFile: l.KnownHosts(t, "known_hosts"), AgentSocket: sock})
	res, err := e.Run(context.Background(), host(l, l.Hosts[0], l.User), sshexec.Command{Script: `echo "agent=${SSH_AUTH_SOCK:-none}"`})
	if err != nil {
		t.Fatalf("agent auth: %v", err)
	}
	if got := strings.TrimSpace(res.Stdout); got != "agent=none" {
		t.Errorf("remote environment has %q: the agent was forwarded", got)
	}
}

// TestEncryptedKeyPassphraseNeverShown: an encrypted key works with its
// passphrase; without it, or with a wrong one, the error says so without
// the passphrase; nothing recorded carries it.
func TestEncryptedKeyPassphraseNeverShown(t *testing.T) {
	l := sshtest.Start(t, sshtest.Options{Hosts: 1})
	const pass = "canary-passphrase-7f3a"
	key := l.EncryptedKey(t, pass)
	kh := l.KnownHosts(t, "known_hosts")
	for _, tc := range []struct{ pass, want string }{{"", "encrypted"}, {"wrong-one", "passphrase is wrong"}} {
		_, err := sshexec.New(sshexec.Options{KnownHostsFile: kh, KeyFile: key, KeyPassphrase: []byte(tc.pass), NoAgent: true})
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.pass != "" && strings.Contains(err.Error(), tc.pass)) {
			t.Errorf("passphrase %q: error %v, want one saying %q without the passphrase", tc.pass, err, tc.want)
		}
	}
	rec := &recorder{}
	e := newExec(t, sshexec.Options{KnownHostsFile: kh, KeyFile: key, KeyPassphrase: []byte(pass), Recorder: rec.record})
	// The host echoes the passphrase back (think of a misconfigured
	// script): the record and the error must not carry it.
	_, err := e.Run(context.Background(), host(l, l.Hosts[0], l.User), sshexec.Command{Script: "echo " + pass + "; echo " + pass + " >&2; exit 3"})
	if err == nil || strings.Contains(err.Error(), pass) {
		t.Fatalf("error %v: want an exit error without the passphrase", err)
	}
	for _, r := range rec.all() {
		if strings.Contains(r.Command+r.Stdout+r.Stderr+r.Error, pass) {
			t.Errorf("record carries the passphrase: %+v", r)
		}
		if !strings.Contains(r.Stdout, sshexec.Redacted) {
			t.Errorf("record stdout %q, want the passphrase replaced by %s", r.Stdout, sshexec.Redacted)
		}
	}
}

// TestBastion: a host reached through another, like ssh -J; both host
// keys are checked.
func TestBastion(t *testing.T) {
	l := sshtest.Start(t, sshtest.Options{Hosts: 2})
	jump, target := l.Hosts[0], l.Hosts[1]
	e := newExec(t, sshexec.Options{KnownHostsFile: l.KnownHosts(t, "known_hosts"), KeyFile: l.ClientKey})
	h := host(l, target, l.User)
	h.Bastion = &sshexec.Host{Address: jump.Address, Port: jump.Port, User: l.User}
	res, err := e.Run(context.Background(), h, sshexec.Command{Args: []string{"echo", "through"}})
	if err != nil || strings.TrimSpace(res.Stdout) != "through" {
		t.Fatalf("through the bastion: %v %+v", err, res)
	}
	if jump.Accepted() != 1 || target.Accepted() != 1 {
		t.Errorf("logins: bastion %d, target %d; want one each", jump.Accepted(), target.Accepted())
	}
	// The bastion's own key is verified too.
	e2 := newExec(t, sshexec.Options{KnownHostsFile: l.KnownHosts(t, "only_target", target), KeyFile: l.ClientKey})
	_, err = e2.Run(context.Background(), h, sshexec.Command{Args: []string{"true"}})
	var he *sshexec.HostKeyError
	if !errors.As(err, &he) || he.Host.Address != jump.Address {
		t.Errorf("an unknown bastion: %v, want its host key refused", err)
	}
}

// TestCommandTimeout: a command that outlives its timeout is abandoned
// with an error saying so.
func TestCommandTimeout(t *testing.T) {
	l := sshtest.Start(t, sshtest.Options{Hosts: 1})
	e := newExec(t, sshexec.Options{KnownHostsFile: l.KnownHosts(t, "known_hosts"), KeyFile: l.ClientKey})
	start := time.Now()
	_, err := e.Run(context.Background(), host(l, l.Hosts[0], l.User), sshexec.Command{Args: []string{"sleep", "30"}, Timeout: time.Second})
	var te *sshexec.TimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "did not finish within 1s") {
		t.Fatalf("want a TimeoutError, got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the timeout took %s to fire", d)
	}
	// The connection is still usable afterwards.
	if _, err := e.Run(context.Background(), host(l, l.Hosts[0], l.User), sshexec.Command{Args: []string{"true"}}); err != nil {
		t.Errorf("after a timeout: %v", err)
	}
}

// TestSecretOutputAndTunnel: a command marked SecretOutput hands its
// output to the caller only (no record, no error text, and later echoes
// redacted); Dial reaches a service listening only on the host's
// loopback through the SSH connection, and the tunnel is recorded.
func TestSecretOutputAndTunnel(t *testing.T) {
	l := sshtest.Start(t, sshtest.Options{Hosts: 1})
	h := l.Hosts[0]
	rec := &recorder{}
	e := newExec(t, sshexec.Options{KnownHostsFile: l.KnownHosts(t, "known_hosts"), KeyFile: l.ClientKey, Recorder: rec.record})
	ctx := context.Background()
	hh := host(l, h, l.User)

	const key = "-----BEGIN PRIVATE KEY-----\nkup-canary-etcd-key-7f3a\n-----END PRIVATE KEY-----"
	keyFile := filepath.Join(t.TempDir(), "etcd-client.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(ctx, hh, sshexec.Command{Step: "read the etcd client key", Args: []string{"cat", keyFile}, Sudo: true, SecretOutput: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(res.Stdout) != key {
		t.Fatalf("the caller got %q, want the key", res.Stdout)
	}
	// The same secret echoed by a later command, and in a failure.
	res2, err2 := e.Run(ctx, hh, sshexec.Command{Script: "cat " + keyFile + "; cat " + keyFile + " >&2; exit 3", Sudo: true})
	if err2 == nil || strings.Contains(err2.Error(), "kup-canary") || strings.Contains(res2.Stdout, "kup-canary") {
		t.Errorf("a later echo of the secret was not redacted: %v / %q", err2, res2.Stdout)
	}
	_, err3 := e.Run(ctx, hh, sshexec.Command{Script: "printf '%s\\n' 'secret-before-failing-9c1d'; exit 4", SecretOutput: true})
	if err3 == nil || strings.Contains(err3.Error(), "secret-before-failing") {
		t.Errorf("a failing SecretOutput command put its stdout in the error: %v", err3)
	}

	// A service on the host's loopback (the test's sshd host shares the
	// machine's network, so a listener here stands for it).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("hello from etcd\n"))
	}()
	conn, err := e.Dial(ctx, hh, ln.Addr().String())
	if err != nil {
		t.Fatalf("Dial through SSH: %v", err)
	}
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _ := conn.Read(buf)
	conn.Close()
	if got := string(buf[:n]); got != "hello from etcd\n" {
		t.Errorf("read %q through the tunnel", got)
	}
	if _, err := e.Dial(ctx, hh, "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "node-host-1") {
		t.Errorf("Dial to a closed port: %v, want an error naming the host and the address", err)
	}

	recs := rec.all()
	var tunnels int
	for _, r := range recs {
		if strings.Contains(r.Stdout+r.Stderr+r.Error+r.Command, "kup-canary") || strings.Contains(r.Stdout+r.Error, "secret-before-failing") {
			t.Errorf("record shows the secret: %+v", r)
		}
		if strings.HasPrefix(r.Command, "ssh -W ") {
			tunnels++
			if r.Command == "ssh -W 127.0.0.1:1" && r.ExitStatus != -1 {
				t.Errorf("failed tunnel recorded with exit %d", r.ExitStatus)
			}
		}
	}
	if tunnels != 2 {
		t.Errorf("%d tunnel records, want 2: %+v", tunnels, recs)
	}
}
