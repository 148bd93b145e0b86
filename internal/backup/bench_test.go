package backup_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	"go.uber.org/zap"

	"github.com/kup-project/kup/internal/backup"
)

// BenchmarkSave fills the sandbox's etcd with about 100 MiB (straight
// through the etcd client, under a prefix Kubernetes never reads) and
// compares kup's Save — stream, trailer check, status, trial restore,
// fsyncs, manifest — with a bare clientv3 snapshot.SaveWithVersion.
// It reports both wall times and their ratio; it never fails on a time.
func BenchmarkSave(b *testing.B) {
	c := cluster(b)
	ctx := context.Background()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL(c)}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() }) // after the data cleanup below: cleanups run last-in first-out
	const prefix, values, valueSize = "/kup-bench/", 200, 512 << 10
	val := make([]byte, valueSize)
	for i := range values {
		rand.Read(val)
		if _, err := cli.Put(ctx, fmt.Sprintf("%s%04d", prefix, i), string(val)); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		resp, err := cli.Delete(ctx, prefix, clientv3.WithPrefix())
		if err == nil {
			_, err = cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
		}
		if err == nil {
			_, err = cli.Defragment(ctx, etcdURL(c))
		}
		if err != nil {
			b.Errorf("cleaning the benchmark data out of etcd: %v", err)
		}
	})

	dir := b.TempDir()
	var kup, plain time.Duration
	var size int64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		path := filepath.Join(dir, fmt.Sprintf("kup-%d.db", i))
		start := time.Now()
		m, err := backup.Save(ctx, saveOptions(c, path))
		if err != nil {
			b.Fatal(err)
		}
		kup += time.Since(start)
		size = m.Size

		bare := filepath.Join(dir, fmt.Sprintf("bare-%d.db", i))
		start = time.Now()
		if _, err := snapshot.SaveWithVersion(ctx, zap.NewNop(), clientv3.Config{Endpoints: []string{etcdURL(c)}, DialTimeout: 5 * time.Second}, bare); err != nil {
			b.Fatal(err)
		}
		plain += time.Since(start)
		for _, p := range []string{path, backup.ManifestPath(path), bare} {
			os.Remove(p)
		}
	}
	n := float64(b.N)
	b.ReportMetric(kup.Seconds()/n, "kup-s/op")
	b.ReportMetric(plain.Seconds()/n, "clientv3-s/op")
	b.ReportMetric(kup.Seconds()/plain.Seconds(), "kup/clientv3")
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}
