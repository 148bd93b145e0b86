package sandbox

import (
	"context"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Summary describes what runs in the sandbox: control-plane versions,
// nodes per kubelet version and readiness, pods per phase, and every
// PodDisruptionBudget with the disruptions it allows right now.
func (c *Cluster) Summary(ctx context.Context) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Sandbox %q — https://127.0.0.1:%d\n", c.Name, c.Ports.APIServer)
	b.WriteString("Control plane:\n")
	for _, comp := range ControlPlaneComponents {
		v, err := c.ComponentVersion(ctx, comp)
		if err != nil {
			v = "unknown (" + err.Error() + ")"
		}
		fmt.Fprintf(&b, "  %-24s %s\n", comp, v)
	}
	cs := c.Client()
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing nodes: %w", err)
	}
	byVersion := map[string][2]int{} // version → ready, not ready
	for i := range nodes.Items {
		n := &nodes.Items[i]
		k := byVersion[n.Status.NodeInfo.KubeletVersion]
		if nodeReady(n) {
			k[0]++
		} else {
			k[1]++
		}
		byVersion[n.Status.NodeInfo.KubeletVersion] = k
	}
	fmt.Fprintf(&b, "Nodes: %d\n", len(nodes.Items))
	for _, v := range sortedKeys(byVersion) {
		fmt.Fprintf(&b, "  kubelet %-10s %d Ready, %d NotReady\n", v, byVersion[v][0], byVersion[v][1])
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing pods: %w", err)
	}
	phases := map[string]int{}
	for _, p := range pods.Items {
		phases[string(p.Status.Phase)]++
	}
	fmt.Fprintf(&b, "Pods: %d (", len(pods.Items))
	for i, ph := range sortedKeys(phases) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", phases[ph], ph)
	}
	b.WriteString(")\n")
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing PodDisruptionBudgets: %w", err)
	}
	fmt.Fprintf(&b, "PodDisruptionBudgets: %d\n", len(pdbs.Items))
	for _, p := range pdbs.Items {
		rule := ""
		if p.Spec.MinAvailable != nil {
			rule = "minAvailable " + p.Spec.MinAvailable.String()
		}
		if p.Spec.MaxUnavailable != nil {
			rule = "maxUnavailable " + p.Spec.MaxUnavailable.String()
		}
		fmt.Fprintf(&b, "  %-28s %-20s %d/%d healthy, %d disruptions allowed\n", p.Namespace+"/"+p.Name, rule, p.Status.CurrentHealthy, p.Status.ExpectedPods, p.Status.DisruptionsAllowed)
	}
	return b.String(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
