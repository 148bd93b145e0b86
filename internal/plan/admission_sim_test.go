package plan

import (
	"container/heap"
	"flag"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kup-project/kup/internal/sandbox"
)

// The admission simulator runs kup's continuous admission (NextWave asked
// again whenever a budget comes back or a node is done, as the rollout's
// live cache makes it) on a cluster whose timings are exact: a node takes
// perNode from its evictions to done, a replacement pod is Ready
// podReady after its eviction, nothing waits on a busy control plane.
// The sandbox benchmark measures kup on a real control plane that two
// cores keep busy; the simulator says how far kup's choice of nodes alone
// is from plan.OverlapBound, in milliseconds and the same every run.

var (
	simNodes    = flag.Int("sim.nodes", 0, "BenchmarkAdmissionSimulation: nodes of the simulated cluster (0: 20, 100 and 200)")
	simPerNode  = flag.Duration("sim.per-node", 18300*time.Millisecond, "BenchmarkAdmissionSimulation: a node's time from its evictions to done, cordon to done when no budget holds its drain (default: the sandbox canary's)")
	simPodReady = flag.Duration("sim.pod-ready", 5*time.Second, "BenchmarkAdmissionSimulation: a replacement pod's time from its eviction to Ready, when its PDB's budget is back (default: the sandbox's pod ready delay)")
)

// simConfig is one simulated rollout.
type simConfig struct {
	nodes          int
	mix            []sandbox.Workload // Deployments with their PDBs
	maxUnavailable intstr.IntOrString
	perNode        time.Duration
	podReady       time.Duration
}

// simResult is what a simulated rollout did.
type simResult struct {
	makespan     time.Duration
	bound        time.Duration // OverlapBound of the starting cluster
	evictions    int
	pods         int
	waits        int // looks at which a drain had pods its PDBs did not allow yet
	admissions   int // NextWave answers that admitted nodes
	maxInFlight  int
	firstWave    int // nodes of the first admission (the canary)
	meanInFlight float64
}

type simEvent struct {
	at   time.Duration
	kind int // simReady, simDone or simGate
	pod  *v1.Pod
	node int
}

const (
	simReady = iota
	simDone
	simGate // the canary's gate may pass
)

// simLook is how far apart the simulated kup looks at the cluster at
// least: events this close are taken together.
const simLook = 50 * time.Millisecond

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].kind < q[j].kind
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// A simulated node is waiting, in flight (cordoned, draining or
// upgrading) or upgraded.
const (
	simWaiting = iota
	simInFlight
	simUpgraded
)

// simulateAdmission rolls cfg's cluster with continuous admission and
// returns what happened. Nodes are the sandbox's (NodeAllocatable), pods
// request what the sandbox's do. Pods start spread as a scheduler spreads them (fewest of their
// Deployment, then fewest in all); a replacement goes to the upgraded node
// with the most room, else (the waiting nodes carry kup's PreferNoSchedule
// taint) to the waiting node with the most room, never to a node in flight.
func simulateAdmission(t testing.TB, cfg simConfig) simResult {
	nodes := make([]*v1.Node, cfg.nodes)
	for i := range nodes {
		nodes[i] = worker(sandbox.NodeName(i), sandbox.Zones[i%len(sandbox.Zones)], 0)
		nodes[i].Status.Allocatable = sandbox.NodeAllocatable()
	}
	// Room is counted in pods: every pod of the mix requests the same CPU
	// (the only request podOn sets), a whole fraction of a node's.
	request, alloc := cfg.mix[0].PodRequests(), sandbox.NodeAllocatable()
	podMilli := request.Cpu().MilliValue()
	podsPerNode := int(alloc.Cpu().MilliValue() / podMilli)
	onNode := make([]int, cfg.nodes)
	state := make([]int, cfg.nodes) // simWaiting at first
	var pods []*v1.Pod
	depOf := map[*v1.Pod]int{}
	var pdbs []*policyv1.PodDisruptionBudget
	healthy := make([]int, len(cfg.mix))
	desired := make([]int, len(cfg.mix))
	perDepNode := make([]map[int]int, len(cfg.mix))
	next := 0
	for d, dep := range cfg.mix {
		perDepNode[d] = map[int]int{}
		for r := range int(dep.Replicas) {
			best := -1
			for k := range cfg.nodes {
				i := (next + k) % cfg.nodes
				if onNode[i] >= podsPerNode {
					continue
				}
				if best < 0 || perDepNode[d][i] < perDepNode[d][best] || (perDepNode[d][i] == perDepNode[d][best] && onNode[i] < onNode[best]) {
					best = i
				}
			}
			if best < 0 {
				t.Fatalf("%d nodes of %d pods cannot hold the mix", cfg.nodes, podsPerNode)
			}
			next = (best + 1) % cfg.nodes
			p := podOn(dep.Namespace, fmt.Sprintf("%s-%d", dep.Name, r), nodes[best].Name, podMilli, "ReplicaSet", map[string]string{"app": dep.Name})
			pods = append(pods, p)
			depOf[p] = d
			onNode[best]++
			perDepNode[d][best]++
		}
		// The disruption controller's arithmetic: percentages round up.
		replicas := int(dep.Replicas)
		want := replicas
		if v := dep.PDB.MinAvailable; v != nil {
			want, _ = intstr.GetScaledValueFromIntOrPercent(v, replicas, true)
		} else if v := dep.PDB.MaxUnavailable; v != nil {
			mu, _ := intstr.GetScaledValueFromIntOrPercent(v, replicas, true)
			want = replicas - mu
		}
		desired[d] = want
		healthy[d] = replicas
		pdbs = append(pdbs, pdb(dep.Namespace, dep.Name, dep.Replicas, int32(want)))
	}
	nodeIndex := map[string]int{}
	for i, n := range nodes {
		nodeIndex[n.Name] = i
	}
	policy := Policy{MaxUnavailable: cfg.maxUnavailable}
	all := names(nodes)
	res := simResult{pods: len(pods),
		bound: OverlapBound(Input{Nodes: nodes, Pods: pods, PDBs: pdbs, ToUpgrade: all, Policy: policy}, cfg.perNode, cfg.podReady)}

	var q simQueue
	var now time.Duration
	inFlight, done := 0, 0
	var upgraded []string
	draining := map[int]bool{}
	var gateUntil time.Duration // the canary's health gate: its node done and its pods Ready
	var flightArea float64      // ∫ in-flight dt
	last := time.Duration(0)
	place := func() int {
		best := -1
		better := func(i int) bool {
			if best < 0 {
				return true
			}
			ui, ub := state[i] == simUpgraded, state[best] == simUpgraded
			if ui != ub {
				return ui
			}
			return onNode[i] < onNode[best]
		}
		for i := range nodes {
			if state[i] != simInFlight && onNode[i] < podsPerNode && better(i) {
				best = i
			}
		}
		return best
	}
	for step := 0; done < cfg.nodes; step++ {
		if step > 100*cfg.nodes+len(pods)*4 {
			t.Fatalf("no end: %d of %d nodes done at %s", done, cfg.nodes, now)
		}
		if now >= gateUntil {
			// As the rollout's pendingBudgets: pods still to leave
			// draining nodes have their budget promised.
			promised := make([]int, len(pdbs))
			for _, p := range pods {
				if draining[nodeIndex[p.Spec.NodeName]] && p.Status.Phase == v1.PodRunning {
					promised[depOf[p]]++
				}
			}
			for i, p := range pdbs {
				p.Status.CurrentHealthy = int32(healthy[i])
				p.Status.DisruptionsAllowed = int32(max(healthy[i]-desired[i]-promised[i], 0))
			}
			var remaining []string
			for i, n := range nodes {
				if state[i] == simWaiting {
					remaining = append(remaining, n.Name)
				}
			}
			if len(remaining) > 0 {
				w, _ := NextWave(Input{Nodes: nodes, Pods: pods, PDBs: pdbs, ToUpgrade: remaining, Upgraded: upgraded, Policy: policy, InFlight: inFlight})
				if len(w.Nodes) > 0 {
					res.admissions++
					if res.admissions == 1 {
						res.firstWave = len(w.Nodes)
					}
				}
				for _, name := range w.Nodes {
					i := nodeIndex[name]
					state[i] = simInFlight
					nodes[i].Spec.Unschedulable = true
					inFlight++
					draining[i] = true
					if res.admissions == 1 {
						// The canary's gate: the next wave waits for its
						// node and its pods.
						gateUntil = now + cfg.perNode + cfg.podReady
						heap.Push(&q, simEvent{at: gateUntil, kind: simGate})
					}
				}
				res.maxInFlight = max(res.maxInFlight, inFlight)
			}
		}
		// Drains evict what their PDBs allow, and wait for the rest as
		// kup's drain does; a node is done perNode after its last
		// eviction.
		for _, i := range slices.Sorted(maps.Keys(draining)) {
			name := nodes[i].Name
			var stay []*v1.Pod
			left := 0
			for _, p := range pods {
				if p.Spec.NodeName != name {
					stay = append(stay, p)
					continue
				}
				d := depOf[p]
				if p.Status.Phase == v1.PodRunning {
					if healthy[d]-1 < desired[d] {
						stay = append(stay, p)
						left++
						continue
					}
					healthy[d]--
				}
				res.evictions++
				onNode[i]--
				j := place()
				if j < 0 {
					t.Fatalf("at %s: no room for a replacement of %s", now, p.Name)
				}
				r := podOn(p.Namespace, p.Name+"x", nodes[j].Name, podMilli, "ReplicaSet", p.Labels)
				r.Status.Phase = v1.PodPending
				depOf[r] = d
				onNode[j]++
				stay = append(stay, r)
				heap.Push(&q, simEvent{at: now + cfg.podReady, kind: simReady, pod: r})
			}
			pods = stay
			if left == 0 {
				delete(draining, i)
				heap.Push(&q, simEvent{at: now + cfg.perNode, kind: simDone, node: i})
			} else {
				res.waits++
			}
		}
		if q.Len() == 0 {
			if done < cfg.nodes {
				t.Fatalf("at %s: nothing left to happen with %d of %d nodes done", now, done, cfg.nodes)
			}
			break
		}
		// Take every event up to the next look (kup looks again when a
		// budget grows or a node is done; the window stands for the
		// informer's delivery and keeps the simulation quick).
		until := q[0].at + simLook
		for q.Len() > 0 && q[0].at <= until {
			e := heap.Pop(&q).(simEvent)
			flightArea += float64(inFlight) * (e.at - now).Seconds()
			now = e.at
			switch e.kind {
			case simReady:
				e.pod.Status.Phase = v1.PodRunning
				healthy[depOf[e.pod]]++
			case simDone:
				state[e.node] = simUpgraded
				nodes[e.node].Spec.Unschedulable = false
				inFlight--
				done++
				upgraded = append(upgraded, nodes[e.node].Name)
				last = now
			}
		}
		now = max(now, until)
	}
	res.makespan = last
	res.meanInFlight = flightArea / max(last.Seconds(), 1e-9)
	return res
}

// TestAdmissionSimulation checks NextWave asked as continuous admission
// asks it: the canary goes alone, never more nodes down than
// max-unavailable, every node done (simulateAdmission fails the test
// otherwise), and no makespan below plan.OverlapBound.
func TestAdmissionSimulation(t *testing.T) {
	for _, tc := range []struct {
		nodes int
		max   intstr.IntOrString
		cap   int
	}{
		{nodes: 20, max: percent(20), cap: 4},
		{nodes: 60, max: percent(20), cap: 12},
		{nodes: 60, max: count(1), cap: 1},
	} {
		t.Run(fmt.Sprintf("%d-nodes-max-%s", tc.nodes, tc.max.String()), func(t *testing.T) {
			r := simulateAdmission(t, simConfig{nodes: tc.nodes, mix: sandbox.RolloutMix(tc.nodes), maxUnavailable: tc.max,
				perNode: 18300 * time.Millisecond, podReady: 5 * time.Second})
			if r.firstWave != 1 {
				t.Errorf("first admission took %d nodes, want the canary alone", r.firstWave)
			}
			if r.maxInFlight > tc.cap {
				t.Errorf("%d nodes down at once, max-unavailable %s allows %d", r.maxInFlight, tc.max.String(), tc.cap)
			}
			if r.makespan < r.bound {
				t.Errorf("makespan %s below plan.OverlapBound %s: the bound does not bound", r.makespan, r.bound)
			}
			t.Logf("makespan %s, overlap bound %s (%.2fx), %.2f evictions/pod, %.1f nodes down on average", r.makespan, r.bound, float64(r.makespan)/float64(r.bound), float64(r.evictions)/float64(r.pods), r.meanInFlight)
		})
	}
}

// BenchmarkAdmissionSimulation rolls the rollout benchmark's cluster in
// the simulator and reports kup's makespan against plan.OverlapBound with
// the timings the sandbox's canary shows (18.3 s a node, pods Ready 5 s
// after their eviction).
//
// -sim.per-node and -sim.pod-ready replay other timings: those a loaded
// control plane shows, to see whether they alone explain a sandbox run.
func BenchmarkAdmissionSimulation(b *testing.B) {
	sizes := []int{20, 100, 200}
	if *simNodes > 0 {
		sizes = []int{*simNodes}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("nodes-%d", n), func(b *testing.B) {
			cfg := simConfig{nodes: n, mix: sandbox.RolloutMix(n), maxUnavailable: percent(20),
				perNode: *simPerNode, podReady: *simPodReady}
			var r simResult
			for b.Loop() {
				r = simulateAdmission(b, cfg)
			}
			b.ReportMetric(r.makespan.Seconds(), "makespan-s")
			b.ReportMetric(r.bound.Seconds(), "overlap-bound-s")
			b.ReportMetric(float64(r.makespan)/float64(r.bound), "kup/bound")
			b.ReportMetric(float64(r.evictions)/float64(r.pods), "evictions/pod")
			b.ReportMetric(r.meanInFlight, "mean-in-flight")
			b.ReportMetric(float64(r.waits), "drain-waits")
		})
	}
}
