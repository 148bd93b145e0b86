package checks

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
)

func TestDrain(t *testing.T) {
	nodes := []corev1.Node{mkNode("a"), mkNode("b")}
	local := corev1.PersistentVolume{}
	local.Name = "pv-local"
	local.Spec.Local = &corev1.LocalVolumeSource{Path: "/mnt/disk"}
	local.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "ns", Name: "data-db-0"}
	claim := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db-0"}}}
	for _, tc := range []struct {
		name   string
		pods   []corev1.Pod
		pdbs   []policyv1.PodDisruptionBudget
		pvs    []corev1.PersistentVolume
		pvsErr string
		want   []string
	}{
		{
			name: "budgets with room",
			pods: []corev1.Pod{mkPod("ns", "web-1", "a", podLabels("app", "web"), ownedBy("StatefulSet", "web")), mkPod("ns", "web-2", "b", podLabels("app", "web"), ownedBy("StatefulSet", "web"))},
			pdbs: []policyv1.PodDisruptionBudget{mkPDB("ns", "web", "web", 2, 1, 1)},
		},
		{
			name: "minAvailable equal to replicas",
			pods: []corev1.Pod{mkPod("ns", "web-1", "a", podLabels("app", "web"), ownedBy("StatefulSet", "web")), mkPod("ns", "web-2", "b", podLabels("app", "web"), ownedBy("StatefulSet", "web"))},
			pdbs: []policyv1.PodDisruptionBudget{mkPDB("ns", "web", "web", 2, 2, 0, minAvailable(2))},
			want: []string{"blocker KUP-PDB-001 PodDisruptionBudget ns/web"},
		},
		{
			name: "single replica under minAvailable 1",
			pods: []corev1.Pod{mkPod("ns", "one", "a", podLabels("app", "one"), ownedBy("StatefulSet", "one"))},
			pdbs: []policyv1.PodDisruptionBudget{mkPDB("ns", "one", "one", 1, 1, 0, minAvailable(1))},
			want: []string{"blocker KUP-PDB-001 PodDisruptionBudget ns/one"},
		},
		{
			name: "budget short now but not in steady state is not a blocker",
			pods: []corev1.Pod{mkPod("ns", "web-1", "a", podLabels("app", "web"), ownedBy("StatefulSet", "web"), notReady), mkPod("ns", "web-2", "b", podLabels("app", "web"), ownedBy("StatefulSet", "web"))},
			pdbs: []policyv1.PodDisruptionBudget{mkPDB("ns", "web", "web", 2, 1, 0, alwaysAllow)},
		},
		{
			name: "unhealthy pods under the default eviction policy",
			pods: []corev1.Pod{mkPod("ns", "web-1", "a", podLabels("app", "web"), ownedBy("StatefulSet", "web"), notReady), mkPod("ns", "web-2", "b", podLabels("app", "web"), ownedBy("StatefulSet", "web"))},
			pdbs: []policyv1.PodDisruptionBudget{mkPDB("ns", "web", "web", 2, 1, 0)},
			want: []string{"warning KUP-PDB-004 PodDisruptionBudget ns/web"},
		},
		{
			name: "status not computed yet",
			pods: []corev1.Pod{mkPod("ns", "web-1", "a", podLabels("app", "web"))},
			pdbs: []policyv1.PodDisruptionBudget{mkPDB("ns", "web", "web", 0, 0, 0, unobserved)},
			want: []string{"unknown KUP-PDB-001 PodDisruptionBudget ns/web", "warning KUP-DRAIN-001 Pod ns/web-1"},
		},
		{
			name: "overlapping, empty and selector-less budgets",
			pods: []corev1.Pod{mkPod("ns", "x-1", "a", podLabels("app", "x", "tier", "t"), ownedBy("StatefulSet", "x")), mkPod("ns", "x-2", "b", podLabels("app", "x", "tier", "t"), ownedBy("StatefulSet", "x")), mkPod("other", "x-3", "b", podLabels("app", "x"), ownedBy("StatefulSet", "x"))},
			pdbs: []policyv1.PodDisruptionBudget{mkPDB("ns", "by-app", "x", 2, 1, 1), mkPDB("ns", "also", "x", 2, 1, 1), mkPDB("ns", "none", "nothing", 0, 0, 0), mkPDB("ns", "nil", "x", 0, 0, 0, nilSelector)},
			want: []string{"blocker KUP-PDB-002 PodDisruptionBudget ns/also", "warning KUP-PDB-003 PodDisruptionBudget ns/none", "warning KUP-PDB-003 PodDisruptionBudget ns/nil"},
		},
		{
			name: "pods that lose data or take long",
			pods: []corev1.Pod{
				mkPod("ns", "bare", "a"),
				mkPod("ns", "scratch-1", "a", ownedBy("StatefulSet", "scratch"), volume(corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})),
				mkPod("ns", "hp-1", "a", ownedBy("StatefulSet", "hp"), volume(corev1.Volume{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/data"}}})),
				mkPod("ns", "db-0", "b", ownedBy("StatefulSet", "db"), volume(claim)),
				mkPod("ns", "slow-1", "b", ownedBy("StatefulSet", "slow"), grace(3600)),
				// DaemonSet pods stay: their hostPath is not lost.
				mkPod("ns", "agent-1", "a", ownedBy("DaemonSet", "agent"), volume(corev1.Volume{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})),
				// Mirror pods are not evicted.
				mkPod("kube-system", "etcd-a", "a", mirror, grace(3600)),
			},
			pvs:  []corev1.PersistentVolume{local},
			want: []string{"warning KUP-DRAIN-001 Pod ns/bare", "info KUP-DRAIN-002 StatefulSet ns/scratch", "warning KUP-DRAIN-003 StatefulSet ns/hp", "warning KUP-DRAIN-003 StatefulSet ns/db", "warning KUP-DRAIN-004 StatefulSet ns/slow"},
		},
		{
			name:   "claims without volumes to look at",
			pods:   []corev1.Pod{mkPod("ns", "db-0", "b", ownedBy("StatefulSet", "db"), volume(claim))},
			pvsErr: "forbidden",
			want:   []string{"unknown KUP-DRAIN-003 Pod ns/db-0"},
		},
	} {
		in := Input{Snapshot: snapshot(nodes, tc.pods, tc.pdbs...), PersistentVolumes: tc.pvs, PersistentVolumesErr: tc.pvsErr}
		checkKeys(t, tc.name, Drain(in), tc.want)
	}
}

func TestDrainOnlyJudgesRolledNodes(t *testing.T) {
	s := snapshot([]corev1.Node{mkNode("a"), mkNode("b", kubelet("v1.37.2"))}, []corev1.Pod{mkPod("ns", "bare-a", "a"), mkPod("ns", "bare-b", "b")})
	s.Server = "v1.37.1"
	p := pathTo(t, s, "v1.37.2")
	checkKeys(t, "node b is already at the target", Drain(Input{Snapshot: s, Path: p}), []string{"warning KUP-DRAIN-001 Pod ns/bare-a"})
}

func TestPDBMessages(t *testing.T) {
	s := snapshot([]corev1.Node{mkNode("a")}, []corev1.Pod{mkPod("ns", "one", "a", podLabels("app", "one"), ownedBy("StatefulSet", "one"))},
		mkPDB("ns", "one", "one", 1, 1, 0, minAvailable(1)))
	fs := Drain(Input{Snapshot: s})
	if len(fs) != 1 || !strings.Contains(fs[0].Message, "single-replica") || !strings.Contains(fs[0].Message, "node a") {
		t.Errorf("want the single-replica wording and the node named: %+v", fs)
	}
	if len(fs) == 1 && (len(fs[0].Objects) != 2 || fs[0].Objects[1] != (Object{Kind: "StatefulSet", Namespace: "ns", Name: "one"})) {
		t.Errorf("the finding must name the PDB and its workload: %v", fs[0].Objects)
	}
}
