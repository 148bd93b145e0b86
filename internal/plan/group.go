package plan

import "fmt"

// GroupLimit is how many nodes of a group a provider that rolls the group
// itself (an EKS managed node group's updateConfig.maxUnavailable) may
// take down at once, read from the waves the planner made for the group's
// nodes alone: the smallest wave a rule cut short (PDB, capacity, the
// user's max-unavailable, a zone boundary), or, when no rule did, the
// largest wave. The provider picks the nodes of each batch itself, so the
// tightest wave is the only size known to be safe. Canary waves are the
// user's caution, not a limit of the group, and are left out. At least 1.
func GroupLimit(p Plan) (int, string) {
	limited, largest := 0, 0
	why := ""
	for _, w := range p.Waves {
		n := len(w.Nodes)
		switch w.Limit.Kind {
		case LimitCanary:
			continue
		case LimitPDB, LimitCapacity, LimitMaxUnavailable, LimitZoneBoundary:
			if limited == 0 || n < limited {
				limited, why = n, fmt.Sprintf("wave %d of the planner held %d node(s): %s", w.Index, n, w.Limit.Reason)
			}
		}
		largest = max(largest, n)
	}
	switch {
	case limited > 0:
		return limited, why
	case largest > 0:
		return largest, fmt.Sprintf("no PodDisruptionBudget, capacity or policy limit: the planner put %d node(s) in one wave", largest)
	}
	return 1, "the planner made no wave for the group: one node at a time"
}
