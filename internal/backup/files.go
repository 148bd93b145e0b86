package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// partSuffix marks a file still being written. Only a rename makes it final.
const partSuffix = ".part"

// syncDir fsyncs a directory so a rename in it survives a crash: a rename
// is a change to the directory, not to the file.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s to fsync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsyncing directory %s: %w", dir, err)
	}
	return nil
}

// commit fsyncs and closes f (a ".part" file) and renames it to final,
// then fsyncs the directory. On failure the ".part" file is removed.
func commit(f *os.File, final string) error {
	part := f.Name()
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(part)
		return writeError(part, "fsyncing", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(part)
		return writeError(part, "closing", err)
	}
	if err := os.Rename(part, final); err != nil {
		os.Remove(part)
		return fmt.Errorf("renaming %s to %s: %w", part, final, err)
	}
	return syncDir(filepath.Dir(final))
}

// createPart opens "<final>.part" for writing with mode 0600, truncating
// a leftover of an earlier run that was killed (nothing else writes it).
func createPart(final string) (*os.File, error) {
	part := final + partSuffix
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, writeError(part, "creating", err)
	}
	// O_CREATE does not change the mode of a file that already existed.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(part)
		return nil, writeError(part, "setting mode 0600 on", err)
	}
	return f, nil
}

// writeFileAtomic writes data to path through a ".part" file and a rename.
func writeFileAtomic(path string, data []byte) error {
	f, err := createPart(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return writeError(f.Name(), "writing", err)
	}
	return commit(f, path)
}

// writeError explains the failures a user can fix: a full or read-only
// target. Everything else is wrapped as it is.
func writeError(path, doing string, err error) error {
	dir := filepath.Dir(path)
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		free := "unknown"
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil {
			free = humanBytes(int64(st.Bavail) * st.Bsize)
		}
		return fmt.Errorf("%s %s: no space left in %s (%s free): free some space or write the backup elsewhere: %w", doing, path, dir, free, err)
	case errors.Is(err, syscall.EROFS), errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%s %s: %s is not writable: choose another backup directory: %w", doing, path, dir, err)
	}
	return fmt.Errorf("%s %s: %w", doing, path, err)
}

// humanBytes renders a size in binary units for messages.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// fileSHA256 is the hex sha256 of a whole file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// trailerHash hashes everything written to it except the last
// sha256.Size bytes, which it keeps: etcd ends a snapshot stream with the
// sha256 of the database before it, so the hash of the body can be checked
// against the trailer without reading the file a second time.
type trailerHash struct {
	body    hash.Hash
	trailer []byte
	n       int64
}

func newTrailerHash() *trailerHash {
	return &trailerHash{body: sha256.New(), trailer: make([]byte, 0, 2*sha256.Size)}
}

func (t *trailerHash) Write(p []byte) (int, error) {
	t.n += int64(len(p))
	if len(p) >= sha256.Size {
		t.body.Write(t.trailer)
		t.body.Write(p[:len(p)-sha256.Size])
		t.trailer = append(t.trailer[:0], p[len(p)-sha256.Size:]...)
		return len(p), nil
	}
	t.trailer = append(t.trailer, p...)
	if over := len(t.trailer) - sha256.Size; over > 0 {
		t.body.Write(t.trailer[:over])
		t.trailer = append(t.trailer[:0], t.trailer[over:]...)
	}
	return len(p), nil
}

// check reports whether the stream ended in a valid trailer. A snapshot
// that etcd streams is its database (a whole number of 512-byte sectors)
// plus the 32-byte sha256, the same test etcdutl's restore makes.
func (t *trailerHash) check(what string) error {
	if t.n%512 != sha256.Size || len(t.trailer) != sha256.Size {
		return fmt.Errorf("%s: %d bytes do not end in etcd's sha256 trailer: the snapshot is truncated or is not an etcd snapshot", what, t.n)
	}
	if got := t.body.Sum(nil); string(got) != string(t.trailer) {
		return fmt.Errorf("%s: sha256 of the database is %x but the snapshot's trailer says %x: the snapshot is damaged or truncated", what, got, t.trailer)
	}
	return nil
}

// hashingWriter counts and hashes what passes through it.
type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newHashingWriter(w io.Writer) *hashingWriter {
	return &hashingWriter{w: w, h: sha256.New()}
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

func (hw *hashingWriter) sum() string { return hex.EncodeToString(hw.h.Sum(nil)) }
