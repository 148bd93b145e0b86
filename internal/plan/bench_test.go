package plan

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkPlanWaves plans a cluster of 1,000 nodes, 30,000 pods (1,000 of
// them DaemonSet pods) and 300 PDBs, and reports the plan's waves against
// its lower bound and against one node at a time.
//
// The "one-namespace" case puts every Deployment and PDB in one namespace,
// as kup plan's 1,000-node benchmark sandbox does: each PDB's selector then
// meets every pod of the cluster.
func BenchmarkPlanWaves(b *testing.B) {
	for _, ns := range []struct {
		name string
		n    int
	}{{"30-namespaces", 30}, {"one-namespace", 1}} {
		b.Run(ns.name, func(b *testing.B) { benchPlanWaves(b, ns.n) })
	}
}

func benchPlanWaves(b *testing.B, namespaces int) {
	rng := rand.New(rand.NewPCG(1, 0x6b7570))
	w := generate(rng, shape{nodesMin: 1000, nodesMax: 1000, deploysMin: 300, deploysMax: 300,
		replicasMin: 96, replicasMax: 97, namespaces: namespaces, fill: 0.5, everyPDB: true})
	w.policy = Policy{MaxUnavailable: percent(10)}
	in := Input{Nodes: w.nodes, Pods: w.pods, PDBs: w.pdbs, ToUpgrade: names(w.nodes), Policy: w.policy}
	b.Logf("%d nodes, %d pods, %d PDBs", len(in.Nodes), len(in.Pods), len(in.PDBs))
	b.ReportAllocs()
	var p Plan
	for b.Loop() {
		p = PlanWaves(in)
	}
	b.ReportMetric(float64(len(p.Waves)), "waves")
	b.ReportMetric(float64(p.LowerBound.Waves), "lower-bound-waves")
	b.ReportMetric(float64(len(in.ToUpgrade)-len(p.Blocked))/float64(len(p.Waves)), "nodes/wave")
}

// BenchmarkNextWave is the executor's question on the same cluster.
func BenchmarkNextWave(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 0x6b7570))
	w := generate(rng, shape{nodesMin: 1000, nodesMax: 1000, deploysMin: 300, deploysMax: 300,
		replicasMin: 96, replicasMax: 97, namespaces: 30, fill: 0.5, everyPDB: true})
	in := Input{Nodes: w.nodes, Pods: w.pods, PDBs: w.pdbs, ToUpgrade: names(w.nodes), Policy: Policy{MaxUnavailable: percent(10)}}
	b.ReportAllocs()
	for b.Loop() {
		NextWave(in)
	}
}
