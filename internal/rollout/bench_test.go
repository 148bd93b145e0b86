package rollout_test

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubectl/pkg/util/podutils"

	"github.com/kup-project/kup/internal/drain"
	"github.com/kup-project/kup/internal/plan"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// The benchmark's knobs. The defaults are the rollout issue's
// measurement; smaller sizes are for finding problems quickly.
var (
	benchNodes          = flag.Int("rollout.nodes", 200, "BenchmarkRolloutStrategies: sandbox nodes (workloads scale with them, about 20 pods a node)")
	benchMaxUnavailable = flag.String("rollout.max-unavailable", "20%", "BenchmarkRolloutStrategies: kup's --max-unavailable")
	benchSeqNodes       = flag.Int("rollout.sequential-nodes", 0, "BenchmarkRolloutStrategies: roll only the first N nodes sequentially and extrapolate linearly to all (0: roll all)")
	benchBatch          = flag.Int("rollout.batch", 0, "BenchmarkRolloutStrategies: fixed batch size when the waves run is skipped (default: kup's widest wave)")
	benchUpgradeTime    = flag.Duration("rollout.upgrade-time", 15*time.Second, "BenchmarkRolloutStrategies: simulated node upgrade time")
	benchPodReady       = flag.Duration("rollout.pod-ready", 5*time.Second, "BenchmarkRolloutStrategies: pod ready delay")
	benchCompareOverlap = flag.Bool("rollout.compare-overlap", false, "BenchmarkRolloutStrategies: also roll with kup's waves not overlapping (rollout.Options.Overlap false), for the ratio")
	benchBudgetRounds   = flag.Int("rollout.budget-rounds", 1, "BenchmarkRolloutStrategies: kup's --budget-rounds for the waves (0: chosen from measurements, as kup apply --budget-rounds 0)")
	benchReplace        = flag.Bool("rollout.measure-replacement", true, "BenchmarkRolloutStrategies: before kup's waves, time how long this sandbox takes to replace every pod at once (delete all, wait for all replacements Ready), the control plane's own floor for any strategy")
	benchContinuous     = flag.Bool("rollout.continuous", true, "BenchmarkRolloutStrategies: kup's waves admit nodes as budgets come back (rollout.Options.Continuous, kup's default); false plans the next wave once the newest wave's drains are done")
	benchCompareBatched = flag.Bool("rollout.compare-continuous", false, "BenchmarkRolloutStrategies: also roll with kup's waves overlapping but not continuous (the next wave planned once the newest wave's drains are done), for the ratio")
	benchWake           = flag.Bool("rollout.wake-on-budgets", true, "BenchmarkRolloutStrategies: with continuous admission, look again as soon as a PDB's budget grows (an informer), not only every second and when a node is past its drain or done")
	benchCompareRounds  = flag.Int("rollout.compare-rounds", 0, "BenchmarkRolloutStrategies: also roll with kup's waves (as configured) but with this --budget-rounds (0: no such run), for the ratio: a node is admitted while its PDBs have up to rounds-1 budgets' worth of pods already promised, its drain waiting for the rest")
	benchCompareList    = flag.Bool("rollout.compare-drain-list", false, "BenchmarkRolloutStrategies: also roll with kup's waves (as configured) but with drains waiting for evicted pods by LISTing their node's pods every half second instead of reading the live cache, for the ratio")
	benchKwokWorkers    = flag.Int("rollout.kwok-pod-workers", 0, "BenchmarkRolloutStrategies: kwok's pod workers (podPlayStageParallelism: pod transitions made at once for all simulated kubelets together) in every sandbox (0: the sandbox's default)")
	benchCompareKwok    = flag.Int("rollout.compare-kwok-pod-workers", 0, "BenchmarkRolloutStrategies: also roll with kup's waves (as configured) on a sandbox whose kwok has this many pod workers (0: no such run), for the ratio")
	benchGOGC           = flag.Int("rollout.gogc", 0, "BenchmarkRolloutStrategies: GOGC of every sandbox's processes (0: this environment's, Go's 100 if unset)")
	benchCompareGOGC    = flag.Int("rollout.compare-gogc", 0, "BenchmarkRolloutStrategies: also roll with kup's waves (as configured) on a sandbox whose processes run with this GOGC (0: no such run), for the ratios of makespan, CPU and peak memory")
	benchIdle           = flag.Duration("rollout.idle-cpu", 20*time.Second, "BenchmarkRolloutStrategies: before kup's waves, measure the settled sandbox's CPU use at rest for this long (0: not measured), for the work floor")
	benchRecord         = flag.String("rollout.record", "", "BenchmarkRolloutStrategies: directory to write each run's Result (JSON, with per-node step times) and event log to")
)

// mixFits says why the mix scaled to nodes cannot all run on that many
// sandbox nodes, or nil when it can. Without it a run too small for its
// pods waited the full settle deadline (10 minutes) for pods the scheduler
// could never place. The sum of requests against the sum of allocatable
// is exact here: every pod asks the same, and a node's CPU is a whole
// number of pods' requests.
func mixFits(nodes int) error {
	alloc := sandbox.NodeAllocatable()
	need := corev1.ResourceList{}
	for _, w := range sandbox.RolloutMix(nodes) {
		for name, q := range w.PodRequests() {
			sum := need[name]
			sum.Add(*resource.NewMilliQuantity(q.MilliValue()*int64(w.Replicas), q.Format))
			need[name] = sum
		}
	}
	for _, name := range slices.Sorted(maps.Keys(need)) {
		q, per := need[name], alloc[name]
		if have := per.MilliValue() * int64(nodes); q.MilliValue() > have {
			least := (q.MilliValue() + per.MilliValue() - 1) / per.MilliValue()
			return fmt.Errorf("-rollout.nodes %d: the mix's pods request %s of %s, and %d nodes offer %s (%s each); use -rollout.nodes %d or more",
				nodes, q.String(), name, nodes, resource.NewMilliQuantity(have, per.Format).String(), per.String(), least)
		}
	}
	return nil
}

func TestBenchMixFits(t *testing.T) {
	for _, tc := range []struct {
		nodes int
		want  string // "" when the mix fits
	}{
		// 387 pods of 100m: 38.7 CPUs, and 10 nodes of 3800m offer 38.
		{nodes: 10, want: "-rollout.nodes 10: the mix's pods request 38700m of cpu, and 10 nodes offer 38 (3800m each); use -rollout.nodes 11 or more"},
		{nodes: 11},
		{nodes: 20},
		{nodes: 200},
	} {
		err := mixFits(tc.nodes)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("mixFits(%d) = %q, want %q", tc.nodes, got, tc.want)
		}
	}
}

// benchRun is one strategy's figures.
type benchRun struct {
	Strategy rollout.Strategy `json:"strategy"`
	// Nodes rolled, and the nodes of the sandbox (more when a subset was
	// rolled and the figures extrapolated).
	Rolled   int           `json:"rolled"`
	Nodes    int           `json:"nodes"`
	Makespan time.Duration `json:"makespan"`
	// Extrapolated is the makespan scaled to all nodes (Rolled < Nodes).
	Extrapolated time.Duration `json:"extrapolated,omitempty"`
	Waves        int           `json:"waves"`
	// Planned is the number of waves plan.PlanWaves makes of the cluster
	// as the run found it.
	Planned       int     `json:"planned"`
	WidestWave    int     `json:"widestWave"`
	Refusals      int     `json:"refusals"`
	Evictions     int     `json:"evictions"`
	EvictablePods int     `json:"evictablePods"`
	Violations    int     `json:"violations"`
	Worst         float64 `json:"worstAvailability"`
	WorstWhich    string  `json:"worstWhich"`
	// PerNode is the median node duration (cordon → done); Steps the
	// median of each step.
	PerNode time.Duration            `json:"perNode"`
	Steps   map[string]time.Duration `json:"steps"`
	// Canary is the duration of the first wave's node when it went alone.
	Canary time.Duration `json:"canary"`
	// Between is the median time from one wave's end to the next one's
	// start (health gate, pending taints, re-read, planning).
	Between time.Duration `json:"between"`
	// WaveTime is the median wave, first cordon to last uncordon.
	WaveTime time.Duration `json:"waveTime"`
	// Bound is plan.LowerBound on the cluster as the run found it, with
	// perNode and podReady zero (waves only).
	Bound plan.Bound `json:"bound"`
	// Replace is how long the sandbox took to replace every pod of the
	// mix when all were deleted at once, with no node down (0: not
	// measured).
	Replace time.Duration `json:"replace,omitempty"`
	// BudgetBack is the median time an eviction kept a PDB of budget 1
	// at 0 disruptions allowed (the replacement scheduled, started, Ready
	// and counted by the disruption controller): with PerNode, the pace
	// the control plane kept under the rollout's load.
	BudgetBack time.Duration `json:"budgetBack,omitempty"`
	// CPU is the CPU time each sandbox process, and this process (kup and
	// the benchmark's watcher), used during the rollout; Cores the
	// machine's.
	CPU   map[string]time.Duration `json:"cpu,omitempty"`
	Cores int                      `json:"cores,omitempty"`
	// Idle is the CPU time the same processes used at rest, settled
	// before the rollout, over IdleOver (0: not measured).
	Idle     map[string]time.Duration `json:"idle,omitempty"`
	IdleOver time.Duration            `json:"idleOver,omitempty"`
	// Peak is each sandbox process's peak resident memory (VmHWM) in
	// bytes, read after the rollout: seeding and settling included.
	Peak map[string]int64 `json:"peak,omitempty"`
	// in is the planner's input as the run found it, for
	// plan.OverlapBound once the per-node time is known.
	in plan.Input
}

// fullMakespan is the makespan for all nodes: measured, or extrapolated.
func (r *benchRun) fullMakespan() time.Duration {
	if r.Extrapolated > 0 {
		return r.Extrapolated
	}
	return r.Makespan
}

// BenchmarkRolloutStrategies is the rollout issue's measurement: on fresh
// sandboxes of 200 nodes (control plane v1.37.2, kubelets v1.36.3) with
// about 4,000 pods in 40 PDB-protected Deployments, pods Ready 5 s after
// they start and a node upgrade of 15 s, it rolls every node to v1.37.2
// with kup's waves, with a sequential loop (one node at a time, as a
// drain script) and with fixed batches as wide as kup's widest wave that
// ignore PDB structure, one after the other in this process. An
// independent Watcher counts PDB violations and the worst availability.
// It prints the table and kup's ratios to its lower bound, the
// sequential loop and the fixed batches. It never fails on a time.
//
//	go test ./internal/rollout/ -run '^$' -bench RolloutStrategies -benchtime 1x -timeout 4h
//	go test ./internal/rollout/ -run '^$' -bench RolloutStrategies -benchtime 1x -rollout.nodes 40
//	    -rollout.sequential-nodes 30 (roll 30 nodes one at a time and extrapolate)
func BenchmarkRolloutStrategies(b *testing.B) {
	if _, err := intstr.GetScaledValueFromIntOrPercent(ptrTo(intstr.Parse(*benchMaxUnavailable)), 100, false); err != nil {
		b.Fatalf("-rollout.max-unavailable %q: %v", *benchMaxUnavailable, err)
	}
	if err := mixFits(*benchNodes); err != nil {
		b.Fatal(err)
	}
	runs := map[rollout.Strategy]*benchRun{}
	b.Run("waves", func(b *testing.B) {
		runs[rollout.StrategyWaves] = benchStrategy(b, rollout.StrategyWaves, 0)
	})
	if *benchCompareBatched {
		b.Run("waves-batched", func(b *testing.B) {
			runs[strategyBatched] = benchStrategy(b, strategyBatched, 0)
		})
	}
	if *benchCompareRounds > 0 {
		b.Run(string(strategyRounds), func(b *testing.B) {
			runs[strategyRounds] = benchStrategy(b, strategyRounds, 0)
		})
	}
	if *benchCompareList {
		b.Run(string(strategyDrainList), func(b *testing.B) {
			rollout.SetDrainFromCache(false)
			defer rollout.SetDrainFromCache(true)
			runs[strategyDrainList] = benchStrategy(b, strategyDrainList, 0)
		})
	}
	if *benchCompareKwok > 0 {
		b.Run(string(strategyKwokWorkers), func(b *testing.B) {
			runs[strategyKwokWorkers] = benchStrategy(b, strategyKwokWorkers, 0)
		})
	}
	if *benchCompareGOGC > 0 {
		b.Run(string(strategyGOGC), func(b *testing.B) {
			runs[strategyGOGC] = benchStrategy(b, strategyGOGC, 0)
		})
	}
	if *benchCompareOverlap {
		b.Run("waves-no-overlap", func(b *testing.B) {
			runs[strategyNoOverlap] = benchStrategy(b, strategyNoOverlap, 0)
		})
	}
	b.Run("sequential", func(b *testing.B) {
		runs[rollout.StrategySequential] = benchStrategy(b, rollout.StrategySequential, 0)
	})
	b.Run("fixed-batch", func(b *testing.B) {
		k := *benchBatch
		if w := runs[rollout.StrategyWaves]; w != nil && k == 0 {
			k = w.WidestWave
		}
		if k == 0 {
			b.Skip("no batch size: run the waves too, or pass -rollout.batch")
		}
		runs[rollout.StrategyFixedBatch] = benchStrategy(b, rollout.StrategyFixedBatch, k)
	})
	// On stdout: a benchmark with sub-benchmarks does not print its own log.
	fmt.Println(benchTable(runs))
}

func ptrTo[T any](v T) *T { return &v }

// kwokWorkersName says how many pod workers the sandboxes' kwok has.
func kwokWorkersName(n int) string {
	if n == 0 {
		return "the sandbox's default"
	}
	return fmt.Sprint(n)
}

// strategyNoOverlap names, in the benchmark only, kup's waves run with
// rollout.Options.Overlap off; StrategyWaves runs with it on, as kup
// apply does by default.
const strategyNoOverlap rollout.Strategy = "waves-no-overlap"

// strategyBatched names, in the benchmark only, kup's waves overlapping
// but not continuous: the next wave is planned once the newest wave's
// drains are done (kup's default before --continuous).
const strategyBatched rollout.Strategy = "waves-batched"

// strategyRounds names, in the benchmark only, kup's waves run as
// configured but with -rollout.compare-rounds budget rounds.
const strategyRounds rollout.Strategy = "waves-rounds"

// strategyDrainList names kup's waves run as configured but with drains
// polling a LIST of their node's pods (-rollout.compare-drain-list).
const strategyDrainList rollout.Strategy = "waves-drain-list"

// strategyKwokWorkers names kup's waves run as configured on a sandbox
// whose kwok has -rollout.compare-kwok-pod-workers pod workers.
const strategyKwokWorkers rollout.Strategy = "waves-kwok-workers"

// strategyGOGC names kup's waves run as configured on a sandbox whose
// processes run with GOGC -rollout.compare-gogc.
const strategyGOGC rollout.Strategy = "waves-gogc"

// gogcName says what GOGC the sandboxes' processes have.
func gogcName(n int) string {
	if n != 0 {
		return fmt.Sprint(n)
	}
	if v := os.Getenv("GOGC"); v != "" {
		return v + " (this environment's)"
	}
	return "Go's default, 100"
}

// benchStrategy starts a fresh sandbox, seeds the mix, rolls it with the
// strategy and reports the run's figures as metrics.
func benchStrategy(b *testing.B, strategy rollout.Strategy, batch int) *benchRun {
	b.StopTimer()
	n := *benchNodes
	workers := *benchKwokWorkers
	if strategy == strategyKwokWorkers {
		workers = *benchCompareKwok
	}
	gogc := *benchGOGC
	if strategy == strategyGOGC {
		gogc = *benchCompareGOGC
	}
	c := sandboxtest.Start(b, sandbox.Options{Version: "v1.37.2", NodeVersion: "v1.36.3", Nodes: n, Workloads: "none", PodReadyDelay: *benchPodReady, KwokPodWorkers: workers, GOGC: gogc})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Hour)
	defer cancel()
	cs := c.Client()
	ws := sandbox.RolloutMix(n)
	pods := 0
	for _, w := range ws {
		pods += int(w.Replicas)
	}
	if err := c.Apply(ctx, ws...); err != nil {
		b.Fatal(err)
	}
	if err := settle(ctx, cs, 10*time.Minute); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: %d nodes, %d pods in %d Deployments settled", strategy, n, pods, len(ws))

	var replace time.Duration
	if strategy == rollout.StrategyWaves && *benchReplace {
		var rerr error
		if replace, rerr = replaceAll(ctx, cs, "bench", pods); rerr != nil {
			b.Fatal(rerr)
		}
		b.Logf("%s: replacing all %d pods at once took %s", strategy, pods, replace.Round(100*time.Millisecond))
		if err := settle(ctx, cs, 10*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	policy := plan.Policy{MaxUnavailable: intstr.Parse(*benchMaxUnavailable)}
	if strategy == rollout.StrategyWaves {
		policy.BudgetRounds = max(*benchBudgetRounds, 1)
	}
	if strategy == strategyRounds {
		policy.BudgetRounds = *benchCompareRounds
	}
	in, err := planInput(ctx, cs, policy)
	if err != nil {
		b.Fatal(err)
	}
	bound := plan.LowerBound(in, 0, 0)
	// The plan the planner would make of the cluster as it stands: its
	// waves against the bound tell the planner's packing apart from what
	// executing it costs.
	planned := len(plan.PlanWaves(in).Waves)

	// The comparison runs are kup's waves with one thing changed.
	asConfigured := strategy == rollout.StrategyWaves || strategy == strategyRounds || strategy == strategyDrainList || strategy == strategyKwokWorkers || strategy == strategyGOGC
	opts := rollout.Options{
		Target: "v1.37.2", Policy: policy, Strategy: strategy, BatchSize: batch,
		Drain: drain.Options{Timeout: 15 * time.Minute}, Overlap: asConfigured || strategy == strategyBatched,
		AutoBudgetRounds: strategy == rollout.StrategyWaves && *benchBudgetRounds == 0,
		Continuous:       asConfigured && *benchContinuous,
	}
	if asConfigured || strategy == strategyNoOverlap || strategy == strategyBatched {
		opts.Strategy = rollout.StrategyWaves
	}
	rollout.SetWakeOnBudgets(*benchWake)
	rolled := n
	if strategy == rollout.StrategySequential && *benchSeqNodes > 0 && *benchSeqNodes < n {
		rolled = *benchSeqNodes
		for i := range rolled {
			opts.Nodes = append(opts.Nodes, sandbox.NodeName(i))
		}
	}
	var events []rollout.Event
	var created []time.Time // of every evicted pod
	var evMu sync.Mutex
	opts.Progress = func(e rollout.Event) {
		evMu.Lock()
		events = append(events, e)
		evMu.Unlock()
		// Live, on stderr: a run takes minutes and b.Log prints at the end.
		if e.Node == "" && (e.Step == rollout.StepWave || e.Step == rollout.StepFailed) {
			fmt.Fprintf(os.Stderr, "[%s %s] %s: %s\n", e.Time.Format("15:04:05.000"), b.Name(), e.Step, e.Message)
		}
	}

	// Each accepted eviction, for a look at where a drain spends its time.
	opts.Drain.Evicted = func(node string, p *corev1.Pod) {
		evMu.Lock()
		// With the pod's creation: a pod created after the rollout started
		// is a replacement evicted a second time.
		events = append(events, rollout.Event{Time: time.Now(), Node: node, Step: "evicted",
			Message: p.Namespace + "/" + p.Name + " created " + p.CreationTimestamp.UTC().Format(time.RFC3339)})
		created = append(created, p.CreationTimestamp.Time)
		evMu.Unlock()
	}

	w, err := rollout.Watch(ctx, cs)
	if err != nil {
		b.Fatal(err)
	}
	// Every change of a budget: with -rollout.record in the event log (a
	// PDB's pods evicted one after another wait for it, and the time from
	// a budget's return to the next eviction is kup's to spend), and for
	// the PDBs of budget 1 how long each eviction kept them at 0.
	var budgetBack []time.Duration
	stopBudgets := func() {}
	{
		spent := map[string]time.Time{} // PDBs of budget 1 now at 0, since
		bctx, cancel := context.WithCancel(ctx)
		f := informers.NewSharedInformerFactory(cs, 0)
		stopBudgets = func() { cancel(); f.Shutdown() } // before the log is read
		defer stopBudgets()
		if _, err := f.Policy().V1().PodDisruptionBudgets().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(old, cur any) {
				o, ok1 := old.(*policyv1.PodDisruptionBudget)
				c, ok2 := cur.(*policyv1.PodDisruptionBudget)
				if !ok1 || !ok2 || o.Status.DisruptionsAllowed == c.Status.DisruptionsAllowed {
					return
				}
				now := time.Now()
				evMu.Lock()
				defer evMu.Unlock()
				if c.Status.ExpectedPods-c.Status.DesiredHealthy == 1 {
					if c.Status.DisruptionsAllowed == 0 {
						spent[c.Name] = now
					} else if since, ok := spent[c.Name]; ok {
						budgetBack = append(budgetBack, now.Sub(since))
						delete(spent, c.Name)
					}
				}
				if *benchRecord != "" {
					events = append(events, rollout.Event{Time: now, Step: "budget",
						Message: fmt.Sprintf("%s/%s %d allowed (%d of %d healthy)", c.Namespace, c.Name, c.Status.DisruptionsAllowed, c.Status.CurrentHealthy, c.Status.ExpectedPods)})
				}
			},
		}); err != nil {
			b.Fatal(err)
		}
		f.Start(bctx.Done())
		f.WaitForCacheSync(bctx.Done())
	}
	// The rollout gets its own client, with the sandbox's rate limits, that
	// times every request it sends.
	stats := &apiStats{by: map[string]*apiStat{}}
	cfg := c.RESTConfig()
	cfg.WrapTransport = stats.wrap
	rcs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	r := &rollout.Roller{Client: rcs, Upgrader: &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: *benchUpgradeTime}, Options: opts}
	// What the cluster burns at rest (heartbeats, leases, controllers'
	// resyncs) goes on whatever the schedule; the work floor leaves it
	// out.
	var idle map[string]time.Duration
	var idleOver time.Duration
	if strategy == rollout.StrategyWaves && *benchIdle > 0 {
		before := cpuTimes(c)
		start := time.Now()
		time.Sleep(*benchIdle)
		idle, idleOver = cpuTimes(c), time.Since(start)
		for k, v := range idle {
			idle[k] = v - before[k]
		}
		b.Logf("%s: CPU at rest: %s", strategy, cpuLine(idle, runtime.NumCPU(), idleOver))
	}
	load := loadAverage()
	cpuBefore := cpuTimes(c)
	b.StartTimer()
	res, err := r.Run(ctx)
	b.StopTimer()
	stopBudgets()
	cpu := cpuTimes(c)
	for k, v := range cpu {
		cpu[k] = v - cpuBefore[k]
	}
	b.Logf("%s: CPU used during the rollout: %s", strategy, cpuLine(cpu, runtime.NumCPU(), res.Makespan))
	// The machine is shared: say how busy it was, since every figure
	// here is wall-clock time.
	b.Logf("%s: load average %s at the start, %s at the end", strategy, load, loadAverage())
	w.Stop()
	if *benchRecord != "" {
		record(b, strategy, res, events)
		// kwok's log says when each evicted pod was really deleted.
		if p := c.Processes[sandbox.Kwok]; p != nil {
			if data, err := os.ReadFile(p.Log); err == nil {
				_ = os.WriteFile(filepath.Join(*benchRecord, string(strategy)+"-kwok.log"), data, 0o644)
			}
		}
	}
	if err != nil {
		b.Fatalf("%s rollout: %v", strategy, err)
	}

	run := summarise(res, bound)
	run.CPU, run.Cores = cpu, runtime.NumCPU()
	run.Idle, run.IdleOver = idle, idleOver
	run.Peak = map[string]int64{}
	for name, p := range c.Processes {
		if _, peak := p.Memory(); peak > 0 {
			run.Peak[name] = peak
		}
	}
	run.in = in
	run.Replace = replace
	run.Rolled, run.Nodes, run.Planned = rolled, n, planned
	if rolled < n {
		run.Extrapolated = time.Duration(float64(res.Makespan) * float64(n) / float64(rolled))
	}
	run.Violations = len(w.Violations())
	run.Worst, run.WorstWhich = w.WorstAvailability()
	for _, v := range w.Violations() {
		b.Logf("PDB violation: %s at %s (%d healthy, %d required)", v.PDB, v.Time.Format("15:04:05.000"), v.CurrentHealthy, v.DesiredHealthy)
	}

	evMu.Lock()
	run.BudgetBack = median(budgetBack)
	evMu.Unlock()
	b.Logf("%s: %s", strategy, secondEvictions(res, created))
	b.Logf("%s: API requests the rollout sent (server time; client-side throttling not included):\n%s", strategy, stats)

	b.ReportMetric(run.fullMakespan().Seconds(), "makespan-s")
	b.ReportMetric(float64(run.Waves), "waves")
	b.ReportMetric(float64(run.Refusals), "refusals-429")
	b.ReportMetric(res.EvictionsPerPod(), "evictions/pod")
	b.ReportMetric(float64(run.Violations), "pdb-violations")
	b.ReportMetric(run.Worst, "worst-availability")
	b.ReportMetric(run.PerNode.Seconds(), "per-node-s")
	b.Logf("%s: makespan %s%s, %d waves (widest %d), %d refusals, %.2f evictions/pod (%d/%d), %d PDB violations, worst availability %.3f (%s); per node %s %v; between waves %s",
		strategy, res.Makespan.Round(100*time.Millisecond), extrapolation(run), run.Waves, run.WidestWave, run.Refusals, res.EvictionsPerPod(),
		res.Evictions, res.EvictablePods, run.Violations, run.Worst, run.WorstWhich, run.PerNode.Round(10*time.Millisecond), roundSteps(run.Steps), run.Between.Round(10*time.Millisecond))
	return run
}

func extrapolation(r *benchRun) string {
	if r.Extrapolated == 0 {
		return ""
	}
	return fmt.Sprintf(" for %d of %d nodes (extrapolated: %s)", r.Rolled, r.Nodes, r.Extrapolated.Round(time.Second))
}

func roundSteps(m map[string]time.Duration) string {
	var parts []string
	for _, s := range []string{rollout.StepCordon, rollout.StepDrain, rollout.StepUpgrade, rollout.StepReady, rollout.StepUncordon} {
		parts = append(parts, fmt.Sprintf("%s=%s", s, m[s].Round(10*time.Millisecond)))
	}
	return strings.Join(parts, " ")
}

// secondEvictions says how many evicted pods were created during the
// rollout — replacements that landed on a node not yet upgraded and were
// evicted again — and when they were created, against how many nodes had
// been upgraded by then: where evictions per pod above 1.0 come from.
// Creation times have a resolution of a second.
func secondEvictions(res *rollout.Result, created []time.Time) string {
	var offs []time.Duration
	for _, c := range created {
		if !c.Before(res.Started.Truncate(time.Second)) {
			offs = append(offs, c.Sub(res.Started))
		}
	}
	if len(offs) == 0 {
		return "no pod was evicted twice"
	}
	slices.Sort(offs)
	upgradedBy := func(d time.Duration) int {
		n := 0
		for _, nr := range res.Nodes {
			if nr.Outcome == "upgraded" && len(nr.Steps) > 0 && !nr.Steps[len(nr.Steps)-1].End.After(res.Started.Add(d)) {
				n++
			}
		}
		return n
	}
	p10, p50, p90 := quantile(offs, 0.1), quantile(offs, 0.5), quantile(offs, 0.9)
	return fmt.Sprintf("%d evictions of pods created during the rollout (evicted a second time), created at t = %s / %s / %s (p10/p50/p90) after the start, when %d / %d / %d node(s) had been upgraded",
		len(offs), p10.Round(time.Second), p50.Round(time.Second), p90.Round(time.Second), upgradedBy(p10), upgradedBy(p50), upgradedBy(p90))
}

// summarise takes the figures out of a Result.
func summarise(res *rollout.Result, bound plan.Bound) *benchRun {
	run := &benchRun{Strategy: res.Strategy, Makespan: res.Makespan, Waves: len(res.Waves), Refusals: res.Refusals,
		Evictions: res.Evictions, EvictablePods: res.EvictablePods, Bound: bound, Steps: map[string]time.Duration{}}
	for _, w := range res.Waves {
		run.WidestWave = max(run.WidestWave, len(w.Nodes))
	}
	var per []time.Duration
	steps := map[string][]time.Duration{}
	for _, nr := range res.Nodes {
		if nr.Outcome != "upgraded" {
			continue
		}
		per = append(per, nr.Duration)
		for _, s := range nr.Steps {
			steps[s.Step] = append(steps[s.Step], s.End.Sub(s.Start))
		}
	}
	run.PerNode = median(per)
	for s, ds := range steps {
		run.Steps[s] = median(ds)
	}
	var between []time.Duration
	for i := 1; i < len(res.Waves); i++ {
		between = append(between, res.Waves[i].Started.Sub(res.Waves[i-1].Finished))
	}
	run.Between = median(between)
	var waves []time.Duration
	for _, w := range res.Waves {
		waves = append(waves, w.Finished.Sub(w.Started))
	}
	run.WaveTime = median(waves)
	if len(res.Waves) > 0 && len(res.Waves[0].Nodes) == 1 {
		if nr := res.Nodes[res.Waves[0].Nodes[0]]; nr != nil {
			run.Canary = nr.Duration
		}
	}
	return run
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return quantile(s, 0.5)
}

// quantile is the q-quantile (0 ≤ q < 1) of sorted, which is not empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// benchTable renders the runs and kup's ratios. The lower bound is
// plan.LowerBound's: waves × (perNode + podReady), with perNode the
// median time one node takes from cordon to done when it is rolled
// alone (the sequential loop's nodes; the canary when the sequential run
// was skipped) and podReady the sandbox's pod ready delay.
func benchTable(runs map[rollout.Strategy]*benchRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s %6s %6s %11s %9s %10s %9s %8s %10s\n", "strategy", "nodes", "waves", "makespan", "per-node", "refused", "evict/pod", "PDB-viol", "worst-avail")
	for _, s := range []rollout.Strategy{rollout.StrategyWaves, strategyBatched, strategyRounds, strategyDrainList, strategyKwokWorkers, strategyGOGC, strategyNoOverlap, rollout.StrategySequential, rollout.StrategyFixedBatch} {
		r := runs[s]
		if r == nil {
			continue
		}
		mk := r.Makespan.Round(time.Second).String()
		if r.Extrapolated > 0 {
			mk = fmt.Sprintf("%s*", r.Extrapolated.Round(time.Second))
		}
		nodes := fmt.Sprint(r.Rolled)
		if r.Rolled < r.Nodes {
			nodes = fmt.Sprintf("%d/%d", r.Rolled, r.Nodes)
		}
		ev := 0.0
		if r.EvictablePods > 0 {
			ev = float64(r.Evictions) / float64(r.EvictablePods)
		}
		fmt.Fprintf(&b, "%-16s %6s %6d %11s %9s %10d %9.2f %8d %10.3f\n", s, nodes, r.Waves, mk, r.PerNode.Round(100*time.Millisecond), r.Refusals, ev, r.Violations, r.Worst)
	}
	if seq := runs[rollout.StrategySequential]; seq != nil && seq.Extrapolated > 0 {
		fmt.Fprintf(&b, "* sequential rolled %d of %d nodes (%s) and is extrapolated linearly: a sequential loop's per-node time does not depend on how many nodes come after\n",
			seq.Rolled, seq.Nodes, seq.Makespan.Round(time.Second))
	}
	kup := runs[rollout.StrategyWaves]
	if kup == nil {
		return b.String()
	}
	perNode, source := kup.Canary, "kup's canary node (no sequential run)"
	if seq := runs[rollout.StrategySequential]; seq != nil && seq.PerNode > 0 {
		perNode, source = seq.PerNode, "median node of the sequential loop"
	}
	podReady := *benchPodReady
	lb := time.Duration(kup.Bound.Waves) * (perNode + podReady)
	fmt.Fprintf(&b, "lower bound: %d waves (decided by %s) × (per node %s [%s] + pod ready %s) = %s\n",
		kup.Bound.Waves, kup.Bound.DecidedBy, perNode.Round(100*time.Millisecond), source, podReady, lb.Round(time.Second))
	fmt.Fprintf(&b, "kup: %d waves run (widest %d; plan.PlanWaves planned %d on the starting cluster, lower bound %d), median wave %s, median %s between waves (gate, taints, re-plan)\n",
		kup.Waves, kup.WidestWave, kup.Planned, kup.Bound.Waves, kup.WaveTime.Round(100*time.Millisecond), kup.Between.Round(100*time.Millisecond))
	ratio := func(a, b time.Duration) float64 { return float64(a) / float64(b) }
	// The target is written against this bound, but it counts
	// waves one after another and kup's overlapping waves beat it (kup
	// is below 1.0×); the target is held against the overlap bound below.
	fmt.Fprintf(&b, "kup / lower bound:   %.2f× (waves one after another, which kup's overlapping waves do not run: below 1.0× it is no bound for kup)\n", ratio(kup.Makespan, lb))
	// Where the distance to the bound comes from: more waves than the
	// bound, and waves longer than one node alone plus pod readiness
	// (drains of many nodes at once contend on the API server).
	if kup.Bound.Waves > 0 && kup.Waves > 0 {
		perWave := time.Duration(float64(kup.Makespan) / float64(kup.Waves))
		fmt.Fprintf(&b, "  = %.2f (waves %d / %d) × %.2f (mean wave incl. gate %s / %s)\n",
			float64(kup.Waves)/float64(kup.Bound.Waves), kup.Waves, kup.Bound.Waves,
			ratio(perWave, perNode+podReady), perWave.Round(100*time.Millisecond), (perNode + podReady).Round(100*time.Millisecond))
	}
	if seq := runs[rollout.StrategySequential]; seq != nil {
		fmt.Fprintf(&b, "sequential / kup:    %.2f× (target ≥ 10)\n", ratio(seq.fullMakespan(), kup.Makespan))
	}
	if fb := runs[rollout.StrategyFixedBatch]; fb != nil {
		fmt.Fprintf(&b, "fixed-batch / kup:   %.2f× (target ≥ 1.5; batch %d)\n", ratio(fb.Makespan, kup.Makespan), fb.WidestWave)
	}
	// LowerBound counts waves one after another, which kup's overlapping
	// waves are not; OverlapBound is what binds a rollout whose waves
	// may overlap.
	ob := plan.OverlapBound(kup.in, perNode, podReady)
	fmt.Fprintf(&b, "overlap bound: %s (plan.OverlapBound: canary alone, then max-unavailable slots of a node each, or a PDB's budget × pod ready)\n", ob.Round(time.Second))
	fmt.Fprintf(&b, "kup / overlap bound: %.2f× (target ≤ 1.25: the bound kup's overlapping waves are held to)\n", ratio(kup.Makespan, ob))
	if kup.BudgetBack > 0 {
		// plan's admission simulator runs kup's admission with exact
		// timings; given these, it says how much of the distance to the
		// bound the control plane's pace explains, with no noise.
		fmt.Fprintf(&b, "under load:    a node took %s (the canary %s), a PDB of budget 1 was back %s after an eviction (pod ready delay %s); replay kup's admission with them: go test ./internal/plan -run '^$' -bench AdmissionSimulation -sim.nodes %d -sim.per-node %s -sim.pod-ready %s\n",
			kup.PerNode.Round(100*time.Millisecond), kup.Canary.Round(100*time.Millisecond), kup.BudgetBack.Round(100*time.Millisecond), podReady,
			kup.Nodes, kup.PerNode.Round(100*time.Millisecond), kup.BudgetBack.Round(100*time.Millisecond))
	}
	if total := sum(kup.CPU); total > 0 && kup.Cores > 0 {
		// The work kup's rollout made the cluster do (evictions,
		// replacement pods created, scheduled, started, budgets
		// recomputed), done on every core of this machine without a
		// pause, takes at least this long. The work depends on the
		// strategy (evictions per pod), so this is a floor for kup's run
		// as it went, not for every strategy.
		floor := total / time.Duration(kup.Cores)
		fmt.Fprintf(&b, "machine CPU:   %s\n", cpuLine(kup.CPU, kup.Cores, kup.Makespan))
		fmt.Fprintf(&b, "CPU floor:     %s (that CPU time on all %d cores); kup / CPU floor %.2f×\n", floor.Round(time.Second), kup.Cores, ratio(kup.Makespan, floor))
		// At rest the cluster burns rate cores whatever the schedule: a
		// faster rollout burns less of it, so the work is what the
		// rollout added, done on the cores rest leaves.
		if rate := sum(kup.Idle).Seconds() / max(kup.IdleOver.Seconds(), 1e-9); kup.IdleOver > 0 && rate < float64(kup.Cores) {
			work := total.Seconds() - rate*kup.Makespan.Seconds()
			wf := time.Duration(work / (float64(kup.Cores) - rate) * float64(time.Second))
			fmt.Fprintf(&b, "at rest:       %s\n", cpuLine(kup.Idle, kup.Cores, kup.IdleOver))
			fmt.Fprintf(&b, "work floor:    %s (the rollout's %.0f cpu-s beyond rest, on the %.2f cores rest leaves); kup / work floor %.2f×\n",
				wf.Round(time.Second), work, float64(kup.Cores)-rate, ratio(kup.Makespan, wf))
			// The overlap bound takes a node's time from the canary,
			// rolled on a machine otherwise at rest: it knows nothing of
			// the work the other nodes make. Above 1.25×, no schedule
			// doing this work meets the target on this machine.
			reach := "below the target: the machine leaves room"
			if ratio(wf, ob) > 1.25 {
				reach = "above the target: no schedule doing this much work meets it on this machine"
			}
			fmt.Fprintf(&b, "work floor / overlap bound: %.2f× (%s)\n", ratio(wf, ob), reach)
		}
	}
	if kup.Replace > 0 {
		// Upgrading every node replaces every evictable pod at least once.
		// Replacing all of them at once, with every node up and no budget
		// in the way, is as fast as this control plane (and this machine)
		// creates, schedules and starts pods; the rollout's last
		// replacements need not be Ready when its last node is, hence
		// minus the pod ready delay. A floor measured, not derived.
		floor := max(kup.Replace-podReady, 0)
		fmt.Fprintf(&b, "replacement floor:  %s (all %d pods deleted at once on the same sandbox, until every replacement was Ready, %s; minus pod ready)\n",
			floor.Round(time.Second), kup.EvictablePods, kup.Replace.Round(100*time.Millisecond))
		fmt.Fprintf(&b, "kup / max(overlap bound, replacement floor): %.2f×\n", ratio(kup.Makespan, max(ob, floor)))
	}
	if rt := runs[strategyRounds]; rt != nil {
		fmt.Fprintf(&b, "rounds-%d / kup:     %.2f× (kup's waves with --budget-rounds %d: nodes admitted while their PDBs' next budget is promised, drains waiting for it)\n", *benchCompareRounds, ratio(rt.Makespan, kup.Makespan), *benchCompareRounds)
	}
	if dl := runs[strategyDrainList]; dl != nil {
		fmt.Fprintf(&b, "drain-list / kup:    %.2f× (kup's waves with drains LISTing their node's pods until the evicted ones are gone, instead of reading the live cache)\n", ratio(dl.Makespan, kup.Makespan))
	}
	if kw := runs[strategyKwokWorkers]; kw != nil {
		fmt.Fprintf(&b, "kwok-%d / kup:        %.2f× (kup's waves on a sandbox whose kwok makes %d pod transitions at once, not %s)\n", *benchCompareKwok, ratio(kw.Makespan, kup.Makespan), *benchCompareKwok, kwokWorkersName(*benchKwokWorkers))
	}
	if g := runs[strategyGOGC]; g != nil {
		fmt.Fprintf(&b, "gogc-%d / kup:       %.2f× makespan, %.2f× CPU (kup's waves on a sandbox whose processes run with GOGC %d, not %s)\n",
			*benchCompareGOGC, ratio(g.Makespan, kup.Makespan), ratio(sum(g.CPU), sum(kup.CPU)), *benchCompareGOGC, gogcName(*benchGOGC))
		fmt.Fprintf(&b, "gogc-%d peak memory: %s; %.2f× kup's\n", *benchCompareGOGC, memLine(g.Peak), float64(sum(g.Peak))/float64(max(sum(kup.Peak), 1)))
	}
	if bt := runs[strategyBatched]; bt != nil {
		fmt.Fprintf(&b, "batched / kup:       %.2f× (kup's waves overlapping but not continuous: the next wave once the newest one's drains are done)\n", ratio(bt.Makespan, kup.Makespan))
	}
	if no := runs[strategyNoOverlap]; no != nil {
		fmt.Fprintf(&b, "no overlap / kup:    %.2f× (kup's waves without Options.Overlap)\n", ratio(no.Makespan, kup.Makespan))
	}
	if len(kup.Peak) > 0 {
		fmt.Fprintf(&b, "peak memory:   %s, GOGC %s\n", memLine(kup.Peak), gogcName(*benchGOGC))
	}
	fmt.Fprintf(&b, "kup PDB violations:  %d (target 0)\n", kup.Violations)
	return b.String()
}

// planInput lists what plan.LowerBound needs, as the rollout will find it.
func planInput(ctx context.Context, cs kubernetes.Interface, policy plan.Policy) (plan.Input, error) {
	in := plan.Input{Policy: policy}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return in, err
	}
	for i := range nodes.Items {
		in.Nodes = append(in.Nodes, &nodes.Items[i])
		in.ToUpgrade = append(in.ToUpgrade, nodes.Items[i].Name)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return in, err
	}
	for i := range pods.Items {
		in.Pods = append(in.Pods, &pods.Items[i])
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return in, err
	}
	for i := range pdbs.Items {
		in.PDBs = append(in.PDBs, &pdbs.Items[i])
	}
	return in, nil
}

// settle waits until every Deployment has all its replicas available and
// every PDB's status is current and at its steady-state budget: each run
// starts from a quiet cluster.
// replaceAll deletes every pod in ns at once and returns how long it takes
// until want pods created after the delete are Ready: the control plane's
// own time to replace them, with nothing else in its way.
func replaceAll(ctx context.Context, cs kubernetes.Interface, ns string, want int) (time.Duration, error) {
	old, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	// One request per pod from 32 workers, as a drain's evictions go: a
	// DeleteCollection deletes them one by one on the server and met its
	// 60 s timeout on 4,000 pods.
	start := time.Now()
	work := make(chan string)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for name := range work {
				if err := cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					select {
					case errs <- fmt.Errorf("deleting pod %s/%s: %w", ns, name, err):
					default:
					}
				}
			}
		})
	}
	for _, p := range old.Items {
		work <- p.Name
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	deadline := start.Add(15 * time.Minute)
	for {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err == nil {
			ready := 0
			for _, p := range l.Items {
				if p.DeletionTimestamp == nil && !p.CreationTimestamp.Time.Before(start.Truncate(time.Second)) && podutils.IsPodReady(&p) {
					ready++
				}
			}
			if ready >= want {
				return time.Since(start), nil
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("%d of %d replacement pods Ready after 15 minutes", ready, want)
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func settle(ctx context.Context, cs kubernetes.Interface, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		last = unsettled(ctx, cs)
		if last == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("workloads not settled after %s: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func unsettled(ctx context.Context, cs kubernetes.Interface) string {
	deps, err := cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, d := range deps.Items {
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		if d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas != want {
			return fmt.Sprintf("deployment %s/%s: %d of %d available", d.Namespace, d.Name, d.Status.AvailableReplicas, want)
		}
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, p := range pdbs.Items {
		if !steady(&p) {
			return fmt.Sprintf("PDB %s/%s: %d of %d healthy, %d disruptions allowed", p.Namespace, p.Name, p.Status.CurrentHealthy, p.Status.ExpectedPods, p.Status.DisruptionsAllowed)
		}
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return err.Error()
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			return fmt.Sprintf("pod %s/%s: %s on %q", p.Namespace, p.Name, p.Status.Phase, p.Spec.NodeName)
		}
	}
	return ""
}

func steady(p *policyv1.PodDisruptionBudget) bool {
	return p.Status.ObservedGeneration >= p.Generation && p.Status.ExpectedPods > 0 &&
		p.Status.CurrentHealthy == p.Status.ExpectedPods &&
		p.Status.DisruptionsAllowed == p.Status.CurrentHealthy-p.Status.DesiredHealthy
}

// record writes a run's Result and events for a look at where time went.
func record(b *testing.B, s rollout.Strategy, res *rollout.Result, events []rollout.Event) {
	if err := os.MkdirAll(*benchRecord, 0o755); err != nil {
		b.Error(err)
		return
	}
	for name, v := range map[string]any{string(s) + "-result.json": res, string(s) + "-events.json": events} {
		data, err := json.MarshalIndent(v, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(*benchRecord, name), data, 0o644)
		}
		if err != nil {
			b.Error(err)
		}
	}
}

// apiStats times the requests a client sends, by verb and resource.
type apiStats struct {
	mu sync.Mutex
	by map[string]*apiStat
}

// apiStat is every request's time of one kind, for the totals and the
// percentiles: a mean hides whether most requests are slow or a few wait
// a long time (the Eviction API pauses half a second on each conflicting
// PDB update).
type apiStat struct{ all []time.Duration }

func (st *apiStat) total() time.Duration {
	var t time.Duration
	for _, d := range st.all {
		t += d
	}
	return t
}

func (s *apiStats) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		if req.URL.Query().Get("watch") == "true" {
			return resp, err // a watch lasts as long as it is wanted
		}
		d := time.Since(start)
		k := requestKind(req)
		s.mu.Lock()
		st := s.by[k]
		if st == nil {
			st = &apiStat{}
			s.by[k] = st
		}
		st.all = append(st.all, d)
		s.mu.Unlock()
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// requestKind is "VERB resource[/subresource]" with get and list told
// apart: /api/v1/namespaces/ns/pods/p/eviction → "POST pods/eviction".
func requestKind(req *http.Request) string {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	// Drop /api/v1 or /apis/group/version.
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return req.Method + " " + req.URL.Path
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) > 2 {
		parts = parts[2:]
	}
	verb := req.Method
	switch {
	case len(parts) == 1 && verb == http.MethodGet:
		verb = "LIST"
	case len(parts) == 0:
		return verb + " (discovery)"
	}
	res := parts[0]
	if len(parts) >= 3 {
		res += "/" + parts[2]
	}
	return verb + " " + res
}

func (s *apiStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := slices.Collect(maps.Keys(s.by))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(s.by[b].total(), s.by[a].total()) })
	var out strings.Builder
	total := 0
	for _, k := range keys {
		total += len(s.by[k].all)
	}
	fmt.Fprintf(&out, "  %d requests\n", total)
	for _, k := range keys {
		st := s.by[k]
		all, n := st.all, len(st.all)
		slices.Sort(all)
		pct := func(q float64) time.Duration { return quantile(all, q).Round(100 * time.Microsecond) }
		// The Eviction API retries a conflicting PDB update after 500 ms
		// (±10 %): a request that took 450 ms or more most likely waited
		// on at least one.
		fast, _ := slices.BinarySearch(all, 450*time.Millisecond)
		fmt.Fprintf(&out, "  %-28s %6d  total %9s  mean %8s  p50 %8s  p90 %8s  p99 %8s  max %8s  ≥450ms %5.1f%%\n", k, n, st.total().Round(time.Millisecond),
			(st.total() / time.Duration(n)).Round(100*time.Microsecond), pct(0.5), pct(0.9), pct(0.99), all[n-1].Round(time.Millisecond),
			100*float64(n-fast)/float64(n))
	}
	return out.String()
}

// cpuTimes is the CPU time (user and system) each of the sandbox's
// processes and this process have used so far, from /proc/PID/stat; a
// process it cannot read is left out.
func cpuTimes(c *sandbox.Cluster) map[string]time.Duration {
	out := map[string]time.Duration{}
	read := func(name string, pid string) {
		data, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return
		}
		// Fields after the command (which may hold spaces) in ")": state
		// is the first, utime the 12th, stime the 13th, in clock ticks
		// (USER_HZ, 100 on Linux).
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			return
		}
		u, err1 := strconv.ParseInt(f[11], 10, 64)
		k, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 == nil && err2 == nil {
			out[name] = time.Duration(u+k) * 10 * time.Millisecond
		}
	}
	for name, p := range c.Processes {
		if p != nil && p.PID > 0 {
			read(name, strconv.Itoa(p.PID))
		}
	}
	read("this process", "self")
	return out
}

// sum adds up a map's values: CPU times, peak memories.
func sum[V time.Duration | int64](m map[string]V) V {
	var t V
	for _, v := range m {
		t += v
	}
	return t
}

// cpuLine says how much CPU the rollout used, by process, and how much of
// the machine that was over the makespan.
func cpuLine(cpu map[string]time.Duration, cores int, makespan time.Duration) string {
	names := slices.Collect(maps.Keys(cpu))
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(cpu[b], cpu[a]) })
	var parts []string
	for _, n := range names {
		f := "%s %.0fs"
		if cpu[n] < 10*time.Second {
			f = "%s %.1fs" // the figures at rest are small
		}
		parts = append(parts, fmt.Sprintf(f, n, cpu[n].Seconds()))
	}
	total := sum(cpu)
	busy := 0.0
	if makespan > 0 {
		busy = total.Seconds() / makespan.Seconds()
	}
	return fmt.Sprintf("%.0f cpu-s over %s = %.2f of %d cores busy on average (%s)", total.Seconds(), makespan.Round(time.Second), busy, cores, strings.Join(parts, ", "))
}

// memLine is the processes' peak memory: the sum, then each, the
// largest first.
func memLine(peak map[string]int64) string {
	names := slices.SortedFunc(maps.Keys(peak), func(a, b string) int { return cmp.Compare(peak[b], peak[a]) })
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d MiB", n, peak[n]>>20))
	}
	return fmt.Sprintf("%d MiB (%s)", sum(peak)>>20, strings.Join(parts, ", "))
}

// loadAverage is the 1-, 5- and 15-minute load average, or "unknown".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
