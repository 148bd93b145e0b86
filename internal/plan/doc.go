// Package plan decides the node rollout: which nodes are drained and
// upgraded together, in which order, and why each wave is as large as it is
// and no larger. It is pure: it reads Nodes, Pods and PodDisruptionBudgets
// the caller listed and returns data; it never cordons, drains, waits or
// talks to a cluster.
//
// A wave is a set of nodes drained at the same time. A wave is allowed when
//   - it holds at most Policy.MaxUnavailable nodes;
//   - for every PodDisruptionBudget, the wave's nodes hold no more of its
//     pods than it allows disruptions (a pod matched by several PDBs counts
//     for each), so no eviction sits in HTTP 429 retries — except a node
//     that on its own holds more pods of a PDB than its budget: no other
//     node of its wave holds pods of that PDB, and its drain waits for the
//     budget to recover between evictions (Wave.BudgetWaits says so);
//   - every pod the drain reschedules fits, by package capacity's
//     approximation of the scheduler, on the nodes outside the wave that are
//     not cordoned;
//   - with Policy.ZoneByZone, all its nodes are in one zone, and zones are
//     done one after another;
//   - control-plane nodes go first, one per wave; the first worker wave is a
//     single canary node unless Policy.Canary is false.
//
// A node is Blocked, and never put in a wave, when a drain could not finish
// however long it waited: it holds a pod of a PDB that allows no disruption
// even when all its pods are healthy (minAvailable equal to replicas, one
// replica with minAvailable 1), or a pod matched by more than one PDB (the
// eviction API refuses those with HTTP 500, see
// pkg/registry/core/pod/storage/eviction.go in kubernetes), or a pod that
// fits on no other node.
//
// The packing is greedy first-fit over waves with the most constrained
// nodes first; see priority, byUrgency and buildWave for why. Every wave records, in the
// spirit of Cluster API's MachineDeployment rollout planner
// (core/reconcilers/machinedeployment/machinedeployment_rollout_planner.go,
// which keeps the reason for every number it decides), the one rule that
// stopped it from growing. LowerBound says how far from the best possible
// any plan under these rules can be.
package plan
