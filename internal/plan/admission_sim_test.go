package plan

import (
	"container/heap"
	"flag"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
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

// simDeployment is one Deployment of a simulated cluster and its PDB.
type simDeployment struct {
	name                         string
	replicas                     int
	minAvailable, maxUnavailable string
}

// simBenchMix is the rollout benchmark's mix (internal/rollout,
// benchMix): 40 Deployments, ten under each PDB shape the rollout issue
// names, the percentage shapes scaled with the nodes (at least 10
// replicas).
func simBenchMix(nodes int) []simDeployment {
	scale := func(r int) int { return max(10, int(math.Round(float64(r)*float64(nodes)/200))) }
	var out []simDeployment
	add := func(shape string, sizes []int, scaled bool, minAvail, maxUnavail string) {
		for i, r := range sizes {
			if scaled {
				r = scale(r)
			}
			out = append(out, simDeployment{name: fmt.Sprintf("%s-%02d", shape, i), replicas: r, minAvailable: minAvail, maxUnavailable: maxUnavail})
		}
	}
	add("one", []int{3, 4, 5, 5, 6, 6, 8, 8, 10, 10}, false, "", "1")
	add("ninety", []int{20, 20, 30, 30, 40, 40, 50, 50, 60, 60}, true, "90%", "")
	add("quarter", []int{60, 80, 100, 100, 120, 120, 140, 140, 160, 180}, true, "", "25%")
	add("tenth", []int{150, 180, 200, 220, 230, 240, 250, 260, 295, 310}, true, "", "10%")
	return out
}

// simConfig is one simulated rollout.
type simConfig struct {
	nodes          int
	podsPerNode    int // room of a node, in pods (the sandbox's 3800m over 100m requests)
	mix            []simDeployment
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
	podsAtEnd    int
	meanInFlight float64
}

type simEvent struct {
	at   time.Duration
	kind int // simReady or simDone
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

// simulateAdmission rolls cfg's cluster with continuous admission and returns what
// happened. Pods start spread as a scheduler spreads them (fewest of their
// Deployment, then fewest in all); a replacement goes to the upgraded node
// with the most room, else (the waiting nodes carry kup's PreferNoSchedule
// taint) to the waiting node with the most room, never to a node in flight.
func simulateAdmission(t testing.TB, cfg simConfig) simResult {
	nodes := make([]*v1.Node, cfg.nodes)
	for i := range nodes {
		nodes[i] = worker(fmt.Sprintf("node-%03d", i), zoneNames[i%len(zoneNames)], int64(cfg.podsPerNode)/10+1)
	}
	// Room is counted in pods: every pod requests 100m, and a node's
	// allocatable is podsPerNode of them.
	const podMilli = 100
	for _, n := range nodes {
		n.Status.Allocatable[v1.ResourceCPU] = *resource.NewMilliQuantity(int64(cfg.podsPerNode)*podMilli, resource.DecimalSI)
	}
	onNode := make([]int, cfg.nodes)
	state := make([]int, cfg.nodes) // 0 waiting, 1 in flight, 2 upgraded
	var pods []*v1.Pod
	depOf := map[*v1.Pod]int{}
	var pdbs []*policyv1.PodDisruptionBudget
	healthy := make([]int, len(cfg.mix))
	desired := make([]int, len(cfg.mix))
	perDepNode := make([]map[int]int, len(cfg.mix))
	next := 0
	for d, dep := range cfg.mix {
		perDepNode[d] = map[int]int{}
		for r := range dep.replicas {
			best := -1
			for k := range cfg.nodes {
				i := (next + k) % cfg.nodes
				if onNode[i] >= cfg.podsPerNode {
					continue
				}
				if best < 0 || perDepNode[d][i] < perDepNode[d][best] || (perDepNode[d][i] == perDepNode[d][best] && onNode[i] < onNode[best]) {
					best = i
				}
			}
			if best < 0 {
				t.Fatalf("%d nodes of %d pods cannot hold the mix", cfg.nodes, cfg.podsPerNode)
			}
			next = (best + 1) % cfg.nodes
			p := podOn("bench", fmt.Sprintf("%s-%d", dep.name, r), nodes[best].Name, podMilli, "ReplicaSet", map[string]string{"app": dep.name})
			pods = append(pods, p)
			depOf[p] = d
			onNode[best]++
			perDepNode[d][best]++
		}
		want := dep.replicas
		if dep.minAvailable != "" {
			v := intstr.Parse(dep.minAvailable)
			want, _ = intstr.GetScaledValueFromIntOrPercent(&v, dep.replicas, true)
		} else {
			v := intstr.Parse(dep.maxUnavailable)
			mu, _ := intstr.GetScaledValueFromIntOrPercent(&v, dep.replicas, true)
			want = dep.replicas - mu
		}
		desired[d] = want
		healthy[d] = dep.replicas
		pdbs = append(pdbs, pdb("bench", dep.name, int32(dep.replicas), int32(want)))
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
			ui, ub := state[i] == 2, state[best] == 2
			if ui != ub {
				return ui
			}
			return onNode[i] < onNode[best]
		}
		for i := range nodes {
			if state[i] != 1 && onNode[i] < cfg.podsPerNode && better(i) {
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
				if state[i] == 0 {
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
					state[i] = 1
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
				r := podOn("bench", p.Name+"x", nodes[j].Name, podMilli, "ReplicaSet", p.Labels)
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
				state[e.node] = 2
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
	res.podsAtEnd = len(pods)
	res.meanInFlight = flightArea / max(last.Seconds(), 1e-9)
	return res
}

// TestAdmissionSimulation checks NextWave asked as continuous admission
// asks it: the canary goes alone, never more nodes down than
// max-unavailable, every node done, every pod still there.
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
			mix := simBenchMix(tc.nodes)
			pods := 0
			for _, d := range mix {
				pods += d.replicas
			}
			r := simulateAdmission(t, simConfig{nodes: tc.nodes, podsPerNode: 38, mix: mix, maxUnavailable: tc.max,
				perNode: 18300 * time.Millisecond, podReady: 5 * time.Second})
			if r.firstWave != 1 {
				t.Errorf("first admission took %d nodes, want the canary alone", r.firstWave)
			}
			if r.maxInFlight > tc.cap {
				t.Errorf("%d nodes down at once, max-unavailable %s allows %d", r.maxInFlight, tc.max.String(), tc.cap)
			}
			if r.pods != pods || r.podsAtEnd != pods {
				t.Errorf("pods: %d at the start, %d at the end, the mix has %d", r.pods, r.podsAtEnd, pods)
			}
			if r.evictions < pods {
				t.Errorf("%d evictions for %d pods: every pod leaves its node at least once", r.evictions, pods)
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
			cfg := simConfig{nodes: n, podsPerNode: 38, mix: simBenchMix(n), maxUnavailable: percent(20),
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
