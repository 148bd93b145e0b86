package apply

import (
	"context"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kup-project/kup/internal/report"
)

var listAll = metav1.ListOptions{}

type workloadSample struct {
	key, pdb           string
	desired, available int32
	minAvailable       int32
}

// sampleWorkloads reads the availability of every Deployment and
// StatefulSet a PodDisruptionBudget protects (three LISTs).
func sampleWorkloads(ctx context.Context, cs kubernetes.Interface) ([]workloadSample, error) {
	list := metav1.ListOptions{ResourceVersion: "0"}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, list)
	if err != nil {
		return nil, err
	}
	type guard struct {
		name string
		sel  labels.Selector
		min  int32
	}
	byNS := map[string][]guard{}
	for _, p := range pdbs.Items {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		byNS[p.Namespace] = append(byNS[p.Namespace], guard{p.Namespace + "/" + p.Name, sel, p.Status.DesiredHealthy})
	}
	var out []workloadSample
	match := func(ns string, podLabels map[string]string) (guard, bool) {
		for _, g := range byNS[ns] {
			if g.sel.Matches(labels.Set(podLabels)) {
				return g, true
			}
		}
		return guard{}, false
	}
	deps, err := cs.AppsV1().Deployments("").List(ctx, list)
	if err != nil {
		return nil, err
	}
	for _, d := range deps.Items {
		if g, ok := match(d.Namespace, d.Spec.Template.Labels); ok && d.Spec.Replicas != nil {
			out = append(out, workloadSample{key: "Deployment " + d.Namespace + "/" + d.Name, pdb: g.name, desired: *d.Spec.Replicas, available: d.Status.AvailableReplicas, minAvailable: g.min})
		}
	}
	sts, err := cs.AppsV1().StatefulSets("").List(ctx, list)
	if err != nil {
		return nil, err
	}
	for _, s := range sts.Items {
		if g, ok := match(s.Namespace, s.Spec.Template.Labels); ok && s.Spec.Replicas != nil {
			out = append(out, workloadSample{key: "StatefulSet " + s.Namespace + "/" + s.Name, pdb: g.name, desired: *s.Spec.Replicas, available: s.Status.AvailableReplicas, minAvailable: g.min})
		}
	}
	return out, nil
}

// reportWriters are the report's files and their printers.
func reportWriters(r *report.UpgradeReport) map[string]func(io.Writer) error {
	return map[string]func(io.Writer) error{
		"upgrade-report.json": r.WriteJSON,
		"upgrade-report.md":   r.WriteMarkdown,
		"upgrade-report.html": r.WriteHTML,
	}
}
