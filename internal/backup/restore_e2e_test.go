package backup_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/sandbox"
)

// TestSaveDeleteRestore is the acceptance test: back up the sandbox,
// delete a namespace, restore, and find the namespace and its Deployments
// and PodDisruptionBudgets back with the same UIDs.
func TestSaveDeleteRestore(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs := c.Client()

	dir := filepath.Join(t.TempDir(), "backups", "nightly")
	path := filepath.Join(dir, "etcd.db")
	started := time.Now().UTC().Truncate(time.Second)
	m, err := backup.Save(ctx, saveOptions(c, path))
	if err != nil {
		t.Fatalf("Save: %v", err)
	}

	// The file, its directory and the manifest.
	assertMode(t, dir, 0o700|os.ModeDir)
	assertMode(t, path, 0o600)
	assertMode(t, backup.ManifestPath(path), 0o600)
	if got, want := entries(t, dir), []string{"etcd.db", "etcd.db.json"}; !reflect.DeepEqual(got, want) {
		t.Errorf("backup directory holds %v, want %v", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Path != path || m.File != "etcd.db" || m.Size != fi.Size() || m.SHA256 != sha256File(t, path) {
		t.Errorf("manifest path/file/size/sha256 = %s/%s/%d/%s, want %s/etcd.db/%d/%s", m.Path, m.File, m.Size, m.SHA256, path, fi.Size(), sha256File(t, path))
	}
	if m.Kind != backup.ManifestKind || m.Cluster != "sandbox-backup" || m.Endpoint != etcdURL(c) ||
		!reflect.DeepEqual(m.KubernetesVersions, []string{"v1.36.3"}) || m.EtcdVersion != strings.TrimPrefix(c.EtcdVersion, "v") ||
		m.Revision <= 0 || m.TotalKeys <= 0 || m.DBSize <= 0 || m.Encrypted || m.KupVersion == "" ||
		m.Created.Before(started) || m.Created.After(time.Now()) || len(m.Verified) != 3 {
		t.Errorf("manifest fields wrong: %+v", m)
	}
	onDisk, err := backup.ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(onDisk, m) {
		t.Errorf("manifest on disk %+v differs from the one returned %+v", onDisk, m)
	}
	st, err := backup.Verify(path)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if st.Revision != m.Revision || st.TotalKeys != m.TotalKeys || st.Hash != m.Hash || st.SHA256 != m.SHA256 || st.Revision <= 0 || st.TotalKeys <= 0 {
		t.Errorf("Verify = %+v, manifest %+v", st, m)
	}

	// Restore refuses the live data directory.
	live := filepath.Join(c.Dir, "etcd")
	if err := backup.Restore(ctx, path, live, backup.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Restore into the live data directory: got %v, want a refusal", err)
	}

	// What the backup holds, then the loss.
	before := uidsIn(ctx, t, c, "shop")
	if len(before) < 9 { // namespace, four Deployments, four PDBs
		t.Fatalf("shop holds only %v", before)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, "shop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, 3*time.Minute, "namespace shop gone", func() error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return errors.New("still there")
		}
		return err
	})

	// A failing restore puts the old data back: shop stays deleted.
	err = c.RestoreEtcd(ctx, func(ctx context.Context, dataDir string, _ sandbox.EtcdMember) error {
		if err := os.WriteFile(filepath.Join(dataDir, "half-done"), []byte("x"), 0o600); err != nil {
			return err
		}
		return errors.New("simulated failure half-way")
	})
	if err == nil || !strings.Contains(err.Error(), "old data is back") {
		t.Fatalf("RestoreEtcd with a failing restore: got %v, want the rollback reported", err)
	}
	if _, err := c.Client().CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after a rolled-back restore, shop: got %v, want NotFound (the live data)", err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "etcd", "half-done")); err == nil {
		t.Errorf("the failed restore's directory is still the data directory")
	}

	// The real restore.
	err = c.RestoreEtcd(ctx, func(ctx context.Context, dataDir string, mem sandbox.EtcdMember) error {
		return backup.Restore(ctx, path, dataDir, backup.RestoreOptions{
			Name: mem.Name, PeerURL: mem.PeerURL, InitialCluster: mem.InitialCluster, ClusterToken: mem.ClusterToken,
		})
	})
	if err != nil {
		t.Fatalf("RestoreEtcd: %v", err)
	}
	after := uidsIn(ctx, t, c, "shop")
	if !reflect.DeepEqual(after, before) {
		t.Errorf("after the restore shop holds\n%v\nwant\n%v", after, before)
	}
	ns, err := c.Client().CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	if err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("namespace shop after restore: %v, deleting=%v", err, ns != nil && ns.DeletionTimestamp != nil)
	}
	var aside, failed int
	for _, name := range entries(t, c.Dir) {
		aside += b2i(strings.HasPrefix(name, "etcd.before-restore-"))
		failed += b2i(strings.HasPrefix(name, "etcd.failed-restore-"))
	}
	if aside != 1 || failed != 1 {
		t.Errorf("sandbox directory has %v, want one etcd.before-restore-* and one etcd.failed-restore-* kept", entries(t, c.Dir))
	}

	// The restored revision was raised past every revision clients saw,
	// and the cluster takes writes.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL(c)}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "/registry/namespaces/shop")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Revision < m.Revision+backup.DefaultRevisionBump {
		t.Errorf("revision after restore %d, want at least %d", resp.Header.Revision, m.Revision+backup.DefaultRevisionBump)
	}
	if _, err := c.Client().CoreV1().Namespaces().Create(ctx, nsObject("after-restore"), metav1.CreateOptions{}); err != nil {
		t.Errorf("creating a namespace after the restore: %v", err)
	}
}

// uidsIn maps "kind/name" to UID for a namespace and its Deployments and
// PodDisruptionBudgets.
func uidsIn(ctx context.Context, t *testing.T, c *sandbox.Cluster, ns string) map[string]types.UID {
	t.Helper()
	cs := c.Client()
	out := map[string]types.UID{}
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	out["namespace/"+ns] = n.UID
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		out["deployment/"+d.Name] = d.UID
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pdbs.Items {
		out["pdb/"+p.Name] = p.UID
	}
	return out
}

func waitUntil(ctx context.Context, t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModePerm | os.ModeDir); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nsObject(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
