package checks

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestHygiene(t *testing.T) {
	rsOf := func(ns, name, deploy string) appsv1.ReplicaSet {
		return appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: deploy, Controller: ptr.To(true)}}}}
	}
	for _, tc := range []struct {
		name string
		pods []corev1.Pod
		deps []appsv1.Deployment
		sts  []appsv1.StatefulSet
		rss  []appsv1.ReplicaSet
		pdbs []policyv1.PodDisruptionBudget
		want []string
	}{
		{name: "requests, replicas and probes in order", pods: []corev1.Pod{mkPod("ns", "web-abc-1", "a", ownedBy("ReplicaSet", "web-abc"), podLabels("app", "web"))},
			deps: []appsv1.Deployment{mkDeployment("ns", "web", 3)}, rss: []appsv1.ReplicaSet{rsOf("ns", "web-abc", "web")}, pdbs: []policyv1.PodDisruptionBudget{mkPDB("ns", "web", "web", 3, 2, 1)}},
		{
			name: "no requests, judged once per workload through its ReplicaSet",
			pods: []corev1.Pod{mkPod("ns", "web-abc-1", "a", ownedBy("ReplicaSet", "web-abc"), noRequests), mkPod("ns", "web-abc-2", "a", ownedBy("ReplicaSet", "web-abc"), noRequests), mkPod("ns", "bare", "a", noRequests)},
			deps: []appsv1.Deployment{mkDeployment("ns", "web", 2)}, rss: []appsv1.ReplicaSet{rsOf("ns", "web-abc", "web")},
			want: []string{"warning KUP-WL-001 Deployment ns/web", "warning KUP-WL-001 Pod ns/bare"},
		},
		{
			name: "memory request only",
			pods: []corev1.Pod{mkPod("ns", "half", "a", func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
			})},
			want: []string{"warning KUP-WL-001 Pod ns/half"},
		},
		{
			name: "pod-level requests cover the containers",
			pods: []corev1.Pod{mkPod("ns", "pl", "a", noRequests, func(p *corev1.Pod) {
				p.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}}
			})},
		},
		{
			name: "mirror pods are the kubelet's",
			pods: []corev1.Pod{mkPod("kube-system", "etcd-a", "a", mirror, noRequests)},
		},
		{
			name: "single replicas",
			deps: []appsv1.Deployment{mkDeployment("ns", "one", 1), mkDeployment("ns", "zero", 0), mkDeployment("ns", "two", 2), func() appsv1.Deployment {
				d := mkDeployment("ns", "defaulted", 1)
				d.Spec.Replicas = nil
				return d
			}()},
			sts:  []appsv1.StatefulSet{{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "db"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1)}}},
			want: []string{"warning KUP-WL-002 Deployment ns/one", "warning KUP-WL-002 Deployment ns/defaulted", "warning KUP-WL-002 StatefulSet ns/db"},
		},
		{
			name: "PDB-protected pods without readiness probes",
			pods: []corev1.Pod{mkPod("ns", "x-1", "a", ownedBy("StatefulSet", "x"), podLabels("app", "x"), noProbe), mkPod("ns", "y-1", "a", ownedBy("StatefulSet", "y"), podLabels("app", "y"), noProbe)},
			pdbs: []policyv1.PodDisruptionBudget{mkPDB("ns", "x", "x", 1, 0, 1)},
			want: []string{"warning KUP-WL-003 StatefulSet ns/x"},
		},
	} {
		s := snapshot([]corev1.Node{mkNode("a")}, tc.pods, tc.pdbs...)
		s.Deployments, s.StatefulSets, s.ReplicaSets = tc.deps, tc.sts, tc.rss
		checkKeys(t, tc.name, Hygiene(Input{Snapshot: s}), tc.want)
	}
}
