package checks

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// scaleSnapshot is the benchmark sandbox's shape in memory: 1,000 nodes,
// 300 Deployments of 100 replicas spread round-robin, each with a 10%
// PodDisruptionBudget.
func scaleSnapshot(nodes, deployments, replicas int) *snapshotParts {
	sp := &snapshotParts{}
	for i := range nodes {
		sp.nodes = append(sp.nodes, mkNode(fmt.Sprintf("node-%04d", i), label("topology.kubernetes.io/zone", fmt.Sprintf("zone-%d", i%3))))
	}
	k := 0
	for d := range deployments {
		name := fmt.Sprintf("app-%03d", d)
		sp.deps = append(sp.deps, mkDeployment("bench", name, int32(replicas)))
		sp.rss = append(sp.rss, appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name + "-rs",
			OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: name, Controller: ptr.To(true)}}}})
		sp.pdbs = append(sp.pdbs, mkPDB("bench", name, name, int32(replicas), int32(replicas*9/10), int32(replicas/10)))
		for r := range replicas {
			sp.pods = append(sp.pods, mkPod("bench", fmt.Sprintf("%s-%d", name, r), sp.nodes[k%nodes].Name, ownedBy("ReplicaSet", name+"-rs"), podLabels("app", name)))
			k++
		}
	}
	return sp
}

type snapshotParts struct {
	nodes []corev1.Node
	pods  []corev1.Pod
	pdbs  []policyv1.PodDisruptionBudget
	deps  []appsv1.Deployment
	rss   []appsv1.ReplicaSet
}

// BenchmarkRun1000Nodes: the checks alone, on 1,000 nodes and 30,000 pods
// (the decision part of kup plan, without the reads).
func BenchmarkRun1000Nodes(b *testing.B) {
	sp := scaleSnapshot(1000, 300, 100)
	s := snapshot(sp.nodes, sp.pods, sp.pdbs...)
	s.Deployments, s.ReplicaSets = sp.deps, sp.rss
	b.ReportAllocs()
	for b.Loop() {
		res := Run(Input{Snapshot: s})
		if len(res.Capacity.MaxDown) == 0 {
			b.Fatal("no node can be down")
		}
	}
}
