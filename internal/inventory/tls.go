package inventory

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	"k8s.io/client-go/rest"
)

// ServingCertificate is the certificate the apiserver presented in a TLS
// handshake: what clients see, and what expires (kubeadm's are valid for
// a year). Error is set, and the rest empty, when it could not be read.
type ServingCertificate struct {
	// Address is the host:port the handshake went to.
	Address   string    `json:"address"`
	Subject   string    `json:"subject,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	NotBefore time.Time `json:"notBefore,omitzero"`
	NotAfter  time.Time `json:"notAfter,omitzero"`
	DNSNames  []string  `json:"dnsNames,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// ReadServingCertificate opens a TLS connection to the apiserver cfg points
// to, reads the leaf certificate it presents and closes the connection
// again. Nothing is sent over it, no credential included, so the
// certificate is read without verifying it: verification is the real
// client's job, and an expired certificate — what this is for — would fail
// it. Behind a load balancer that terminates TLS, this is the load
// balancer's certificate.
func ReadServingCertificate(ctx context.Context, cfg *rest.Config) *ServingCertificate {
	addr, serverName, err := tlsAddress(cfg)
	out := &ServingCertificate{Address: addr}
	if err != nil {
		out.Error = err.Error()
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{
		ServerName:         serverName,
		InsecureSkipVerify: true, //nolint:gosec // only the presented certificate is read; see above
		MinVersion:         tls.VersionTLS12,
	}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		out.Error = fmt.Sprintf("TLS handshake with the apiserver at %s: %v", addr, err)
		return out
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		out.Error = fmt.Sprintf("the apiserver at %s presented no certificate", addr)
		return out
	}
	c := certs[0]
	out.Subject, out.Issuer = c.Subject.String(), c.Issuer.String()
	out.NotBefore, out.NotAfter, out.DNSNames = c.NotBefore, c.NotAfter, c.DNSNames
	return out
}

// tlsAddress is host:port and the TLS server name of cfg's apiserver.
func tlsAddress(cfg *rest.Config) (addr, serverName string, err error) {
	u, err := url.Parse(cfg.Host)
	if err != nil || u.Host == "" {
		// rest.Config also accepts a bare host:port.
		u, err = url.Parse("https://" + cfg.Host)
		if err != nil || u.Host == "" {
			return cfg.Host, "", fmt.Errorf("apiserver address %q is not a URL", cfg.Host)
		}
	}
	if u.Scheme == "http" {
		return u.Host, "", fmt.Errorf("the apiserver at %s is reached over plain http: there is no serving certificate to read", cfg.Host)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	serverName = host
	if cfg.TLSClientConfig.ServerName != "" {
		serverName = cfg.TLSClientConfig.ServerName
	}
	return net.JoinHostPort(host, port), serverName, nil
}
