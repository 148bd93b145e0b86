package backup_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/sandbox"
)

// The package's tests share one sandbox (a real etcd v3.6.16 under a real
// kube-apiserver v1.36.3 with kwok nodes and the default workloads),
// started once here: each start costs seconds.
var (
	shared    *sandbox.Cluster
	sharedDir string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() || fuzzing() {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "kup-backup-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sharedDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, err := sandbox.Start(ctx, sandbox.Options{
		Name: "backup", Version: "v1.36.3", Nodes: 3, Workloads: "default",
		StateDir: filepath.Join(dir, "state"), DieWithParent: true, Progress: progress{},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test sandbox:", err)
		return 1
	}
	shared = c
	code := m.Run()
	if code != 0 {
		for _, p := range c.Processes {
			fmt.Fprintf(os.Stderr, "--- last lines of %s's log (%s):\n%s\n", p.Name, p.Log, tail(p.Log, 15))
		}
	}
	stopCtx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	if err := c.StopContext(stopCtx); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test sandbox:", err)
		return 1
	}
	return code
}

// fuzzing is true under -fuzz, whose workers each run TestMain and need
// no cluster.
func fuzzing() bool {
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		return true
	}
	f := flag.Lookup("test.fuzzworker")
	return f != nil && f.Value.String() == "true"
}

// cluster returns the shared sandbox, or skips a -short run.
func cluster(t testing.TB) *sandbox.Cluster {
	t.Helper()
	if shared == nil {
		t.Skip("needs a sandbox cluster; skipped with -short")
	}
	return shared
}

func etcdURL(c *sandbox.Cluster) string {
	return fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdClient)
}

func saveOptions(c *sandbox.Cluster, path string) backup.SaveOptions {
	return backup.SaveOptions{
		Etcd:        backup.Endpoint{URL: etcdURL(c)},
		Path:        path,
		ClusterName: "sandbox-" + c.Name, KubernetesVersions: []string{c.Version},
	}
}

var (
	snapOnce sync.Once
	snapPath string
	snapErr  error
)

// sharedSnapshot is one good snapshot of the sandbox, for tests that only
// read one.
func sharedSnapshot(t *testing.T) string {
	t.Helper()
	c := cluster(t)
	snapOnce.Do(func() {
		p := filepath.Join(sharedDir, "shared", "etcd.db")
		_, snapErr = backup.Save(context.Background(), saveOptions(c, p))
		snapPath = p
	})
	if snapErr != nil {
		t.Fatalf("saving the shared snapshot: %v", snapErr)
	}
	return snapPath
}

type progress struct{}

func (progress) Write(p []byte) (int, error) {
	fmt.Fprintf(os.Stderr, "[%s sandbox] %s", time.Now().Format("15:04:05"), p)
	return len(p), nil
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// entries lists a directory's names, for "nothing left behind" checks.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
