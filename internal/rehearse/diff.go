package rehearse

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Difference is one way the twin is not the real cluster, and what it may
// make the prediction get wrong.
type Difference struct {
	What   string `json:"what"`
	Effect string `json:"effect"`
}

// Differences lists what makes the twin differ from the real cluster:
// what was not or could not be copied, the scope, the version, and what
// a simulated kubelet does not do. versionNote is TwinVersion's note.
func Differences(src *Source, b *Built, versionNote string, d Delays) []Difference {
	var out []Difference
	add := func(what, effect string) { out = append(out, Difference{What: what, Effect: effect}) }
	if versionNote != "" {
		add(versionNote, "a bug or behaviour of the real patch release is not reproduced")
	}
	if len(src.Nodes) < len(src.AllNodes) {
		add(fmt.Sprintf("node sample: %d of the %d nodes", len(src.Nodes), len(src.AllNodes)),
			"waves, makespan and spare capacity are those of the sample; pods that do not fit on it stay Pending")
	}
	if len(src.Scope.Namespaces) > 0 {
		add("namespaces limited to "+strings.Join(src.Scope.Namespaces, ", "),
			"workloads and PodDisruptionBudgets elsewhere are not rehearsed; drains on the real nodes evict them too")
	}
	reasons := map[string]int{}
	for _, s := range src.Skipped {
		// What the twin's controllers recreate, or make of their own,
		// is no difference.
		if strings.HasPrefix(s.Reason, "recreated by its owner") ||
			s.Reason == reasonKup || s.Reason == reasonAPIServerOwn || s.Reason == reasonControllerOwn {
			continue
		}
		reasons[s.Reason]++
	}
	for _, r := range sortedKeys(reasons) {
		add(fmt.Sprintf("%d object(s) not copied: %s", reasons[r], r), "")
	}
	placeholders := 0
	for _, o := range src.Objects {
		if o.Kind.Kind == "Secret" {
			placeholders++
		}
	}
	if placeholders > 0 {
		add(fmt.Sprintf("%d Secret(s) are empty placeholders of the same name and type", placeholders),
			"nothing in the twin can read a secret value; simulated pods do not need one")
	}
	if n := claimWorkloads(src); len(n) > 0 {
		add("PersistentVolumes and claims are not copied: "+strings.Join(n, ", ")+" use volume claims",
			"their pods stay Pending in the twin, so their PodDisruptionBudgets see fewer healthy pods than in the real cluster")
	}
	add("admission webhooks, API services and conversion webhooks are not copied (the twin never calls out)",
		"a webhook that refuses or slows pods in the real cluster does not in the twin")
	add("simulated kubelets (kwok): containers do not run; pods stop at once and become Ready after the measured delay",
		"termination grace periods, preStop hooks and image pulls take no time in the twin")
	if len(d.ByWorkload) > 0 {
		add("the twin's pod templates carry a ready-delay annotation ("+ReadyDelayAnnotation+")",
			"their pod-template hashes, and so generated pod names, differ from the real cluster's")
	}
	if d.Measured == 0 {
		add("no Ready pod to measure the ready delay from", "the twin's pods become Ready at once: drains are faster than in the real cluster")
	} else {
		add(fmt.Sprintf("pod ready delays are medians measured from %d pods' conditions (cluster median %s)", d.Measured, d.Cluster),
			"pods slower or faster than their workload's median are not reproduced one by one")
	}
	if b != nil {
		for _, f := range b.Failed {
			add(f.Key+" could not be written to the twin: "+f.Reason, "it is missing from the rehearsal")
		}
		for _, s := range b.NotSettled {
			add("not as in the real cluster when the rehearsal started: "+s, "PodDisruptionBudgets over it allow different disruptions than in the real cluster")
		}
	}
	return out
}

// claimWorkloads names the workloads whose pods need volume claims.
func claimWorkloads(src *Source) []string {
	var out []string
	for _, o := range src.Objects {
		switch o.Kind.Kind {
		case "StatefulSet":
			if t, _, _ := unstructured.NestedSlice(o.Obj.Object, "spec", "volumeClaimTemplates"); len(t) > 0 {
				out = append(out, o.Key())
				continue
			}
			fallthrough
		case "Deployment", "DaemonSet", "ReplicaSet", "Job":
			if usesClaim(o.Obj, "spec", "template", "spec", "volumes") {
				out = append(out, o.Key())
			}
		case "Pod":
			if usesClaim(o.Obj, "spec", "volumes") {
				out = append(out, o.Key())
			}
		}
	}
	sort.Strings(out)
	return out
}

func usesClaim(obj *unstructured.Unstructured, path ...string) bool {
	vols, _, _ := unstructured.NestedSlice(obj.Object, path...)
	for _, v := range vols {
		if m, ok := v.(map[string]any); ok && m["persistentVolumeClaim"] != nil {
			return true
		}
	}
	return false
}
