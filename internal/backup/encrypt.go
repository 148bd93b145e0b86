package backup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
)

// parseRecipients reads age recipients: native "age1…" keys and ssh
// public keys. A recipient that does not parse is named by its position,
// not its text, in case a private key was passed by mistake.
func parseRecipients(in []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for i, s := range in {
		s = strings.TrimSpace(s)
		var r age.Recipient
		var err error
		switch {
		case strings.HasPrefix(s, "ssh-"):
			r, err = agessh.ParseRecipient(s)
		case strings.HasPrefix(s, "age1"):
			var rs []age.Recipient
			rs, err = age.ParseRecipients(strings.NewReader(s))
			if err == nil {
				r = rs[0]
			}
		default:
			err = errors.New("not a public key")
		}
		if err != nil {
			return nil, fmt.Errorf("encryption recipient #%d: %w (want an age public key age1… or an ssh public key)", i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// encryptFile writes src encrypted to recipients at final, through
// "<final>.part", and returns the sha256 and size of what it wrote.
func encryptFile(src, final string, recipients []age.Recipient) (sum string, size int64, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, fmt.Errorf("opening %s to encrypt it: %w", src, err)
	}
	defer in.Close()
	f, err := createPart(final)
	if err != nil {
		return "", 0, err
	}
	hw := newHashingWriter(f)
	fail := func(doing string, err error) (string, int64, error) {
		f.Close()
		os.Remove(f.Name())
		return "", 0, writeError(f.Name(), doing, err)
	}
	w, err := age.Encrypt(hw, recipients...)
	if err != nil {
		return fail("encrypting into", err)
	}
	if _, err := io.Copy(w, in); err != nil {
		return fail("encrypting into", err)
	}
	if err := w.Close(); err != nil {
		return fail("encrypting into", err)
	}
	if err := commit(f, final); err != nil {
		return "", 0, err
	}
	return hw.sum(), hw.n, nil
}

// Decrypt writes the age file src, decrypted with one of identities, to
// dst through "<dst>.part" (mode 0600). It refuses to replace dst.
func Decrypt(src, dst string, identities ...age.Identity) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("decrypting %s: %s already exists", src, dst)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("decrypting: %w", err)
	}
	defer in.Close()
	r, err := age.Decrypt(in, identities...)
	if err != nil {
		return fmt.Errorf("decrypting %s: %w", src, err)
	}
	f, err := createPart(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(f.Name())
		var we *os.PathError
		if errors.As(err, &we) {
			return writeError(f.Name(), "writing", err)
		}
		return fmt.Errorf("decrypting %s: %w", src, err)
	}
	return commit(f, dst)
}
