package action_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/sandbox"
)

// BenchmarkBackup1GiB compares `kup backup` (action.Backup: stream,
// sha256 trailer check, fsync, etcdutl status, a trial restore, rename,
// directory fsync, manifest) with what `etcdctl snapshot save` does (a
// bare clientv3 snapshot.SaveWithVersion: stream, fsync, rename) on a
// standalone etcd — the sandbox's cached binary — holding 1 GiB: 1,000
// keys of 1 MiB of random bytes. It reports both wall times and their
// ratio and never fails on a time. Run it alone:
//
//	go test -run '^$' -bench BenchmarkBackup1GiB -benchtime 1x ./internal/action/
func BenchmarkBackup1GiB(b *testing.B) {
	if testing.Short() {
		b.Skip("fills an etcd with 1 GiB; skipped with -short")
	}
	ctx := context.Background()
	url := startEtcd(b)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()

	const keys, valueSize = 1000, 1 << 20
	filled := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range keys {
		g.Go(func() error {
			val := make([]byte, valueSize)
			rand.Read(val)
			_, err := cli.Put(gctx, fmt.Sprintf("/bench/%04d", i), string(val))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatalf("filling etcd: %v", err)
	}
	b.Logf("filled etcd with %d × %d bytes in %s", keys, valueSize, time.Since(filled).Round(time.Millisecond))

	dir := b.TempDir()
	var kup, plain time.Duration
	var size int64
	for i := 0; b.Loop(); i++ {
		path := filepath.Join(dir, fmt.Sprintf("kup-%d.db", i))
		start := time.Now()
		m, err := (&action.Backup{Etcd: backup.Endpoint{URL: url}, Path: path, ClusterName: "bench"}).Run(ctx)
		if err != nil {
			b.Fatal(err)
		}
		kup += time.Since(start)
		size = m.Size

		bare := filepath.Join(dir, fmt.Sprintf("etcdctl-%d.db", i))
		start = time.Now()
		if _, err := snapshot.SaveWithVersion(ctx, zap.NewNop(), clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second}, bare); err != nil {
			b.Fatal(err)
		}
		plain += time.Since(start)
		for _, p := range []string{path, backup.ManifestPath(path), bare} {
			os.Remove(p)
		}
	}
	n := float64(b.N)
	b.ReportMetric(kup.Seconds()/n, "kup-s/op")
	b.ReportMetric(plain.Seconds()/n, "etcdctl-s/op")
	b.ReportMetric(kup.Seconds()/plain.Seconds(), "kup/etcdctl")
	b.ReportMetric(float64(size)/(1<<30), "GiB")
}

// startEtcd runs the sandbox's etcd binary alone in a temporary
// directory until the benchmark ends, and returns its client URL.
func startEtcd(b *testing.B) string {
	b.Helper()
	bins, err := sandbox.NewBinaries(nil)
	if err != nil {
		b.Fatal(err)
	}
	bin, err := bins.Etcd(context.Background(), sandbox.DefaultEtcdVersion)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", port(b)), fmt.Sprintf("http://127.0.0.1:%d", port(b))
	cmd := exec.Command(bin, "--name", "bench", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "bench="+peer,
		"--quota-backend-bytes", strconv.Itoa(8<<30), "--log-level", "warn")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(client + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return client
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("etcd at %s not healthy after 30s: %v (log %s)", client, err, logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func port(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
