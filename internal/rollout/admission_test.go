package rollout

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPendingBudgets(t *testing.T) {
	pdb := func(ns, name string, sel *metav1.LabelSelector, allowed int32) *policyv1.PodDisruptionBudget {
		return &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       policyv1.PodDisruptionBudgetSpec{Selector: sel},
			Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
		}
	}
	app := func(a string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": a}}
	}
	owner := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "u", Controller: new(true)}}
	pod := func(ns, a, node string, mod func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: a + "-" + node, Labels: map[string]string{"app": a}, OwnerReferences: slices.Clone(owner)},
			Spec:       corev1.PodSpec{NodeName: node},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning},
		}
		if mod != nil {
			mod(p)
		}
		return p
	}
	terminating := func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }
	daemon := func(p *corev1.Pod) { p.OwnerReferences[0].Kind = "DaemonSet" }

	cart := pdb("shop", "cart", app("cart"), 2)
	all := pdb("shop", "everything", &metav1.LabelSelector{}, 5)
	none := pdb("shop", "nil-selector", nil, 1)
	bad := pdb("shop", "invalid", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}, 1)
	other := pdb("data", "cart", app("cart"), 1)
	pdbs := []*policyv1.PodDisruptionBudget{cart, all, none, bad, other}

	for _, tc := range []struct {
		name     string
		pods     []*corev1.Pod
		draining []string
		want     []int32 // DisruptionsAllowed of pdbs, in order
	}{
		{"nothing draining", []*corev1.Pod{pod("shop", "cart", "n1", nil)}, nil, []int32{2, 5, 1, 1, 1}},
		{"a pod still on a draining node", []*corev1.Pod{pod("shop", "cart", "n1", nil), pod("shop", "cart", "n2", nil)}, []string{"n1"}, []int32{1, 4, 1, 1, 1}},
		{"two draining nodes", []*corev1.Pod{pod("shop", "cart", "n1", nil), pod("shop", "cart", "n2", nil)}, []string{"n1", "n2"}, []int32{0, 3, 1, 1, 1}},
		{"never below zero", []*corev1.Pod{pod("shop", "cart", "n1", nil), pod("shop", "cart", "n2", nil), pod("shop", "cart", "n3", nil)}, []string{"n1", "n2", "n3"}, []int32{0, 2, 1, 1, 1}},
		{"an evicted (terminating) pod spent its unit already", []*corev1.Pod{pod("shop", "cart", "n1", terminating)}, []string{"n1"}, []int32{2, 5, 1, 1, 1}},
		{"DaemonSet pods are not evicted", []*corev1.Pod{pod("shop", "agent", "n1", daemon)}, []string{"n1"}, []int32{2, 5, 1, 1, 1}},
		{"other labels: only the empty selector", []*corev1.Pod{pod("shop", "web", "n1", nil)}, []string{"n1"}, []int32{2, 4, 1, 1, 1}},
		{"another namespace", []*corev1.Pod{pod("data", "cart", "n1", nil)}, []string{"n1"}, []int32{2, 5, 1, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			draining := map[string]bool{}
			for _, n := range tc.draining {
				draining[n] = true
			}
			got := pendingBudgets(pdbs, tc.pods, draining)
			if len(got) != len(pdbs) {
				t.Fatalf("got %d PDBs, want %d", len(got), len(pdbs))
			}
			for i, p := range got {
				if p.Namespace != pdbs[i].Namespace || p.Name != pdbs[i].Name {
					t.Errorf("PDB %d is %s/%s, want %s/%s", i, p.Namespace, p.Name, pdbs[i].Namespace, pdbs[i].Name)
				}
				if p.Status.DisruptionsAllowed != tc.want[i] {
					t.Errorf("PDB %s/%s: %d disruptions allowed, want %d", p.Namespace, p.Name, p.Status.DisruptionsAllowed, tc.want[i])
				}
				if p != pdbs[i] && p.Status.DisruptionsAllowed == pdbs[i].Status.DisruptionsAllowed {
					t.Errorf("PDB %s/%s copied with nothing pending", p.Namespace, p.Name)
				}
			}
			// The listed objects are never changed.
			for i, want := range []int32{2, 5, 1, 1, 1} {
				if pdbs[i].Status.DisruptionsAllowed != want {
					t.Fatalf("input PDB %s changed: %d", pdbs[i].Name, pdbs[i].Status.DisruptionsAllowed)
				}
			}
		})
	}
}
