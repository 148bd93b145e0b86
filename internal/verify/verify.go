// Package verify proves an upgrade's result against a baseline taken
// before it started: every node Ready at the target, every workload at
// least as available as before, kube-system healthy, no new kinds of
// Warning events, and the apiserver still serving every API the cluster
// served before (except those the target release removes, which the
// preflight reported). It reads the cluster; it never changes it.
package verify

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kup-project/kup/internal/report"
)

// Baseline is the state the result is compared against.
type Baseline struct {
	Taken time.Time `json:"taken"`
	// Workloads: "Deployment ns/name" → available replicas then.
	Workloads map[string]int32 `json:"workloads"`
	// NotReadyNodes were NotReady before the upgrade: not held against it.
	NotReadyNodes []string `json:"notReadyNodes,omitempty"`
	// UnhealthySystemPods were unhealthy in kube-system before.
	UnhealthySystemPods []string `json:"unhealthySystemPods,omitempty"`
	// Warnings: "reason kind" pairs of Warning events seen before.
	Warnings map[string]bool `json:"warnings,omitempty"`
	// APIs are the group/version/resource triples served before.
	APIs []string `json:"apis"`
}

// ExpectedDuringUpgrade are Warning reasons a rolling node upgrade causes
// by design (a kubelet restarting, pods moving); they are not held against
// the result.
var ExpectedDuringUpgrade = map[string]bool{
	"NodeNotReady": true, "NodeNotSchedulable": true, "Rebooted": true,
	// The disruption controller's complaint when an evicted StatefulSet
	// pod comes back under the same name before it noticed the deletion.
	"NotDeleted": true,
}

// Take reads a baseline.
func Take(ctx context.Context, cs kubernetes.Interface) (*Baseline, error) {
	b := &Baseline{Taken: time.Now().UTC(), Workloads: map[string]int32{}, Warnings: map[string]bool{}}
	if err := workloads(ctx, cs, func(k string, avail, _ int32) { b.Workloads[k] = avail }); err != nil {
		return nil, err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	for i := range nodes.Items {
		if !nodeReady(&nodes.Items[i]) {
			b.NotReadyNodes = append(b.NotReadyNodes, nodes.Items[i].Name)
		}
	}
	sys, err := unhealthySystemPods(ctx, cs)
	if err != nil {
		return nil, err
	}
	b.UnhealthySystemPods = sys
	evs, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "type=Warning", ResourceVersion: "0"})
	if err == nil {
		for _, e := range evs.Items {
			b.Warnings[e.Reason+" "+e.InvolvedObject.Kind] = true
		}
	}
	apis, err := servedAPIs(cs)
	if err != nil {
		return nil, err
	}
	b.APIs = apis
	return b, nil
}

// Options tune a verification.
type Options struct {
	Target string
	// Removed are group/version strings the target removes on purpose.
	Removed map[string]bool
	// Since: Warning events older than this are ignored (the upgrade's start).
	Since time.Time
	// Timeout bounds the wait for workloads to recover (default 3m).
	Timeout time.Duration
}

// Run verifies the cluster against b, waiting up to Timeout for workloads
// to come back, and returns every check with its detail.
func Run(ctx context.Context, cs kubernetes.Interface, b *Baseline, o Options) (*report.VerifyRecord, error) {
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	deadline := time.Now().Add(o.Timeout)
	var rec *report.VerifyRecord
	for {
		var err error
		rec, err = once(ctx, cs, b, o)
		if err != nil {
			return nil, err
		}
		if rec.Passed || time.Now().After(deadline) || !recoverable(rec) {
			return rec, nil
		}
		select {
		case <-ctx.Done():
			return rec, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// recoverable: only nodes and workloads come back with time; new warning
// kinds, a missing API or a wrong version do not, so waiting is pointless.
func recoverable(rec *report.VerifyRecord) bool {
	for _, c := range rec.Checks {
		if !c.Passed && c.Name != "nodes Ready at target" && c.Name != "workloads as available as before" && c.Name != "kube-system healthy" {
			return false
		}
	}
	return true
}

func once(ctx context.Context, cs kubernetes.Interface, b *Baseline, o Options) (*report.VerifyRecord, error) {
	rec := &report.VerifyRecord{Passed: true}
	add := func(name string, problems []string, ok string) {
		c := report.VerifyCheck{Name: name, Passed: len(problems) == 0, Detail: ok}
		if !c.Passed {
			sort.Strings(problems)
			if len(problems) > 8 {
				problems = append(problems[:8], fmt.Sprintf("and %d more", len(problems)-8))
			}
			c.Detail = strings.Join(problems, "; ")
			rec.Passed = false
		}
		rec.Checks = append(rec.Checks, c)
	}

	// The control plane serves the target.
	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("reading /version: %w", err)
	}
	var cp []string
	if o.Target != "" && sv.GitVersion != o.Target {
		cp = append(cp, fmt.Sprintf("kube-apiserver reports %s, want %s", sv.GitVersion, o.Target))
	}
	add("control plane at target", cp, "kube-apiserver reports "+sv.GitVersion)

	// Nodes Ready at the target.
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	wasNotReady := map[string]bool{}
	for _, n := range b.NotReadyNodes {
		wasNotReady[n] = true
	}
	var np []string
	excused := 0
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if wasNotReady[n.Name] {
			excused++
			continue
		}
		if !nodeReady(n) {
			np = append(np, "node "+n.Name+" not Ready")
		} else if o.Target != "" && n.Status.NodeInfo.KubeletVersion != o.Target {
			np = append(np, fmt.Sprintf("node %s at kubelet %s", n.Name, n.Status.NodeInfo.KubeletVersion))
		}
	}
	okNodes := fmt.Sprintf("%d node(s) Ready at %s", len(nodes.Items)-excused, o.Target)
	if excused > 0 {
		okNodes += fmt.Sprintf(" (%d NotReady before the upgrade, not counted: %s)", excused, strings.Join(b.NotReadyNodes, ", "))
	}
	add("nodes Ready at target", np, okNodes)

	// Workloads at least as available as before.
	var wp []string
	count := 0
	err = workloads(ctx, cs, func(k string, avail, desired int32) {
		count++
		was, ok := b.Workloads[k]
		if !ok {
			return // created during the upgrade: nothing to compare with
		}
		want := min(was, desired)
		if avail < want {
			wp = append(wp, fmt.Sprintf("%s: %d available, %d before", k, avail, was))
		}
	})
	if err != nil {
		return nil, err
	}
	add("workloads as available as before", wp, fmt.Sprintf("%d workload(s) at or above their availability before the upgrade", count))

	// kube-system healthy.
	sys, err := unhealthySystemPods(ctx, cs)
	if err != nil {
		return nil, err
	}
	before := map[string]bool{}
	for _, p := range b.UnhealthySystemPods {
		before[p] = true
	}
	var sp []string
	for _, p := range sys {
		if !before[p] {
			sp = append(sp, p)
		}
	}
	add("kube-system healthy", sp, "every kube-system pod that was healthy is healthy")

	// No new kinds of Warning events since the upgrade started.
	evs, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	var ep []string
	seen := map[string]bool{}
	for _, e := range evs.Items {
		key := e.Reason + " " + e.InvolvedObject.Kind
		t := e.LastTimestamp.Time
		if t.IsZero() {
			t = e.EventTime.Time
		}
		// kup's own narration (a node that failed in an interrupted run and
		// was finished by the next) is in the report, not a new symptom.
		if e.Source.Component == "kup" || e.ReportingController == "kup.dev/kup" {
			continue
		}
		if t.Before(o.Since) || b.Warnings[key] || ExpectedDuringUpgrade[e.Reason] || seen[key] {
			continue
		}
		// A pod that could not be scheduled while nodes were drained
		// matters only if it is still Pending now; a bind that raced its
		// own eviction ("pods … not found") does not.
		if e.Reason == "FailedScheduling" && e.InvolvedObject.Kind == "Pod" {
			p, err := cs.CoreV1().Pods(e.InvolvedObject.Namespace).Get(ctx, e.InvolvedObject.Name, metav1.GetOptions{})
			if err != nil || p.UID != e.InvolvedObject.UID || p.Status.Phase != corev1.PodPending {
				continue
			}
		}
		seen[key] = true
		ep = append(ep, fmt.Sprintf("%s on %s %s/%s: %s", e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Namespace, e.InvolvedObject.Name, e.Message))
	}
	add("no new Warning events", ep, "no Warning event of a new kind since the upgrade started")

	// Every API served before is still served.
	apis, err := servedAPIs(cs)
	if err != nil {
		return nil, err
	}
	now := map[string]bool{}
	for _, a := range apis {
		now[a] = true
	}
	var ap []string
	for _, a := range b.APIs {
		gv := a[:strings.LastIndex(a, "/")]
		if !now[a] && !o.Removed[gv] {
			ap = append(ap, a+" no longer served")
		}
	}
	add("APIs still served", ap, fmt.Sprintf("all %d API resources served before are served", len(b.APIs)))
	return rec, nil
}

func workloads(ctx context.Context, cs kubernetes.Interface, f func(key string, available, desired int32)) error {
	list := metav1.ListOptions{ResourceVersion: "0"}
	deps, err := cs.AppsV1().Deployments("").List(ctx, list)
	if err != nil {
		return fmt.Errorf("listing deployments: %w", err)
	}
	for _, d := range deps.Items {
		desired := int32(1)
		if d.Spec.Replicas != nil {
			desired = *d.Spec.Replicas
		}
		f("Deployment "+d.Namespace+"/"+d.Name, d.Status.AvailableReplicas, desired)
	}
	sts, err := cs.AppsV1().StatefulSets("").List(ctx, list)
	if err != nil {
		return fmt.Errorf("listing statefulsets: %w", err)
	}
	for _, s := range sts.Items {
		desired := int32(1)
		if s.Spec.Replicas != nil {
			desired = *s.Spec.Replicas
		}
		f("StatefulSet "+s.Namespace+"/"+s.Name, s.Status.AvailableReplicas, desired)
	}
	dss, err := cs.AppsV1().DaemonSets("").List(ctx, list)
	if err != nil {
		return fmt.Errorf("listing daemonsets: %w", err)
	}
	for _, d := range dss.Items {
		f("DaemonSet "+d.Namespace+"/"+d.Name, d.Status.NumberAvailable, d.Status.DesiredNumberScheduled)
	}
	return nil
}

func unhealthySystemPods(ctx context.Context, cs kubernetes.Interface) ([]string, error) {
	pods, err := cs.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing kube-system pods: %w", err)
	}
	var out []string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded {
			continue
		}
		if p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			out = append(out, "pod kube-system/"+p.Name+" "+string(p.Status.Phase))
		}
	}
	return out, nil
}

// servedAPIs lists group/version/resource for every preferred and
// non-preferred version the apiserver serves (subresources excluded).
func servedAPIs(cs kubernetes.Interface) ([]string, error) {
	_, lists, err := cs.Discovery().ServerGroupsAndResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovering served APIs: %w", err)
	}
	var out []string
	for _, l := range lists {
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			out = append(out, l.GroupVersion+"/"+r.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
