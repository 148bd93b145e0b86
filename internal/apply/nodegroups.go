package apply

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/plan"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/version"
)

// groupsFollow brings the provider's node groups to the control plane's
// version cur before the next hop, when the provider refuses a hop with a
// group behind (EKS). Nodes outside the groups are left to the skew
// policy's own rolls.
func (a *Applier) groupsFollow(ctx context.Context, cur version.Version) error {
	ng, ok := a.ControlPlane.(provider.NodeGroups)
	if !ok || !a.ControlPlane.Capabilities().NodeGroupsFollowEachHop {
		return nil
	}
	_, err := a.rollGroups(ctx, ng, cur.String())
	return err
}

// rollGroups has the provider roll its node groups to `to` (EKS managed
// node groups), each with the maxUnavailable the wave planner allows for
// the group's nodes alone, and returns the nodes outside every group that
// are still behind, for kup's own waves.
func (a *Applier) rollGroups(ctx context.Context, ng provider.NodeGroups, to string) ([]string, error) {
	target := version.MustParse(to)
	managed, err := ng.ManagedNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the provider's node groups: %w", err)
	}
	nodes, err := a.cs.CoreV1().Nodes().List(ctx, listAll)
	if err != nil {
		return nil, err
	}
	caps := a.ControlPlane.Capabilities()
	behind := map[string][]string{} // group → its nodes behind
	var selfManaged []string
	for _, n := range nodes.Items {
		if servesHop(caps, n.Status.NodeInfo.KubeletVersion, target) {
			continue
		}
		if g, ok := managed[n.Name]; ok {
			behind[g] = append(behind[g], n.Name)
		} else {
			selfManaged = append(selfManaged, n.Name)
		}
	}
	if len(behind) == 0 {
		return selfManaged, nil
	}
	limits, reasons, err := GroupLimits(ctx, a.cs, behind, a.Options.Rollout.Policy)
	if err != nil {
		return nil, err
	}
	for _, g := range slices.Sorted(maps.Keys(behind)) {
		a.emit(journal.PhaseNodes, "node group %s: %d node(s) to %s by the provider, at most %d at a time (%s)", g, len(behind[g]), to, limits[g], reasons[g])
	}
	id := "node groups→" + to
	if err := a.begin(ctx, id, fmt.Sprint(limits)); err != nil {
		return nil, err
	}
	started := time.Now().UTC()
	err = ng.UpgradeNodeGroups(ctx, to, limits)
	finished := time.Now().UTC()
	a.mu.Lock()
	for _, g := range slices.Sorted(maps.Keys(behind)) {
		a.rep.Waves = append(a.rep.Waves, report.WaveRecord{Index: len(a.rep.Waves) + 1, Nodes: behind[g],
			Limit: fmt.Sprintf("node group %s rolled by %s, maxUnavailable %d: %s", g, a.ControlPlane.Name(), limits[g], reasons[g]), Started: started, Finished: finished})
	}
	a.rep.Rollout.Waves = len(a.rep.Waves)
	a.mu.Unlock()
	if err != nil {
		_ = a.end(ctx, id, journal.StatusFailed, err.Error())
		return nil, fmt.Errorf("rolling node groups to %s: %w", to, err)
	}
	// Count what the provider actually moved, from the cluster.
	after, err := a.cs.CoreV1().Nodes().List(ctx, listAll)
	if err == nil {
		a.mu.Lock()
		for _, n := range after.Items {
			if _, ok := managed[n.Name]; ok && servesHop(caps, n.Status.NodeInfo.KubeletVersion, target) && slices.Contains(behind[managed[n.Name]], n.Name) {
				a.rep.Rollout.Upgraded++
				a.rep.Rollout.Nodes++
			}
		}
		a.mu.Unlock()
	}
	return selfManaged, a.end(ctx, id, journal.StatusDone, "")
}

// GroupLimits chooses, for each group of nodes a provider rolls itself,
// how many may be down at once: the wave planner's verdict for the
// group's nodes alone under policy (without a canary), from the cluster's
// nodes, pods and PodDisruptionBudgets as they are now (see
// plan.GroupLimit). It returns the numbers and the reason for each.
func GroupLimits(ctx context.Context, cs kubernetes.Interface, groups map[string][]string, policy plan.Policy) (map[string]int, map[string]string, error) {
	nodes, err := cs.CoreV1().Nodes().List(ctx, listAll)
	if err != nil {
		return nil, nil, err
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, listAll)
	if err != nil {
		return nil, nil, err
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, listAll)
	if err != nil {
		return nil, nil, err
	}
	in := plan.Input{Policy: policy}
	noCanary := false
	in.Policy.Canary = &noCanary
	for i := range nodes.Items {
		in.Nodes = append(in.Nodes, &nodes.Items[i])
	}
	in.Pods = make([]*corev1.Pod, len(pods.Items))
	for i := range pods.Items {
		in.Pods[i] = &pods.Items[i]
	}
	in.PDBs = make([]*policyv1.PodDisruptionBudget, len(pdbs.Items))
	for i := range pdbs.Items {
		in.PDBs[i] = &pdbs.Items[i]
	}
	limits, reasons := map[string]int{}, map[string]string{}
	for g, members := range groups {
		in.ToUpgrade = members
		limits[g], reasons[g] = plan.GroupLimit(plan.PlanWaves(in))
	}
	return limits, reasons, nil
}
