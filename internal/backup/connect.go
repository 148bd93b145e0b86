package backup

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// DefaultDialTimeout bounds how long Save waits for etcd to answer at all.
const DefaultDialTimeout = 5 * time.Second

// Endpoint says how to reach one etcd member, with the same meaning as
// etcdctl's --endpoints, --cacert, --cert and --key.
type Endpoint struct {
	// URL of the member's client endpoint: http://host:port or
	// https://host:port. A snapshot is a point-in-time copy of one
	// member's database, so exactly one member is named.
	URL string
	// CACert is a PEM bundle of the CAs that sign the member's serving
	// certificate. Empty trusts the system roots.
	CACert string
	// Cert and Key are the client certificate and key etcd asks for when
	// it runs with --client-cert-auth.
	Cert, Key string
	// DialTimeout bounds connecting (TCP, TLS and a first request).
	// Default DefaultDialTimeout.
	DialTimeout time.Duration
	// CACertPEM, CertPEM and KeyPEM are credentials held in memory
	// instead of files: kup reads a kubeadm control plane's etcd client
	// certificate over SSH and never writes the key to this machine's
	// disk. Give files or PEM, not both.
	CACertPEM, CertPEM, KeyPEM []byte
	// Dial opens the TCP connections to the member (addr is host:port
	// from URL); nil dials directly. kup passes an SSH tunnel here to
	// reach an etcd that listens only on a control-plane host's loopback.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// dial is Dial or a direct TCP dial.
func (e Endpoint) dial(ctx context.Context, addr string) (net.Conn, error) {
	if e.Dial != nil {
		return e.Dial(ctx, addr)
	}
	return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
}

// pemTLS builds the client TLS configuration from in-memory PEM.
func (e Endpoint) pemTLS() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(e.CACertPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(e.CACertPEM) {
			return nil, errors.New("the CA bundle holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if (len(e.CertPEM) == 0) != (len(e.KeyPEM) == 0) {
		return nil, errors.New("a client certificate needs both the certificate and the key")
	}
	if len(e.CertPEM) > 0 {
		pair, err := tls.X509KeyPair(e.CertPEM, e.KeyPEM)
		if err != nil {
			// The error names no key material (crypto/tls says what is
			// wrong with the blocks, not what is in them).
			return nil, fmt.Errorf("client certificate and key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// connectHint is appended to connection errors: what the user can change.
const connectHint = "check the etcd endpoint (--etcd-endpoint) and, for TLS, --etcd-cacert, --etcd-cert and --etcd-key, as for etcdctl"

func (e Endpoint) timeout() time.Duration {
	if e.DialTimeout > 0 {
		return e.DialTimeout
	}
	return DefaultDialTimeout
}

// clientConfig validates the endpoint and builds the etcd client
// configuration; the TLS configuration is nil for plain http.
func (e Endpoint) clientConfig() (clientv3.Config, *url.URL, error) {
	if strings.Contains(e.URL, ",") {
		return clientv3.Config{}, nil, fmt.Errorf("etcd endpoints %q: a snapshot is one member's database, give exactly one endpoint", e.URL)
	}
	u, err := url.Parse(e.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return clientv3.Config{}, nil, fmt.Errorf("etcd endpoint %q: want one URL such as https://10.0.0.1:2379", e.URL)
	}
	cfg := clientv3.Config{
		Endpoints:   []string{e.URL},
		DialTimeout: e.timeout(),
		Logger:      zap.NewNop(),
		// A large database streams for minutes: keep the connection
		// checked so a dead member fails the save instead of hanging it.
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
	}
	if e.Dial != nil {
		cfg.DialOptions = append(cfg.DialOptions, grpc.WithContextDialer(e.Dial))
	}
	if (e.Cert == "") != (e.Key == "") {
		return cfg, nil, fmt.Errorf("etcd endpoint %s: a client certificate needs both --etcd-cert and --etcd-key", e.URL)
	}
	pem := len(e.CACertPEM) > 0 || len(e.CertPEM) > 0 || len(e.KeyPEM) > 0
	if pem && (e.CACert != "" || e.Cert != "" || e.Key != "") {
		return cfg, nil, fmt.Errorf("etcd endpoint %s: give TLS files or in-memory certificates, not both", e.URL)
	}
	if u.Scheme == "http" {
		if e.CACert != "" || e.Cert != "" {
			return cfg, nil, fmt.Errorf("etcd endpoint %s is plain http but TLS files were given: use an https:// endpoint", e.URL)
		}
		if pem {
			return cfg, nil, fmt.Errorf("etcd endpoint %s is plain http but TLS certificates were given: use an https:// endpoint", e.URL)
		}
		return cfg, u, nil
	}
	if pem {
		tc, err := e.pemTLS()
		if err != nil {
			return cfg, nil, fmt.Errorf("etcd endpoint %s: %w", e.URL, err)
		}
		cfg.TLS = tc
		return cfg, u, nil
	}
	info := transport.TLSInfo{CertFile: e.Cert, KeyFile: e.Key, TrustedCAFile: e.CACert}
	tc, err := info.ClientConfig()
	if err != nil {
		return cfg, nil, fmt.Errorf("etcd endpoint %s: loading TLS files: %w", e.URL, err)
	}
	cfg.TLS = tc
	return cfg, u, nil
}

// probe connects once with the same TLS settings the client will use, so
// that a refused connection or a certificate problem is reported as
// itself: the etcd client waits for a usable connection until its
// deadline and then only says "context deadline exceeded".
func probe(ctx context.Context, e Endpoint, u *url.URL, tc *tls.Config, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := e.dial(ctx, u.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	if tc == nil {
		return nil
	}
	tc = tc.Clone()
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	tlsConn := tls.Client(conn, tc)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	// With TLS 1.3 the server judges the client certificate after the
	// client's handshake is done, and says so in an alert. etcd sends
	// nothing else before the client speaks, so a short read either times
	// out (accepted) or returns that alert (rejected).
	_ = tlsConn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [1]byte
	if _, err := tlsConn.Read(b[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return fmt.Errorf("TLS: etcd rejected the client: %w", err)
	}
	return nil
}

// connect returns a client for one member after checking that the
// member answers a status request within the dial timeout.
func connect(ctx context.Context, e Endpoint) (*clientv3.Client, *clientv3.StatusResponse, error) {
	cfg, u, err := e.clientConfig()
	if err != nil {
		return nil, nil, err
	}
	timeout := e.timeout()
	if err := probe(ctx, e, u, cfg.TLS, timeout); err != nil {
		return nil, nil, fmt.Errorf("connecting to etcd at %s: %w; %s", e.URL, err, connectHint)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to etcd at %s: %w; %s", e.URL, err, connectHint)
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := cli.Status(sctx, e.URL)
	if err != nil {
		cli.Close()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("asking etcd at %s for its status: %w", e.URL, ctx.Err())
		}
		hint := connectHint
		if u.Scheme == "http" {
			hint = "if the member serves TLS, use an https:// endpoint; " + hint
		}
		return nil, nil, fmt.Errorf("etcd at %s did not answer a status request within %s: %w; %s", e.URL, timeout, err, hint)
	}
	return cli, st, nil
}
