package sshexec

import (
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Redacted replaces every secret in recorded text.
const Redacted = "[REDACTED]"

// Redactor removes secrets from text before it is recorded, printed or
// returned in an error. It knows two kinds: values the caller registered
// (a key passphrase, the kubeconfig's bearer token, a join token) and
// shapes that are secret wherever they appear (a password in a URL, a
// bearer header, kubeadm's --token, --certificate-key and
// --discovery-token-ca-cert-hash values). Safe for concurrent use; the
// zero value redacts only the shapes.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// NewRedactor returns a Redactor that knows secrets.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.Add(s)
	}
	return r
}

// Add registers a secret. Empty strings are ignored; short ones are not
// (a three-letter passphrase is still a passphrase), at the price of
// redacting its letters wherever they occur.
func (r *Redactor) Add(secret string) {
	if r == nil || secret == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.secrets {
		if s == secret {
			return
		}
	}
	r.secrets = append(r.secrets, secret)
	// Longest first, so a secret containing another is replaced whole.
	sort.SliceStable(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// secretShapes are redacted whatever their value: the value group is
// replaced, the rest is kept so the record still says what was there.
var secretShapes = []*regexp.Regexp{
	// scheme://user:PASSWORD@host (apt and dnf proxies, mirrors).
	regexp.MustCompile(`(://[^/\s:@]*:)([^@\s/]+)(@)`),
	// Authorization: Bearer TOKEN / Basic CREDENTIALS.
	regexp.MustCompile(`(?i)(authorization:\s*(?:bearer|basic)\s+)(\S+)()`),
	// kubeadm's secret flags, as --flag=VALUE or --flag VALUE.
	regexp.MustCompile(`(--(?:token|certificate-key|discovery-token-ca-cert-hash|tls-bootstrap-token|discovery-token|password|passphrase)[=\s]+)([^\s'"]+)()`),
	// A PEM private key, whole (an etcd client key read over SSH), also
	// when its lines were joined for an error message.
	regexp.MustCompile(`(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)([\s\S]*?)(-----END [A-Z0-9 ]*PRIVATE KEY-----)`),
}

// Redact returns s with every registered secret and secret shape
// replaced by Redacted.
func (r *Redactor) Redact(s string) string {
	if s == "" {
		return s
	}
	if r != nil {
		r.mu.RLock()
		for _, sec := range r.secrets {
			s = strings.ReplaceAll(s, sec, Redacted)
		}
		r.mu.RUnlock()
	}
	for _, re := range secretShapes {
		s = re.ReplaceAllString(s, "${1}"+Redacted+"${3}")
	}
	return s
}
