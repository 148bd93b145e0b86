package kubeadm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/drain"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/version"
)

// Labels kubeadm puts on control-plane nodes and on its static pods
// (which their mirror pods in kube-system carry).
const (
	ControlPlaneLabel     = "node-role.kubernetes.io/control-plane"
	legacyMasterLabel     = "node-role.kubernetes.io/master"
	staticPodTierSelector = "tier=control-plane"
	componentLabel        = "component"
)

// CordonedAnnotation marks a control-plane node kup cordoned for its
// kubelet upgrade (value: the target version), so a kup that stopped
// half-way and runs again uncordons what it cordoned, and only that.
const CordonedAnnotation = "upgrade.kup.dev/kubeadm-cordoned"

// staticComponents are the control-plane static pods kubeadm upgrades.
var staticComponents = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// ControlPlane upgrades a kubeadm control plane one hop at a time, by the
// runbook: kubeadm on every control-plane node (upgrade apply on the
// first, upgrade node on the others), then, one control-plane node at a
// time, drain → kubelet and kubectl → restart → Ready at the version →
// uncordon → health gate.
type ControlPlane struct {
	Config *rest.Config
	Hosts  *Hosts
	// Drain is the drain policy for control-plane nodes (the rollout's).
	Drain drain.Options
	// FirstNode is the node `kubeadm upgrade apply` runs on (it needs
	// /etc/kubernetes/admin.conf); default the first control-plane node
	// by name.
	FirstNode string
	// StaticPodTimeout bounds the wait for a node's static pods to show
	// the new version after kubeadm returns (default 5m).
	StaticPodTimeout time.Duration
	// ReadyTimeout bounds the wait for a node to be Ready at the new
	// kubelet (default 10m); HealthTimeout the health gate (default 2m).
	ReadyTimeout  time.Duration
	HealthTimeout time.Duration
	// Progress, when set, hears what happens, node by node; step is
	// "kubeadm", "drain", "upgrade", "uncordon" or "done" (the node is
	// finished) — the rollout's step names where they mean the same.
	Progress func(node, step, message string)

	cs kubernetes.Interface
}

var _ provider.ControlPlane = (*ControlPlane)(nil)

func (p *ControlPlane) Name() string { return "kubeadm" }

// Capabilities: pkgs.k8s.io carries Kubernetes v1.24.0 and later, one
// repository per minor; kubeadm has no downgrade.
func (p *ControlPlane) Capabilities() provider.Capabilities {
	return provider.Capabilities{
		Installable: func(s string) bool {
			v, err := version.Parse(s)
			return err == nil && (v.Major() > 1 || v.Minor() >= 24)
		},
		InstallableNote: "kubeadm hosts install from pkgs.k8s.io, which carries Kubernetes v1.24.0 and later (one repository per minor)",
	}
}

func (p *ControlPlane) client() (kubernetes.Interface, error) {
	if p.cs != nil {
		return p.cs, nil
	}
	if p.Config == nil {
		return nil, errors.New("kubeadm control plane: no cluster configuration")
	}
	cs, err := kubernetes.NewForConfig(p.Config)
	if err != nil {
		return nil, err
	}
	p.cs = cs
	return cs, nil
}

func (p *ControlPlane) progress(node, step, format string, args ...any) {
	if p.Progress != nil {
		p.Progress(node, step, fmt.Sprintf(format, args...))
	}
}

// staticPods lists the mirror pods of kubeadm's static control-plane pods.
func (p *ControlPlane) staticPods(ctx context.Context) ([]corev1.Pod, error) {
	cs, err := p.client()
	if err != nil {
		return nil, err
	}
	l, err := cs.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: staticPodTierSelector})
	if err != nil {
		return nil, fmt.Errorf("listing kubeadm's static pods in kube-system: %w", err)
	}
	var out []corev1.Pod
	for _, pod := range l.Items {
		if pod.Labels[componentLabel] != "" && len(pod.Spec.Containers) > 0 {
			out = append(out, pod)
		}
	}
	return out, nil
}

// Components reads every control-plane component from kubeadm's static
// pods: one per control-plane node, the version from the image tag.
func (p *ControlPlane) Components(ctx context.Context) ([]provider.Component, error) {
	pods, err := p.staticPods(ctx)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, errors.New("no kubeadm static pods (tier=control-plane) in kube-system: is this a kubeadm cluster?")
	}
	var out []provider.Component
	for _, pod := range pods {
		out = append(out, provider.Component{Name: pod.Labels[componentLabel], Instance: pod.Spec.NodeName, Version: imageTag(pod.Spec.Containers[0].Image), Source: "static pod " + pod.Namespace + "/" + pod.Name})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Instance != out[j].Instance {
			return out[i].Instance < out[j].Instance
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[i+1:]
	}
	return ""
}

// Health judges the control plane: /readyz, every control-plane node
// Ready, every static pod running and ready, every node with its three
// components. What cannot be read is a problem, never a pass.
func (p *ControlPlane) Health(ctx context.Context) (*provider.Health, error) {
	cs, err := p.client()
	if err != nil {
		return nil, err
	}
	h := &provider.Health{}
	problem := func(format string, args ...any) { h.Problems = append(h.Problems, fmt.Sprintf(format, args...)) }
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
	cancel()
	if err != nil {
		problem("kube-apiserver /readyz: %v %s", err, strings.TrimSpace(string(body)))
	}
	nodes, err := p.controlPlaneNodes(ctx)
	if err != nil {
		return nil, err
	}
	pods, err := p.staticPods(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]map[string]bool{}
	for _, pod := range pods {
		comp := pod.Labels[componentLabel]
		h.Components = append(h.Components, provider.Component{Name: comp, Instance: pod.Spec.NodeName, Version: imageTag(pod.Spec.Containers[0].Image), Source: "static pod " + pod.Namespace + "/" + pod.Name})
		if have[pod.Spec.NodeName] == nil {
			have[pod.Spec.NodeName] = map[string]bool{}
		}
		have[pod.Spec.NodeName][comp] = true
		if why := podProblem(&pod); why != "" {
			problem("static pod kube-system/%s: %s", pod.Name, why)
		}
	}
	for _, n := range nodes {
		if !nodeReady(&n) {
			problem("control-plane node %s is not Ready", n.Name)
		}
		for _, c := range staticComponents {
			if !have[n.Name][c] {
				problem("control-plane node %s has no %s static pod", n.Name, c)
			}
		}
	}
	return h, nil
}

func podProblem(p *corev1.Pod) string {
	if p.Status.Phase != corev1.PodRunning {
		return "phase " + string(p.Status.Phase)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			return "not Ready"
		}
	}
	return ""
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// controlPlaneNodes lists the control-plane nodes, FirstNode (or the
// first by name) first.
func (p *ControlPlane) controlPlaneNodes(ctx context.Context) ([]corev1.Node, error) {
	cs, err := p.client()
	if err != nil {
		return nil, err
	}
	var out []corev1.Node
	seen := map[string]bool{}
	for _, sel := range []string{ControlPlaneLabel, legacyMasterLabel} {
		l, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, fmt.Errorf("listing control-plane nodes: %w", err)
		}
		for _, n := range l.Items {
			if !seen[n.Name] {
				seen[n.Name] = true
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no node is labelled %s: kup finds the control-plane nodes kubeadm upgrades by that label", ControlPlaneLabel)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == p.FirstNode) != (out[j].Name == p.FirstNode) {
			return out[i].Name == p.FirstNode
		}
		return out[i].Name < out[j].Name
	})
	if p.FirstNode != "" && out[0].Name != p.FirstNode {
		return nil, fmt.Errorf("--kubeadm-first-node %s is not a control-plane node (labelled %s)", p.FirstNode, ControlPlaneLabel)
	}
	return out, nil
}

// staticPodsAt reports whether node's static control-plane pods all run
// v (false when it has none: then nothing proves the step is done).
func (p *ControlPlane) staticPodsAt(ctx context.Context, node string, v version.Version) (bool, error) {
	pods, err := p.staticPods(ctx)
	if err != nil {
		return false, err
	}
	found := 0
	for _, pod := range pods {
		if pod.Spec.NodeName != node || !isStatic(pod.Labels[componentLabel]) {
			continue
		}
		found++
		if imageTag(pod.Spec.Containers[0].Image) != v.String() {
			return false, nil
		}
	}
	return found > 0, nil
}

func isStatic(c string) bool {
	for _, s := range staticComponents {
		if s == c {
			return true
		}
	}
	return false
}

// Upgrade moves the control plane to target (one hop) by the runbook. It
// is idempotent: a node whose static pods already run target is not
// upgraded again, a kubelet already at target is not reinstalled, and a
// node this provider cordoned in an earlier run is uncordoned.
func (p *ControlPlane) Upgrade(ctx context.Context, target string) error {
	v, err := parseTarget(target)
	if err != nil {
		return err
	}
	nodes, err := p.controlPlaneNodes(ctx)
	if err != nil {
		return err
	}
	// 1. kubeadm, node by node: apply on the first, upgrade node on the rest.
	for i, n := range nodes {
		done, err := p.staticPodsAt(ctx, n.Name, v)
		if err != nil {
			return err
		}
		if done {
			p.progress(n.Name, "kubeadm", "static pods already at %s", v)
			continue
		}
		m, err := p.Hosts.machine(ctx, &n)
		if err != nil {
			return err
		}
		if err := p.kubeadmOn(ctx, m, v, i == 0); err != nil {
			m.restoreHolds(ctx)
			return err
		}
		if err := p.waitStaticPods(ctx, n.Name, v); err != nil {
			return err
		}
	}
	// 2. kubelet and kubectl, one control-plane node at a time, with a
	// health gate before the next.
	for _, n := range nodes {
		if err := p.upgradeKubelet(ctx, &n, v); err != nil {
			return err
		}
		if err := p.healthGate(ctx, n.Name); err != nil {
			return err
		}
	}
	return nil
}

func (p *ControlPlane) kubeadmOn(ctx context.Context, m *machine, v version.Version, first bool) error {
	p.progress(m.node, "kubeadm", "installing kubeadm %s (%s)", v, m.pm)
	if err := m.installKubeadm(ctx, v); err != nil {
		return err
	}
	if first {
		p.progress(m.node, "kubeadm", "kubeadm upgrade apply %s", v)
		return m.run(ctx, ApplySteps(v)...)
	}
	p.progress(m.node, "kubeadm", "kubeadm upgrade node")
	return m.run(ctx, UpgradeNodeStep())
}

func (p *ControlPlane) waitStaticPods(ctx context.Context, node string, v version.Version) error {
	timeout := p.StaticPodTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	return poll(ctx, timeout, fmt.Sprintf("static pods of node %s at %s", node, v), func(ctx context.Context) (bool, string, error) {
		ok, err := p.staticPodsAt(ctx, node, v)
		if err != nil {
			return false, err.Error(), nil
		}
		return ok, "some static pods still show another version", nil
	})
}

// upgradeKubelet drains a control-plane node, upgrades its kubelet and
// kubectl, waits for it to be Ready at v (and rid of the not-ready
// taint) and uncordons it — only if this provider cordoned it (here or
// in an earlier run).
func (p *ControlPlane) upgradeKubelet(ctx context.Context, n *corev1.Node, v version.Version) error {
	cs, err := p.client()
	if err != nil {
		return err
	}
	d := &drain.Drainer{Client: cs, Options: p.Drain}
	ours := n.Annotations[CordonedAnnotation] == v.String()
	if n.Status.NodeInfo.KubeletVersion != v.String() {
		wasSchedulable, err := d.Cordon(ctx, n.Name)
		if err != nil {
			return fmt.Errorf("cordoning control-plane node %s: %w", n.Name, err)
		}
		if wasSchedulable {
			if err := p.markCordoned(ctx, n.Name, v.String()); err != nil {
				_ = d.Uncordon(context.WithoutCancel(ctx), n.Name)
				return err
			}
			ours = true
		}
		p.progress(n.Name, "drain", "draining")
		if _, err := d.Drain(ctx, n.Name); err != nil {
			// Nothing changed on the node: give it back to the scheduler.
			if ours {
				p.uncordon(context.WithoutCancel(ctx), d, n.Name)
			}
			return fmt.Errorf("draining control-plane node %s: %w", n.Name, err)
		}
		m, err := p.Hosts.machine(ctx, n)
		if err != nil {
			return fmt.Errorf("%w (control-plane node %s left cordoned)", err, n.Name)
		}
		p.progress(n.Name, "upgrade", "installing kubelet and kubectl %s, restarting the kubelet", v)
		if err := m.installKubelet(ctx, v); err != nil {
			m.restoreHolds(ctx)
			return fmt.Errorf("%w (control-plane node %s left cordoned: its kubelet may have changed; check it, then kubectl uncordon %s)", err, n.Name, n.Name)
		}
		if err := p.waitReady(ctx, n.Name, v); err != nil {
			return fmt.Errorf("%w (control-plane node %s left cordoned)", err, n.Name)
		}
	}
	if ours {
		p.uncordon(ctx, d, n.Name)
	}
	p.progress(n.Name, "done", "kubelet %s, Ready", v)
	return nil
}

func (p *ControlPlane) markCordoned(ctx context.Context, node, v string) error {
	return p.annotate(ctx, node, v)
}

func (p *ControlPlane) annotate(ctx context.Context, node string, value any) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{CordonedAnnotation: value}}})
	if _, err := p.cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("recording on node %s that kup cordoned it: %w", node, err)
	}
	return nil
}

func (p *ControlPlane) uncordon(ctx context.Context, d *drain.Drainer, node string) {
	if err := d.Uncordon(ctx, node); err != nil {
		p.progress(node, "uncordon", "uncordoning failed: %v", err)
		return
	}
	_ = p.annotate(ctx, node, nil)
	p.progress(node, "uncordon", "uncordoned")
}

func (p *ControlPlane) waitReady(ctx context.Context, node string, v version.Version) error {
	timeout := p.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	return poll(ctx, timeout, fmt.Sprintf("control-plane node %s Ready at kubelet %s", node, v), func(ctx context.Context) (bool, string, error) {
		n, err := p.cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		taint := notReadyTaint(n)
		return nodeReady(n) && taint == "" && n.Status.NodeInfo.KubeletVersion == v.String(),
			fmt.Sprintf("Ready=%v, kubelet %s, taint %q", nodeReady(n), n.Status.NodeInfo.KubeletVersion, taint), nil
	})
}

// notReadyTaint names the taint the node lifecycle controller put on the
// node while its kubelet was down, until it takes it off again: a node
// that reports Ready but still carries it cannot take the pods the next
// drain evicts.
func notReadyTaint(n *corev1.Node) string {
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return t.Key
		}
	}
	return ""
}

// healthGate waits for Health to pass before the next control-plane node.
func (p *ControlPlane) healthGate(ctx context.Context, after string) error {
	timeout := p.HealthTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	return poll(ctx, timeout, "a healthy control plane after upgrading node "+after, func(ctx context.Context) (bool, string, error) {
		h, err := p.Health(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		return h.Healthy(), strings.Join(h.Problems, "; "), nil
	})
}

// poll checks every second until check says done, the deadline passes
// (the error says what was awaited and what was seen last) or ctx ends.
func poll(ctx context.Context, timeout time.Duration, what string, check func(context.Context) (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ok, last, err := check(cctx)
		cancel()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: not reached after %s (last seen: %s)", what, timeout, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
