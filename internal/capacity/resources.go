package capacity

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Resources is an amount of the resources the scheduler's NodeResourcesFit
// filter accounts for, in the integer units it uses: millicores for cpu,
// bytes for memory and ephemeral storage, a count of pods, and the plain
// value of every other (extended or hugepages) resource.
type Resources struct {
	MilliCPU         int64                     `json:"milliCPU,omitempty"`
	Memory           int64                     `json:"memory,omitempty"`
	EphemeralStorage int64                     `json:"ephemeralStorage,omitempty"`
	Pods             int64                     `json:"pods,omitempty"`
	Scalar           map[v1.ResourceName]int64 `json:"scalar,omitempty"`
}

// add adds o to r.
func (r *Resources) add(o Resources) {
	r.MilliCPU += o.MilliCPU
	r.Memory += o.Memory
	r.EphemeralStorage += o.EphemeralStorage
	r.Pods += o.Pods
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = make(map[v1.ResourceName]int64, len(o.Scalar))
		}
		r.Scalar[name] += v
	}
}

// sub subtracts o from r; the ledger uses it to undo a placement.
func (r *Resources) sub(o Resources) {
	r.MilliCPU -= o.MilliCPU
	r.Memory -= o.Memory
	r.EphemeralStorage -= o.EphemeralStorage
	r.Pods -= o.Pods
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = make(map[v1.ResourceName]int64, len(o.Scalar))
		}
		r.Scalar[name] -= v
	}
}

// clone returns a copy of r that shares no map with it.
func (r Resources) clone() Resources {
	c := r
	if r.Scalar != nil {
		c.Scalar = make(map[v1.ResourceName]int64, len(r.Scalar))
		for k, v := range r.Scalar {
			c.Scalar[k] = v
		}
	}
	return c
}

// max raises every amount of r to at least the one in o.
func (r *Resources) max(o Resources) {
	r.MilliCPU = max(r.MilliCPU, o.MilliCPU)
	r.Memory = max(r.Memory, o.Memory)
	r.EphemeralStorage = max(r.EphemeralStorage, o.EphemeralStorage)
	r.Pods = max(r.Pods, o.Pods)
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = make(map[v1.ResourceName]int64, len(o.Scalar))
		}
		r.Scalar[name] = max(r.Scalar[name], v)
	}
}

// IsZero reports whether r requests nothing but (possibly) a pod slot; the
// scheduler then checks the pod count only.
func (r Resources) IsZero() bool {
	if r.MilliCPU != 0 || r.Memory != 0 || r.EphemeralStorage != 0 {
		return false
	}
	for _, v := range r.Scalar {
		if v != 0 {
			return false
		}
	}
	return true
}

// String renders r compactly for reasons and test output, e.g.
// "cpu=500m memory=256Mi pods=1".
func (r Resources) String() string {
	var parts []string
	if r.MilliCPU != 0 {
		parts = append(parts, "cpu="+resource.NewMilliQuantity(r.MilliCPU, resource.DecimalSI).String())
	}
	if r.Memory != 0 {
		parts = append(parts, "memory="+resource.NewQuantity(r.Memory, resource.BinarySI).String())
	}
	if r.EphemeralStorage != 0 {
		parts = append(parts, "ephemeral-storage="+resource.NewQuantity(r.EphemeralStorage, resource.BinarySI).String())
	}
	if r.Pods != 0 {
		parts = append(parts, fmt.Sprintf("pods=%d", r.Pods))
	}
	names := make([]string, 0, len(r.Scalar))
	for name := range r.Scalar {
		names = append(names, string(name))
	}
	sort.Strings(names)
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", name, r.Scalar[v1.ResourceName(name)]))
	}
	return strings.Join(parts, " ")
}

// fromList converts a ResourceList into Resources. Pods is taken from the
// list only when present (allocatable); requests never carry it.
func fromList(list v1.ResourceList) Resources {
	var r Resources
	for name, q := range list {
		switch name {
		case v1.ResourceCPU:
			r.MilliCPU = q.MilliValue()
		case v1.ResourceMemory:
			r.Memory = q.Value()
		case v1.ResourceEphemeralStorage:
			r.EphemeralStorage = q.Value()
		case v1.ResourcePods:
			r.Pods = q.Value()
		default:
			if r.Scalar == nil {
				r.Scalar = make(map[v1.ResourceName]int64)
			}
			r.Scalar[name] = q.Value()
		}
	}
	return r
}

// Allocatable is what the node offers to pods (status.allocatable).
func Allocatable(node *v1.Node) Resources {
	return fromList(node.Status.Allocatable)
}

// PodRequests is what the scheduler reserves for pod on a node. It follows
// k8s.io/component-helpers/resource PodRequests, because a different sum
// would call a node full (or free) where the scheduler does not:
//   - the regular containers' requests are summed;
//   - init containers run one after another, so only the largest counts,
//     but sidecars (init containers with restartPolicy Always) keep running:
//     each init container is counted together with the sidecars started
//     before it, and the sidecars are added to the regular containers;
//   - the result is the larger of the two, resource by resource;
//   - pod-level requests (spec.resources), where set, replace the container
//     sum for cpu and memory;
//   - spec.overhead (RuntimeClass) is added on top;
//   - Pods is always 1: the pod takes one of the node's pod slots.
//
// In-place resize (status.containerStatuses[].allocatedResources) is not
// consulted; the spec's requests are used.
func PodRequests(pod *v1.Pod) Resources {
	var reqs Resources
	for i := range pod.Spec.Containers {
		reqs.add(fromList(pod.Spec.Containers[i].Resources.Requests))
	}

	var sidecars, initMax Resources
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		own := fromList(c.Resources.Requests)
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			reqs.add(own)
			sidecars.add(own)
			initMax.max(sidecars)
			continue
		}
		own.add(sidecars)
		initMax.max(own)
	}
	reqs.max(initMax)

	if pr := pod.Spec.Resources; pr != nil {
		if q, ok := pr.Requests[v1.ResourceCPU]; ok {
			reqs.MilliCPU = q.MilliValue()
		}
		if q, ok := pr.Requests[v1.ResourceMemory]; ok {
			reqs.Memory = q.Value()
		}
	}
	if pod.Spec.Overhead != nil {
		reqs.add(fromList(pod.Spec.Overhead))
	}
	reqs.Pods = 1
	return reqs
}
