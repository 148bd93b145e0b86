package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kup-project/kup/internal/buildinfo"
)

// ManifestKind names the manifest format, so a later kup can tell which
// fields to expect.
const ManifestKind = "kup.etcd-snapshot/v1"

// SaveOptions say which member to snapshot and where the backup goes.
type SaveOptions struct {
	// Etcd is the one member to snapshot.
	Etcd Endpoint
	// Path is the snapshot's final path. Its directory is created with
	// mode 0700 if missing. With EncryptTo the final artifact is
	// Path+".age" and nothing is left at Path. An existing backup is never
	// replaced.
	Path string
	// ClusterName and KubernetesVersions are recorded in the manifest.
	ClusterName        string
	KubernetesVersions []string
	// EncryptTo lists age recipients ("age1…" or ssh public keys). When
	// set the snapshot is verified, then encrypted to all of them, and
	// only the encrypted file is kept: use it for snapshots that leave
	// the host.
	EncryptTo []string
	// Progress, if set, is called with the bytes received so far after
	// each chunk of the stream.
	Progress func(received int64)
}

// Manifest describes a saved backup; it is written as JSON beside it
// ("<artifact>.json").
type Manifest struct {
	Kind string `json:"kind"`
	// File is the base name of the artifact the manifest describes.
	File               string   `json:"file"`
	Cluster            string   `json:"cluster,omitempty"`
	Endpoint           string   `json:"endpoint"`
	EtcdVersion        string   `json:"etcdVersion,omitempty"`
	KubernetesVersions []string `json:"kubernetesVersions,omitempty"`
	// Revision and TotalKeys are etcdutl's status of the snapshot; Hash
	// its CRC-32C of the contents and DBSize the database's size.
	Revision  int64  `json:"revision"`
	TotalKeys int    `json:"totalKeys"`
	Hash      uint32 `json:"etcdHash"`
	DBSize    int64  `json:"dbSize"`
	// SHA256 and Size are of File as it is on disk.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Encrypted says File is an age file for Recipients; the snapshot
	// inside has PlaintextSHA256 and PlaintextSize.
	Encrypted       bool     `json:"encrypted"`
	Recipients      []string `json:"recipients,omitempty"`
	PlaintextSHA256 string   `json:"plaintextSha256,omitempty"`
	PlaintextSize   int64    `json:"plaintextSize,omitempty"`
	// Verified lists the checks the snapshot passed before it was kept.
	Verified   []string  `json:"verified"`
	Created    time.Time `json:"created"`
	Took       string    `json:"took"`
	KupVersion string    `json:"kupVersion"`

	// Path is the artifact's full path (not serialised).
	Path string `json:"-"`
}

// ManifestPath is where the manifest of an artifact lives.
func ManifestPath(artifact string) string { return artifact + ".json" }

// ReadManifest reads the manifest beside an artifact.
func ReadManifest(artifact string) (*Manifest, error) {
	data, err := os.ReadFile(ManifestPath(artifact))
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", artifact, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest %s is corrupt: %w", ManifestPath(artifact), err)
	}
	if m.Kind != ManifestKind {
		return nil, fmt.Errorf("manifest %s: kind %q, want %q", ManifestPath(artifact), m.Kind, ManifestKind)
	}
	m.Path = artifact
	return &m, nil
}

// Save streams a snapshot from one etcd member and keeps it only once it
// is proven good (see the package comment for the sequence). On any
// failure, including a cancelled ctx, nothing is left at the final path
// and the ".part" file is removed.
func Save(ctx context.Context, opts SaveOptions) (*Manifest, error) {
	started := time.Now()
	if opts.Path == "" {
		return nil, errors.New("saving an etcd snapshot: no output path given")
	}
	recipients, err := parseRecipients(opts.EncryptTo)
	if err != nil {
		return nil, fmt.Errorf("saving an etcd snapshot: %w", err)
	}
	encrypt := len(recipients) > 0
	final := opts.Path
	if encrypt {
		final += ".age"
	}
	for _, p := range []string{final, ManifestPath(final)} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("saving an etcd snapshot: %s already exists; a backup is never replaced, choose another path", p)
		}
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, writeError(dir, "creating backup directory", err)
	}

	cli, es, err := connect(ctx, opts.Etcd)
	if err != nil {
		return nil, err
	}
	defer cli.Close()

	// The plaintext is only ever written at "<Path>.part": it is renamed
	// to Path when not encrypting, and removed once encrypted.
	plain := opts.Path + partSuffix
	defer os.Remove(plain)
	if err := stream(ctx, cli, opts, plain); err != nil {
		return nil, err
	}
	st, err := Verify(plain)
	if err != nil {
		return nil, fmt.Errorf("the snapshot streamed from etcd at %s did not verify: %w", opts.Etcd.URL, err)
	}

	m := &Manifest{
		Kind: ManifestKind, File: filepath.Base(final), Path: final,
		Cluster: opts.ClusterName, Endpoint: opts.Etcd.URL, EtcdVersion: es.Version,
		KubernetesVersions: opts.KubernetesVersions,
		Revision:           st.Revision, TotalKeys: st.TotalKeys, Hash: st.Hash, DBSize: st.DBSize,
		Verified:   []string{"sha256 trailer", "etcdutl snapshot status", "trial restore"},
		Created:    started.UTC().Truncate(time.Second),
		KupVersion: buildinfo.String(),
	}
	if encrypt {
		sum, size, err := encryptFile(plain, final, recipients)
		if err != nil {
			return nil, err
		}
		m.Encrypted, m.Recipients = true, opts.EncryptTo
		m.SHA256, m.Size = sum, size
		m.PlaintextSHA256, m.PlaintextSize = st.SHA256, st.Size
	} else {
		if err := os.Rename(plain, final); err != nil {
			return nil, fmt.Errorf("renaming %s to %s: %w", plain, final, err)
		}
		if err := syncDir(dir); err != nil {
			os.Remove(final)
			return nil, err
		}
		m.SHA256, m.Size = st.SHA256, st.Size
	}
	m.Took = time.Since(started).Round(time.Millisecond).String()
	data, err := json.MarshalIndent(m, "", "  ")
	if err == nil {
		err = writeFileAtomic(ManifestPath(final), append(data, '\n'))
	}
	if err != nil {
		// A backup is a snapshot and its manifest, or nothing.
		os.Remove(final)
		_ = syncDir(dir)
		return nil, fmt.Errorf("writing the manifest of %s: %w", final, err)
	}
	return m, nil
}

// stream copies the snapshot stream into part, checking etcd's sha256
// trailer on the way, and fsyncs it.
func stream(ctx context.Context, cli *clientv3.Client, opts SaveOptions, part string) error {
	ep := opts.Etcd.URL
	resp, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return fmt.Errorf("requesting a snapshot from etcd at %s: %w", ep, err)
	}
	// Closing the stream also ends the client's goroutine that feeds it.
	defer resp.Snapshot.Close()
	f, err := createPart(opts.Path)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(part)
		return err
	}
	th := newTrailerHash()
	w := io.MultiWriter(f, th)
	buf := make([]byte, 1<<20)
	var received int64
	for {
		n, rerr := resp.Snapshot.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return fail(writeError(part, "writing", err))
			}
			received += int64(n)
			if opts.Progress != nil {
				opts.Progress(received)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				rerr = ctx.Err()
			}
			return fail(fmt.Errorf("receiving the snapshot from etcd at %s after %s: %w", ep, humanBytes(received), rerr))
		}
	}
	if err := th.check("snapshot streamed from etcd at " + ep); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(writeError(part, "fsyncing", err))
	}
	if err := f.Close(); err != nil {
		os.Remove(part)
		return writeError(part, "closing", err)
	}
	return nil
}
