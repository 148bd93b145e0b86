// Package capacity decides whether the pods a drain evicts can be placed on
// the nodes that stay up. It is an approximation of the kube-scheduler's
// filters, run over plain core/v1 objects the caller has listed; it never
// talks to a cluster, never schedules anything and never scores nodes.
//
// What it models, per pod and node:
//   - resource requests (cpu, memory, ephemeral-storage, extended resources
//     and the node's pod count) against allocatable minus what the node's
//     non-terminated pods already request, with the init-container and
//     sidecar rule, pod-level requests and pod overhead (see PodRequests);
//   - spec.unschedulable (a cordoned node), unless the pod tolerates the
//     node.kubernetes.io/unschedulable taint;
//   - spec.nodeSelector and required node affinity (matchExpressions with
//     In/NotIn/Exists/DoesNotExist/Gt/Lt, matchFields on metadata.name);
//   - NoSchedule and NoExecute taints against the pod's tolerations.
//
// What it does NOT model is listed, as data, in Unmodelled, and Ignored tells
// which of those a given pod relies on so a caller can warn that the verdict
// for that pod is optimistic: inter-pod affinity and anti-affinity, topology
// spread constraints, volume topology (zones and node affinity of persistent
// volumes), host ports, and dynamic resource allocation (resource claims).
// It also ignores preferred (soft) rules, which never make a pod Pending, and
// pods that are Pending right now, which compete for the same room.
//
// Which pods a drain evicts follows kubectl drain (k8s.io/kubectl/pkg/drain
// filters.go): DaemonSet pods and mirror pods stay, terminated pods are
// ignored, and pods without a controller are deleted for good — they are
// reported but need no place. See Fate.
package capacity
