package checks

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Severity says how much a finding matters to the upgrade.
type Severity string

const (
	// Blocker: the upgrade would fail or do harm; kup apply refuses to
	// start unless the user waives the finding's ID.
	Blocker Severity = "blocker"
	// Warning: the upgrade can run but something will hurt (downtime, lost
	// data, a stalled drain, an unsupported add-on).
	Warning Severity = "warning"
	// Info: true and worth knowing; nothing to fix.
	Info Severity = "info"
	// Unknown: the check could not run (the evidence could not be read),
	// so it neither passed nor failed. Never a pass.
	Unknown Severity = "unknown"
)

// rank orders severities for reports: the worst first, and "could not
// check" before plain information.
func (s Severity) rank() int {
	switch s {
	case Blocker:
		return 0
	case Warning:
		return 1
	case Unknown:
		return 2
	}
	return 3
}

// Check is one entry of the catalogue: a stable ID, the severity its
// findings have, and what to do about them. IDs are never renumbered or
// reused: users waive them by name and scripts match on them.
type Check struct {
	ID       string   `json:"id"`
	Family   string   `json:"family"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	// Action is the one line saying what to do.
	Action string `json:"action"`
}

// Families, one per file.
const (
	FamilyHealth       = "health"
	FamilyAPIs         = "apis"
	FamilyDrain        = "drain"
	FamilyCapacity     = "capacity"
	FamilyHygiene      = "hygiene"
	FamilyAddons       = "addons"
	FamilyControlPlane = "controlplane"
	FamilyProvider     = "provider"
)

// The IDs, for code that refers to one check.
const (
	NodeNotReady       = "KUP-NODE-001"
	NodePressure       = "KUP-NODE-002"
	NodeCordoned       = "KUP-NODE-003"
	NodeKupCordoned    = "KUP-NODE-004"
	NodeKupPending     = "KUP-NODE-005"
	PodsPending        = "KUP-POD-001"
	PodsCrashLooping   = "KUP-POD-002"
	PodsNotReady       = "KUP-POD-003"
	WarningEvents      = "KUP-EVT-001"
	APIRemovedHelm     = "KUP-API-001"
	APIRemovedApplied  = "KUP-API-002"
	APIRemovedCalled   = "KUP-API-003"
	APIRemovedManifest = "KUP-API-004"
	APIDeprecated      = "KUP-API-005"
	APIAlreadyRemoved  = "KUP-API-006"
	PDBZeroBudget      = "KUP-PDB-001"
	PDBOverlap         = "KUP-PDB-002"
	PDBSelectsNothing  = "KUP-PDB-003"
	PDBUnhealthyPods   = "KUP-PDB-004"
	DrainUnmanaged     = "KUP-DRAIN-001"
	DrainEmptyDir      = "KUP-DRAIN-002"
	DrainNodeData      = "KUP-DRAIN-003"
	DrainLongGrace     = "KUP-DRAIN-004"
	CapacityUndrained  = "KUP-CAP-001"
	CapacityUnmodelled = "KUP-CAP-002"
	NoRequests         = "KUP-WL-001"
	SingleReplica      = "KUP-WL-002"
	NoReadinessProbe   = "KUP-WL-003"
	AddonUnsupported   = "KUP-ADDON-001"
	AddonNoData        = "KUP-ADDON-002"
	SkewViolation      = "KUP-CP-001"
	KubectlSkew        = "KUP-CP-002"
	CertExpiresDuring  = "KUP-CP-003"
	CertExpiresSoon    = "KUP-CP-004"
	EtcdUnhealthy      = "KUP-CP-005"
	EtcdNearQuota      = "KUP-CP-006"
	ProviderBlocker    = "KUP-PROV-001"
	ProviderWarning    = "KUP-PROV-002"
)

var catalogue = []Check{
	{NodeNotReady, FamilyHealth, Blocker, "Node is not Ready",
		"Repair the node so its kubelet reports Ready, or remove it from the cluster, before upgrading: kup cannot upgrade a node whose kubelet does not answer (a node not Ready inside an upgrade a kup run began is KUP-NODE-004 instead: running kup again finishes it)."},
	{NodePressure, FamilyHealth, Warning, "Node is under memory, disk or PID pressure",
		"Relieve the pressure first: the node evicts pods by itself and refuses the pods other drains send it."},
	{NodeCordoned, FamilyHealth, Info, "Node is already cordoned",
		"Nothing to do: kup drains and upgrades it like the others, sends it no evicted pods, and leaves it cordoned afterwards, as it found it."},
	{NodeKupCordoned, FamilyHealth, Warning, "Node left cordoned by a kup run",
		"If no kup run is under way, run kup again to the version the finding names: it resumes and uncordons the nodes it cordoned (a node whose upgrade failed after you have seen why). A kup run to another version uncordons them too once it has upgraded them. To give a node back without upgrading it: kubectl uncordon NODE."},
	{NodeKupPending, FamilyHealth, Warning, "Nodes carry kup's pending taint from a kup run",
		"kup taints the nodes still to upgrade while a rollout runs and removes the taint when it ends; left behind, it steers new pods away from them. If no kup run is under way, run kup again to the version the finding names (the taint goes when it ends), or remove it: kubectl taint nodes NODE upgrade.kup.dev/pending-."},
	{PodsPending, FamilyHealth, Warning, "Pods are Pending",
		"Find out why they are not scheduled (kubectl describe pod): they compete for the room evicted pods need, and the capacity verdicts do not count them."},
	{PodsCrashLooping, FamilyHealth, Warning, "Pods are in CrashLoopBackOff",
		"Fix the crashing containers before upgrading, or the check after the upgrade cannot tell old failures from new ones."},
	{PodsNotReady, FamilyHealth, Warning, "Pods are running but not Ready",
		"Find out why they are not Ready: PodDisruptionBudgets already count them as disrupted, so drains may stall."},
	{WarningEvents, FamilyHealth, Info, "Warning events in the last hour",
		"Read them (kubectl get events -A --field-selector type=Warning) and rule out anything the upgrade would make worse."},

	{APIRemovedHelm, FamilyAPIs, Blocker, "Helm release stores an API the upgrade removes",
		"Move the chart to the replacement API and rewrite the stored release (helm mapkubeapis) before upgrading, or the next helm upgrade fails."},
	{APIRemovedApplied, FamilyAPIs, Blocker, "Object was last applied with an API the upgrade removes",
		"Change the manifest to the replacement apiVersion and re-apply it before upgrading: applying the old manifest fails once the API is gone."},
	{APIRemovedCalled, FamilyAPIs, Blocker, "Clients call an API the upgrade removes",
		"Find the client in the apiserver's audit log (the metric does not name it) and move it to the replacement API before upgrading."},
	{APIRemovedManifest, FamilyAPIs, Blocker, "Manifest file uses an API the upgrade removes",
		"Change the file to the replacement apiVersion before upgrading."},
	{APIDeprecated, FamilyAPIs, Info, "Deprecated API in use, not removed by this upgrade",
		"Plan the move to the replacement before the release that removes it."},
	{APIAlreadyRemoved, FamilyAPIs, Warning, "API already removed from the current version is still referenced",
		"Update the manifest or release: it already fails against this cluster, before any upgrade."},

	{PDBZeroBudget, FamilyDrain, Blocker, "PodDisruptionBudget allows no disruption even when every pod is healthy",
		"Add replicas, or relax the budget (maxUnavailable: 1, or minAvailable below the replica count), before upgrading: no drain of its pods' nodes can finish."},
	{PDBOverlap, FamilyDrain, Blocker, "Pods are matched by more than one PodDisruptionBudget",
		"Make the PodDisruptionBudgets' selectors disjoint: the eviction API refuses to evict a pod that several budgets select."},
	{PDBSelectsNothing, FamilyDrain, Warning, "PodDisruptionBudget selects no pods",
		"Fix the selector or delete the PodDisruptionBudget: it protects nothing."},
	{PDBUnhealthyPods, FamilyDrain, Warning, "PodDisruptionBudget has unhealthy pods it does not let drains evict",
		"Set spec.unhealthyPodEvictionPolicy: AlwaysAllow, or make the pods Ready: with the default policy a drain cannot evict a not-Ready pod while the budget is short."},
	{DrainUnmanaged, FamilyDrain, Warning, "Pod without a controller: a drain deletes it for good",
		"Run it under a Deployment, StatefulSet or Job, or accept that kup deletes it, as kubectl drain --force does."},
	{DrainEmptyDir, FamilyDrain, Info, "Pods keep data in emptyDir volumes, which a drain deletes",
		"Nothing to do for scratch data: kup deletes it, as kubectl drain --delete-emptydir-data does. Move data worth keeping to a PersistentVolume."},
	{DrainNodeData, FamilyDrain, Warning, "Pods keep data on the node (hostPath or local PersistentVolume)",
		"Make sure that data can be lost or rebuilt: a hostPath pod restarts elsewhere without it, a local-volume pod stays Pending until its node is back."},
	{DrainLongGrace, FamilyDrain, Warning, "Pods have a long termination grace period",
		"Expect each drain to wait that long for these pods, or lower terminationGracePeriodSeconds."},

	{CapacityUndrained, FamilyCapacity, Warning, "Node cannot be drained: its pods fit on no other node",
		"Add capacity, or relax the pods' node selectors, affinity or the other nodes' taints, so the node's pods have somewhere to go."},
	{CapacityUnmodelled, FamilyCapacity, Info, "Pods rely on scheduling rules the capacity model does not evaluate",
		"Treat the capacity verdict for these pods as optimistic and check by hand that they can be rescheduled."},

	{NoRequests, FamilyHygiene, Warning, "Containers without resource requests",
		"Set cpu and memory requests: without them neither the scheduler nor kup's capacity model knows where the pods fit."},
	{SingleReplica, FamilyHygiene, Warning, "Single-replica workload: down while its node drains",
		"Run at least two replicas (with a PodDisruptionBudget) if it must stay up during the upgrade."},
	{NoReadinessProbe, FamilyHygiene, Warning, "PodDisruptionBudget-protected workload without readiness probes",
		"Add a readiness probe: without one a pod counts as healthy as soon as it starts, so the budget lets the next eviction go before the app serves."},

	{AddonUnsupported, FamilyAddons, Warning, "Add-on not supported on a Kubernetes version the upgrade passes through",
		"Upgrade the add-on to a version its vendor supports on every Kubernetes minor of the path (see the source cited) before upgrading."},
	{AddonNoData, FamilyAddons, Info, "Add-on version not covered by kup's compatibility table",
		"Check the vendor's compatibility matrix for the target version yourself."},

	{SkewViolation, FamilyControlPlane, Blocker, "Version skew outside the Kubernetes policy",
		"Bring the components named within the version-skew policy (https://kubernetes.io/releases/version-skew-policy/) before upgrading."},
	{KubectlSkew, FamilyControlPlane, Warning, "Local kubectl outside the supported skew",
		"Use a kubectl within one minor of the control plane, before and after the upgrade."},
	{CertExpiresDuring, FamilyControlPlane, Blocker, "apiserver serving certificate expires before the upgrade can finish",
		"Renew the control-plane certificates (kubeadm certs renew all, then restart the control plane) before upgrading."},
	{CertExpiresSoon, FamilyControlPlane, Warning, "apiserver serving certificate expires within 30 days",
		"Renew the certificates soon (kubeadm upgrade renews them; check your provider's rotation otherwise)."},
	{EtcdUnhealthy, FamilyControlPlane, Blocker, "etcd is unhealthy or has active alarms",
		"Resolve the alarm or health problem (etcdctl alarm list, etcdctl endpoint health) before upgrading: kup takes its backup from etcd first."},
	{EtcdNearQuota, FamilyControlPlane, Warning, "etcd database close to its quota",
		"Compact and defragment etcd, or raise --quota-backend-bytes, before upgrading: a full database turns the cluster read-only."},

	{ProviderBlocker, FamilyProvider, Blocker, "The provider's upgrade readiness check fails for the next hop",
		"Follow the provider's recommendation shown with the finding, then plan again: the provider refuses or breaks the hop otherwise."},
	{ProviderWarning, FamilyProvider, Warning, "The provider's upgrade readiness check warns",
		"Read the provider's recommendation shown with the finding and decide before upgrading."},
}

var byID = func() map[string]Check {
	m := make(map[string]Check, len(catalogue))
	for _, c := range catalogue {
		m[c.ID] = c
	}
	return m
}()

// Catalogue returns every check, in catalogue order.
func Catalogue() []Check { return slices.Clone(catalogue) }

// Lookup returns the check with id.
func Lookup(id string) (Check, bool) {
	c, ok := byID[id]
	return c, ok
}

// Object names a Kubernetes object (or, for API usage seen only in the
// apiserver's metric, an API resource) a finding is about.
type Object struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String renders "Kind namespace/name".
func (o Object) String() string {
	if o.Namespace != "" {
		return o.Kind + " " + o.Namespace + "/" + o.Name
	}
	return strings.TrimSpace(o.Kind + " " + o.Name)
}

func compareObjects(a, b Object) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// Finding is one thing a check found, or, with Severity Unknown, a check
// that could not run.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	Objects  []Object `json:"objects,omitempty"`
	// Message says what was found, with the numbers that matter.
	Message string `json:"message"`
	// Action is what to do (the catalogue's line).
	Action string `json:"action"`
	// Waived is set by the caller when the user waived this ID.
	Waived bool `json:"waived,omitempty"`
}

// found makes a finding of check id. An id missing from the catalogue is
// a programming error caught by the catalogue test.
func found(id, message string, objects ...Object) Finding {
	c := byID[id]
	return Finding{ID: id, Severity: c.Severity, Title: c.Title, Objects: objects, Message: message, Action: c.Action}
}

// foundf is found with a formatted message.
func foundf(id string, objects []Object, format string, args ...any) Finding {
	return found(id, fmt.Sprintf(format, args...), objects...)
}

// unknown makes the "could not run" finding of check id.
func unknown(id, why string, objects ...Object) Finding {
	c := byID[id]
	return Finding{ID: id, Severity: Unknown, Title: c.Title, Objects: objects,
		Message: "could not check: " + why,
		Action:  "Fix what kept kup from reading the evidence (permissions, reachability) and plan again, or check this by hand."}
}

// Sort orders findings for reports: worst severity first, then by ID,
// then by first object.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := cmp.Compare(a.Severity.rank(), b.Severity.rank()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		var oa, ob Object
		if len(a.Objects) > 0 {
			oa = a.Objects[0]
		}
		if len(b.Objects) > 0 {
			ob = b.Objects[0]
		}
		if c := compareObjects(oa, ob); c != 0 {
			return c
		}
		return cmp.Compare(a.Message, b.Message)
	})
}
