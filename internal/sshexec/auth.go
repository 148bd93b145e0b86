package sshexec

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// credentials are the signers kup offers: the agent's keys, then the key
// file's. They are offered as one publickey method because x/crypto/ssh
// tries each method name only once.
type credentials struct {
	agent  agent.ExtendedAgent
	conn   net.Conn
	keys   []ssh.Signer
	source string // for the "no credentials" message
}

func loadCredentials(o Options) (*credentials, error) {
	c := &credentials{}
	sock := o.AgentSocket
	if sock == "" && !o.NoAgent {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock != "" && !o.NoAgent {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, fmt.Errorf("connecting to ssh-agent at %s: %w (unset SSH_AUTH_SOCK to use a key file only)", sock, err)
		}
		c.conn = conn
		c.agent = agent.NewClient(conn)
	}
	files := []string{o.KeyFile}
	explicit := o.KeyFile != ""
	if !explicit && c.agent == nil {
		// Like ssh: the default identities, when there is no agent.
		if home, err := os.UserHomeDir(); err == nil {
			files = []string{filepath.Join(home, ".ssh", "id_ed25519"), filepath.Join(home, ".ssh", "id_ecdsa"), filepath.Join(home, ".ssh", "id_rsa")}
		}
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		s, err := loadKey(f, o.KeyPassphrase)
		if err != nil {
			if !explicit && errors.Is(err, os.ErrNotExist) {
				continue
			}
			if !explicit {
				// A default identity that cannot be used is skipped,
				// as ssh skips it; an explicit one is an error.
				continue
			}
			c.close()
			return nil, err
		}
		c.keys = append(c.keys, s)
	}
	if c.agent == nil && len(c.keys) == 0 {
		return nil, errors.New("no SSH credentials: no ssh-agent (SSH_AUTH_SOCK is unset) and no usable key (pass --ssh-key FILE)")
	}
	return c, nil
}

// loadKey reads a private key; an encrypted one needs passphrase. The
// passphrase never appears in an error.
func loadKey(path string, passphrase []byte) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading SSH key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return s, nil
	case errors.As(err, &missing):
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("SSH key %s is encrypted: put its passphrase in the environment variable named by --ssh-key-passphrase-env, or load the key into ssh-agent", path)
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(data, passphrase)
		if err != nil {
			if errors.Is(err, x509.IncorrectPasswordError) {
				return nil, fmt.Errorf("SSH key %s: the passphrase is wrong", path)
			}
			return nil, fmt.Errorf("SSH key %s: cannot decrypt it with the passphrase given (%s)", path, errorClass(err))
		}
		return s, nil
	default:
		return nil, fmt.Errorf("SSH key %s: %w", path, err)
	}
}

// errorClass keeps only the error's type in messages: a decryption
// error might quote key material.
func errorClass(err error) string { return fmt.Sprintf("%T", err) }

func (c *credentials) signers() ([]ssh.Signer, error) {
	var out []ssh.Signer
	if c.agent != nil {
		s, err := c.agent.Signers()
		if err != nil {
			return nil, fmt.Errorf("asking ssh-agent for keys: %w", err)
		}
		out = append(out, s...)
	}
	return append(out, c.keys...), nil
}

func (c *credentials) authMethod() ssh.AuthMethod { return ssh.PublicKeysCallback(c.signers) }

func (c *credentials) close() {
	if c.conn != nil {
		_ = c.conn.Close()
	}
}
