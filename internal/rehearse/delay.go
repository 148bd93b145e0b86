package rehearse

import (
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// DelayBounds keep a measured ready delay sane: a pod Ready before it was
// scheduled (clock skew, a condition rewritten) counts as Min, one that
// took hours (a crash loop that finally held) as Max — a twin whose pods
// take hours never finishes a rehearsal.
type DelayBounds struct{ Min, Max time.Duration }

// DefaultDelayBounds are 0 to 2 minutes.
var DefaultDelayBounds = DelayBounds{Min: 0, Max: 2 * time.Minute}

// Delays are the measured pod ready delays.
type Delays struct {
	// ByWorkload is the median scheduled→Ready time of each workload's
	// pods ("Deployment ns/name", "Pod ns/name" for unmanaged pods).
	ByWorkload map[string]time.Duration
	// Cluster is the median over every measured pod: the twin's default
	// for workloads with no Ready pod to measure.
	Cluster time.Duration
	// Measured is how many pods had both conditions.
	Measured int
}

// ReadyDelays measures, from the real cluster's pod conditions, how long
// each workload's pods take from PodScheduled to Ready: the median per
// workload, within bounds. owners maps "ReplicaSet ns/name" to the
// Deployment owning it ("Deployment/name"), so a Deployment's pods count
// for the Deployment, not for each ReplicaSet.
func ReadyDelays(pods []corev1.Pod, owners map[string]string, b DelayBounds) Delays {
	samples := map[string][]time.Duration{}
	var all []time.Duration
	for i := range pods {
		p := &pods[i]
		d, ok := readyDelay(p)
		if !ok {
			continue
		}
		d = min(max(d, b.Min), b.Max)
		w := WorkloadOf(p, owners)
		samples[w] = append(samples[w], d)
		all = append(all, d)
	}
	out := Delays{ByWorkload: map[string]time.Duration{}, Measured: len(all)}
	for w, ds := range samples {
		out.ByWorkload[w] = median(ds)
	}
	if len(all) > 0 {
		out.Cluster = median(all)
	}
	return out
}

// WorkloadOf names the workload a pod belongs to: its controller, or the
// Deployment above a ReplicaSet, or the pod itself when unmanaged.
func WorkloadOf(p *corev1.Pod, owners map[string]string) string {
	for _, r := range p.OwnerReferences {
		if r.Controller == nil || !*r.Controller {
			continue
		}
		if r.Kind == "ReplicaSet" {
			if up, ok := owners["ReplicaSet "+p.Namespace+"/"+r.Name]; ok {
				kind, name, _ := strings.Cut(up, "/")
				return kind + " " + p.Namespace + "/" + name
			}
		}
		return r.Kind + " " + p.Namespace + "/" + r.Name
	}
	return "Pod " + p.Namespace + "/" + p.Name
}

// readyDelay is PodScheduled→Ready of a pod that is Ready now.
func readyDelay(p *corev1.Pod) (time.Duration, bool) {
	var scheduled, ready time.Time
	for _, c := range p.Status.Conditions {
		switch c.Type {
		case corev1.PodScheduled:
			if c.Status == corev1.ConditionTrue {
				scheduled = c.LastTransitionTime.Time
			}
		case corev1.PodReady:
			if c.Status == corev1.ConditionTrue {
				ready = c.LastTransitionTime.Time
			}
		}
	}
	if scheduled.IsZero() || ready.IsZero() {
		return 0, false
	}
	return ready.Sub(scheduled), true
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
