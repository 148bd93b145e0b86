package sshexec

import (
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRedact(t *testing.T) {
	r := NewRedactor("s3cret-pass", "tok.en/with+chars")
	for _, tc := range []struct{ in, want string }{
		{"nothing here", "nothing here"},
		{"pass=s3cret-pass;", "pass=[REDACTED];"},
		{"s3cret-passs3cret-pass", "[REDACTED][REDACTED]"},
		{"Bearer tok.en/with+chars", "Bearer [REDACTED]"},
		{"W: proxy http://kup:hunter2@proxy.internal:3128/ refused", "W: proxy http://kup:[REDACTED]@proxy.internal:3128/ refused"},
		{"Authorization: Bearer abc.def.ghi", "Authorization: Bearer [REDACTED]"},
		{"kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:00ff", "kubeadm join 10.0.0.1:6443 --token [REDACTED] --discovery-token-ca-cert-hash [REDACTED]"},
		{"kubeadm join --certificate-key=deadbeef", "kubeadm join --certificate-key=[REDACTED]"},
		{"https://pkgs.k8s.io/core:/stable:/v1.37/deb/", "https://pkgs.k8s.io/core:/stable:/v1.37/deb/"},
		{"exited 1: -----BEGIN EC PRIVATE KEY----- | MHcCAQEE | -----END EC PRIVATE KEY----- | done", "exited 1: -----BEGIN EC PRIVATE KEY-----[REDACTED]-----END EC PRIVATE KEY----- | done"},
		{"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
	} {
		if got := r.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var zero *Redactor
	if got := zero.Redact("http://a:b@c"); got != "http://a:[REDACTED]@c" {
		t.Errorf("nil Redactor: %q", got)
	}
}

// FuzzRedact: a registered secret never survives redaction, wherever it
// is put in the text.
func FuzzRedact(f *testing.F) {
	f.Add("passphrase", "before ", " after")
	f.Add("a", "aaa", "a")
	f.Add("tok", "http://u:", "@host")
	f.Fuzz(func(t *testing.T, secret, pre, post string) {
		if secret == "" || strings.Contains(Redacted, secret) || strings.ContainsAny(secret, "[]") {
			// A secret inside the marker, or overlapping its brackets,
			// can be re-formed by the marker's own letters.
			t.Skip()
		}
		r := NewRedactor(secret)
		out := r.Redact(pre + secret + post + secret)
		if strings.Contains(out, secret) {
			t.Fatalf("secret %q survives in %q", secret, out)
		}
	})
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"apt-get", "apt-get"},
		{"kubeadm=1.37.2-*", "'kubeadm=1.37.2-*'"},
		{"", "''"},
		{"it's", `'it'\''s'`},
		{"/etc/apt/sources.list.d/kubernetes.list", "/etc/apt/sources.list.d/kubernetes.list"},
		{"a b", "'a b'"},
		{"$HOME", "'$HOME'"},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzQuote: whatever the argument, a POSIX shell gets it back intact.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"plain", "kubeadm=1.37.2-*", "it's", "$(reboot)", "a\nb", "`x`", "\\", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		if strings.ContainsRune(arg, 0) {
			t.Skip() // no argv can carry NUL
		}
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+Quote(arg)).Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		if string(out) != arg {
			t.Fatalf("Quote(%q) came back as %q", arg, out)
		}
	})
}

func TestCommandLine(t *testing.T) {
	c := Command{Args: []string{"apt-get", "install", "-y", "kubeadm=1.37.2-*"}, Sudo: true}
	if got := c.Line(false); got != "sudo -n apt-get install -y 'kubeadm=1.37.2-*'" {
		t.Errorf("non-root line %q", got)
	}
	if got := c.Line(true); got != "apt-get install -y 'kubeadm=1.37.2-*'" {
		t.Errorf("root line %q", got)
	}
	s := Command{Script: "command -v apt-get || true"}
	if got := s.Line(false); got != "sh -c 'command -v apt-get || true'" {
		t.Errorf("script line %q", got)
	}
}

func node(name string, ann map[string]string, ip string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	}
	return n
}

func TestResolver(t *testing.T) {
	inv, err := ParseInventory([]byte(`
defaults:
  user: ubuntu
  bastion: jump@bastion.example.com:2200
hosts:
  cp-1: {address: 10.0.0.11, port: 2222}
  worker-1: {address: 10.0.1.21, user: admin, bastion: none}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Inventory: inv, Defaults: Endpoint{User: "flaguser", Port: 22}}
	for _, tc := range []struct {
		node *corev1.Node
		want string
	}{
		{node("cp-1", nil, "192.168.0.1"), "cp-1 (ubuntu@10.0.0.11:2222 via jump@bastion.example.com:2200)"},
		{node("worker-1", map[string]string{AnnotationAddress: "1.1.1.1"}, ""), "worker-1 (admin@10.0.1.21:22)"},
		{node("worker-2", map[string]string{AnnotationAddress: "10.0.1.22", AnnotationPort: "2022", AnnotationUser: "ops"}, "192.168.0.2"), "worker-2 (ops@10.0.1.22:2022 via jump@bastion.example.com:2200)"},
		{node("worker-3", nil, "192.168.0.3"), "worker-3 (ubuntu@192.168.0.3:22 via jump@bastion.example.com:2200)"},
		{node("v6", map[string]string{AnnotationAddress: "fd00::1", AnnotationBastion: "[fd00::9]:22"}, ""), "v6 (ubuntu@[fd00::1]:22 via ubuntu@[fd00::9]:22)"},
	} {
		h, err := r.Host(tc.node)
		if err != nil {
			t.Errorf("%s: %v", tc.node.Name, err)
			continue
		}
		if got := h.String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.node.Name, got, tc.want)
		}
	}
	noFlags := &Resolver{Defaults: Endpoint{User: "u"}}
	if _, err := noFlags.Host(node("bare", nil, "")); err == nil || !strings.Contains(err.Error(), "no SSH address") {
		t.Errorf("a node with no address anywhere: %v", err)
	}
	if _, err := noFlags.Host(node("badport", map[string]string{AnnotationPort: "ssh"}, "1.2.3.4")); err == nil || !strings.Contains(err.Error(), AnnotationPort) {
		t.Errorf("a bad port annotation: %v", err)
	}
}

func TestParseInventoryRefuses(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"hosts:\n  a: {adress: 1.2.3.4}\n", "adress"},
		{"hosts:\n  a: {address: 1.2.3.4, port: 70000}\n", "out of range"},
		{"defaults: {user: 'a b'}\n", "user"},
		{"hosts:\n  a: {bastion: 'x@'}\n", "bastion"},
		{"hosts: [1, 2]\n", "SSH inventory"},
	} {
		_, err := ParseInventory([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one mentioning %q", tc.doc, err, tc.want)
		}
	}
}

func TestParseBastion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"bastion", "me@bastion:22"},
		{"jump@10.0.0.1:2200", "jump@10.0.0.1:2200"},
		{"[fd00::1]:2201", "me@[fd00::1]:2201"},
		{"fd00::1", "me@[fd00::1]:22"},
	} {
		h, err := ParseBastion(tc.in, "me")
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := h.String(); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "@host", "host:0", "host:99999", "a@b@"} {
		if _, err := ParseBastion(bad, "me"); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// FuzzParseInventory: any text either fails to parse or yields endpoints
// the resolver can use (ports in range, no '@' in users).
func FuzzParseInventory(f *testing.F) {
	f.Add([]byte("defaults: {user: u}\nhosts:\n  n: {address: 1.2.3.4, port: 22, bastion: 'j@b:1'}\n"))
	f.Add([]byte("hosts: {}"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseInventory(data)
		if err != nil {
			return
		}
		r := &Resolver{Inventory: inv, Defaults: Endpoint{User: "u"}}
		for name := range inv.Hosts {
			h, err := r.Host(node(name, nil, "10.0.0.1"))
			if err != nil {
				t.Fatalf("host %q of a parsed inventory does not resolve: %v", name, err)
			}
			if h.Port < 1 || h.Port > 65535 || strings.Contains(h.User, "@") {
				t.Fatalf("host %q resolved to %+v", name, h)
			}
		}
	})
}
