package rollout

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubectl/pkg/util/podutils"
)

// budgetHolders says what holds PodDisruptionBudget key (namespace/name)
// below its steady budget, from one read of the cluster: the pods it
// covers that are terminating, unscheduled, not Ready, or recently evicted
// (the apiserver's disruptedPods, which the disruption controller counts
// as unhealthy for up to 2 minutes). When every covered pod looks healthy
// and the status still allows nothing, the status is what is behind: the
// controller-manager's disruption controller has not recomputed it. The
// user waiting on a stuck drain at 2 a.m. needs the pod, not the PDB.
func budgetHolders(pdbs []*policyv1.PodDisruptionBudget, pods []*corev1.Pod, key string, now time.Time) string {
	var pdb *policyv1.PodDisruptionBudget
	for _, p := range pdbs {
		if p.Namespace+"/"+p.Name == key {
			pdb = p
			break
		}
	}
	if pdb == nil {
		return ""
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return ""
	}
	var held []string
	covered := 0
	for _, p := range pods {
		if p.Namespace != pdb.Namespace || !sel.Matches(labelSet(p.Labels)) {
			continue
		}
		covered++
		var why string
		switch {
		case p.DeletionTimestamp != nil:
			why = "terminating for " + now.Sub(p.DeletionTimestamp.Time).Round(time.Second).String()
		case p.Spec.NodeName == "":
			why = "Pending, not scheduled"
			tried := false
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled {
					tried = true
					if c.Status == corev1.ConditionFalse && c.Message != "" {
						why += ": " + c.Message
					}
				}
			}
			if !tried && now.Sub(p.CreationTimestamp.Time) > 30*time.Second {
				// A scheduler that tried would have said why it failed.
				why += fmt.Sprintf(" and the scheduler has not tried in %s — check that kube-scheduler is running and its log", now.Sub(p.CreationTimestamp.Time).Round(time.Second))
			}
		case !podutils.IsPodReady(p):
			why = fmt.Sprintf("not Ready on %s (%s)", p.Spec.NodeName, p.Status.Phase)
		default:
			if t, ok := pdb.Status.DisruptedPods[p.Name]; ok && now.Sub(t.Time) < 2*time.Minute {
				why = "evicted " + now.Sub(t.Time).Round(time.Second).String() + " ago and still listed in the PDB's disruptedPods"
			}
		}
		if why != "" {
			held = append(held, "pod "+p.Name+" "+why)
		}
	}
	sort.Strings(held)
	if len(held) > 3 {
		held = append(held[:3], fmt.Sprintf("and %d more", len(held)-3))
	}
	if len(held) > 0 {
		return strings.Join(held, "; ")
	}
	if pdb.Status.DisruptionsAllowed == 0 && covered > 0 {
		return fmt.Sprintf("all %d covered pods are Ready, yet the PDB's status (observed generation %d, %d healthy of %d expected) allows none: the disruption controller in kube-controller-manager has not recomputed it — check that kube-controller-manager is running and its log",
			covered, pdb.Status.ObservedGeneration, pdb.Status.CurrentHealthy, pdb.Status.ExpectedPods)
	}
	return ""
}
