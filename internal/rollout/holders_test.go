package rollout

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBudgetHolders(t *testing.T) {
	now := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-d)); return &t }
	pdb := func(allowed int32, disrupted map[string]metav1.Time) *policyv1.PodDisruptionBudget {
		return &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"},
			Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}}},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed, DisruptedPods: disrupted,
				ObservedGeneration: 1, CurrentHealthy: 2, ExpectedPods: 3},
		}
	}
	pod := func(name, ns, app, node string, ready bool, mod func(*corev1.Pod)) *corev1.Pod {
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{NodeName: node},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
		}
		if mod != nil {
			mod(p)
		}
		return p
	}
	healthy := []*corev1.Pod{
		pod("cart-a", "shop", "cart", "node-1", true, nil),
		pod("cart-b", "shop", "cart", "node-2", true, nil),
		pod("cart-other-ns", "data", "cart", "", false, nil), // another namespace: not covered
		pod("search-a", "shop", "search", "", false, nil),    // another selector: not covered
	}
	tests := []struct {
		name string
		pdb  *policyv1.PodDisruptionBudget
		pods []*corev1.Pod
		key  string
		want []string // substrings, in order; none means ""
	}{
		{"unknown PDB", pdb(0, nil), healthy, "shop/other", nil},
		{"healthy and allowed", pdb(1, nil), healthy, "shop/cart", nil},
		{"healthy, status stale", pdb(0, nil), healthy, "shop/cart",
			[]string{"all 2 covered pods are Ready", "2 healthy of 3 expected", "kube-controller-manager"}},
		{"terminating", pdb(0, nil), append(healthy, pod("cart-c", "shop", "cart", "node-3", true, func(p *corev1.Pod) {
			p.DeletionTimestamp = ago(95 * time.Second)
		})), "shop/cart", []string{"pod cart-c terminating for 1m35s"}},
		{"unscheduled with the scheduler's message", pdb(0, nil), append(healthy, pod("cart-c", "shop", "cart", "", false, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Message: "0/12 nodes are available: 12 Insufficient cpu."}}
		})), "shop/cart", []string{"pod cart-c Pending, not scheduled: 0/12 nodes are available: 12 Insufficient cpu."}},
		{"never looked at by the scheduler", pdb(0, nil), append(healthy, pod("cart-c", "shop", "cart", "", false, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.Conditions = nil
			p.CreationTimestamp = *ago(2 * time.Minute)
		})), "shop/cart", []string{"pod cart-c Pending, not scheduled and the scheduler has not tried in 2m0s", "kube-scheduler"}},
		{"just created", pdb(0, nil), append(healthy, pod("cart-c", "shop", "cart", "", false, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.Conditions = nil
			p.CreationTimestamp = *ago(time.Second)
		})), "shop/cart", []string{"pod cart-c Pending, not scheduled"}},
		{"not ready", pdb(0, nil), append(healthy, pod("cart-c", "shop", "cart", "node-3", false, nil)), "shop/cart",
			[]string{"pod cart-c not Ready on node-3 (Running)"}},
		{"recently evicted, same name back", pdb(0, map[string]metav1.Time{"cart-b": *ago(30 * time.Second)}), healthy, "shop/cart",
			[]string{"pod cart-b evicted 30s ago and still listed in the PDB's disruptedPods"}},
		{"evicted long ago does not count", pdb(1, map[string]metav1.Time{"cart-b": *ago(3 * time.Minute)}), healthy, "shop/cart", nil},
		{"at most three named", pdb(0, nil), append(healthy,
			pod("cart-c", "shop", "cart", "n", false, nil), pod("cart-d", "shop", "cart", "n", false, nil),
			pod("cart-e", "shop", "cart", "n", false, nil), pod("cart-f", "shop", "cart", "n", false, nil)), "shop/cart",
			[]string{"pod cart-c", "pod cart-d", "pod cart-e", "and 1 more"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := budgetHolders([]*policyv1.PodDisruptionBudget{tc.pdb}, tc.pods, tc.key, now)
			if len(tc.want) == 0 {
				if got != "" {
					t.Fatalf("got %q, want nothing", got)
				}
				return
			}
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("got %q, want it to contain %q (in order)", got, w)
				}
				rest = rest[i+len(w):]
			}
			if strings.Contains(got, "cart-other-ns") || strings.Contains(got, "search-a") {
				t.Errorf("got %q: names a pod the PDB does not cover", got)
			}
		})
	}
}
