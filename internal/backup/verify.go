package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// Status is what Verify proved about a snapshot file.
type Status struct {
	// Path of the file verified.
	Path string `json:"path"`
	// Size of the file in bytes, trailer included.
	Size int64 `json:"size"`
	// SHA256 of the whole file, hex.
	SHA256 string `json:"sha256"`
	// Revision is the etcd revision the snapshot was taken at.
	Revision int64 `json:"revision"`
	// TotalKeys is the number of live keys.
	TotalKeys int `json:"totalKeys"`
	// Hash is etcdutl's CRC-32C of every bucket's keys and values.
	Hash uint32 `json:"hash"`
	// DBSize is the size of the bolt database inside.
	DBSize int64 `json:"dbSize"`
	// StorageVersion is the etcd storage version recorded in the
	// database; empty for snapshots of etcd before v3.6.
	StorageVersion string `json:"storageVersion,omitempty"`
}

// trialMember is the identity of the scratch member a trial restore makes.
// Nothing is started with it, so the peer URL is never bound.
var trialMember = RestoreOptions{Name: "kup-verify", PeerURL: "http://127.0.0.1:2380", KeepRevision: true}

// Verify proves a snapshot file good: its sha256 trailer matches, etcdutl
// reads it (status: revision, keys, hash, size, after bbolt's own
// consistency check), and a trial restore into a scratch directory
// succeeds and yields the same revision. The scratch directory is removed
// afterwards, whatever happened.
func Verify(path string) (*Status, error) {
	st, err := checkSnapshot(path)
	if err != nil {
		return nil, err
	}
	es, err := etcdStatus(path)
	if err != nil {
		return nil, fmt.Errorf("verifying snapshot %s: etcdutl status: %w", path, err)
	}
	st.Revision, st.TotalKeys, st.Hash, st.DBSize, st.StorageVersion = es.Revision, es.TotalKey, es.Hash, es.TotalSize, es.Version

	scratch, err := os.MkdirTemp("", "kup-verify-")
	if err != nil {
		return nil, fmt.Errorf("verifying snapshot %s: making a scratch directory for the trial restore: %w", path, err)
	}
	defer os.RemoveAll(scratch)
	dataDir := filepath.Join(scratch, "etcd")
	if err := restoreChecked(path, dataDir, trialMember); err != nil {
		return nil, fmt.Errorf("verifying snapshot %s: trial restore into %s: %w", path, dataDir, err)
	}
	restored, err := etcdStatus(filepath.Join(dataDir, "member", "snap", "db"))
	if err != nil {
		return nil, fmt.Errorf("verifying snapshot %s: reading the trial restore: %w", path, err)
	}
	if restored.Revision != es.Revision || restored.TotalKey != es.TotalKey {
		return nil, fmt.Errorf("verifying snapshot %s: the trial restore holds revision %d with %d keys, the snapshot revision %d with %d keys",
			path, restored.Revision, restored.TotalKey, es.Revision, es.TotalKey)
	}
	return st, nil
}

// checkSnapshot reads the whole file once, checking etcd's sha256 trailer
// and hashing the file for the manifest.
func checkSnapshot(path string) (*Status, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening snapshot: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening snapshot: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("snapshot %s is not a regular file", path)
	}
	th, whole := newTrailerHash(), sha256.New()
	if _, err := io.Copy(io.MultiWriter(th, whole), f); err != nil {
		return nil, fmt.Errorf("reading snapshot %s: %w", path, err)
	}
	if err := th.check("snapshot " + path); err != nil {
		return nil, err
	}
	return &Status{Path: path, Size: th.n, SHA256: hex.EncodeToString(whole.Sum(nil))}, nil
}

// etcdStatus is etcdutl's snapshot status. bbolt reports some damage by
// panicking; the sha256 check comes first so such a file rarely gets
// here, and a panic is turned into an error for the rest.
func etcdStatus(path string) (st snapshot.Status, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reading the database failed: %v", r)
		}
	}()
	return snapshot.NewV3(zap.NewNop()).Status(path)
}
