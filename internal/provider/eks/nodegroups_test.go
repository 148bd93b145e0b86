package eks

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestBlockingPDBs(t *testing.T) {
	pod := func(ns, name, app string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}}}
	}
	two := intstr.FromInt32(2)
	pdb := func(ns, name, app string, allowed int32) policyv1.PodDisruptionBudget {
		return policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:   policyv1.PodDisruptionBudgetSpec{MinAvailable: &two, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed, CurrentHealthy: 2, ExpectedPods: 2}}
	}
	pods := []corev1.Pod{pod("shop", "cart-1", "cart"), pod("shop", "web-1", "web"), pod("data", "db-0", "db")}
	for _, tc := range []struct {
		name string
		pdbs []policyv1.PodDisruptionBudget
		want []string
	}{
		{name: "no PDB", want: nil},
		{name: "a PDB that allows a disruption holds nothing", pdbs: []policyv1.PodDisruptionBudget{pdb("shop", "cart", "cart", 1)}, want: nil},
		{name: "the PDB at zero that selects a pod on the node", pdbs: []policyv1.PodDisruptionBudget{pdb("shop", "cart", "cart", 0), pdb("shop", "other", "other", 0)},
			want: []string{"PodDisruptionBudget shop/cart (minAvailable 2, 2 of 2 pods healthy, 0 disruptions allowed) refuses to let pod shop/cart-1 go"}},
		{name: "same labels, other namespace: not selected", pdbs: []policyv1.PodDisruptionBudget{pdb("data", "cart", "cart", 0)}, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := BlockingPDBs(pods, tc.pdbs)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("BlockingPDBs:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
