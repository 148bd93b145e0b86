package plan

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kup-project/kup/internal/capacity"
)

// TestRollingSequences drives the planner the way the executor does, in the
// spirit of Cluster API's Test_RollingUpdateSequences
// (core/reconcilers/machinedeployment/machinedeployment_rollout_rollingupdate_test.go):
// on random clusters from fixed seeds, ask NextWave, check every invariant
// on the wave, simulate it (evicted pods move to other nodes, preferably
// upgraded ones; budgets recover), and ask again until nothing is left.
// PlanWaves on the initial cluster is checked against the same invariants
// and for determinism.
func TestRollingSequences(t *testing.T) {
	const seeds = 50
	var kupWaves, planned, bound, oneByOne, fixed, fixedStalls int
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x6b7570))
			w := generate(rng, shape{nodesMin: 10, nodesMax: 60, deploysMin: 5, deploysMax: 20,
				replicasMin: 1, replicasMax: 40, namespaces: 4, controlPlane: true, fill: 0.45})
			in := Input{Nodes: w.nodes, Pods: w.pods, PDBs: w.pdbs, ToUpgrade: names(w.nodes), Policy: w.policy}
			lb := LowerBound(in, 0, 0)

			p := PlanWaves(in)
			checkDeterministic(t, rng, in, p)
			checkPlan(t, w, in, p)

			f, stalls := fixedBatches(w, p)
			fixed += f
			fixedStalls += stalls
			oneByOne += len(in.ToUpgrade) - len(p.Blocked)
			bound += lb.Waves
			planned += len(p.Waves)
			kupWaves += runSequence(t, w, in, lb)
		})
	}
	t.Logf("%d seeds: lower bound %d waves; PlanWaves %d (%.2fx the bound); NextWave run with pods moving %d (%.2fx); one node at a time %d (%.2fx kup's run); fixed batches of max-unavailable in name order %d, of which %d stall on a PDB (429)",
		seeds, bound, planned, ratio(planned, bound), kupWaves, ratio(kupWaves, bound), oneByOne, ratio(oneByOne, kupWaves), fixed, fixedStalls)
}

func ratio(a, b int) float64 { return float64(a) / float64(max(b, 1)) }

// runSequence is the executor loop; it returns the number of waves run.
func runSequence(t *testing.T, w world, in Input, lb Bound) int {
	t.Helper()
	scope := slices.Clone(in.ToUpgrade)
	upgradedOnce := map[string]int{}
	_, blockedAtStart := NextWave(in)
	var blockedAtEnd []BlockedNode
	visited := map[string]bool{}
	lastZone := ""
	workerWaves := 0
	sawWorker := false
	waves := 0
	for iter := 0; ; iter++ {
		if iter > len(scope)+1 {
			t.Fatalf("no end after %d waves", iter)
		}
		placed := map[*v1.Pod]string{}
		wave, blocked := nextWave(in, func(l *capacity.Ledger) {
			for _, n := range w.nodes {
				for _, p := range l.Placed(n.Name) {
					placed[p] = n.Name
				}
			}
		})
		blockedAtEnd = blocked
		blockedNow := map[string]bool{}
		for _, b := range blocked {
			blockedNow[b.Node] = true
		}
		if len(wave.Nodes) == 0 {
			// Budgets always recover here, so an empty wave means done.
			if wave.Limit.Kind != LimitNoMoreNodes {
				t.Fatalf("empty wave on a healthy cluster: %+v", wave.Limit)
			}
			break
		}
		waves++
		ctx := fmt.Sprintf("wave %d %v (%s)", waves, wave.Nodes, wave.Limit.Reason)

		// Size, control plane, canary.
		cp := 0
		for _, n := range wave.Nodes {
			if isControlPlane(nodeByName(w, n)) {
				cp++
			}
		}
		if cp > 0 {
			if len(wave.Nodes) != 1 || sawWorker {
				t.Errorf("%s: control-plane nodes go alone and first", ctx)
			}
		} else {
			sawWorker = true
			workerWaves++
			if len(wave.Nodes) > capOf(w) {
				t.Errorf("%s: %d nodes > max-unavailable %d", ctx, len(wave.Nodes), capOf(w))
			}
			if workerWaves == 1 && w.policy.CanaryEnabled() && len(wave.Nodes) != 1 {
				t.Errorf("%s: the first worker wave is a single canary", ctx)
			}
		}

		// Zones: one per wave, each zone finished before the next.
		if w.policy.ZoneByZone && cp == 0 {
			z := nodeByName(w, wave.Nodes[0]).Labels[ZoneLabel]
			for _, n := range wave.Nodes {
				if nodeByName(w, n).Labels[ZoneLabel] != z {
					t.Errorf("%s: spans zones", ctx)
				}
			}
			if workerWaves == 1 || z != lastZone {
				if visited[z] {
					t.Errorf("%s: back in zone %s after leaving it", ctx, z)
				}
				visited[z] = true
				lastZone = z
			}
		}

		// PDBs, counted by the test's own knowledge of the deployments.
		checkBudgets(t, ctx, w, wave, func(p *policyv1.PodDisruptionBudget) int { return int(p.Status.DisruptionsAllowed) })

		// Every rescheduled pod has a place: the planner's own packing,
		// checked pod by pod with the test's arithmetic, and the total
		// requests against the total room.
		checkPacking(t, ctx, w, wave.Nodes, placed)
		checkRoom(t, ctx, w, wave.Nodes)

		for _, n := range wave.Nodes {
			upgradedOnce[n]++
			if blockedNow[n] {
				t.Errorf("%s: node %s is blocked", ctx, n)
			}
		}
		w.pods = simulate(t, w, wave.Nodes, in.Upgraded, placed)
		in.Upgraded = append(in.Upgraded, wave.Nodes...)
		in.ToUpgrade = slices.DeleteFunc(in.ToUpgrade, func(n string) bool { return slices.Contains(wave.Nodes, n) })
		in.Pods = w.pods
	}

	// A drain is blocked for good by a PDB (the blocked node's pods never
	// move), and for now by capacity: pods moving in a wave can make room.
	final := map[string]bool{}
	for _, b := range blockedAtEnd {
		final[b.Node] = true
	}
	for _, b := range blockedAtStart {
		if b.Cause != BlockedByCapacity && !final[b.Node] {
			t.Errorf("node %s was blocked at the start (%s) but not at the end", b.Node, b.Reason)
		}
	}
	for _, n := range scope {
		switch {
		case final[n] && upgradedOnce[n] > 0:
			t.Errorf("node %s both blocked at the end and upgraded", n)
		case !final[n] && upgradedOnce[n] != 1:
			t.Errorf("node %s upgraded %d times, want once", n, upgradedOnce[n])
		}
	}
	grew := false
	for n := range final {
		if !slices.ContainsFunc(blockedAtStart, func(b BlockedNode) bool { return b.Node == n }) {
			grew = true
		}
	}
	if !grew && waves < lb.Waves {
		t.Errorf("%d waves beat the lower bound %+v", waves, lb)
	}
	return waves
}

// checkBudgets asserts no PDB loses more pods to the wave than budget
// allows, except to one node that holds them all and waits for the budget.
func checkBudgets(t *testing.T, ctx string, w world, wave Wave, budget func(*policyv1.PodDisruptionBudget) int) {
	t.Helper()
	inWave := map[string]bool{}
	for _, n := range wave.Nodes {
		inWave[n] = true
	}
	evicted := map[*policyv1.PodDisruptionBudget]int{}
	for _, p := range w.pods {
		d := w.deploy[p]
		if d < 0 || !inWave[p.Spec.NodeName] || w.pdbOf[d] == nil {
			continue
		}
		evicted[w.pdbOf[d]]++
	}
	for pdb, n := range evicted {
		b := budget(pdb)
		if b == 0 {
			t.Errorf("%s: evicts %d pods of %s/%s, which allows no disruption", ctx, n, pdb.Namespace, pdb.Name)
		}
		key := pdb.Namespace + "/" + pdb.Name
		if n > b && !slices.ContainsFunc(wave.BudgetWaits, func(bw BudgetWait) bool { return bw.PDB == key && bw.Pods == n }) {
			t.Errorf("%s: evicts %d pods of PDB %s, budget %d, and not all from one node that waits for it", ctx, n, key, b)
		}
	}
}

// checkPacking verifies the planner's packing of the wave: every pod the
// wave's drains reschedule is placed, on a node outside the wave that is
// not cordoned, matches the pod's nodeSelector, is not a (tainted)
// control-plane node, and has the cpu, memory and pod slots for
// everything placed there. The generated pods use no other constraint.
func checkPacking(t *testing.T, ctx string, w world, wave []string, placed map[*v1.Pod]string) {
	t.Helper()
	type use struct{ cpu, mem, pods int64 }
	used := map[string]*use{}
	for _, n := range w.nodes {
		used[n.Name] = &use{}
	}
	for _, p := range w.pods {
		if u := used[p.Spec.NodeName]; u != nil && p.Status.Phase == v1.PodRunning {
			r := capacity.PodRequests(p)
			u.cpu, u.mem, u.pods = u.cpu+r.MilliCPU, u.mem+r.Memory, u.pods+1
		}
	}
	for _, p := range w.pods {
		if !slices.Contains(wave, p.Spec.NodeName) || capacity.DrainFate(p) != capacity.Rescheduled {
			continue
		}
		to, ok := placed[p]
		n := nodeByName(w, to)
		switch {
		case !ok || n == nil:
			t.Errorf("%s: pod %s/%s left without a place", ctx, p.Namespace, p.Name)
			continue
		case slices.Contains(wave, to), n.Spec.Unschedulable, isControlPlane(n):
			t.Errorf("%s: pod %s/%s placed on %s, which cannot take it", ctx, p.Namespace, p.Name, to)
		case p.Spec.NodeSelector[ZoneLabel] != "" && p.Spec.NodeSelector[ZoneLabel] != n.Labels[ZoneLabel]:
			t.Errorf("%s: pod %s/%s placed on %s outside its zone", ctx, p.Namespace, p.Name, to)
		}
		r := capacity.PodRequests(p)
		u := used[to]
		u.cpu, u.mem, u.pods = u.cpu+r.MilliCPU, u.mem+r.Memory, u.pods+1
	}
	for _, n := range w.nodes {
		u := used[n.Name]
		if !slices.Contains(slices.Collect(maps.Values(placed)), n.Name) {
			continue
		}
		if u.cpu > n.Status.Allocatable.Cpu().MilliValue() || u.mem > n.Status.Allocatable.Memory().Value() || u.pods > n.Status.Allocatable.Pods().Value() {
			t.Errorf("%s: node %s overcommitted by the planner's packing: %+v", ctx, n.Name, *u)
		}
	}
}

// checkRoom compares the cpu and memory the wave's rescheduled pods request
// with what the other schedulable workers have free.
func checkRoom(t *testing.T, ctx string, w world, wave []string) {
	t.Helper()
	var needCPU, needMem, freeCPU, freeMem int64
	usedCPU, usedMem := map[string]int64{}, map[string]int64{}
	for _, p := range w.pods {
		r := capacity.PodRequests(p)
		usedCPU[p.Spec.NodeName] += r.MilliCPU
		usedMem[p.Spec.NodeName] += r.Memory
		if slices.Contains(wave, p.Spec.NodeName) && capacity.DrainFate(p) == capacity.Rescheduled {
			needCPU += r.MilliCPU
			needMem += r.Memory
		}
	}
	for _, n := range w.nodes {
		if slices.Contains(wave, n.Name) || n.Spec.Unschedulable || isControlPlane(n) {
			continue
		}
		freeCPU += n.Status.Allocatable.Cpu().MilliValue() - usedCPU[n.Name]
		freeMem += n.Status.Allocatable.Memory().Value() - usedMem[n.Name]
	}
	if needCPU > freeCPU || needMem > freeMem {
		t.Errorf("%s: needs %dm cpu, %d memory; others have %dm, %d free", ctx, needCPU, needMem, freeCPU, freeMem)
	}
}

// simulate runs the wave: unmanaged pods are gone, every other evicted pod
// is recreated by its controller on a node outside the wave, preferably one
// already upgraded, largest pods first. Nothing fitting is a failure.
func simulate(t *testing.T, w world, wave, upgraded []string, planned map[*v1.Pod]string) []*v1.Pod {
	t.Helper()
	var moving []*v1.Pod
	kept := make([]*v1.Pod, 0, len(w.pods))
	for _, p := range w.pods {
		if slices.Contains(wave, p.Spec.NodeName) {
			switch capacity.DrainFate(p) {
			case capacity.Deleted:
				continue
			case capacity.Rescheduled:
				moving = append(moving, p)
			}
		}
		kept = append(kept, p)
	}
	w.pods = kept
	slices.SortStableFunc(moving, func(a, b *v1.Pod) int {
		return cmp.Compare(capacity.PodRequests(b).MilliCPU, capacity.PodRequests(a).MilliCPU)
	})
	// Like the scheduler's LeastAllocated scoring, spread: of the upgraded
	// nodes that fit, the one with most cpu free; else of any node.
	freeCPU := map[string]int64{}
	for _, n := range w.nodes {
		freeCPU[n.Name] = n.Status.Allocatable.Cpu().MilliValue()
	}
	for _, p := range w.pods {
		if p.Spec.NodeName != "" && !slices.Contains(moving, p) {
			freeCPU[p.Spec.NodeName] -= capacity.PodRequests(p).MilliCPU
		}
	}
	for _, p := range moving {
		p.Spec.NodeName = ""
	}
	for _, p := range moving {
		for _, preferUpgraded := range []bool{true, false} {
			var best *v1.Node
			for _, n := range w.nodes {
				if slices.Contains(wave, n.Name) || (preferUpgraded && !slices.Contains(upgraded, n.Name)) {
					continue
				}
				if best != nil && freeCPU[n.Name] <= freeCPU[best.Name] {
					continue
				}
				if _, _, ok := capacity.NewLedger([]*v1.Node{n}, w.pods).Check(p, n.Name); ok {
					best = n
				}
			}
			if best != nil {
				p.Spec.NodeName = best.Name
				freeCPU[best.Name] -= capacity.PodRequests(p).MilliCPU
				break
			}
		}
		if p.Spec.NodeName == "" {
			// Spreading fragmented the room (as the scheduler can): fall back
			// to the packing the planner relied on, checked by the caller.
			for _, q := range moving {
				q.Spec.NodeName = planned[q]
			}
			break
		}
	}
	return w.pods
}

// checkPlan asserts PlanWaves' static invariants: the same rules as the
// sequence, with budgets at steady state and pods where they are.
func checkPlan(t *testing.T, w world, in Input, p Plan) {
	t.Helper()
	seen := map[string]int{}
	sawWorker := false
	for i, wave := range p.Waves {
		ctx := fmt.Sprintf("plan wave %d %v (%s)", i+1, wave.Nodes, wave.Limit.Reason)
		if wave.Index != i+1 || len(wave.Nodes) == 0 {
			t.Errorf("%s: index %d, %d nodes", ctx, wave.Index, len(wave.Nodes))
		}
		if wave.ControlPlane {
			if len(wave.Nodes) != 1 || sawWorker {
				t.Errorf("%s: control-plane waves are single and first", ctx)
			}
		} else {
			sawWorker = true
			if len(wave.Nodes) > capOf(w) {
				t.Errorf("%s: larger than max-unavailable %d", ctx, capOf(w))
			}
		}
		checkBudgets(t, ctx, w, wave, func(pdb *policyv1.PodDisruptionBudget) int {
			return int(pdb.Status.ExpectedPods - pdb.Status.DesiredHealthy)
		})
		for _, n := range wave.Nodes {
			seen[n]++
		}
	}
	blocked := map[string]bool{}
	for _, b := range p.Blocked {
		blocked[b.Node] = true
		if b.Cause == BlockedByPDB && !holdsZeroBudgetPod(w, b.Node) {
			t.Errorf("node %s blocked by PDB without a zero-budget pod: %+v", b.Node, b)
		}
	}
	for _, n := range in.ToUpgrade {
		if blocked[n] == (seen[n] == 1) || seen[n] > 1 {
			t.Errorf("node %s: blocked %v, in %d waves", n, blocked[n], seen[n])
		}
	}
	if len(p.Waves) < p.LowerBound.Waves {
		t.Errorf("plan of %d waves beats its lower bound %+v", len(p.Waves), p.LowerBound)
	}
}

func holdsZeroBudgetPod(w world, node string) bool {
	for _, p := range w.pods {
		if d := w.deploy[p]; d >= 0 && p.Spec.NodeName == node && w.pdbOf[d] != nil &&
			w.pdbOf[d].Status.ExpectedPods == w.pdbOf[d].Status.DesiredHealthy {
			return true
		}
	}
	return false
}

// checkDeterministic plans again with every input list shuffled: the plan
// must not change by one byte.
func checkDeterministic(t *testing.T, rng *rand.Rand, in Input, p Plan) {
	t.Helper()
	want, _ := json.Marshal(p)
	shuffled := in
	shuffled.Nodes = slices.Clone(in.Nodes)
	shuffled.Pods = slices.Clone(in.Pods)
	shuffled.PDBs = slices.Clone(in.PDBs)
	shuffled.ToUpgrade = slices.Clone(in.ToUpgrade)
	rng.Shuffle(len(shuffled.Nodes), func(i, j int) { shuffled.Nodes[i], shuffled.Nodes[j] = shuffled.Nodes[j], shuffled.Nodes[i] })
	rng.Shuffle(len(shuffled.Pods), func(i, j int) { shuffled.Pods[i], shuffled.Pods[j] = shuffled.Pods[j], shuffled.Pods[i] })
	rng.Shuffle(len(shuffled.PDBs), func(i, j int) { shuffled.PDBs[i], shuffled.PDBs[j] = shuffled.PDBs[j], shuffled.PDBs[i] })
	rng.Shuffle(len(shuffled.ToUpgrade), func(i, j int) {
		shuffled.ToUpgrade[i], shuffled.ToUpgrade[j] = shuffled.ToUpgrade[j], shuffled.ToUpgrade[i]
	})
	for _, again := range []Input{in, shuffled} {
		got, _ := json.Marshal(PlanWaves(again))
		if string(got) != string(want) {
			t.Fatalf("plan differs between runs:\n%s\n%s", want, got)
		}
	}
}

// fixedBatches is what a fixed-batch tool does: batches of max-unavailable
// in name order (control-plane first, one at a time). It returns the
// number of batches and how many of them evict more pods of some PDB than
// it allows, i.e. would sit in 429 retries.
func fixedBatches(w world, p Plan) (batches, stalls int) {
	blocked := map[string]bool{}
	for _, b := range p.Blocked {
		blocked[b.Node] = true
	}
	var workers []string
	for _, n := range w.nodes {
		if blocked[n.Name] {
			continue
		}
		if isControlPlane(n) {
			batches++
			continue
		}
		workers = append(workers, n.Name)
	}
	slices.Sort(workers)
	for b := range slices.Chunk(workers, capOf(w)) {
		batches++
		perPDB := map[*policyv1.PodDisruptionBudget]int32{}
		for _, pod := range w.pods {
			if d := w.deploy[pod]; d >= 0 && w.pdbOf[d] != nil && slices.Contains(b, pod.Spec.NodeName) {
				perPDB[w.pdbOf[d]]++
			}
		}
		for pdb, n := range perPDB {
			if n > pdb.Status.DisruptionsAllowed {
				stalls++
				break
			}
		}
	}
	return batches, stalls
}

// capOf computes max-unavailable from the policy independently of the
// planner: a count, or a percentage of the workers rounded down, at least 1.
func capOf(w world) int {
	mu := w.policy.MaxUnavailable
	if mu.Type == intstr.Int {
		return max(int(mu.IntVal), 1)
	}
	var pct int
	fmt.Sscanf(mu.StrVal, "%d%%", &pct)
	workers := 0
	for _, n := range w.nodes {
		if !isControlPlane(n) {
			workers++
		}
	}
	return max(pct*workers/100, 1)
}

func nodeByName(w world, name string) *v1.Node {
	for _, n := range w.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}
