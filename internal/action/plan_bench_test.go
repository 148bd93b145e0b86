package action_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/inventory"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

var planCPUProfile = flag.String("plan.cpuprofile", "", "BenchmarkPlan1000Nodes: write a CPU profile of the plans alone (not the sandbox's set-up) to this file")

// heapPeak samples the heap in use until stopped and returns its peak.
// runtime.ReadMemStats stops the world, so it samples every 20ms, not
// more often: fine enough for a run of seconds, cheap enough not to skew it.
func heapPeak() (stop func() uint64) {
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// BenchmarkPlan1000Nodes measures `kup plan --to v1.37.2` (its default
// --max-unavailable 10%) on a sandbox of
// 1,000 nodes and 30,000 pods (300 Deployments of 100 replicas, each with a
// 10% PodDisruptionBudget — sandbox.ScaleWorkloads): wall time, peak heap
// in use, bytes allocated and API requests per plan. The sandbox takes
// minutes to settle, so this runs only with -bench:
//
//	go test ./internal/action/ -run '^$' -bench Plan1000 -benchtime 3x -timeout 100m [-plan.cpuprofile FILE]
//
// The workloads are applied after Start and the benchmark waits for every
// pod to be Running (kwok's ready stage) and then for the cluster to be
// quiet — a user plans against a cluster in steady state, and while kwok
// is still writing 30,000 pod statuses the apiserver and this machine's two
// cores are busy with that, not with the plan. If the pods are not all
// Running within 45 minutes it measures anyway and says so.
func BenchmarkPlan1000Nodes(b *testing.B) {
	c := sandboxtest.Start(b, sandbox.Options{Version: "v1.36.3", Nodes: 1000})
	ctx := context.Background()
	if err := c.Apply(ctx, sandbox.ScaleWorkloads(300, 100)...); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(45 * time.Minute)
	polls := 0
	for {
		l, err := c.Client().CoreV1().Pods("bench").List(ctx, metav1.ListOptions{ResourceVersion: "0", FieldSelector: "status.phase=Running"})
		if err != nil {
			b.Fatal(err)
		}
		if len(l.Items) >= 30000 {
			break
		}
		if time.Now().After(deadline) {
			b.Logf("only %d of 30000 pods Running after 45 minutes; measuring a cluster that is still busy", len(l.Items))
			break
		}
		// Every 2 minutes: go test truncates a long benchmark log, and the
		// figures are at its end.
		if polls++; polls%6 == 0 {
			b.Logf("%d of 30000 pods Running", len(l.Items))
		}
		time.Sleep(20 * time.Second)
	}
	// kwok's last status writes and the controllers' reaction to them.
	time.Sleep(30 * time.Second)
	var requests int64
	var findings, waves, runs int
	var slowest time.Duration
	var peak, allocated uint64
	if *planCPUProfile != "" {
		f, err := os.Create(*planCPUProfile)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	// As `kup plan --to v1.37.2` runs it: --max-unavailable defaults to 10%.
	pl := planFor(c, "v1.37.2")
	pl.MaxUnavailable = intstr.FromString("10%")
	// b.Loop runs this function once, so the sandbox is started once.
	for b.Loop() {
		// Each plan starts from a collected heap, as a kup process does;
		// the previous plan's garbage would otherwise count in its peak.
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		stop := heapPeak()
		b.StartTimer()
		start := time.Now()
		res, err := pl.Run(ctx)
		slowest = max(slowest, time.Since(start))
		b.StopTimer()
		peak = max(peak, stop())
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		allocated = max(allocated, after.TotalAlloc-before.TotalAlloc)
		b.StartTimer()
		var re *action.ResultError
		if err != nil && !(errors.As(err, &re) && re.Code == action.CodeBlockers) {
			b.Fatal(err)
		}
		requests, findings, waves = res.Requests, len(res.Findings), len(res.Rollout.Waves)
		runs++
	}
	perOp := b.Elapsed() / time.Duration(runs)

	// The read alone, for the share of the plan it takes.
	runtime.GC()
	stop := heapPeak()
	start := time.Now()
	snap, err := inventory.Read(ctx, c.RESTConfig(), inventory.Options{Scope: inventory.ScopeFull, Kubectl: "-"})
	read := time.Since(start)
	readPeak := stop()
	if err != nil {
		b.Fatal(err)
	}

	b.ReportMetric(float64(perOp.Milliseconds()), "ms/op")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(allocated)/(1<<20), "alloc-MiB/op")
	b.ReportMetric(float64(requests), "requests/op")
	b.ReportMetric(float64(read.Milliseconds()), "read-ms")
	b.Logf("1,000 nodes / %d pods: %s per plan (slowest %s), peak heap %d MiB, %d MiB allocated per plan, %d API requests, %d findings, %d waves; the snapshot read alone: %s, peak heap %d MiB",
		len(snap.Pods), perOp.Round(time.Millisecond), slowest.Round(time.Millisecond), peak>>20, allocated>>20, requests, findings, waves, read.Round(time.Millisecond), readPeak>>20)
}
