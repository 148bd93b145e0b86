// Package sshtest starts real OpenSSH servers for tests: one sshd per
// simulated host, each on its own loopback address (127.0.0.11,
// 127.0.0.12, …) with its own host key, in its own mount namespace where
// /etc is a copy-on-write overlay (so a host's files, users and sudo
// rules are its own and the machine's /etc is never written) and
// /usr/local/bin is the host's own directory (first on both the login
// PATH and sudo's secure_path, so stand-in tools placed there shadow the
// real ones).
//
// It installs nothing: Debian's openssh-server and sudo must be there
// (./test.sh installs them), and it must run as root (sshd's privilege
// separation and the mounts need it). Without them the test fails and
// says what to install.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Paths of the system tools a lab needs.
const (
	SSHD = "/usr/sbin/sshd"
	Sudo = "/usr/bin/sudo"
)

// Options describe a lab.
type Options struct {
	// Hosts is how many hosts to start.
	Hosts int
	// First is the last octet of the first host's address (default 11).
	First int
	// User is the non-root account created on every host, with a
	// NOPASSWD sudo rule (default "kuptest").
	User string
	// Prepare is called for each host before its sshd starts, to put
	// files into its /etc (Host.Etc) and /usr/local/bin (Host.Bin).
	Prepare func(h *Host) error
}

// Lab is a set of running hosts.
type Lab struct {
	Dir  string
	User string
	UID  int
	Port int
	// ClientKey is an unencrypted ed25519 private key every host accepts
	// (for User and for root); ClientPrivate is the same key.
	ClientKey     string
	ClientPrivate ed25519.PrivateKey
	Hosts         []*Host
	t             testing.TB
}

// Host is one simulated machine.
type Host struct {
	// Name is "host-1", "host-2", …
	Name    string
	Address string
	Port    int
	Dir     string
	// Etc is the upper layer of the host's /etc: a file written here
	// before Start shows at the same path under /etc on the host.
	Etc string
	// Bin is the host's /usr/local/bin.
	Bin string
	// Hide lists files that do not exist on this host (each is covered
	// with /dev/null, which is not executable), e.g. /usr/bin/apt-get.
	Hide []string
	// Log is sshd's log.
	Log     string
	HostKey ssh.PublicKey
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Require fails t unless the machine can run a lab.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test starts real sshd servers in their own mount namespaces and must run as root (./test.sh runs as root)")
	}
	for _, p := range []struct{ path, pkg string }{{SSHD, "openssh-server"}, {Sudo, "sudo"}} {
		if _, err := os.Stat(p.path); err != nil {
			t.Fatalf("%s is missing: install Debian's %s (./test.sh does it: apt-get install -y openssh-server sudo)", p.path, p.pkg)
		}
	}
}

// Start starts the lab's hosts and stops them when t ends.
func Start(t testing.TB, o Options) *Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real sshd servers; skipped with -short")
	}
	Require(t)
	if o.First == 0 {
		o.First = 11
	}
	if o.User == "" {
		o.User = "kuptest"
	}
	// Not t.TempDir: sshd reads authorized_keys as the user, who must be
	// able to walk the path.
	dir, err := os.MkdirTemp("", "kup-sshlab-")
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	must(t, os.MkdirAll("/run/sshd", 0o755)) // sshd's privilege-separation directory
	l := &Lab{Dir: dir, User: o.User, UID: 64123, t: t}
	l.ClientPrivate = newKey(t)
	l.ClientKey = filepath.Join(dir, "id_ed25519")
	writeKey(t, l.ClientKey, l.ClientPrivate, nil)
	pub, err := ssh.NewPublicKey(l.ClientPrivate.Public())
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(pub), 0o644))
	home := filepath.Join(dir, "home")
	must(t, os.MkdirAll(home, 0o755))
	must(t, os.Chown(home, l.UID, l.UID))

	var addrs []string
	for i := range o.Hosts {
		addrs = append(addrs, fmt.Sprintf("127.0.0.%d", o.First+i))
	}
	l.Port = freePort(t, addrs)
	for i, a := range addrs {
		h := &Host{Name: fmt.Sprintf("host-%d", i+1), Address: a, Port: l.Port, Dir: filepath.Join(dir, fmt.Sprintf("host-%d", i+1))}
		h.Etc, h.Bin, h.Log = filepath.Join(h.Dir, "etc"), filepath.Join(h.Dir, "bin"), filepath.Join(h.Dir, "sshd.log")
		for _, d := range []string{h.Etc, filepath.Join(h.Dir, "etc.work"), h.Bin, filepath.Join(h.Etc, "sudoers.d")} {
			must(t, os.MkdirAll(d, 0o755))
		}
		l.addUser(t, h)
		l.newHostKey(t, h)
		l.writeConfig(t, h)
		if o.Prepare != nil {
			if err := o.Prepare(h); err != nil {
				t.Fatalf("preparing %s: %v", h.Name, err)
			}
		}
		l.Hosts = append(l.Hosts, h)
	}
	t.Cleanup(func() {
		for _, h := range l.Hosts {
			h.stop()
		}
	})
	for _, h := range l.Hosts {
		l.start(t, h)
	}
	return l
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	return k
}

// writeKey writes an OpenSSH private key, encrypted with passphrase
// when one is given.
func writeKey(t testing.TB, path string, k ed25519.PrivateKey, passphrase []byte) {
	var block *pem.Block
	var err error
	if passphrase != nil {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(k, "kup test", passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(k, "kup test")
	}
	must(t, err)
	must(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
}

// EncryptedKey writes the lab's client key encrypted with passphrase and
// returns its path.
func (l *Lab) EncryptedKey(t testing.TB, passphrase string) string {
	p := filepath.Join(l.Dir, "id_ed25519_encrypted")
	writeKey(t, p, l.ClientPrivate, []byte(passphrase))
	return p
}

// addUser gives the host the lab's user: lines in copies of passwd,
// group and shadow in the host's /etc layer (a '*' password field, which
// sshd does not treat as locked), and a NOPASSWD sudo rule.
func (l *Lab) addUser(t testing.TB, h *Host) {
	home := filepath.Join(l.Dir, "home")
	add := func(name, line string, mode os.FileMode) {
		data, err := os.ReadFile("/etc/" + name)
		must(t, err)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			data = append(data, '\n')
		}
		data = append(data, line+"\n"...)
		must(t, os.WriteFile(filepath.Join(h.Etc, name), data, mode))
	}
	add("passwd", fmt.Sprintf("%s:x:%d:%d:kup test:%s:/bin/sh", l.User, l.UID, l.UID, home), 0o644)
	add("group", fmt.Sprintf("%s:x:%d:", l.User, l.UID), 0o644)
	add("shadow", fmt.Sprintf("%s:*:19000:0:99999:7:::", l.User), 0o640)
	must(t, os.WriteFile(filepath.Join(h.Etc, "sudoers.d", "kup-test"), []byte(l.User+" ALL=(ALL) NOPASSWD: ALL\n"), 0o440))
}

func (l *Lab) newHostKey(t testing.TB, h *Host) {
	k := newKey(t)
	writeKey(t, filepath.Join(h.Dir, "ssh_host_ed25519_key"), k, nil)
	pub, err := ssh.NewPublicKey(k.Public())
	must(t, err)
	h.HostKey = pub
}

func (l *Lab) writeConfig(t testing.TB, h *Host) {
	cfg := fmt.Sprintf(`ListenAddress %s:%d
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
LogLevel VERBOSE
AllowTcpForwarding yes
AllowAgentForwarding yes
`, h.Address, h.Port, filepath.Join(h.Dir, "ssh_host_ed25519_key"), filepath.Join(h.Dir, "sshd.pid"), filepath.Join(l.Dir, "authorized_keys"))
	must(t, os.WriteFile(filepath.Join(h.Dir, "sshd_config"), []byte(cfg), 0o644))
}

// start runs sshd in a new mount namespace (Go makes / private in it, so
// nothing mounted there is seen outside) after mounting the host's /etc
// overlay, its /usr/local/bin and its hidden files. The config path is
// absolute: sshd re-executes itself per connection.
func (l *Lab) start(t testing.TB, h *Host) {
	t.Helper()
	var script strings.Builder
	fmt.Fprintf(&script, "set -e\nmount -t overlay overlay -o lowerdir=/etc,upperdir=%s,workdir=%s /etc\n", h.Etc, filepath.Join(h.Dir, "etc.work"))
	fmt.Fprintf(&script, "mount --bind %s /usr/local/bin\n", h.Bin)
	for _, f := range h.Hide {
		fmt.Fprintf(&script, "mount --bind /dev/null %s\n", f)
	}
	fmt.Fprintf(&script, "exec %s -D -f %s -E %s\n", SSHD, filepath.Join(h.Dir, "sshd_config"), h.Log)
	cmd := exec.Command("/bin/sh", "-c", script.String())
	// A file, not a pipe: sshd's per-connection children inherit it, and
	// Wait would wait for them to close a pipe.
	startLog := filepath.Join(h.Dir, "start.log")
	out, err := os.Create(startLog)
	must(t, err)
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sshd for %s: %v", h.Name, err)
	}
	h.cmd, h.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(h.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Address, fmt.Sprint(h.Port)), time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-h.exited:
			started, _ := os.ReadFile(startLog)
			log, _ := os.ReadFile(h.Log)
			t.Fatalf("sshd for %s exited at start: %s\n%s%s", h.Name, cmd.ProcessState, started, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd for %s not listening on %s:%d after 10s: %v", h.Name, h.Address, h.Port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *Host) stop() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-h.exited
	}
	h.cmd = nil
}

// RotateHostKey gives h a new host key and restarts its sshd: what a
// reinstalled host, or a man in the middle, looks like.
func (l *Lab) RotateHostKey(t testing.TB, h *Host) {
	t.Helper()
	h.stop()
	l.newHostKey(t, h)
	l.start(t, h)
}

// KnownHosts writes a known_hosts file listing hosts (all when none is
// given) and returns its path.
func (l *Lab) KnownHosts(t testing.TB, name string, hosts ...*Host) string {
	if len(hosts) == 0 {
		hosts = l.Hosts
	}
	var b strings.Builder
	for _, h := range hosts {
		b.WriteString(knownhosts.Line([]string{net.JoinHostPort(h.Address, fmt.Sprint(h.Port))}, h.HostKey) + "\n")
	}
	p := filepath.Join(l.Dir, name)
	must(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}

// Accepted counts the logins sshd accepted on h.
func (h *Host) Accepted() int {
	data, _ := os.ReadFile(h.Log)
	return strings.Count(string(data), "Accepted publickey")
}

// freePort finds a port free on every address, so the hosts share one.
func freePort(t testing.TB, addrs []string) int {
	for range 50 {
		n, _ := rand.Int(rand.Reader, big.NewInt(20000))
		p := 20000 + int(n.Int64())
		ok := true
		var ls []net.Listener
		for _, a := range addrs {
			l, err := net.Listen("tcp", net.JoinHostPort(a, fmt.Sprint(p)))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			_ = l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no port free on every lab address")
	return 0
}
