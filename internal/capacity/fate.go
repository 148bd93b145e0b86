package capacity

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Fate is what draining its node does to a pod.
type Fate string

const (
	// Rescheduled: the drain evicts the pod and its controller creates a
	// replacement, which needs a place on another node.
	Rescheduled Fate = "rescheduled"
	// Deleted: the drain evicts a pod no controller owns (kubectl drain
	// --force); it is gone for good, so it needs no place but must be
	// reported.
	Deleted Fate = "deleted"
	// KeptDaemonSet: DaemonSet pods are left running (kubectl drain
	// --ignore-daemonsets); the node's own DaemonSet brings them back.
	KeptDaemonSet Fate = "daemonset"
	// KeptMirror: static pods belong to the kubelet, the API server only
	// holds a mirror; the drain cannot and does not evict them.
	KeptMirror Fate = "mirror"
	// Finished: Succeeded or Failed pods hold no resources; the drain
	// removes them, but the eviction API deletes terminal pods without
	// consulting any PDB, and nothing recreates them.
	Finished Fate = "finished"
	// Terminating: the pod is already being deleted; its replacement, if
	// any, is a separate pod, so it needs no place of its own.
	Terminating Fate = "terminating"
)

// Evicted reports whether evicting a pod with this fate consults its
// PodDisruptionBudget: rescheduled and deleted pods do.
func (f Fate) Evicted() bool { return f == Rescheduled || f == Deleted }

// DrainFate says what a drain does to pod, with the verdicts of kubectl's
// filters (k8s.io/kubectl/pkg/drain/filters.go: daemonSetFilter,
// mirrorPodFilter, unreplicatedFilter), assuming --ignore-daemonsets and
// --force. A finished pod is Finished whoever owns it; a terminating one is
// already on its way out.
func DrainFate(pod *v1.Pod) Fate {
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		return Finished
	}
	if _, ok := pod.Annotations[v1.MirrorPodAnnotationKey]; ok {
		return KeptMirror
	}
	ref := metav1.GetControllerOf(pod)
	if ref != nil && ref.Kind == "DaemonSet" {
		return KeptDaemonSet
	}
	if pod.DeletionTimestamp != nil {
		return Terminating
	}
	if ref == nil {
		return Deleted
	}
	return Rescheduled
}

// holdsResources reports whether the scheduler counts pod against its node:
// every pod bound to it that has not finished, including terminating ones,
// which keep their resources until the kubelet has stopped them.
func holdsResources(pod *v1.Pod) bool {
	return pod.Spec.NodeName != "" && pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed
}
