package rollout

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/kup-project/kup/internal/capacity"
)

// gateHold is how long, with Options.Continuous, a wave's health gate may
// stay unmet before kup stops admitting nodes until it is met. Admitting
// while a gate waits is what makes continuous admission fast, but a
// workload under steady pressure (a PDB whose budget is spent again as
// soon as it returns) may never look as available as it did when the wave
// started; pausing admission lets it recover, so the gate judges the
// upgrade, not the pressure.
const gateHold = 30 * time.Second

// pendingBudgets returns pdbs with each one's disruptionsAllowed lowered by
// the pods of it still to be evicted from nodes whose drain is under way:
// those evictions are already promised to the drains in flight. Planning
// with the budgets as listed would let a new node take the same units, and
// one of the two drains would then meet 429s. The objects in pdbs are not
// changed; a PDB with nothing pending is returned as it is.
//
// A pod counts once it is listed on a draining node and not terminating
// (its eviction not yet accepted): pods are listed before PDBs (see read),
// so an eviction accepted in between is counted twice rather than not at
// all — the planner may be a unit short for a moment, never a unit over.
func pendingBudgets(pdbs []*policyv1.PodDisruptionBudget, pods []*corev1.Pod, draining map[string]bool) []*policyv1.PodDisruptionBudget {
	if len(draining) == 0 {
		return pdbs
	}
	byNS := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if draining[p.Spec.NodeName] && capacity.DrainFate(p).Evicted() {
			byNS[p.Namespace] = append(byNS[p.Namespace], p)
		}
	}
	if len(byNS) == 0 {
		return pdbs
	}
	out := make([]*policyv1.PodDisruptionBudget, len(pdbs))
	for i, pdb := range pdbs {
		out[i] = pdb
		pending := 0
		// As the eviction API matches: an invalid selector matches
		// nothing, policy/v1's nil selector nothing (LabelSelectorAsSelector
		// gives labels.Nothing), an empty one all.
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			continue
		}
		for _, p := range byNS[pdb.Namespace] {
			if sel.Matches(labels.Set(p.Labels)) {
				pending++
			}
		}
		if pending == 0 {
			continue
		}
		c := pdb.DeepCopy()
		c.Status.DisruptionsAllowed = max(c.Status.DisruptionsAllowed-int32(pending), 0)
		out[i] = c
	}
	return out
}

// hasTaint says whether n carries a taint with key.
func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

// wakeOnBudgets signals r.progress whenever a PDB's disruptionsAllowed
// grows, until ctx ends: with Options.Continuous a budget coming back is
// what a waiting node needs, and hearing of it at once instead of at the
// next look saves up to a look's interval on every turn of the tightest
// budgets, which set the rollout's pace. Not being able to watch only
// loses that: the loop still looks every second.
func (r *Roller) wakeOnBudgets(ctx context.Context) {
	f := informers.NewSharedInformerFactory(r.Client, 0)
	inf := f.Policy().V1().PodDisruptionBudgets().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*policyv1.PodDisruptionBudget)
			c, ok2 := cur.(*policyv1.PodDisruptionBudget)
			if ok1 && ok2 && c.Status.DisruptionsAllowed > o.Status.DisruptionsAllowed {
				r.signal()
			}
		},
	})
	if err != nil {
		return
	}
	f.Start(ctx.Done())
	go func() { <-ctx.Done(); f.Shutdown() }()
}
