package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Zones the sandbox spreads its nodes over, round-robin.
var Zones = []string{"zone-a", "zone-b", "zone-c"}

// NodeName is the name of the i-th simulated node (0-based).
func NodeName(i int) string { return fmt.Sprintf("node-%03d", i) }

// NodeAllocatable is what every simulated node offers to pods: a
// benchmark sizing its workloads checks they fit before it waits for them.
func NodeAllocatable() corev1.ResourceList { return nodeResources("3800m", "15Gi") }

func nodeResources(cpu, mem string) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse(cpu),
		corev1.ResourceMemory:           resource.MustParse(mem),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
}

// nodeObject is one simulated node: labelled like a cloud node in one of
// three zones, with the allocatable of a 4-CPU/16-GiB machine. Its status
// (nodeInfo included) is set at creation — nodes are the one kind whose
// status the apiserver accepts on create — and kwok keeps it.
func nodeObject(i int, kubeletVersion string) *corev1.Node {
	name := NodeName(i)
	zone := Zones[i%len(Zones)]
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname":           name,
				"kubernetes.io/os":                 "linux",
				"kubernetes.io/arch":               "amd64",
				"topology.kubernetes.io/zone":      zone,
				"topology.kubernetes.io/region":    "sandbox",
				"node.kubernetes.io/instance-type": "kwok-4x16",
				"node-role.kubernetes.io/worker":   "",
				"type":                             "kwok",
			},
			Annotations: map[string]string{
				KwokNodeAnnotation:             "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    nodeResources("4", "16Gi"),
			Allocatable: NodeAllocatable(),
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion:          kubeletVersion,
				KubeProxyVersion:        kubeletVersion, //nolint:staticcheck // still reported by real clusters and read by kup
				ContainerRuntimeVersion: "containerd://2.1.4",
				OSImage:                 "Debian GNU/Linux 12 (bookworm)",
				KernelVersion:           "6.1.0-kwok",
				OperatingSystem:         "linux",
				Architecture:            "amd64",
			},
			Phase: corev1.NodeRunning,
		},
	}
}

func (c *Cluster) createNodes(ctx context.Context, n int, versions []string) error {
	return parallel(ctx, n, 16, func(ctx context.Context, i int) error {
		_, err := c.Client().CoreV1().Nodes().Create(ctx, nodeObject(i, versions[i%len(versions)]), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating node %s: %w", NodeName(i), err)
		}
		return nil
	})
}

// parallel runs fn(0..n-1) with at most workers at a time and returns the
// first error.
func parallel(ctx context.Context, n, workers int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idx := make(chan int)
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// startupTainted says whether the node lifecycle controller has yet to lift
// the not-ready (or unreachable) taint it puts on a new node: until then
// the scheduler will not place pods there, whatever the Ready condition says.
func startupTainted(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return true
		}
	}
	return false
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *Cluster) waitNodesReady(ctx context.Context, opts Options) error {
	want, problem := opts.Nodes, ""
	if opts.WithProblems && want > 0 {
		// The problem node stays NotReady on purpose; it is not counted
		// even in the moment before kwok sees its kubelet stopped.
		want, problem = want-1, NodeName(opts.Nodes-1)
	}
	timeout := 2*time.Minute + time.Duration(opts.Nodes)*100*time.Millisecond
	return waitFor(ctx, timeout, fmt.Sprintf("%d nodes Ready", want), c.Processes[Kwok], func(ctx context.Context) error {
		list, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for i := range list.Items {
			if n := &list.Items[i]; n.Name != problem && nodeReady(n) && !startupTainted(n) {
				ready++
			}
		}
		if ready < want {
			return fmt.Errorf("%d of %d nodes Ready and untainted", ready, want)
		}
		return nil
	})
}

// SetNodeVersion changes a simulated node's kubelet (and kube-proxy)
// version the way restarting an upgraded kubelet would: the node goes
// NotReady for KubeletRestart, then comes back Ready reporting version.
// It returns once the node is Ready at version.
func (c *Cluster) SetNodeVersion(ctx context.Context, node, version string) error {
	if !kubeVersionRE.MatchString(version) {
		return fmt.Errorf("node %s: kubelet version %q: want an exact release such as v1.37.2", node, version)
	}
	nodes := c.Client().CoreV1().Nodes()
	if _, err := nodes.Get(ctx, node, metav1.GetOptions{}); err != nil {
		return fmt.Errorf("upgrading kubelet on node %s: %w", node, err)
	}
	stop, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{KubeletStoppedAnnotation: "upgrading to " + version}}})
	if _, err := nodes.Patch(ctx, node, types.MergePatchType, stop, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("stopping kubelet on node %s: %w", node, err)
	}
	if err := waitFor(ctx, 30*time.Second, "node "+node+" NotReady (kubelet stopped)", nil, func(ctx context.Context) error {
		n, err := nodes.Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if nodeReady(n) {
			return fmt.Errorf("node %s still Ready", node)
		}
		return nil
	}); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(c.RestartMS) * time.Millisecond):
	}
	info, _ := json.Marshal(map[string]any{"status": map[string]any{"nodeInfo": map[string]any{"kubeletVersion": version, "kubeProxyVersion": version}}})
	if _, err := nodes.PatchStatus(ctx, node, info); err != nil {
		return fmt.Errorf("setting kubelet version of node %s: %w", node, err)
	}
	start, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{KubeletStoppedAnnotation: nil}}})
	if _, err := nodes.Patch(ctx, node, types.MergePatchType, start, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("starting kubelet on node %s: %w", node, err)
	}
	return waitFor(ctx, 60*time.Second, "node "+node+" Ready at "+version, c.Processes[Kwok], func(ctx context.Context) error {
		n, err := nodes.Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !nodeReady(n) {
			return fmt.Errorf("node %s not Ready yet", node)
		}
		if got := n.Status.NodeInfo.KubeletVersion; got != version {
			return fmt.Errorf("node %s reports kubelet %s", node, got)
		}
		return nil
	})
}

// StopKubelet makes a node go NotReady and stay so (a node that never comes
// back), for tests of what kup does when an upgrade does not return.
func (c *Cluster) StopKubelet(ctx context.Context, node string) error {
	stop, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{KubeletStoppedAnnotation: "stopped"}}})
	_, err := c.Client().CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, stop, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("stopping kubelet on node %s: %w", node, err)
	}
	return nil
}
