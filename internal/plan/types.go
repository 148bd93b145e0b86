package plan

import (
	"time"

	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// ZoneLabel is the well-known label a node's zone is read from.
	ZoneLabel = v1.LabelTopologyZone
	// ControlPlaneLabel marks control-plane nodes (any value).
	ControlPlaneLabel = "node-role.kubernetes.io/control-plane"
)

// Input is everything the planner looks at. The objects are as listed
// from the cluster; the planner does not modify them.
type Input struct {
	Nodes []*v1.Node
	Pods  []*v1.Pod
	// PDBs with their status as the disruption controller last wrote it:
	// expectedPods, desiredHealthy and disruptionsAllowed are used.
	PDBs []*policyv1.PodDisruptionBudget
	// ToUpgrade names the nodes still to upgrade. Nodes not named are
	// done or out of scope; they still host pods and receive evicted ones.
	ToUpgrade []string
	// Upgraded names the nodes this rollout already upgraded. It only
	// tells whether the canary wave is behind us.
	Upgraded []string
	Policy   Policy
	// InFlight counts nodes of an earlier wave that are still down (their
	// drains done, their upgrades running): they count against
	// MaxUnavailable, so a wave started before they are back is that much
	// smaller. Only NextWave reads it.
	InFlight int
}

// Policy is what the user chose to bound the rollout.
type Policy struct {
	// MaxUnavailable caps the nodes of a wave: a count, or a percentage of
	// the worker nodes NodeSelector matches (upgraded or not, so the cap
	// does not shrink as the rollout advances), rounded down, at least 1.
	// The zero value means 1.
	MaxUnavailable intstr.IntOrString `json:"maxUnavailable"`
	// ZoneByZone keeps every wave inside one zone (label
	// topology.kubernetes.io/zone; nodes without it form the zone "") and
	// finishes a zone before starting the next.
	ZoneByZone bool `json:"zoneByZone,omitempty"`
	// NodeSelector restricts the rollout to the nodes it matches; nil
	// matches every node.
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
	// Order, when set, is the order nodes are considered in; nodes it does
	// not name come after, in the default order. When empty, the default is
	// by zone, then most constrained first, then by name (see order).
	Order []string `json:"order,omitempty"`
	// Canary makes the first worker wave a single node. nil means true.
	Canary *bool `json:"canary,omitempty"`
	// BudgetRounds is how many times a wave may spend a PDB's budget:
	// 1 (or 0) takes at most what the PDB allows, so no drain waits;
	// R lets a wave take R × the budget, its drains waiting R-1 times
	// for the replacements to be Ready. Worth it when pods become Ready
	// much faster than a node upgrades: a wait costs a pod's readiness,
	// a wave more costs a node's upgrade. Never more than MaxBudgetRounds;
	// 0 means 1.
	BudgetRounds int `json:"budgetRounds,omitempty"`
}

// MaxBudgetRounds bounds Policy.BudgetRounds: beyond it a wave's drains
// wait longer than most node upgrades take.
const MaxBudgetRounds = 4

func (p Policy) rounds() int { return min(max(p.BudgetRounds, 1), MaxBudgetRounds) }

// AutoBudgetRounds caps BudgetRoundsFor: a third round already makes a
// wave's drains wait twice for replacement pods.
const AutoBudgetRounds = 3

// BudgetRoundsFor is the budget rounds worth spending when a node takes
// nodeUpgrade to upgrade and replacement pods take podReady to be Ready: a
// wave that spends a PDB's budget twice waits once for the replacements
// inside its drains, while a wave more costs a node upgrade. So 1 +
// nodeUpgrade / (podReady + 2 s), the 2 s for eviction, scheduling and
// the disruption controller, at least 1 and at most AutoBudgetRounds.
func BudgetRoundsFor(nodeUpgrade, podReady time.Duration) int {
	return min(AutoBudgetRounds, max(1, 1+int(nodeUpgrade/(podReady+2*time.Second))))
}

// CanaryEnabled reports whether the first worker wave is a single node.
func (p Policy) CanaryEnabled() bool { return p.Canary == nil || *p.Canary }

// Validate reports a policy the planner cannot apply. PlanWaves and
// NextWave do not fail: they report every node as Blocked with the error.
func (p Policy) Validate() error {
	if _, err := metav1.LabelSelectorAsSelector(p.NodeSelector); err != nil {
		return fmt.Errorf("policy node selector: %w", err)
	}
	if _, err := intstr.GetScaledValueFromIntOrPercent(&p.MaxUnavailable, 100, false); err != nil {
		return fmt.Errorf("policy maxUnavailable %q: %w", p.MaxUnavailable.String(), err)
	}
	if n := p.MaxUnavailable; (n.Type == intstr.Int && n.IntVal < 0) || (n.Type == intstr.String && len(n.StrVal) > 0 && n.StrVal[0] == '-') {
		return fmt.Errorf("policy maxUnavailable %q: must not be negative", n.String())
	}
	if p.BudgetRounds < 0 || p.BudgetRounds > MaxBudgetRounds {
		return fmt.Errorf("policy budgetRounds %d: want 1 to %d", p.BudgetRounds, MaxBudgetRounds)
	}
	seen := map[string]bool{}
	for _, n := range p.Order {
		if seen[n] {
			return fmt.Errorf("policy order: node %s is named twice", n)
		}
		seen[n] = true
	}
	return nil
}

// Plan is the whole node rollout.
type Plan struct {
	Waves      []Wave        `json:"waves"`
	Blocked    []BlockedNode `json:"blocked,omitempty"`
	LowerBound Bound         `json:"lowerBound"`
}

// Wave is a set of nodes cordoned, drained and upgraded together.
type Wave struct {
	// Index counts from 1 in a Plan. NextWave sets 1: the executor numbers
	// the waves it runs.
	Index int      `json:"index"`
	Nodes []string `json:"nodes"`
	// Zone is the zone all the wave's nodes are in; empty when they span
	// zones or have no zone label.
	Zone         string `json:"zone,omitempty"`
	ControlPlane bool   `json:"controlPlane,omitempty"`
	// Limit is what stopped the wave from growing.
	Limit Limit `json:"limit"`
	// PodsEvicted counts the pods the drains evict (rescheduled and
	// unmanaged; not DaemonSet, mirror or finished pods).
	PodsEvicted int `json:"podsEvicted"`
	// Unmanaged are pods without a controller (namespace/name): the drain
	// deletes them for good (kubectl drain --force).
	Unmanaged []string `json:"unmanaged,omitempty"`
	// Cordoned are the wave's nodes that were cordoned before the rollout;
	// the executor leaves them cordoned afterwards.
	Cordoned []string `json:"cordoned,omitempty"`
	// BudgetWaits are the drains that will wait for a PDB to recover.
	BudgetWaits []BudgetWait `json:"budgetWaits,omitempty"`
}

// BudgetWait is a node that on its own holds more pods of a PDB than the
// PDB allows disruptions, even with all its pods healthy. Its drain evicts
// up to Allowed pods, then waits for their replacements to become healthy
// before it can evict more; no other node of the wave holds pods of that
// PDB, so the wait is the node's own.
type BudgetWait struct {
	Node    string `json:"node"`
	PDB     string `json:"pdb"` // namespace/name
	Pods    int    `json:"pods"`
	Allowed int    `json:"allowed"`
}

func (b BudgetWait) String() string {
	return fmt.Sprintf("node %s holds %d pods of PDB %s, which allows %s: its drain waits for the budget to recover between evictions",
		b.Node, b.Pods, b.PDB, plural(b.Allowed, "disruption"))
}

// LimitKind names the rule that stopped a wave from growing.
type LimitKind string

const (
	LimitMaxUnavailable LimitKind = "max-unavailable"
	// LimitPDB: the next candidate would have taken a PDB past its budget.
	LimitPDB LimitKind = "pdb"
	// LimitCapacity: the next candidate's pods would have found no place.
	LimitCapacity     LimitKind = "capacity"
	LimitZoneBoundary LimitKind = "zone-boundary"
	LimitCanary       LimitKind = "canary"
	LimitControlPlane LimitKind = "control-plane"
	LimitNoMoreNodes  LimitKind = "no-more-nodes"
)

// Limit is the reason a wave is not larger: the rule, and the first node
// that rule held back.
type Limit struct {
	Kind   LimitKind `json:"kind"`
	Reason string    `json:"reason"`
	PDB    string    `json:"pdb,omitempty"` // namespace/name
	Pod    string    `json:"pod,omitempty"` // namespace/name
	// Node is the first candidate held back, if one was.
	Node string `json:"node,omitempty"`
	// HeldBack counts the candidates held back by any rule while the wave
	// was filled.
	HeldBack int `json:"heldBack,omitempty"`
}

func (l Limit) String() string { return l.Reason }

// BlockCause names why a node can never be in a wave.
type BlockCause string

const (
	// BlockedByPDB: a PDB allows 0 disruptions even in steady state.
	BlockedByPDB BlockCause = "pdb-zero-budget"
	// BlockedBySeveralPDBs: a pod is matched by more than one PDB, which
	// the eviction API refuses.
	BlockedBySeveralPDBs BlockCause = "pod-with-several-pdbs"
	// BlockedByCapacity: a pod fits on no other node.
	BlockedByCapacity BlockCause = "capacity"
	// NodeNotFound: named in ToUpgrade but not among the nodes.
	NodeNotFound BlockCause = "not-found"
	// InvalidPolicy: the policy does not validate.
	InvalidPolicy BlockCause = "invalid-policy"
)

// BlockedNode is a node left out of every wave, with the reason.
type BlockedNode struct {
	Node   string     `json:"node"`
	Cause  BlockCause `json:"cause"`
	PDBs   []string   `json:"pdbs,omitempty"` // namespace/name
	Pod    string     `json:"pod,omitempty"`  // namespace/name
	Reason string     `json:"reason"`
}

// Bound is the least any plan obeying the rules can take.
type Bound struct {
	// Waves is the minimum number of waves.
	Waves int `json:"waves"`
	// Makespan is Waves × (per node + pod ready), zero when not asked for.
	Makespan metav1.Duration `json:"makespan"`
	// DecidedBy is the Name of the term that set Waves.
	DecidedBy string `json:"decidedBy,omitempty"`
	Terms     []Term `json:"terms,omitempty"`
}

// Term is one lower bound on the number of waves and how it was reached.
type Term struct {
	Name   string `json:"name"`
	Waves  int    `json:"waves"`
	Detail string `json:"detail"`
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
