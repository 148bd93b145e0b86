package capacity

import v1 "k8s.io/api/core/v1"

// Constraint is a scheduling rule this package does not evaluate. A pod
// that relies on one may be reported as fitting where the scheduler would
// leave it Pending; callers should warn about such pods.
type Constraint string

const (
	InterPodAffinity Constraint = "inter-pod affinity/anti-affinity"
	TopologySpread   Constraint = "topology spread constraints"
	VolumeTopology   Constraint = "volume topology (persistent volume zones and node affinity)"
	HostPorts        Constraint = "host ports"
	DynamicResources Constraint = "dynamic resource allocation (resource claims)"
)

// Unmodelled lists every Constraint the approximation ignores.
var Unmodelled = []Constraint{InterPodAffinity, TopologySpread, VolumeTopology, HostPorts, DynamicResources}

// Ignored returns the constraints of pod that this package did not evaluate,
// in the order of Unmodelled. Only rules that can make a pod Pending count:
// preferred affinity and ScheduleAnyway spread constraints are not listed.
func Ignored(pod *v1.Pod) []Constraint {
	var out []Constraint
	if a := pod.Spec.Affinity; a != nil &&
		((a.PodAffinity != nil && len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0) ||
			(a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0)) {
		out = append(out, InterPodAffinity)
	}
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == v1.DoNotSchedule {
			out = append(out, TopologySpread)
			break
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
			out = append(out, VolumeTopology)
			break
		}
	}
	if usesHostPort(pod) {
		out = append(out, HostPorts)
	}
	if len(pod.Spec.ResourceClaims) > 0 {
		out = append(out, DynamicResources)
	}
	return out
}

func usesHostPort(pod *v1.Pod) bool {
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.HostPort > 0 {
					return true
				}
			}
		}
	}
	return false
}
