// Package rollout rolls the nodes of a cluster to a kubelet version in
// waves: before every wave it re-reads the cluster and asks the planner
// (internal/plan) for the largest set of nodes the PodDisruptionBudgets and
// spare capacity allow; each node is cordoned, drained, upgraded through a
// provider.NodeUpgrader, awaited Ready at the new version and uncordoned —
// only if kup cordoned it. A health gate between waves halts the rollout
// when availability does not come back.
//
// It never leaves a node cordoned silently: every node it touched is
// either uncordoned or named in the Result with the reason it stays
// cordoned.
package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kup-project/kup/internal/drain"
	"github.com/kup-project/kup/internal/plan"
	"github.com/kup-project/kup/internal/provider"
)

// Node annotations and taints kup writes.
const (
	// StateAnnotation records kup's progress on a node as JSON (NodeState),
	// so a later run — after a crash — knows what kup did to it.
	StateAnnotation = "upgrade.kup.dev/state"
	// PendingTaint (PreferNoSchedule) marks nodes still waiting for their
	// upgrade, so pods evicted by one wave land on upgraded nodes instead
	// of being evicted again by the next.
	PendingTaint = "upgrade.kup.dev/pending"
	// EventSource is the component name on the Events kup records.
	EventSource = "kup"
)

// Strategy chooses how nodes are grouped. Waves is kup's; the others
// exist to measure kup against what other tools do, on the same drain and
// upgrade code.
type Strategy string

const (
	// StrategyWaves: PDB- and capacity-aware waves, re-planned before each.
	StrategyWaves Strategy = "waves"
	// StrategySequential: one node at a time, as a drain script does; no
	// pending taint, no health gate beyond the node's own readiness.
	StrategySequential Strategy = "sequential"
	// StrategyFixedBatch: BatchSize nodes at a time in name order,
	// ignoring PDB structure (maxUnavailable in Cluster API, node groups).
	StrategyFixedBatch Strategy = "fixed-batch"
)

// Failure policies.
const (
	OnFailureStop     = "stop"
	OnFailureContinue = "continue"
	// OnDrainTimeoutSkip quarantines a node whose drain timed out: it stays
	// cordoned, its remaining pods untouched, and the rollout goes on.
	OnDrainTimeoutSkip = "skip-node"
)

// Options configure a rollout.
type Options struct {
	// Target is the kubelet version every node is rolled to.
	Target string
	// Nodes limits the rollout to these nodes (empty: every node whose
	// kubelet is not at Target and that Policy.NodeSelector matches).
	Nodes  []string
	Policy plan.Policy
	// AutoBudgetRounds replaces Policy.BudgetRounds, before every wave,
	// with a choice from what the rollout measured (see autoRounds).
	// Off by default: on the 200-node benchmark it did not shorten the
	// rollout (the control plane's pod churn was the bound) and it
	// evicted more pods twice.
	AutoBudgetRounds bool
	Strategy         Strategy
	// Overlap lets the next wave start draining while earlier waves'
	// nodes are still upgrading, once the newest wave's drains are done: a
	// PDB's budget comes back when the evicted pods are Ready elsewhere,
	// long before the drained nodes are. Every node still down counts
	// against max-unavailable and live budgets bound the new wave as
	// always; health gates run as waves finish, in order. Not for the
	// canary, control-plane waves, --zone-by-zone or a soak, which all
	// mean "wait for the last wave".
	Overlap bool
	// Continuous, with Overlap, admits nodes as budgets and slots come
	// back instead of wave by wave: kup looks again every second, and as
	// soon as a node finishes, and starts whatever nodes fit now, without
	// waiting for the newest wave's drains. The evictions still to come
	// from drains under way are counted against the live budgets (see
	// pendingBudgets), so the new nodes do not compete with them. Health
	// gates are checked on every look instead of holding it; one unmet
	// for gateHold pauses admission until it is met.
	Continuous bool
	// BatchSize is the batch of StrategyFixedBatch.
	BatchSize int
	Drain     drain.Options
	// ReadyTimeout bounds the wait for a node to be Ready at Target after
	// its upgrade (default 10m).
	ReadyTimeout time.Duration
	// GateTimeout bounds the wait, after a wave, for every workload to be
	// as available as before it (default 10m).
	GateTimeout time.Duration
	// Soak waits this long after each wave's gate passes.
	Soak time.Duration
	// OnFailure is OnFailureStop (default) or OnFailureContinue.
	OnFailure string
	// MaxFailures ends a continuing rollout after this many failed nodes.
	MaxFailures int
	// OnDrainTimeout is OnFailureStop (default: treated like any failure)
	// or OnDrainTimeoutSkip.
	OnDrainTimeout string
	// Progress receives events as they happen; it must not block.
	Progress func(Event)
	// Pause, when closed, stops the rollout before its next wave: the
	// wave in flight finishes every node (a first Ctrl-C), so no drain is
	// left half-done.
	Pause <-chan struct{}
}

// ErrPaused is returned when Options.Pause stopped the rollout.
var ErrPaused = errors.New("rollout paused before the next wave")

// Event is one thing that happened, for live progress and the report.
type Event struct {
	Time    time.Time `json:"time"`
	Wave    int       `json:"wave,omitempty"`
	Node    string    `json:"node,omitempty"`
	Step    string    `json:"step"`
	Message string    `json:"message"`
}

// Steps of a node, in order, as recorded in NodeState.Phase and Events.
const (
	StepCordon   = "cordon"
	StepDrain    = "drain"
	StepUpgrade  = "upgrade"
	StepReady    = "ready"
	StepUncordon = "uncordon"
	StepDone     = "done"
	StepFailed   = "failed"
	StepWaiting  = "waiting"
	StepWave     = "wave"
	StepGate     = "gate"
)

// NodeState is what kup writes into StateAnnotation.
type NodeState struct {
	Target        string    `json:"target"`
	Phase         string    `json:"phase"`
	CordonedByKup bool      `json:"cordonedByKup"`
	Updated       time.Time `json:"updated"`
}

// NodeResult is what happened to one node.
type NodeResult struct {
	Node    string `json:"node"`
	Wave    int    `json:"wave"`
	From    string `json:"from"`
	Outcome string `json:"outcome"` // upgraded, failed, quarantined, blocked, not-started, deleted
	// WasCordoned: the node was already cordoned before kup touched it.
	WasCordoned bool `json:"wasCordoned"`
	// LeftCordoned is true when the node is cordoned at the end; Reason
	// says why.
	LeftCordoned bool          `json:"leftCordoned"`
	Reason       string        `json:"reason,omitempty"`
	Steps        []StepTime    `json:"steps"`
	Evicted      int           `json:"evicted"`
	Refusals     int           `json:"refusals"`
	Duration     time.Duration `json:"duration"`
}

// StepTime is when a node's step started and ended.
type StepTime struct {
	Step  string    `json:"step"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// WaveResult is one executed wave.
type WaveResult struct {
	Index int        `json:"index"`
	Nodes []string   `json:"nodes"`
	Limit plan.Limit `json:"limit"`
	// Rounds is how many times the wave could spend each PDB's budget
	// (plan.Policy.BudgetRounds as run).
	Rounds   int       `json:"rounds,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// Result is what a rollout did.
type Result struct {
	Target   string   `json:"target"`
	Strategy Strategy `json:"strategy"`
	// Continuous: nodes were admitted as budgets came back
	// (Options.Continuous), so each of Waves is one admission.
	Continuous bool                   `json:"continuous,omitempty"`
	Waves      []WaveResult           `json:"waves"`
	Nodes      map[string]*NodeResult `json:"nodes"`
	Blocked    []plan.BlockedNode     `json:"blocked,omitempty"`
	// Evictions counts accepted evictions; EvictablePods the pods the
	// rolled nodes held when the rollout started. Their ratio is how often
	// a pod was moved (1.0 is ideal).
	Evictions     int           `json:"evictions"`
	EvictablePods int           `json:"evictablePods"`
	Refusals      int           `json:"refusals"`
	Started       time.Time     `json:"started"`
	Makespan      time.Duration `json:"makespan"`
	// Stopped is set when the rollout ended before every node was done.
	Stopped    bool   `json:"stopped"`
	StopReason string `json:"stopReason,omitempty"`
	// Bound is plan.LowerBound of the nodes in scope as the rollout found
	// them, timed with what it measured: PerNode, the first node's own
	// cordon-to-done (the canary goes alone), and PodReady, the median
	// time replacement pods took to be Ready. It counts waves one after
	// another; with Options.Overlap, OverlapBound is the bound that
	// binds. Nil when no node was upgraded (nothing measured).
	Bound        *plan.Bound   `json:"bound,omitempty"`
	OverlapBound time.Duration `json:"overlapBound,omitempty"`
	PerNode      time.Duration `json:"perNode,omitempty"`
	PodReady     time.Duration `json:"podReady,omitempty"`
}

// BoundMakespan is the least makespan the rollout could have had by the
// bound that applies to it (OverlapBound with overlapping waves), or 0.
func (r *Result) BoundMakespan() time.Duration {
	if r.OverlapBound > 0 {
		return r.OverlapBound
	}
	if r.Bound != nil {
		return r.Bound.Makespan.Duration
	}
	return 0
}

// MostDown is the most nodes out of service at once: from a node's first
// step (its cordon) to the end of its last. With continuous admission it
// says more about the rollout's reach than its count of admissions.
func (r *Result) MostDown() int {
	type edge struct {
		t    time.Time
		down int
	}
	var edges []edge
	for _, n := range r.Nodes {
		if len(n.Steps) == 0 {
			continue
		}
		first, last := n.Steps[0].Start, n.Steps[0].End
		for _, st := range n.Steps {
			if st.Start.Before(first) {
				first = st.Start
			}
			if st.End.After(last) {
				last = st.End
			}
		}
		edges = append(edges, edge{first, 1}, edge{last, -1})
	}
	// Ends before starts at the same instant: a node handing over its
	// slot is not down together with the next.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		return a.down - b.down
	})
	most, now := 0, 0
	for _, e := range edges {
		now += e.down
		most = max(most, now)
	}
	return most
}

// EvictionsPerPod is Evictions / EvictablePods.
func (r *Result) EvictionsPerPod() float64 {
	if r.EvictablePods == 0 {
		return 0
	}
	return float64(r.Evictions) / float64(r.EvictablePods)
}

// Failed returns the nodes that failed or were quarantined.
func (r *Result) Failed() []*NodeResult {
	var out []*NodeResult
	for _, n := range r.sortedNodes() {
		if n.Outcome == "failed" || n.Outcome == "quarantined" {
			out = append(out, n)
		}
	}
	return out
}

// LeftCordoned returns the nodes cordoned at the end, with reasons.
func (r *Result) LeftCordoned() []*NodeResult {
	var out []*NodeResult
	for _, n := range r.sortedNodes() {
		if n.LeftCordoned {
			out = append(out, n)
		}
	}
	return out
}

func (r *Result) sortedNodes() []*NodeResult {
	out := make([]*NodeResult, 0, len(r.Nodes))
	for _, n := range r.Nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// Roller runs rollouts against one cluster.
type Roller struct {
	Client   kubernetes.Interface
	Upgrader provider.NodeUpgrader
	Options  Options

	drainer *drain.Drainer
	mu      sync.Mutex
	res     *Result
	wave    int
	rounds  int // budget rounds chosen last (auto)
	// draining names the nodes whose drain is under way (for
	// pendingBudgets); progress is signalled, without blocking, when a
	// node's drain or roll ends.
	draining map[string]bool
	progress chan struct{}
	// live, with Continuous, holds the cluster in informers for read.
	live *liveCache
	// failed counts nodes that failed (not quarantined) so far: with
	// Continuous, a failure stops admission at once rather than when its
	// wave's turn to settle comes.
	failed atomic.Int32
}

// signal wakes a loop waiting for progress, if one waits.
func (r *Roller) signal() {
	select {
	case r.progress <- struct{}{}:
	default:
	}
}

func (r *Roller) emit(node, step, format string, args ...any) {
	if r.Options.Progress == nil {
		return
	}
	// With waves overlapping, a node's events belong to its own wave,
	// not to the one being planned.
	r.mu.Lock()
	wave := r.wave
	if nr := r.res.Nodes[node]; node != "" && nr != nil && nr.Wave > 0 {
		wave = nr.Wave
	}
	r.mu.Unlock()
	r.Options.Progress(Event{Time: time.Now(), Wave: wave, Node: node, Step: step, Message: fmt.Sprintf(format, args...)})
}

// waveIndex is the index of the last wave started.
func (r *Roller) waveIndex() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wave
}

// flight is a wave whose nodes are being rolled, each in its goroutine.
type flight struct {
	index  int
	wave   plan.Wave
	wr     WaveResult
	before baseline
	errs   []error
	// running counts the nodes not finished; drained is closed once every
	// node is past its drain (or stopped before it), done once every node
	// finished.
	running atomic.Int32
	drained chan struct{}
	done    chan struct{}
}

// launch starts a wave: every node of it in its own goroutine.
func (r *Roller) launch(ctx context.Context, snap *clusterState, wave plan.Wave, rounds int) *flight {
	r.mu.Lock()
	r.wave++
	f := &flight{index: r.wave, wave: wave, errs: make([]error, len(wave.Nodes)),
		drained: make(chan struct{}), done: make(chan struct{}), before: availability(snap)}
	for _, n := range wave.Nodes {
		nr := r.res.Nodes[n]
		if nr == nil {
			nr = &NodeResult{Node: n}
			r.res.Nodes[n] = nr
		}
		nr.Wave = f.index
		r.draining[n] = true
	}
	r.mu.Unlock()
	f.wr = WaveResult{Index: f.index, Nodes: wave.Nodes, Limit: wave.Limit, Rounds: rounds, Started: time.Now()}
	r.emit("", StepWave, "wave %d: %d node(s) %v — limited by %s", f.index, len(wave.Nodes), wave.Nodes, wave.Limit.Reason)
	f.running.Store(int32(len(wave.Nodes)))
	var drains, all sync.WaitGroup
	drains.Add(len(wave.Nodes))
	all.Add(len(wave.Nodes))
	for i, n := range wave.Nodes {
		go func() {
			var once sync.Once
			drained := func() {
				once.Do(func() {
					r.mu.Lock()
					delete(r.draining, n)
					r.mu.Unlock()
					drains.Done()
					r.signal()
				})
			}
			defer all.Done()
			defer r.signal()
			defer f.running.Add(-1)
			defer drained()
			f.errs[i] = r.rollNode(ctx, snap.node(n), f.index, drained)
		}()
	}
	go func() { drains.Wait(); close(f.drained) }()
	go func() {
		all.Wait()
		f.wr.Finished = time.Now() // read after done
		close(f.done)
	}()
	return f
}

// Run rolls the nodes. It returns the Result even when it stops early;
// the error says why it stopped.
func (r *Roller) Run(ctx context.Context) (*Result, error) {
	o := &r.Options
	if o.Strategy == "" {
		o.Strategy = StrategyWaves
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 10 * time.Minute
	}
	if o.GateTimeout == 0 {
		o.GateTimeout = 10 * time.Minute
	}
	if o.OnFailure == "" {
		o.OnFailure = OnFailureStop
	}
	if o.Target == "" {
		return nil, errors.New("rollout: no target version")
	}
	if err := o.Policy.Validate(); err != nil {
		return nil, err
	}
	if o.Strategy == StrategyFixedBatch && o.BatchSize < 1 {
		return nil, errors.New("rollout: fixed-batch strategy needs a batch size of at least 1")
	}
	r.drainer = &drain.Drainer{Client: r.Client, Options: o.Drain}
	userWaiting := o.Drain.Waiting
	r.drainer.Options.Waiting = func(node, reason string) {
		r.emit(node, StepWaiting, "%s", reason)
		if userWaiting != nil {
			userWaiting(node, reason)
		}
	}
	r.res = &Result{Target: o.Target, Strategy: o.Strategy, Continuous: o.Continuous && o.Overlap && o.Strategy == StrategyWaves, Nodes: map[string]*NodeResult{}, Started: time.Now()}
	res := r.res
	r.draining = map[string]bool{}
	r.progress = make(chan struct{}, 1)
	r.live = nil
	// The first read is a LIST even with continuous admission: a
	// kubeconfig that may not list something fails here, at once and
	// naming it, instead of leaving an informer retrying.
	snap, err := r.read(ctx)
	if err != nil {
		return res, err
	}
	if o.Continuous && o.Overlap && o.Strategy == StrategyWaves {
		lctx, stopLive := context.WithCancel(ctx)
		live, err := r.startLiveCache(lctx)
		if err != nil {
			stopLive()
			return res, fmt.Errorf("watching the cluster for continuous admission: %w (--continuous=false reads with LIST instead)", err)
		}
		r.live = live
		if drainFromCache {
			r.drainer.Options.PodsOn = live.podsOn
		}
		defer func() {
			live.stop(stopLive)
			r.live = nil
		}()
	}
	todo := r.scope(snap)
	for _, n := range todo {
		node := snap.node(n)
		res.Nodes[n] = &NodeResult{Node: n, From: node.Status.NodeInfo.KubeletVersion, Outcome: "not-started", WasCordoned: node.Spec.Unschedulable && !KupOwnsCordon(node)}
		res.EvictablePods += len(snap.evictableOn(n))
	}
	// The bound is of the cluster as found, before any wave changed it.
	boundIn := plan.Input{Nodes: snap.nodes, Pods: snap.pods, PDBs: snap.pdbs, ToUpgrade: todo, Policy: o.Policy}
	last := snap
	defer func() {
		res.Makespan = time.Since(res.Started)
		r.bound(res, boundIn, last)
	}()
	// Refuse before touching anything if the drain policy would refuse a
	// pod on any node in scope: better now than at the tenth wave.
	var refused []string
	for _, n := range todo {
		for _, p := range snap.pods {
			if p.Spec.NodeName == n {
				if why := drain.Refusal(p, o.Drain); why != "" {
					refused = append(refused, "node "+n+": "+why)
				}
			}
		}
	}
	if len(refused) > 0 {
		if len(refused) > 5 {
			refused = append(refused[:5], fmt.Sprintf("and %d more", len(refused)-5))
		}
		err := fmt.Errorf("the drain policy refuses %d pod(s); nothing was changed:\n  %s", len(refused), strings.Join(refused, "\n  "))
		return r.stop(err.Error()), err
	}
	if len(todo) == 0 {
		r.emit("", StepDone, "every node already runs kubelet %s", o.Target)
		return res, nil
	}
	r.emit("", StepWave, "%d node(s) to roll to %s (%s strategy)", len(todo), o.Target, o.Strategy)

	// Always clear the pending taints we set, even when stopping early.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, n := range todo {
			_ = r.setPendingTaint(cctx, n, false)
		}
	}()

	// Nodes already at the target (a resumed run, a mixed cluster) have
	// proven the version on this cluster: the canary is behind us.
	var upgraded []string
	for _, n := range snap.nodes {
		if !Due(n, o.Target) {
			upgraded = append(upgraded, n.Name)
		}
	}
	var waitedSince, lastSaid time.Time
	var lastHolders string
	failures := 0
	remaining := append([]string(nil), todo...)

	// flights are the waves started and not finished, oldest first: with
	// Options.Overlap, waves still upgrading while the newest drains.
	var flights []*flight
	running := func() int {
		n := 0
		for _, f := range flights {
			n += int(f.running.Load())
		}
		return n
	}
	var finish func(f *flight) error
	// finishOldest finishes the oldest wave in flight (see finish).
	finishOldest := func() error {
		f := flights[0]
		flights = flights[1:]
		return finish(f)
	}
	// settle waits for f's nodes, records them and applies the failure
	// policy. A non-nil error stops the rollout; the caller waits for any
	// other wave first.
	settle := func(f *flight) error {
		<-f.done
		res.Waves = append(res.Waves, f.wr)
		var waveFailed []string
		for i, n := range f.wave.Nodes {
			if f.errs[i] == nil {
				if r.rolled(n) {
					upgraded = append(upgraded, n)
				}
				continue
			}
			failures++
			waveFailed = append(waveFailed, n)
		}
		if len(waveFailed) > 0 {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted during wave %d: %w", f.index, ctx.Err())
			}
			if o.OnFailure == OnFailureStop && !allQuarantined(res, waveFailed) {
				return fmt.Errorf("wave %d: node(s) %v failed; stopping (--on-failure=stop): %w", f.index, waveFailed, firstErr(f.errs))
			}
			if o.MaxFailures > 0 && failures >= o.MaxFailures {
				return fmt.Errorf("%d node(s) failed, reaching --max-failures %d; stopping", failures, o.MaxFailures)
			}
		}
		return nil
	}
	// finish settles f, then runs the health gate (and soak).
	finish = func(f *flight) error {
		if err := settle(f); err != nil {
			return err
		}
		if o.Strategy != StrategySequential && o.Strategy != StrategyFixedBatch || len(remaining) == 0 {
			if err := r.gate(ctx, f.index, f.wave.Nodes, f.before); err != nil {
				return fmt.Errorf("health gate after wave %d: %w", f.index, err)
			}
		}
		if o.Soak > 0 && len(remaining) > 0 {
			r.emit("", StepGate, "soaking %s after wave %d", o.Soak, f.index)
			if err := sleepCtx(ctx, o.Soak); err != nil {
				return fmt.Errorf("interrupted during soak: %w", err)
			}
		}
		return nil
	}
	// gates are the health gates of settled waves not met yet, checked on
	// every look with Continuous (see Options.Continuous).
	type pendingGate struct {
		f     *flight
		since time.Time
	}
	var gates []pendingGate
	var heldSaid time.Time
	lastRead := time.Now()
	// waitProgress waits up to d for a node to finish its drain or its
	// roll, and keeps looks at least half a second apart.
	waitProgress := func(d time.Duration) {
		select {
		case <-r.progress:
		case <-time.After(d):
		case <-ctx.Done():
		}
		if w := 500*time.Millisecond - time.Since(lastRead); w > 0 {
			_ = sleepCtx(ctx, w)
		}
	}
	// stopWith ends the rollout early: the wave still in flight finishes
	// every node first (never a drain left half-done), and is recorded.
	stopWith := func(err error, paused bool) (*Result, error) {
		for _, f := range flights {
			<-f.done
			res.Waves = append(res.Waves, f.wr)
			for i, n := range f.wave.Nodes {
				if f.errs[i] == nil && r.rolled(n) {
					upgraded = append(upgraded, n)
				}
			}
		}
		flights = nil
		if paused {
			return r.stop(fmt.Sprintf("paused before wave %d with %d node(s) left", r.waveIndex()+1, len(remaining))), ErrPaused
		}
		return r.stop(err.Error()), err
	}
	for len(remaining) > 0 || len(flights) > 0 {
		if len(remaining) == 0 {
			if err := finishOldest(); err != nil {
				return stopWith(err, false)
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return stopWith(fmt.Errorf("interrupted: %w", err), false)
		}
		select {
		case <-o.Pause:
			return stopWith(nil, true)
		default:
		}
		// The nodes draining as of before the read: a drain that ends
		// during it is still counted, so its evictions are counted twice
		// (pendingBudgets) rather than not at all.
		r.mu.Lock()
		snapDraining := maps.Clone(r.draining)
		r.mu.Unlock()
		snap, err := r.read(ctx)
		if err != nil {
			return stopWith(err, false)
		}
		last, lastRead = snap, time.Now()
		snap.draining = snapDraining
		byName := make(map[string]*corev1.Node, len(snap.nodes))
		for _, n := range snap.nodes {
			byName[n.Name] = n
		}
		// A node deleted since the rollout began (a scale-down, a spot
		// reclaim, its operator replacing a broken machine) has nothing
		// left to roll: drop it, saying so, rather than stop the rollout
		// on it. A GET confirms what the snapshot suggests: a read from
		// the watch cache may be a moment behind either way.
		for _, n := range slices.Clone(remaining) {
			if byName[n] != nil {
				continue
			}
			if gone, err := r.deleted(ctx, n); err != nil {
				return stopWith(err, false)
			} else if gone {
				remaining = remove(remaining, n)
			}
		}
		if o.Strategy == StrategyWaves {
			// Only the nodes the snapshot shows without the taint: a
			// request per node on every look would load the apiserver
			// for nothing.
			for _, n := range slices.Clone(remaining) {
				if node := byName[n]; node != nil && hasTaint(node, PendingTaint) {
					continue
				}
				if err := r.setPendingTaint(ctx, n, true); err != nil {
					if apierrors.IsNotFound(err) {
						if gone, gerr := r.deleted(ctx, n); gerr == nil && gone {
							remaining = remove(remaining, n)
							continue
						}
					}
					return stopWith(err, false)
				}
			}
		}
		if len(remaining) == 0 {
			continue // every node left was deleted: finish what flies
		}
		continuous := o.Continuous && mayOverlap(*o, plan.Wave{}, len(upgraded) > 0)
		if continuous && o.OnFailure == OnFailureStop && r.failed.Load() > 0 {
			// A node failed: admit nothing more; settle the waves in
			// order, which stops at the failed one.
			for len(flights) > 0 {
				if err := finishOldest(); err != nil {
					return stopWith(err, false)
				}
			}
		}
		if continuous || len(gates) > 0 {
			// Settle the waves done, in order, and start their gates;
			// then check every gate on this snapshot.
			for len(flights) > 0 && flights[0].running.Load() == 0 {
				f := flights[0]
				flights = flights[1:]
				if err := settle(f); err != nil {
					return stopWith(err, false)
				}
				r.emit("", StepGate, "health gate after wave %d", f.index)
				gates = append(gates, pendingGate{f: f, since: time.Now()})
			}
			var held []string
			kept := gates[:0]
			for _, g := range gates {
				problems := r.gateProblems(snap, g.f.wave.Nodes, g.f.before)
				if len(problems) == 0 {
					r.emit("", StepGate, "health gate after wave %d passed", g.f.index)
					continue
				}
				if time.Since(g.since) > o.GateTimeout {
					return stopWith(fmt.Errorf("health gate after wave %d: not healthy after %s: %s", g.f.index, o.GateTimeout, strings.Join(problems, "; ")), false)
				}
				if time.Since(g.since) > gateHold {
					held = append(held, fmt.Sprintf("wave %d: %s", g.f.index, strings.Join(problems, "; ")))
				}
				kept = append(kept, g)
			}
			gates = kept
			if len(held) > 0 {
				if time.Since(heldSaid) > 30*time.Second {
					heldSaid = time.Now()
					r.emit("", StepWaiting, "admitting no node until the health gate is met (%s)", strings.Join(held, "; "))
				}
				waitProgress(time.Second)
				continue
			}
		}
		wave, blocked, rounds := r.nextWave(snap, remaining, upgraded, running())
		if len(wave.Nodes) == 0 && len(flights) > 0 && continuous {
			// Nothing fits now: look again when a node is past its drain
			// or done, or in a second (budgets come back without a word
			// to kup).
			waitProgress(time.Second)
			continue
		}
		if len(wave.Nodes) == 0 && len(flights) > 0 {
			// Nothing fits next to the wave still upgrading. When budgets
			// are what is short (its replacement pods not Ready yet), they
			// usually come back before its nodes do: look again in a
			// second. Otherwise, or once it is done, let it finish and
			// plan with its nodes back.
			if wave.Limit.Kind == plan.LimitPDB && flights[0].running.Load() > 0 {
				select {
				case <-flights[0].done:
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
				continue
			}
			if err := finishOldest(); err != nil {
				return stopWith(err, false)
			}
			continue
		}
		if len(wave.Nodes) == 0 && len(blocked) < len(remaining) {
			// Nothing can go now, but not everything is blocked for good:
			// live budgets are below steady state (pods of the last wave,
			// or of something else, not Ready yet). Wait for them.
			reason := wave.Limit.Reason
			if h := budgetHolders(snap.pdbs, snap.pods, wave.Limit.PDB, time.Now()); h != "" {
				reason += ": " + h
			}
			if waitedSince.IsZero() {
				waitedSince, lastSaid = time.Now(), time.Now()
				lastHolders = reason
				r.emit("", StepWaiting, "no node can be drained now without exceeding a PDB's current budget (%s); waiting for budgets to recover", reason)
			} else if reason != lastHolders && time.Since(lastSaid) > 30*time.Second {
				// Say again what holds the budget when it changed, at
				// most twice a minute: a long wait must not look hung.
				lastHolders, lastSaid = reason, time.Now()
				r.emit("", StepWaiting, "still waiting for budgets to recover after %s (%s)", time.Since(waitedSince).Round(time.Second), reason)
			}
			if time.Since(waitedSince) > o.GateTimeout {
				err := fmt.Errorf("no node could be drained for %s: PodDisruptionBudgets did not recover (%s)", o.GateTimeout, reason)
				return r.stop(err.Error()), err
			}
			if err := sleepCtx(ctx, 2*time.Second); err != nil {
				return r.stop("interrupted: " + err.Error()), err
			}
			continue
		}
		waitedSince = time.Time{}
		if len(wave.Nodes) == 0 {
			res.Blocked = blocked
			var names []string
			for _, b := range blocked {
				names = append(names, b.Node+" ("+b.Reason+")")
				if nr := res.Nodes[b.Node]; nr != nil {
					nr.Outcome = "blocked"
					nr.Reason = b.Reason
				}
			}
			err := fmt.Errorf("%d node(s) cannot be drained: %v", len(blocked), names)
			return r.stop(err.Error()), err
		}
		// The canary, control-plane waves and the strategies kup is
		// measured against run alone: the next wave is planned only once
		// this one has finished. Otherwise the next is planned as soon as
		// this one's drains are done.
		overlap := mayOverlap(*o, wave, len(upgraded) > 0)
		f := r.launch(ctx, snap, wave, rounds)
		for _, n := range wave.Nodes {
			remaining = remove(remaining, n)
		}
		flights = append(flights, f)
		if !overlap {
			for len(flights) > 0 {
				if err := finishOldest(); err != nil {
					return stopWith(err, false)
				}
			}
			continue
		}
		if continuous {
			continue // look again at once: something else may fit now
		}
		// Plan the next wave once this one's drains are done; finish, in
		// order, the waves that are done by then (their health gates).
		<-f.drained
		for len(flights) > 1 && flights[0].running.Load() == 0 {
			if err := finishOldest(); err != nil {
				return stopWith(err, false)
			}
		}
	}
	// Gates still unmet when the last node is done: wait for each (a gate
	// may thus wait up to twice GateTimeout from its wave's end).
	for _, g := range gates {
		if err := r.gate(ctx, g.f.index, g.f.wave.Nodes, g.f.before); err != nil {
			return r.stop(fmt.Sprintf("health gate after wave %d: %v", g.f.index, err)), fmt.Errorf("health gate after wave %d: %w", g.f.index, err)
		}
	}
	if failures > 0 {
		err := fmt.Errorf("%d node(s) failed", failures)
		res.StopReason = err.Error()
		return res, err
	}
	r.emit("", StepDone, "all %d node(s) run kubelet %s", len(upgraded), o.Target)
	return res, nil
}

// WavesOverlap says whether these options let a wave start while the
// last one's nodes still upgrade (Overlap), past the canary and
// control-plane waves: --zone-by-zone, a soak and the strategies kup is
// measured against all mean "wait for the last wave". An empty Strategy
// is the waves strategy, as in Run.
func (o Options) WavesOverlap() bool {
	return o.Overlap && (o.Strategy == "" || o.Strategy == StrategyWaves) && o.Soak == 0 && !o.Policy.ZoneByZone
}

// mayOverlap says whether the next wave may be planned while wave's nodes
// still upgrade: the options allow it (WavesOverlap), and wave is neither
// the canary (nothing upgraded yet) nor a control-plane wave.
func mayOverlap(o Options, wave plan.Wave, anyUpgraded bool) bool {
	return o.WavesOverlap() && !wave.ControlPlane && anyUpgraded
}

func allQuarantined(res *Result, nodes []string) bool {
	for _, n := range nodes {
		if res.Nodes[n].Outcome != "quarantined" {
			return false
		}
	}
	return true
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// stop records why the rollout ends early.
func (r *Roller) stop(reason string) *Result {
	r.res.Stopped = true
	r.res.StopReason = reason
	r.emit("", StepFailed, "rollout stopped: %s", reason)
	return r.res
}

// scope lists the nodes to roll, in name order.
func (r *Roller) scope(s *clusterState) []string {
	o := r.Options
	want := map[string]bool{}
	for _, n := range o.Nodes {
		want[n] = true
	}
	sel, _ := metav1.LabelSelectorAsSelector(o.Policy.NodeSelector)
	var out []string
	for _, n := range s.nodes {
		if len(want) > 0 && !want[n.Name] {
			continue
		}
		if o.Policy.NodeSelector != nil && !sel.Matches(labelSet(n.Labels)) {
			continue
		}
		if !Due(n, o.Target) {
			continue
		}
		out = append(out, n.Name)
	}
	sort.Strings(out)
	return out
}

// nextWave picks the next wave by the strategy.
func (r *Roller) nextWave(s *clusterState, remaining, upgraded []string, inFlight int) (plan.Wave, []plan.BlockedNode, int) {
	// The wave's nodes are a copy: Run removes them from remaining in
	// place while it walks them, and keeps them in the Result.
	switch r.Options.Strategy {
	case StrategySequential:
		return plan.Wave{Nodes: []string{remaining[0]}, Limit: plan.Limit{Kind: plan.LimitMaxUnavailable, Reason: "sequential: one node at a time"}}, nil, 0
	case StrategyFixedBatch:
		n := min(r.Options.BatchSize, len(remaining))
		return plan.Wave{Nodes: slices.Clone(remaining[:n]), Limit: plan.Limit{Kind: plan.LimitMaxUnavailable, Reason: fmt.Sprintf("fixed batch of %d", r.Options.BatchSize)}}, nil, 0
	}
	in := plan.Input{Nodes: s.nodes, Pods: s.pods, PDBs: pendingBudgets(s.pdbs, s.pods, s.draining), ToUpgrade: remaining, Upgraded: upgraded, Policy: r.Options.Policy, InFlight: inFlight}
	if in.Policy.MaxUnavailable == (intstr.IntOrString{}) {
		in.Policy.MaxUnavailable = intstr.FromInt32(1)
	}
	if r.Options.AutoBudgetRounds {
		in.Policy.BudgetRounds = r.autoRounds(s)
	}
	// Nodes an earlier, interrupted run cordoned (and drained, perhaps
	// upgraded) go first, whatever version it went to: they are already
	// out of service, and starting fresh nodes instead would leave more
	// and more of them cordoned if kup is stopped again and again. If
	// none of them can go now, the others may.
	var resumed []string
	for _, n := range remaining {
		if KupOwnsCordon(s.node(n)) {
			resumed = append(resumed, n)
		}
	}
	if len(resumed) > 0 && len(resumed) < len(remaining) {
		first := in
		first.ToUpgrade = resumed
		if w, _ := plan.NextWave(first); len(w.Nodes) > 0 {
			w.Limit.Reason += fmt.Sprintf("; first the %d node(s) an earlier run left mid-way", len(resumed))
			return w, nil, in.Policy.BudgetRounds
		}
	}
	w, blocked := plan.NextWave(in)
	return w, blocked, in.Policy.BudgetRounds
}

// autoRounds chooses plan.Policy.BudgetRounds from what this rollout
// measured (plan.BudgetRoundsFor): the median node upgrade and the median
// time replacement pods took to be Ready — and 1 until a node has been
// upgraded and replacements seen Ready (the canary wave measures both).
func (r *Roller) autoRounds(s *clusterState) int {
	r.mu.Lock()
	var ups []time.Duration
	started := r.res.Started
	for _, nr := range r.res.Nodes {
		var d time.Duration
		for _, st := range nr.Steps {
			if st.Step == StepUpgrade || st.Step == StepReady {
				d += st.End.Sub(st.Start)
			}
		}
		if nr.Outcome == "upgraded" && d > 0 {
			ups = append(ups, d)
		}
	}
	r.mu.Unlock()
	p := replacementReady(s, started)
	rounds := 1
	u := median(ups)
	if len(ups) > 0 && p > 0 {
		rounds = plan.BudgetRoundsFor(u, p)
	}
	if rounds != r.rounds && r.rounds != 0 {
		r.emit("", StepWave, "budget rounds now %d: a node upgrade takes %s, replacement pods are Ready after %s", rounds, u.Round(100*time.Millisecond), p.Round(100*time.Millisecond))
	}
	r.rounds = rounds
	return rounds
}

// replacementReady is the median time pods created since started took
// from creation to Ready (0 when none is Ready yet).
func replacementReady(s *clusterState, started time.Time) time.Duration {
	var readies []time.Duration
	for _, p := range s.pods {
		if p.CreationTimestamp.Time.Before(started) {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				readies = append(readies, c.LastTransitionTime.Sub(p.CreationTimestamp.Time))
			}
		}
	}
	return median(readies)
}

// bound fills res.Bound and res.OverlapBound from what the rollout
// measured (see Result.Bound).
func (r *Roller) bound(res *Result, in plan.Input, last *clusterState) {
	r.mu.Lock()
	var first *NodeResult
	for _, nr := range res.Nodes {
		// A node an earlier run upgraded and this one only finished
		// measured nothing.
		upgradedHere := slices.ContainsFunc(nr.Steps, func(st StepTime) bool { return st.Step == StepUpgrade })
		if nr.Outcome == "upgraded" && upgradedHere && (first == nil || nr.Steps[0].Start.Before(first.Steps[0].Start)) {
			first = nr
		}
	}
	r.mu.Unlock()
	if first == nil || len(in.ToUpgrade) == 0 {
		return
	}
	res.PerNode = first.Duration
	res.PodReady = replacementReady(last, res.Started)
	b := plan.LowerBound(in, res.PerNode, res.PodReady)
	res.Bound = &b
	if r.Options.Overlap {
		res.OverlapBound = plan.OverlapBound(in, res.PerNode, res.PodReady)
	}
}

// median of ds (0 for none).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// rollNode takes one node through cordon → drain → upgrade → ready →
// uncordon, recording each step on the node (annotation and Event).
func (r *Roller) rollNode(ctx context.Context, node *corev1.Node, wave int, drained func()) error {
	o := r.Options
	name := node.Name
	nr := r.nodeResult(name)
	start := time.Now()
	defer func() { nr.Duration = time.Since(start) }()
	step := func(s string) func() {
		t := StepTime{Step: s, Start: time.Now()}
		return func() {
			t.End = time.Now()
			r.mu.Lock()
			nr.Steps = append(nr.Steps, t)
			r.mu.Unlock()
		}
	}

	// Cordon, remembering whether the node was schedulable: uncordon only
	// what we cordoned. A node cordoned by an earlier kup run for this
	// target counts as ours.
	//
	// The record is written before the cordon (write-ahead): were kup
	// killed between the two in the other order, the node would stay
	// cordoned with nothing saying kup did it, and every later run would
	// take it for a node cordoned by its operator and leave it so. In
	// this order a kill leaves at worst a record saying "cordoned by kup"
	// on a node that is not cordoned yet, which the next run cordons and
	// uncordons as its own.
	done := step(StepCordon)
	cur, err := r.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Deleted since it was planned: nothing touched it, nothing to do.
		done()
		r.markDeleted(name)
		return nil
	}
	if err != nil {
		done()
		return r.fail(ctx, nr, name, false, fmt.Errorf("reading node before cordoning: %w", err))
	}
	ours := KupOwnsCordon(cur)
	if ours && cur.Status.NodeInfo.KubeletVersion == o.Target {
		// An earlier run cordoned this node and was stopped before it
		// recorded it done, and its kubelet is at the target: that run
		// drained and upgraded it, or (a run to another version, or one
		// stopped before its drain) something else upgraded it since.
		// Draining again would evict pods a second time for nothing,
		// and upgrading again is never done.
		done()
		st, _ := nodeState(cur)
		if upgradedByEarlierRun(cur, o.Target) {
			r.emit(name, StepUpgrade, "kubelet already at %s (an earlier run drained and upgraded it); finishing it", o.Target)
		} else {
			r.emit(name, StepUpgrade, "kubelet already at %s, cordoned by a kup run to %s that did not finish (its last step: %s); finishing it without a drain", o.Target, st.Target, st.Phase)
		}
		drained()
		if st.Phase == StepUpgrade && !isReady(cur) {
			// The earlier run may have been stopped inside the upgrade:
			// the new kubelet installed but not started again (the
			// sandbox's SetNodeVersion killed between the version and
			// the restart). A kubelet merely restarting is Ready within
			// the grace; one that is not gets the upgrade run again,
			// which every upgrader must tolerate (a package already at
			// the version, a kubelet restarted once more).
			if err := r.waitReadyWithin(ctx, name, resumeReadyGrace); err != nil {
				if ctx.Err() != nil {
					return r.fail(ctx, nr, name, false, err)
				}
				r.emit(name, StepUpgrade, "kubelet at %s but not Ready after %s: the earlier run's upgrade was cut short; running it again", o.Target, resumeReadyGrace)
				done := step(StepUpgrade)
				err := r.Upgrader.UpgradeNode(ctx, cur, o.Target)
				done()
				if err != nil {
					nr.LeftCordoned = true
					return r.fail(ctx, nr, name, false, fmt.Errorf("upgrade: %w", err))
				}
			}
		}
		return r.finishNode(ctx, node, nr, true, start, step)
	}
	cordonedByUs := !cur.Spec.Unschedulable || ours
	nr.WasCordoned = !cordonedByUs
	if err := r.setState(ctx, name, StepCordon, cordonedByUs); err != nil {
		done()
		return r.fail(ctx, nr, name, false, err)
	}
	wasSchedulable, err := r.drainer.Cordon(ctx, name)
	if err != nil {
		done()
		return r.fail(ctx, nr, name, cordonedByUs, err)
	}
	if !wasSchedulable && !ours && cordonedByUs {
		// Someone cordoned it between our read and our cordon: theirs.
		cordonedByUs = false
		nr.WasCordoned = true
		if err := r.setState(ctx, name, StepCordon, false); err != nil {
			done()
			return r.fail(ctx, nr, name, false, err)
		}
	}
	r.event(ctx, node, "KupCordon", "cordoned for the upgrade to %s (wave %d)", o.Target, wave)
	r.emit(name, StepCordon, "cordoned")
	done()

	done = step(StepDrain)
	r.emit(name, StepDrain, "draining")
	dres, err := r.drainer.Drain(ctx, name)
	if dres != nil {
		r.mu.Lock()
		nr.Evicted += len(dres.Evicted)
		nr.Refusals += dres.Refusals
		r.res.Evictions += len(dres.Evicted)
		r.res.Refusals += dres.Refusals
		r.mu.Unlock()
	}
	done()
	if err != nil {
		var de *drain.Error
		if errors.As(err, &de) && de.TimedOut && o.OnDrainTimeout == OnDrainTimeoutSkip && ctx.Err() == nil {
			nr.Outcome = "quarantined"
			nr.LeftCordoned = true
			nr.Reason = "drain timed out; quarantined by --on-drain-timeout=skip-node (left cordoned, remaining pods untouched): " + err.Error()
			_ = r.setState(context.WithoutCancel(ctx), name, StepFailed, cordonedByUs)
			r.event(context.WithoutCancel(ctx), node, "KupQuarantined", "%s", nr.Reason)
			r.emit(name, StepFailed, "%s", nr.Reason)
			return err
		}
		// The drain changed nothing on the node itself: give it back to
		// the scheduler unless it was cordoned before kup came.
		return r.fail(ctx, nr, name, cordonedByUs, fmt.Errorf("drain: %w", err))
	}
	if err := r.setState(ctx, name, StepDrain, cordonedByUs); err != nil {
		return r.fail(ctx, nr, name, cordonedByUs, err)
	}
	r.event(ctx, node, "KupDrained", "drained: %d pod(s) evicted in %s", len(dres.Evicted), dres.Duration.Round(time.Millisecond))
	drained()

	done = step(StepUpgrade)
	r.emit(name, StepUpgrade, "upgrading kubelet to %s with %s", o.Target, r.Upgrader.Name())
	if err := r.setState(ctx, name, StepUpgrade, cordonedByUs); err != nil {
		done()
		return r.fail(ctx, nr, name, cordonedByUs, err)
	}
	// A node whose kubelet already reports the target was upgraded by an
	// earlier run that stopped before uncordoning it: never upgrade twice.
	if cur, gerr := r.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); gerr == nil && cur.Status.NodeInfo.KubeletVersion == o.Target {
		r.emit(name, StepUpgrade, "kubelet already at %s (an earlier run upgraded it); not upgrading again", o.Target)
		err = nil
	} else {
		err = r.Upgrader.UpgradeNode(ctx, node, o.Target)
	}
	done()
	if err != nil {
		// Something on the node may have changed: it stays cordoned.
		nr.LeftCordoned = true
		return r.fail(ctx, nr, name, false, fmt.Errorf("upgrade: %w", err))
	}

	return r.finishNode(ctx, node, nr, cordonedByUs, start, step)
}

// finishNode waits for an upgraded node to be Ready at the target,
// uncordons it if kup cordoned it, lifts its pending taint and records it
// done.
func (r *Roller) finishNode(ctx context.Context, node *corev1.Node, nr *NodeResult, cordonedByUs bool, start time.Time, step func(string) func()) error {
	o := r.Options
	name := node.Name
	done := step(StepReady)
	if err := r.waitReady(ctx, name); err != nil {
		done()
		nr.LeftCordoned = true
		return r.fail(ctx, nr, name, false, err)
	}
	done()
	r.event(ctx, node, "KupUpgraded", "Ready at kubelet %s", o.Target)

	done = step(StepUncordon)
	if cordonedByUs {
		if err := r.drainer.Uncordon(ctx, name); err != nil {
			done()
			nr.LeftCordoned = true
			return r.fail(ctx, nr, name, false, err)
		}
		r.emit(name, StepUncordon, "uncordoned")
	} else {
		nr.LeftCordoned = true
		nr.Reason = "was cordoned before kup started; left cordoned"
		r.emit(name, StepUncordon, "left cordoned: it was cordoned before kup started")
	}
	if err := r.setPendingTaint(ctx, name, false); err != nil {
		done()
		return r.fail(ctx, nr, name, false, err)
	}
	if err := r.setState(ctx, name, StepDone, false); err != nil {
		done()
		return r.fail(ctx, nr, name, false, err)
	}
	done()
	r.event(ctx, node, "KupDone", "upgrade to %s complete", o.Target)
	nr.Outcome = "upgraded"
	r.emit(name, StepDone, "done in %s", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// rolled is false for a node deleted before kup touched it: it ends
// without an error like a node rolled, but proves nothing about the
// target — were it the canary, counting it among the upgraded would let
// the nodes after it overlap the next canary.
func (r *Roller) rolled(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	nr := r.res.Nodes[name]
	return nr != nil && nr.Outcome != "deleted"
}

// deleted is true when node name no longer exists (a GET answers Not
// Found); it is then recorded as deleted, not rolled.
func (r *Roller) deleted(ctx context.Context, name string) (bool, error) {
	_, err := r.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.markDeleted(name)
		return true, nil
	case err != nil:
		return false, fmt.Errorf("reading node %s: %w", name, err)
	}
	return false, nil
}

// markDeleted records that node name was deleted before kup touched it.
func (r *Roller) markDeleted(name string) {
	nr := r.nodeResult(name)
	r.mu.Lock()
	nr.Outcome = "deleted"
	nr.Reason = "deleted from the cluster during the rollout, before kup touched it; nothing to roll"
	r.mu.Unlock()
	r.emit(name, StepWaiting, "node was deleted from the cluster (a scale-down or its operator?); not rolling it")
}

// fail records a failed node. With uncordon, the node (which kup cordoned
// and did not change) is given back to the scheduler; otherwise it stays
// cordoned if it is, and the reason is recorded.
func (r *Roller) fail(ctx context.Context, nr *NodeResult, name string, uncordon bool, err error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	nr.Outcome = "failed"
	nr.Reason = err.Error()
	r.failed.Add(1)
	if uncordon {
		if uerr := r.drainer.Uncordon(cctx, name); uerr != nil {
			nr.LeftCordoned = true
			nr.Reason += "; uncordoning failed too: " + uerr.Error()
		} else {
			nr.LeftCordoned = false
		}
	} else if n, gerr := r.Client.CoreV1().Nodes().Get(cctx, name, metav1.GetOptions{}); gerr == nil && n.Spec.Unschedulable {
		nr.LeftCordoned = true
		nr.Reason += "; left cordoned because its kubelet may have changed — check the node, then `kubectl uncordon " + name + "`"
	}
	_ = r.setState(cctx, name, StepFailed, nr.LeftCordoned && !nr.WasCordoned)
	if n, gerr := r.Client.CoreV1().Nodes().Get(cctx, name, metav1.GetOptions{}); gerr == nil {
		r.event(cctx, n, "KupFailed", "%s", nr.Reason)
	}
	r.emit(name, StepFailed, "%s", nr.Reason)
	return fmt.Errorf("node %s: %w", name, err)
}

func (r *Roller) nodeResult(name string) *NodeResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	nr := r.res.Nodes[name]
	if nr == nil {
		nr = &NodeResult{Node: name}
		r.res.Nodes[name] = nr
	}
	return nr
}

// waitReady waits for the node to report Ready with the target kubelet.
func (r *Roller) waitReady(ctx context.Context, name string) error {
	return r.waitReadyWithin(ctx, name, r.Options.ReadyTimeout)
}

// waitReadyWithin is waitReady with its own deadline.
func (r *Roller) waitReadyWithin(ctx context.Context, name string, timeout time.Duration) error {
	ctx2, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		n, err := r.Client.CoreV1().Nodes().Get(ctx2, name, metav1.GetOptions{})
		if err == nil {
			ready := isReady(n)
			if ready && n.Status.NodeInfo.KubeletVersion == r.Options.Target {
				return nil
			}
			last = fmt.Sprintf("Ready=%v, kubelet %s", ready, n.Status.NodeInfo.KubeletVersion)
		} else {
			last = err.Error()
		}
		if err := sleepCtx(ctx2, 500*time.Millisecond); err != nil {
			return fmt.Errorf("node did not become Ready at kubelet %s within %s (last seen: %s)", r.Options.Target, timeout, last)
		}
	}
}

func isReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// StateOf is the state a kup run recorded on n (false when there is
// none, or it cannot be read), for the preflight's report of what an
// unfinished run left behind.
func StateOf(n *corev1.Node) (NodeState, bool) { return nodeState(n) }

// nodeState is the state an earlier kup run recorded on n (false when
// there is none, or it cannot be read).
func nodeState(n *corev1.Node) (NodeState, bool) {
	var st NodeState
	if err := json.Unmarshal([]byte(n.Annotations[StateAnnotation]), &st); err != nil {
		return NodeState{}, false
	}
	return st, true
}

// Due is true when a run to target has work on n: its kubelet is behind,
// or a kup run cordoned it and did not finish, whatever version that run
// went to (that cordon is this run's to give back, see KupOwnsCordon).
// Any other node at the target is done already, or never needed it.
func Due(n *corev1.Node, target string) bool {
	return n.Status.NodeInfo.KubeletVersion != target || KupOwnsCordon(n)
}

// KupOwnsCordon is true when a kup run cordoned the node and has not
// released it, whatever version that run went to: the cordon is kup's,
// not its operator's, so the run that upgrades the node now lifts it. (A
// run to another version, after one killed mid-way, used to take it for
// the operator's and leave the node cordoned for good.) The preflight and
// kup status ask the same.
func KupOwnsCordon(n *corev1.Node) bool {
	st, ok := nodeState(n)
	return ok && st.CordonedByKup && st.Phase != StepDone
}

// PendingByTarget groups the nodes carrying kup's pending taint by the
// version the taint names, each list sorted: what runs that did not end
// left behind, for the preflight and kup status.
func PendingByTarget(nodes []corev1.Node) map[string][]string {
	out := map[string][]string{}
	for i := range nodes {
		for _, t := range nodes[i].Spec.Taints {
			if t.Key == PendingTaint {
				out[t.Value] = append(out[t.Value], nodes[i].Name)
			}
		}
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out
}

// resumeReadyGrace is how long a node an earlier run left in its upgrade,
// its kubelet at the target, may take to be Ready before kup runs the
// upgrade again (see rollNode).
const resumeReadyGrace = 30 * time.Second

// upgradedByEarlierRun is true when an earlier run recorded the node past
// its drain (upgrading, waiting for Ready or uncordoning) and its kubelet
// is at the target: only the finish is left to do.
func upgradedByEarlierRun(n *corev1.Node, target string) bool {
	st, ok := nodeState(n)
	if !ok || st.Target != target || n.Status.NodeInfo.KubeletVersion != target {
		return false
	}
	switch st.Phase {
	case StepUpgrade, StepReady, StepUncordon:
		return true
	}
	return false
}

// setState writes StateAnnotation.
func (r *Roller) setState(ctx context.Context, name, phase string, cordonedByKup bool) error {
	st, _ := json.Marshal(NodeState{Target: r.Options.Target, Phase: phase, CordonedByKup: cordonedByKup, Updated: time.Now().UTC()})
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{StateAnnotation: string(st)}}})
	if _, err := r.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("recording state %q on node %s: %w", phase, name, err)
	}
	return nil
}

// setPendingTaint adds or removes the PreferNoSchedule pending taint.
func (r *Roller) setPendingTaint(ctx context.Context, name string, on bool) error {
	for attempt := 0; ; attempt++ {
		n, err := r.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("tainting node %s: %w", name, err)
		}
		has := false
		var taints []corev1.Taint
		for _, t := range n.Spec.Taints {
			if t.Key == PendingTaint {
				has = true
				continue
			}
			taints = append(taints, t)
		}
		if has == on {
			return nil
		}
		if on {
			taints = append(taints, corev1.Taint{Key: PendingTaint, Value: r.Options.Target, Effect: corev1.TaintEffectPreferNoSchedule})
		}
		n.Spec.Taints = taints
		_, err = r.Client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt > 5 {
			return fmt.Errorf("updating taints of node %s: %w", name, err)
		}
	}
}

// event records an Event on the node, so `kubectl describe node` tells
// the story. Failing to record one never fails the rollout.
func (r *Roller) event(ctx context.Context, n *corev1.Node, reason, format string, args ...any) {
	now := metav1.Now()
	typ := corev1.EventTypeNormal
	if reason == "KupFailed" || reason == "KupQuarantined" {
		typ = corev1.EventTypeWarning
	}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: n.Name + ".kup-", Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: n.Name, UID: n.UID, APIVersion: "v1"},
		Reason:         reason, Message: fmt.Sprintf(format, args...), Type: typ,
		Source:         corev1.EventSource{Component: EventSource},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "kup.dev/kup", ReportingInstance: "kup",
	}
	_, _ = r.Client.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{})
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
