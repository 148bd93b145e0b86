package checks

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Hygiene finds workload habits that make an upgrade hurt: containers
// without resource requests (neither the scheduler nor the capacity model
// can place them), single-replica Deployments and StatefulSets (down while
// their node drains), and workloads a PodDisruptionBudget protects whose
// pods have no readiness probe (the budget then counts a pod healthy as
// soon as it starts).
func Hygiene(in Input) []Finding { return hygiene(newIndex(in)) }

func hygiene(x *index) []Finding {
	var out []Finding
	out = append(out, missingRequests(x)...)
	out = append(out, singleReplicas(x)...)
	out = append(out, missingProbes(x)...)
	return out
}

// missingRequests judges each workload once, by its first live pod: mirror
// pods are the kubelet's, not the user's, and are skipped.
func missingRequests(x *index) []Finding {
	seen := map[Object]bool{}
	var out []Finding
	for _, p := range x.pods {
		if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
			continue
		}
		o := x.owner(p)
		if seen[o] {
			continue
		}
		seen[o] = true
		if r := p.Spec.Resources; r != nil && !r.Requests.Cpu().IsZero() && !r.Requests.Memory().IsZero() {
			continue // pod-level requests cover the containers
		}
		var lacking []string
		for _, c := range p.Spec.Containers {
			var miss []string
			if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
				miss = append(miss, "cpu")
			}
			if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
				miss = append(miss, "memory")
			}
			if len(miss) == 0 {
				continue
			}
			s := c.Name + " (no " + strings.Join(miss, "/") + " request"
			if len(c.Resources.Limits) == 0 {
				s += ", no limits"
			}
			lacking = append(lacking, s+")")
		}
		if len(lacking) > 0 {
			out = append(out, foundf(NoRequests, []Object{o}, "%s: container(s) %s", o, strings.Join(lacking, ", ")))
		}
	}
	return out
}

func singleReplicas(x *index) []Finding {
	var out []Finding
	for i := range x.snap.Deployments {
		d := &x.snap.Deployments[i]
		if replicas(d.Spec.Replicas) == 1 {
			out = append(out, foundf(SingleReplica, []Object{{Kind: "Deployment", Namespace: d.Namespace, Name: d.Name}},
				"Deployment %s/%s runs 1 replica: it is down from its pod's eviction until the replacement is Ready", d.Namespace, d.Name))
		}
	}
	for i := range x.snap.StatefulSets {
		s := &x.snap.StatefulSets[i]
		if replicas(s.Spec.Replicas) == 1 {
			out = append(out, foundf(SingleReplica, []Object{{Kind: "StatefulSet", Namespace: s.Namespace, Name: s.Name}},
				"StatefulSet %s/%s runs 1 replica: it is down from its pod's eviction until the replacement is Ready", s.Namespace, s.Name))
		}
	}
	return out
}

func missingProbes(x *index) []Finding {
	seen := map[Object]bool{}
	var out []Finding
	for i, pdb := range x.pdbs {
		for _, g := range x.groupByOwner(x.pdbPods[i]) {
			if seen[g.owner] {
				continue
			}
			seen[g.owner] = true
			spec := &g.pods[0].Spec
			if t, ok := x.workloadTemplate(g.owner); ok {
				spec = t
			}
			probed := false
			for _, c := range spec.Containers {
				probed = probed || c.ReadinessProbe != nil
			}
			if !probed {
				out = append(out, found(NoReadinessProbe, fmt.Sprintf("%s is protected by PodDisruptionBudget %s/%s but none of its containers has a readiness probe",
					g.owner, pdb.Namespace, pdb.Name), g.owner, pdbObject(pdb)))
			}
		}
	}
	return out
}
