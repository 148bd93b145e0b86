package kubeadm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/sshexec"
)

// APIServerManifest is where kubeadm writes kube-apiserver's static pod
// (https://kubernetes.io/docs/reference/setup-tools/kubeadm/implementation-details/#generate-static-pod-manifest-for-the-api-server):
// its --etcd-* flags say where etcd is and which client certificate the
// apiserver uses, which is the one kup uses for the snapshot.
const APIServerManifest = "/etc/kubernetes/manifests/kube-apiserver.yaml"

// Tunnel is a Runner that can also open TCP connections from a host
// (*sshexec.Executor).
type Tunnel interface {
	Dial(ctx context.Context, h sshexec.Host, addr string) (net.Conn, error)
}

// EtcdFlags are kube-apiserver's etcd client settings.
type EtcdFlags struct {
	Servers                   []string
	CAFile, CertFile, KeyFile string
}

// ParseAPIServerEtcd reads the --etcd-servers, --etcd-cafile,
// --etcd-certfile and --etcd-keyfile flags from a kube-apiserver static
// pod manifest. An apiserver without --etcd-servers (a stacked etcd is
// still named there) is not a kubeadm apiserver kup can back up.
func ParseAPIServerEtcd(manifest []byte) (EtcdFlags, error) {
	var pod corev1.Pod
	if err := yaml.Unmarshal(manifest, &pod); err != nil {
		return EtcdFlags{}, fmt.Errorf("%s is not a pod manifest: %w", APIServerManifest, err)
	}
	var f EtcdFlags
	for _, c := range pod.Spec.Containers {
		if c.Name != "kube-apiserver" {
			continue
		}
		args := append(append([]string{}, c.Command...), c.Args...)
		for i := 0; i < len(args); i++ {
			name, value, ok := strings.Cut(args[i], "=")
			if !ok && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				value, ok = args[i+1], true
				i++
			}
			if !ok {
				continue
			}
			switch name {
			case "--etcd-servers":
				for _, s := range strings.Split(value, ",") {
					if s = strings.TrimSpace(s); s != "" {
						f.Servers = append(f.Servers, s)
					}
				}
			case "--etcd-cafile":
				f.CAFile = value
			case "--etcd-certfile":
				f.CertFile = value
			case "--etcd-keyfile":
				f.KeyFile = value
			}
		}
	}
	if len(f.Servers) == 0 {
		return f, fmt.Errorf("%s has no kube-apiserver container with --etcd-servers", APIServerManifest)
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return f, fmt.Errorf("%s gives --etcd-certfile or --etcd-keyfile without the other", APIServerManifest)
	}
	return f, nil
}

// LocalServer picks the member to snapshot: the one on the control-plane
// host's own loopback (kubeadm's stacked etcd listens on 127.0.0.1:2379),
// else the first listed. A snapshot is one member's copy; the local one
// is reached without leaving the host.
func (f EtcdFlags) LocalServer() string {
	for _, s := range f.Servers {
		if u, err := url.Parse(s); err == nil {
			if h := u.Hostname(); h == "127.0.0.1" || h == "localhost" || h == "::1" {
				return s
			}
		}
	}
	return f.Servers[0]
}

// EtcdEndpoint finds the etcd member behind the first control-plane
// node's kube-apiserver and returns how to reach it through that node's
// SSH connection, with the apiserver's own etcd client certificate read
// over SSH into memory (never written to this machine's disk, never
// recorded). It changes nothing on the host.
func (p *ControlPlane) EtcdEndpoint(ctx context.Context) (backup.Endpoint, error) {
	tunnel, ok := p.Hosts.Runner.(Tunnel)
	if !ok {
		return backup.Endpoint{}, errors.New("kubeadm provider: the SSH runner cannot open tunnels")
	}
	nodes, err := p.controlPlaneNodes(ctx)
	if err != nil {
		return backup.Endpoint{}, err
	}
	n := nodes[0]
	h, err := p.Hosts.Resolver.Host(&n)
	if err != nil {
		return backup.Endpoint{}, err
	}
	read := func(step, path string, secret bool) ([]byte, error) {
		res, err := p.Hosts.Runner.Run(ctx, h, sshexec.Command{Step: step, Args: []string{"cat", path}, Sudo: true, SecretOutput: secret})
		if err != nil {
			return nil, &StepError{Node: n.Name, Step: step, Err: err}
		}
		return []byte(res.Stdout), nil
	}
	manifest, err := read("read the kube-apiserver manifest", APIServerManifest, false)
	if err != nil {
		return backup.Endpoint{}, err
	}
	flags, err := ParseAPIServerEtcd(manifest)
	if err != nil {
		return backup.Endpoint{}, &StepError{Node: n.Name, Step: "read the kube-apiserver manifest", Err: err}
	}
	server := flags.LocalServer()
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return backup.Endpoint{}, fmt.Errorf("node %s: --etcd-servers entry %q is not a URL", n.Name, server)
	}
	ep := backup.Endpoint{
		URL: server,
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return tunnel.Dial(ctx, h, addr)
		},
	}
	if u.Scheme == "https" {
		if flags.CAFile != "" {
			if ep.CACertPEM, err = read("read the etcd CA certificate", flags.CAFile, false); err != nil {
				return backup.Endpoint{}, err
			}
		}
		if flags.CertFile != "" {
			if ep.CertPEM, err = read("read the apiserver's etcd client certificate", flags.CertFile, false); err != nil {
				return backup.Endpoint{}, err
			}
			if ep.KeyPEM, err = read("read the apiserver's etcd client key", flags.KeyFile, true); err != nil {
				return backup.Endpoint{}, err
			}
		}
	}
	p.progress(n.Name, "backup", "etcd member %s, reached through %s's SSH connection", server, n.Name)
	return ep, nil
}
