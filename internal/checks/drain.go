package checks

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/kup-project/kup/internal/capacity"
)

// Drain finds what would stall a drain or lose data in one:
// PodDisruptionBudgets that allow no disruption even in steady state
// (which covers single-replica workloads with minAvailable 1), pods under
// several budgets (the eviction API refuses them), budgets that select
// nothing, budgets with unhealthy pods that the default
// unhealthyPodEvictionPolicy keeps from being evicted; pods without a
// controller (deleted for good), pods with emptyDir (info: kup deletes it
// as kubectl drain --delete-emptydir-data does), hostPath or local
// PersistentVolume data (which kubectl drain does not even look at), and
// pods with a long termination grace period.
func Drain(in Input) []Finding { return drain(newIndex(in)) }

func drain(x *index) []Finding {
	var out []Finding
	out = append(out, pdbChecks(x)...)
	out = append(out, podDrainChecks(x)...)
	return out
}

// nodesOf lists the distinct nodes of pods, sorted.
func nodesOf(pods []*corev1.Pod) []string {
	set := map[string]bool{}
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			set[p.Spec.NodeName] = true
		}
	}
	return sortedKeys(set)
}

// budgetSpec renders a PDB's spec for messages.
func budgetSpec(p *policyv1.PodDisruptionBudget) string {
	switch {
	case p.Spec.MinAvailable != nil:
		return "minAvailable " + p.Spec.MinAvailable.String()
	case p.Spec.MaxUnavailable != nil:
		return "maxUnavailable " + p.Spec.MaxUnavailable.String()
	}
	return "no minAvailable or maxUnavailable"
}

func pdbChecks(x *index) []Finding {
	var out []Finding
	for i, pdb := range x.pdbs {
		pods := x.pdbPods[i]
		obj := pdbObject(pdb)
		if len(pods) == 0 {
			why := "its selector matches no pod in namespace " + pdb.Namespace
			if pdb.Spec.Selector == nil {
				why = "it has no selector, which in policy/v1 matches no pod"
			}
			out = append(out, found(PDBSelectsNothing, fmt.Sprintf("PodDisruptionBudget %s/%s (%s): %s", pdb.Namespace, pdb.Name, budgetSpec(pdb), why), obj))
			continue
		}
		objs := []Object{obj}
		for _, g := range x.groupByOwner(pods) {
			if g.owner.Kind != "Pod" {
				objs = append(objs, g.owner)
			}
		}
		st := pdb.Status
		if st.ObservedGeneration < pdb.Generation {
			out = append(out, unknown(PDBZeroBudget, fmt.Sprintf("PodDisruptionBudget %s/%s has no status for its current spec yet (the disruption controller has not seen it); until it has, evictions of its %s are refused",
				pdb.Namespace, pdb.Name, plural(len(pods), "pod")), objs...))
			continue
		}
		// Steady state: every pod the budget expects is healthy. The
		// disruption controller computes expectedPods from the owning
		// controllers' replicas, so this is the budget between waves.
		if steady := st.ExpectedPods - st.DesiredHealthy; st.ExpectedPods > 0 && steady <= 0 {
			what := fmt.Sprintf("PodDisruptionBudget %s/%s (%s) expects %d pod(s) and needs %d healthy: 0 disruptions allowed even when all are healthy",
				pdb.Namespace, pdb.Name, budgetSpec(pdb), st.ExpectedPods, st.DesiredHealthy)
			if st.ExpectedPods == 1 {
				what += " (a single-replica workload under minAvailable 1)"
			}
			out = append(out, foundf(PDBZeroBudget, objs, "%s; draining %s waits for ever", what, listNames(prefixAll("node ", nodesOf(pods)), 4)))
		}
		var unhealthy []*corev1.Pod
		for _, p := range pods {
			if !podReady(p) {
				unhealthy = append(unhealthy, p)
			}
		}
		policy := pdb.Spec.UnhealthyPodEvictionPolicy
		if len(unhealthy) > 0 && (policy == nil || *policy != policyv1.AlwaysAllow) {
			name := "IfHealthyBudget (the default)"
			if policy != nil {
				name = string(*policy)
			}
			uobjs := slices.Clone(objs)
			for _, p := range unhealthy {
				uobjs = append(uobjs, podObject(p))
			}
			out = append(out, foundf(PDBUnhealthyPods, uobjs, "PodDisruptionBudget %s/%s: %d of %d pods not Ready (%s), %d disruption(s) allowed now; with unhealthyPodEvictionPolicy %s they can be evicted only while the budget has all its desired healthy pods",
				pdb.Namespace, pdb.Name, len(unhealthy), len(pods), podNames(unhealthy, 3), st.DisruptionsAllowed, name))
		}
	}

	// Pods under several budgets, grouped by the set of budgets.
	type overlap struct {
		pdbs []int
		pods []*corev1.Pod
	}
	var groups []*overlap
	at := map[string]*overlap{}
	for _, p := range x.pods {
		idx := x.podPDBs[p]
		if len(idx) < 2 {
			continue
		}
		var key strings.Builder
		for _, i := range idx {
			fmt.Fprintf(&key, "%d,", i)
		}
		g := at[key.String()]
		if g == nil {
			g = &overlap{pdbs: idx}
			at[key.String()] = g
			groups = append(groups, g)
		}
		g.pods = append(g.pods, p)
	}
	for _, g := range groups {
		var objs []Object
		var names []string
		pdbs := slices.Clone(g.pdbs)
		slices.SortFunc(pdbs, func(a, b int) int { return compareObjects(pdbObject(x.pdbs[a]), pdbObject(x.pdbs[b])) })
		for _, i := range pdbs {
			objs = append(objs, pdbObject(x.pdbs[i]))
			names = append(names, x.pdbs[i].Namespace+"/"+x.pdbs[i].Name)
		}
		for _, p := range g.pods {
			objs = append(objs, podObject(p))
		}
		out = append(out, foundf(PDBOverlap, objs, "%s selected by PodDisruptionBudgets %s: the eviction API refuses to evict them (\"This pod has more than one PodDisruptionBudget\"), so draining %s cannot finish",
			plural(len(g.pods), "pod"), strings.Join(names, " and "), listNames(prefixAll("node ", nodesOf(g.pods)), 4)))
	}
	return out
}

func prefixAll(prefix string, s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = prefix + v
	}
	return out
}

// nodeDataVolumes says which of the pod's volumes keep data on its node:
// hostPath, and claims bound to local or hostPath PersistentVolumes.
// needPVs reports a claim whose volume could not be looked up.
func nodeDataVolumes(p *corev1.Pod, pvByClaim map[string]*corev1.PersistentVolume) (kinds []string, needPVs bool) {
	for _, v := range p.Spec.Volumes {
		switch {
		case v.HostPath != nil:
			kinds = append(kinds, "hostPath "+v.HostPath.Path)
		case v.PersistentVolumeClaim != nil:
			if pvByClaim == nil {
				needPVs = true
				continue
			}
			pv := pvByClaim[p.Namespace+"/"+v.PersistentVolumeClaim.ClaimName]
			switch {
			case pv == nil:
			case pv.Spec.Local != nil:
				kinds = append(kinds, "local PersistentVolume "+pv.Name)
			case pv.Spec.HostPath != nil:
				kinds = append(kinds, "hostPath PersistentVolume "+pv.Name)
			}
		}
	}
	return kinds, needPVs
}

func emptyDirs(p *corev1.Pod) []string {
	var out []string
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			out = append(out, v.Name)
		}
	}
	return out
}

func podDrainChecks(x *index) []Finding {
	var pvByClaim map[string]*corev1.PersistentVolume
	if x.in.PersistentVolumesErr == "" {
		pvByClaim = map[string]*corev1.PersistentVolume{}
		for i := range x.in.PersistentVolumes {
			pv := &x.in.PersistentVolumes[i]
			if c := pv.Spec.ClaimRef; c != nil {
				pvByClaim[c.Namespace+"/"+c.Name] = pv
			}
		}
	}
	var unmanaged, withEmptyDir, withNodeData, longGrace []*corev1.Pod
	nodeData := map[*corev1.Pod][]string{}
	var claimsUnknown []Object
	for _, p := range x.pods {
		if p.Spec.NodeName == "" || !x.rolls(p.Spec.NodeName) || !evicted(p) {
			continue
		}
		if capacity.DrainFate(p) == capacity.Deleted {
			unmanaged = append(unmanaged, p)
		}
		if len(emptyDirs(p)) > 0 {
			withEmptyDir = append(withEmptyDir, p)
		}
		kinds, needPVs := nodeDataVolumes(p, pvByClaim)
		if len(kinds) > 0 {
			withNodeData = append(withNodeData, p)
			nodeData[p] = kinds
		}
		if needPVs {
			claimsUnknown = append(claimsUnknown, podObject(p))
		}
		if g := p.Spec.TerminationGracePeriodSeconds; g != nil && time.Duration(*g)*time.Second > x.in.LongGracePeriod {
			longGrace = append(longGrace, p)
		}
	}
	var out []Finding
	for _, p := range unmanaged {
		out = append(out, foundf(DrainUnmanaged, []Object{podObject(p)}, "pod %s/%s on node %s has no controller: draining the node deletes it and nothing recreates it",
			p.Namespace, p.Name, p.Spec.NodeName))
	}
	for _, g := range x.groupByOwner(withEmptyDir) {
		out = append(out, foundf(DrainEmptyDir, objectsOf(g), "%s of %s keep emptyDir volume(s) %s; draining their nodes deletes that data",
			plural(len(g.pods), "pod"), g.owner, strings.Join(emptyDirs(g.pods[0]), ", ")))
	}
	for _, g := range x.groupByOwner(withNodeData) {
		out = append(out, foundf(DrainNodeData, objectsOf(g), "%s of %s keep data on their node (%s): kubectl drain does not warn about it",
			plural(len(g.pods), "pod"), g.owner, strings.Join(nodeData[g.pods[0]], ", ")))
	}
	if len(claimsUnknown) > 0 {
		out = append(out, unknown(DrainNodeData, fmt.Sprintf("%s use PersistentVolumeClaims, but the PersistentVolumes could not be read (%s), so local volumes cannot be told apart",
			plural(len(claimsUnknown), "pod"), x.in.PersistentVolumesErr), claimsUnknown...))
	}
	for _, g := range x.groupByOwner(longGrace) {
		out = append(out, foundf(DrainLongGrace, objectsOf(g), "%s of %s have terminationGracePeriodSeconds %d (over %s): each drain of their nodes may wait that long",
			plural(len(g.pods), "pod"), g.owner, *g.pods[0].Spec.TerminationGracePeriodSeconds, x.in.LongGracePeriod))
	}
	return out
}
