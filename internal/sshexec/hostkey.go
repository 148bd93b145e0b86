package sshexec

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is a host key kup refused: unknown (not in known_hosts and
// --ssh-accept-new not given), changed (known_hosts records another key
// for the host) or revoked. It is returned before any command runs: the
// handshake stops at the key, so the host never sees kup authenticate.
type HostKeyError struct {
	Host       Host
	KnownHosts string
	// Entry is the name the host is recorded under: "addr" for port 22,
	// "[addr]:port" otherwise.
	Entry              string
	OfferedType        string
	OfferedFingerprint string
	// Known are the keys known_hosts records for the host; empty when
	// the host is unknown.
	Known   []KnownKey
	Revoked bool
}

// KnownKey is one known_hosts entry, for messages.
type KnownKey struct {
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint"`
	// Where is "FILE:LINE".
	Where string `json:"where"`
}

// Changed reports whether known_hosts records a different key.
func (e *HostKeyError) Changed() bool { return len(e.Known) > 0 && !e.Revoked }

func (e *HostKeyError) Error() string {
	var b strings.Builder
	switch {
	case e.Revoked:
		fmt.Fprintf(&b, "host key of %s is REVOKED in %s — refusing to connect: it offered %s %s, marked @revoked",
			e.Host, e.KnownHosts, e.OfferedType, e.OfferedFingerprint)
	case e.Changed():
		fmt.Fprintf(&b, "host key of %s has CHANGED — refusing to connect: it offered %s %s, but ", e.Host, e.OfferedType, e.OfferedFingerprint)
		for i, k := range e.Known {
			if i > 0 {
				b.WriteString(" and ")
			}
			fmt.Fprintf(&b, "%s records %s %s", k.Where, k.Type, k.Fingerprint)
		}
		fmt.Fprintf(&b, " for %s. Someone may be intercepting the connection. If the host was reinstalled, check its new key out of band, then remove the old entry: ssh-keygen -R %s -f %s",
			e.Entry, Quote(e.Entry), Quote(e.KnownHosts))
	default:
		fmt.Fprintf(&b, "host key of %s is unknown — refusing to connect: %s is not in %s (it offered %s %s). Check that fingerprint out of band and add the key (ssh-keyscan -p %d %s >> %s), or pass --ssh-accept-new to trust hosts seen for the first time",
			e.Host, e.Entry, e.KnownHosts, e.OfferedType, e.OfferedFingerprint, e.Host.Port, e.Host.Address, Quote(e.KnownHosts))
	}
	return b.String()
}

// hostKeys checks host keys against one known_hosts file. Reads and the
// appends of --ssh-accept-new are serialised, so hosts connected in
// parallel never interleave lines.
type hostKeys struct {
	file      string
	acceptNew bool
	mu        sync.Mutex
	// accepted records, for the caller's record, keys added to the file.
	accepted func(h Host, entry, typ, fingerprint string)
}

// db loads the file afresh (an earlier connection may have appended to
// it). A missing file is an empty one: every host is unknown.
func (k *hostKeys) db() (ssh.HostKeyCallback, error) {
	if _, err := os.Stat(k.file); errors.Is(err, os.ErrNotExist) {
		return knownhosts.New()
	}
	cb, err := knownhosts.New(k.file)
	if err != nil {
		return nil, fmt.Errorf("reading known hosts %s: %w", k.file, err)
	}
	return cb, nil
}

// callback verifies h's key; a refusal is also stored in *refused so the
// caller gets the typed error whatever the handshake wraps it in.
func (k *hostKeys) callback(h Host, refused **HostKeyError) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		k.mu.Lock()
		defer k.mu.Unlock()
		cb, err := k.db()
		if err != nil {
			return err
		}
		err = cb(hostname, remote, key)
		if err == nil {
			return nil
		}
		he := &HostKeyError{Host: h, KnownHosts: k.file, Entry: knownhosts.Normalize(hostname), OfferedType: key.Type(), OfferedFingerprint: ssh.FingerprintSHA256(key)}
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			he.Revoked = true
			he.Known = []KnownKey{known(re.Revoked)}
		case errors.As(err, &ke):
			if len(ke.Want) == 0 && k.acceptNew {
				if err := k.append(hostname, key); err != nil {
					return err
				}
				if k.accepted != nil {
					k.accepted(h, he.Entry, he.OfferedType, he.OfferedFingerprint)
				}
				return nil
			}
			for _, w := range ke.Want {
				he.Known = append(he.Known, known(w))
			}
		default:
			return fmt.Errorf("checking the host key of %s against %s: %w", h, k.file, err)
		}
		*refused = he
		return he
	}
}

func known(k knownhosts.KnownKey) KnownKey {
	return KnownKey{Type: k.Key.Type(), Fingerprint: ssh.FingerprintSHA256(k.Key), Where: fmt.Sprintf("%s:%d", k.Filename, k.Line)}
}

// append adds a line for a host seen for the first time, creating the
// file (0600, in a 0700 directory) like ssh does.
func (k *hostKeys) append(hostname string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(k.file), 0o700); err != nil {
		return fmt.Errorf("adding host key to %s: %w", k.file, err)
	}
	f, err := os.OpenFile(k.file, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("adding host key to %s: %w", k.file, err)
	}
	defer f.Close()
	line := knownhosts.Line([]string{hostname}, key) + "\n"
	// Never glue the new entry onto a last line without a newline.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("adding host key to %s: %w", k.file, err)
	}
	return f.Sync()
}

var (
	probeOnce sync.Once
	probeKey  ssh.PublicKey
)

// algorithms returns the host key algorithms to ask the server for: those
// of the keys known_hosts holds for the host, so a server that also has
// a key of another type is not taken for a changed one (OpenSSH's client
// orders its preferences the same way). Nil for an unknown host: any.
func (k *hostKeys) algorithms(hostname string) []string {
	probeOnce.Do(func() {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err == nil {
			probeKey, _ = ssh.NewPublicKey(pub)
		}
	})
	if probeKey == nil {
		return nil
	}
	k.mu.Lock()
	cb, err := k.db()
	k.mu.Unlock()
	if err != nil {
		return nil
	}
	// A throw-away key never matches: the error lists what is known.
	var ke *knownhosts.KeyError
	if !errors.As(cb(hostname, &net.TCPAddr{IP: net.IPv4zero}, probeKey), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, w := range ke.Want {
		switch t := w.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}
