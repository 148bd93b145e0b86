package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// DefaultRevisionBump is how far Restore raises the restored revision,
// the figure the Kubernetes documentation gives for etcdutl's
// --bump-revision. Clients that watched the cluster before the restore
// hold resource versions newer than the snapshot's; with the revision
// raised past them and marked compacted, their watches fail with
// "too old resource version" and they relist, instead of waiting for
// revisions that will now mean different objects.
const DefaultRevisionBump = 1_000_000_000

// RestoreOptions are the identity of the member a data directory is
// restored for; they must match the flags etcd is then started with.
type RestoreOptions struct {
	// Name is the member's --name. Default "default" (etcd's default).
	Name string
	// PeerURL is the member's --initial-advertise-peer-urls.
	// Default "http://localhost:2380" (etcd's default).
	PeerURL string
	// InitialCluster is etcd's --initial-cluster. Default Name=PeerURL,
	// a cluster of one: restore every member of a larger cluster from
	// the same snapshot with the full list.
	InitialCluster string
	// ClusterToken is etcd's --initial-cluster-token.
	// Default "etcd-cluster" (etcd's default).
	ClusterToken string
	// KeepRevision restores the snapshot's revision as it is instead of
	// raising it by DefaultRevisionBump and marking it compacted. Only
	// for a data directory no client has watched before.
	KeepRevision bool
}

func (o RestoreOptions) withDefaults() RestoreOptions {
	if o.Name == "" {
		o.Name = "default"
	}
	if o.PeerURL == "" {
		o.PeerURL = "http://localhost:2380"
	}
	if o.InitialCluster == "" {
		o.InitialCluster = o.Name + "=" + o.PeerURL
	}
	if o.ClusterToken == "" {
		o.ClusterToken = "etcd-cluster"
	}
	return o
}

// Restore makes a new etcd data directory from a snapshot file with
// etcdutl's restore. It refuses a dataDir that exists and holds anything
// (the data directory of a running or stopped member is never
// overwritten: restore beside it and point etcd at the new one) and a
// snapshot whose sha256 trailer does not match. On failure it removes
// what it wrote, leaving dataDir as it found it.
func Restore(ctx context.Context, snapshotPath, dataDir string, opts RestoreOptions) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("restoring %s into %s: %w", snapshotPath, dataDir, err)
	}
	if err := checkEmptyDir(dataDir); err != nil {
		return fmt.Errorf("restoring %s: %w", snapshotPath, err)
	}
	if _, err := checkSnapshot(snapshotPath); err != nil {
		return fmt.Errorf("refusing to restore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("restoring %s into %s: %w", snapshotPath, dataDir, err)
	}
	if err := restoreChecked(snapshotPath, dataDir, opts); err != nil {
		return fmt.Errorf("restoring %s into %s: %w", snapshotPath, dataDir, err)
	}
	return nil
}

// checkEmptyDir refuses a data directory that holds anything.
func checkEmptyDir(dataDir string) error {
	d, err := os.Open(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking data directory %s: %w", dataDir, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("checking data directory %s: %w", dataDir, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("refusing to restore into %s: it is not empty (it may be a live member's data directory); restore into a new directory and start etcd on that", dataDir)
	}
	return nil
}

// restoreChecked runs etcdutl's restore on a snapshot whose trailer has
// been checked, and cleans up after a failure.
func restoreChecked(snapshotPath, dataDir string, opts RestoreOptions) (err error) {
	existed := true
	if _, serr := os.Stat(dataDir); errors.Is(serr, os.ErrNotExist) {
		existed = false
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("etcdutl restore failed: %v", r)
		}
		if err != nil {
			cleanDir(dataDir, existed)
		}
	}()
	o := opts.withDefaults()
	cfg := snapshot.RestoreConfig{
		SnapshotPath:        snapshotPath,
		Name:                o.Name,
		OutputDataDir:       dataDir,
		PeerURLs:            []string{o.PeerURL},
		InitialCluster:      o.InitialCluster,
		InitialClusterToken: o.ClusterToken,
	}
	if !o.KeepRevision {
		cfg.RevisionBump, cfg.MarkCompacted = DefaultRevisionBump, true
	}
	if err := snapshot.NewV3(zap.NewNop()).Restore(cfg); err != nil {
		return err
	}
	// etcd warns about, and some versions refuse, a data directory others
	// can read.
	return os.Chmod(dataDir, 0o700)
}

// cleanDir removes what a failed restore wrote: the directory itself if
// the restore created it, else its contents.
func cleanDir(dir string, keep bool) {
	if !keep {
		os.RemoveAll(dir)
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
