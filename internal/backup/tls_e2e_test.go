package backup_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/sandbox"
)

// TestSaveTLS runs a second etcd (the sandbox's binary) that serves only
// TLS and demands client certificates, as kubeadm's does: the right files
// give a verified backup, wrong ones an error that says which.
func TestSaveTLS(t *testing.T) {
	c := cluster(t)
	dir := t.TempDir()
	ca := newCA(t, "etcd-ca")
	other := newCA(t, "someone-else")
	ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	other.issue(t, dir, "stranger", x509.ExtKeyUsageClientAuth)
	ca.write(t, dir, "ca")
	other.write(t, dir, "other-ca")
	f := func(name string) string { return filepath.Join(dir, name) }

	url := startTLSEtcd(t, c.Processes[sandbox.Etcd].Binary, dir, f("server.crt"), f("server.key"), f("ca.crt"))
	putOverTLS(t, url, f("ca.crt"), f("client.crt"), f("client.key"))

	for _, tc := range []struct {
		name string
		ep   backup.Endpoint
		want string // "" for success
	}{
		{"right files", backup.Endpoint{URL: url, CACert: f("ca.crt"), Cert: f("client.crt"), Key: f("client.key")}, ""},
		{"wrong CA", backup.Endpoint{URL: url, CACert: f("other-ca.crt"), Cert: f("client.crt"), Key: f("client.key")}, "certificate signed by unknown authority"},
		{"no client certificate", backup.Endpoint{URL: url, CACert: f("ca.crt")}, "etcd rejected the client"},
		{"client certificate from another CA", backup.Endpoint{URL: url, CACert: f("ca.crt"), Cert: f("stranger.crt"), Key: f("stranger.key")}, "etcd rejected the client"},
		{"plain http to a TLS member", backup.Endpoint{URL: strings.Replace(url, "https://", "http://", 1)}, "did not answer"},
		{"in-memory certificates", backup.Endpoint{URL: url, CACertPEM: read(t, f("ca.crt")), CertPEM: read(t, f("client.crt")), KeyPEM: read(t, f("client.key"))}, ""},
		{"in-memory certificates, wrong CA", backup.Endpoint{URL: url, CACertPEM: read(t, f("other-ca.crt")), CertPEM: read(t, f("client.crt")), KeyPEM: read(t, f("client.key"))}, "certificate signed by unknown authority"},
		{"in-memory certificate without its key", backup.Endpoint{URL: url, CACertPEM: read(t, f("ca.crt")), CertPEM: read(t, f("client.crt"))}, "needs both the certificate and the key"},
		{"files and in-memory certificates", backup.Endpoint{URL: url, CACert: f("ca.crt"), CACertPEM: read(t, f("ca.crt"))}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.ep.DialTimeout = 2 * time.Second
			out := filepath.Join(t.TempDir(), "etcd.db")
			m, err := backup.Save(context.Background(), backup.SaveOptions{Etcd: tc.ep, Path: out})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Save: %v", err)
				}
				if m.Revision < 2 || m.TotalKeys != 1 || m.Endpoint != url {
					t.Errorf("manifest %+v", m)
				}
				return
			}
			t.Logf("Save: %v", err)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.ep.URL) {
				t.Fatalf("Save: got %v, want an error naming %s and saying %q", err, tc.ep.URL, tc.want)
			}
			if got := entries(t, filepath.Dir(out)); len(got) != 0 {
				t.Errorf("a failed Save left %v", got)
			}
		})
	}
}

// TestSaveThroughDialer: with Dial set, every connection to the member
// goes through it (kup's SSH tunnel to a kubeadm control plane's etcd):
// the URL names a port nothing listens on, the dialer goes to the real
// member, and the snapshot is taken with in-memory certificates.
func TestSaveThroughDialer(t *testing.T) {
	c := cluster(t)
	dir := t.TempDir()
	ca := newCA(t, "etcd-ca")
	ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	ca.write(t, dir, "ca")
	f := func(name string) string { return filepath.Join(dir, name) }
	url := startTLSEtcd(t, c.Processes[sandbox.Etcd].Binary, dir, f("server.crt"), f("server.key"), f("ca.crt"))
	putOverTLS(t, url, f("ca.crt"), f("client.crt"), f("client.key"))
	real := strings.TrimPrefix(url, "https://")

	var dials atomic.Int32
	var asked []string
	var mu sync.Mutex
	ep := backup.Endpoint{
		URL:       "https://127.0.0.1:1",
		CACertPEM: read(t, f("ca.crt")), CertPEM: read(t, f("client.crt")), KeyPEM: read(t, f("client.key")),
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			mu.Lock()
			asked = append(asked, addr)
			mu.Unlock()
			return (&net.Dialer{}).DialContext(ctx, "tcp", real)
		},
	}
	m, err := backup.Save(context.Background(), backup.SaveOptions{Etcd: ep, Path: filepath.Join(t.TempDir(), "etcd.db")})
	if err != nil {
		t.Fatalf("Save through the dialer: %v", err)
	}
	if m.TotalKeys != 1 {
		t.Errorf("snapshot holds %d keys, want the 1 written", m.TotalKeys)
	}
	mu.Lock()
	defer mu.Unlock()
	if dials.Load() < 2 { // the probe, then the client
		t.Errorf("dialer called %d times, want the probe and the client", dials.Load())
	}
	for _, a := range asked {
		if a != "127.0.0.1:1" {
			t.Errorf("dialer asked for %q, want the URL's host:port 127.0.0.1:1", a)
		}
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// putOverTLS writes one key, so the snapshot has something to show.
func putOverTLS(t *testing.T, url, ca, cert, key string) {
	t.Helper()
	tc, err := (transport.TLSInfo{TrustedCAFile: ca, CertFile: cert, KeyFile: key}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, TLS: tc, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/kup-test/hello", "world"); err != nil {
		t.Fatalf("writing to the TLS etcd: %v", err)
	}
}

// startTLSEtcd starts a one-member etcd serving https with client
// certificate authentication and returns its client URL.
func startTLSEtcd(t *testing.T, bin, dir, cert, key, ca string) string {
	t.Helper()
	ports := freeLoopbackPorts(t, 2)
	client := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin,
		"--name", "tls", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "tls="+peer,
		"--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth",
		"--unsafe-no-fsync", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Ready when /health answers over mutual TLS.
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(client + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return client
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS etcd not healthy after 30s: %v (log: %s)", err, tail(filepath.Join(dir, "etcd.log"), 5))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeLoopbackPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, der: der}
}

func (ca *testCA) write(t *testing.T, dir, name string) {
	t.Helper()
	writePEM(t, filepath.Join(dir, name+".crt"), "CERTIFICATE", ca.der)
}

// issue writes name.crt and name.key, valid for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".crt"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(dir, name+".key"), "EC PRIVATE KEY", keyDER)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
