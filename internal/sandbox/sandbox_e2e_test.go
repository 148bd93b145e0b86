package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubectl/pkg/drain"

	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestSandboxEndToEnd is the Foundation issue's acceptance test: a real
// v1.36.3 control plane with 20 kwok nodes and the default workloads;
// PDB budgets as Kubernetes computes them; a real drain; a control-plane
// version swap that keeps every object; a kubelet version change; and no
// process left after Stop.
func TestSandboxEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	const nodes = 20
	// With kwok's pod workers set, so that kwok is seen to take the
	// KwokConfiguration the sandbox writes for them (it exits on one it
	// cannot use) and to run every stage below with it.
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", Nodes: nodes, Workloads: "default", PodReadyDelay: time.Second, KwokPodWorkers: 8})
	cs := c.Client()

	// Asked for no GOGC, its processes inherit this environment's.
	for name, p := range c.Processes {
		if got, want := processGOGC(t, p.PID), os.Getenv("GOGC"); got != want {
			t.Errorf("%s (pid %d) runs with GOGC %q, want this environment's %q", name, p.PID, got, want)
		}
	}

	// All nodes Ready at v1.36.3.
	nl, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nl.Items) != nodes {
		t.Fatalf("want %d nodes, got %d", nodes, len(nl.Items))
	}
	zones := map[string]int{}
	for _, n := range nl.Items {
		if !ready(n) || n.Status.NodeInfo.KubeletVersion != "v1.36.3" {
			t.Errorf("node %s: ready=%v kubelet=%s, want Ready at v1.36.3", n.Name, ready(n), n.Status.NodeInfo.KubeletVersion)
		}
		zones[n.Labels["topology.kubernetes.io/zone"]]++
	}
	if len(zones) != 3 {
		t.Errorf("nodes spread over %v, want three zones", zones)
	}

	// All pods Running (and Ready), and as many as the workloads ask for.
	pods := listPods(ctx, t, c, "")
	wantPods := nodes /*daemonset*/
	for _, w := range sandbox.DefaultWorkloads(nodes) {
		wantPods += int(w.Replicas)
	}
	if len(pods) != wantPods {
		t.Errorf("want %d pods, got %d", wantPods, len(pods))
	}
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning || !podReady(p) {
			t.Errorf("pod %s/%s is %s (ready=%v), want Running and Ready", p.Namespace, p.Name, p.Status.Phase, podReady(p))
		}
		for _, ctr := range p.Spec.Containers {
			if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Requests.Memory().IsZero() {
				t.Errorf("pod %s/%s container %s has no requests", p.Namespace, p.Name, ctr.Name)
			}
		}
	}

	// PDB budgets, computed by the real disruption controller. Worked out
	// by hand from DefaultWorkloads(20): maxUnavailable percentages round
	// up, minAvailable counts subtract.
	wantAllowed := map[string]int32{
		"shop/frontend": 2, // 20 replicas, maxUnavailable 10% → 2
		"shop/cart":     1, // maxUnavailable 1
		"shop/checkout": 1, // 4 replicas, minAvailable 3
		"shop/search":   2, // 5 replicas, maxUnavailable 25% → ceil(1.25)
		"data/db":       1, // maxUnavailable 1
		"data/reports":  1, // 2 replicas, minAvailable 50% → 1
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pdbs.Items) != len(wantAllowed) {
		t.Errorf("want %d PDBs, got %d", len(wantAllowed), len(pdbs.Items))
	}
	for _, p := range pdbs.Items {
		key := p.Namespace + "/" + p.Name
		if want, ok := wantAllowed[key]; !ok || p.Status.DisruptionsAllowed != want {
			t.Errorf("PDB %s: disruptionsAllowed %d, want %d", key, p.Status.DisruptionsAllowed, want)
		}
	}

	// Drain one node with kubectl's own drain library: its pods are
	// evicted and come back Running elsewhere.
	victim := busiestNode(pods)
	before := podsOn(pods, victim, false)
	if len(before) == 0 {
		t.Fatalf("node %s holds no evictable pods", victim)
	}
	helper := &drain.Helper{
		Ctx: ctx, Client: cs, Force: false, IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
		GracePeriodSeconds: -1, Timeout: 3 * time.Minute, Out: os.Stderr, ErrOut: os.Stderr,
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := drain.RunCordonOrUncordon(helper, node, true); err != nil {
		t.Fatalf("cordoning %s: %v", victim, err)
	}
	if err := drain.RunNodeDrain(helper, victim); err != nil {
		t.Fatalf("draining %s: %v", victim, err)
	}
	waitUntil(ctx, t, 3*time.Minute, "evicted pods Running elsewhere", func() error {
		now := listPods(ctx, t, c, "")
		if left := podsOn(now, victim, false); len(left) > 0 {
			return fmt.Errorf("%d pods still on %s", len(left), victim)
		}
		running := 0
		for _, p := range now {
			if p.Spec.NodeName != "" && p.Spec.NodeName != victim && p.Status.Phase == corev1.PodRunning && podReady(p) {
				running++
			}
		}
		if want := wantPods - 1; running != want { // the victim's DaemonSet pod stays
			return fmt.Errorf("%d of %d pods Running on other nodes", running, want)
		}
		return nil
	})
	for _, p := range before {
		if _, err := cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{}); err == nil && p.Spec.NodeName == victim {
			if got, _ := cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{}); got != nil && got.Spec.NodeName == victim && got.UID == p.UID {
				t.Errorf("pod %s/%s was not evicted from %s", p.Namespace, p.Name, victim)
			}
		}
	}
	if err := drain.RunCordonOrUncordon(helper, node, false); err != nil {
		t.Fatalf("uncordoning %s: %v", victim, err)
	}

	// Swap the control plane to v1.37.2 on the same etcd: every object
	// survives with its UID, and each component reports the new version.
	uidsBefore := objectUIDs(ctx, t, c)
	if err := c.SetControlPlaneVersion(ctx, "v1.37.2"); err != nil {
		t.Fatal(err)
	}
	for _, comp := range sandbox.ControlPlaneComponents {
		got, err := c.ComponentVersion(ctx, comp)
		if err != nil || got != "v1.37.2" {
			t.Errorf("%s reports %q (%v), want v1.37.2", comp, got, err)
		}
	}
	uidsAfter := objectUIDs(ctx, t, c)
	for key, uid := range uidsBefore {
		if uidsAfter[key] != uid {
			t.Errorf("%s: UID %s before the control-plane swap, %q after", key, uid, uidsAfter[key])
		}
	}
	if len(uidsAfter) != len(uidsBefore) {
		t.Errorf("%d objects before the swap, %d after", len(uidsBefore), len(uidsAfter))
	}

	// SetNodeVersion: the node goes NotReady, then Ready at the new version,
	// which is what `kubectl get nodes` prints in its VERSION column.
	target := sandbox.NodeName(3)
	sawNotReady := make(chan bool, 1)
	go func() { sawNotReady <- watchNotReady(ctx, c, target, 2*time.Minute) }()
	if err := c.SetNodeVersion(ctx, target, "v1.37.2"); err != nil {
		t.Fatal(err)
	}
	if !<-sawNotReady {
		t.Errorf("node %s never went NotReady during its kubelet upgrade", target)
	}
	n, err := cs.CoreV1().Nodes().Get(ctx, target, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ready(*n) || n.Status.NodeInfo.KubeletVersion != "v1.37.2" {
		t.Errorf("node %s: ready=%v kubelet=%s, want Ready at v1.37.2", target, ready(*n), n.Status.NodeInfo.KubeletVersion)
	}
	if other, _ := cs.CoreV1().Nodes().Get(ctx, sandbox.NodeName(4), metav1.GetOptions{}); other.Status.NodeInfo.KubeletVersion != "v1.36.3" {
		t.Errorf("node %s changed version too: %s", other.Name, other.Status.NodeInfo.KubeletVersion)
	}

	// Stop: no process of the sandbox is alive afterwards.
	procs := c.Processes
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for name, p := range procs {
		if p.Alive() {
			t.Errorf("%s (pid %d) still alive after Stop", name, p.PID)
		}
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("sandbox directory %s still exists after Stop", c.Dir)
	}
}

func ready(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func listPods(ctx context.Context, t *testing.T, c *sandbox.Cluster, ns string) []corev1.Pod {
	t.Helper()
	l, err := c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func isDaemon(p corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}

func podsOn(pods []corev1.Pod, node string, withDaemons bool) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName == node && (withDaemons || !isDaemon(p)) {
			out = append(out, p)
		}
	}
	return out
}

func busiestNode(pods []corev1.Pod) string {
	count := map[string]int{}
	best := ""
	for _, p := range pods {
		if isDaemon(p) {
			continue
		}
		count[p.Spec.NodeName]++
		if best == "" || count[p.Spec.NodeName] > count[best] || count[p.Spec.NodeName] == count[best] && p.Spec.NodeName < best {
			best = p.Spec.NodeName
		}
	}
	return best
}

// objectUIDs maps kind/namespace/name to UID for everything the sandbox
// seeded plus nodes and namespaces.
func objectUIDs(ctx context.Context, t *testing.T, c *sandbox.Cluster) map[string]types.UID {
	t.Helper()
	cs := c.Client()
	out := map[string]types.UID{}
	add := func(kind string, m metav1.Object) { out[kind+"/"+m.GetNamespace()+"/"+m.GetName()] = m.GetUID() }
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes.Items {
		add("node", &nodes.Items[i])
	}
	nss, _ := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	for i := range nss.Items {
		add("namespace", &nss.Items[i])
	}
	for _, p := range listPods(ctx, t, c, "") {
		add("pod", &p)
	}
	deps, _ := cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	for i := range deps.Items {
		add("deployment", &deps.Items[i])
	}
	sts, _ := cs.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{})
	for i := range sts.Items {
		add("statefulset", &sts.Items[i])
	}
	dss, _ := cs.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	for i := range dss.Items {
		add("daemonset", &dss.Items[i])
	}
	pdbs, _ := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	for i := range pdbs.Items {
		add("pdb", &pdbs.Items[i])
	}
	if len(out) < 50 {
		t.Fatalf("only %d objects found; the listing is broken", len(out))
	}
	return out
}

func watchNotReady(ctx context.Context, c *sandbox.Cluster, node string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := c.Client().CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err == nil && !ready(*n) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func waitUntil(ctx context.Context, t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if err = f(); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: not reached after %s: %v", what, d, err)
}

// TestStartRejectsBadInput: bad names and versions are refused before
// anything is built or started, with a message naming the bad value.
func TestStartRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		opts sandbox.Options
		want string
	}{
		{sandbox.Options{Version: "1.36", StateDir: dir}, `"1.36"`},
		{sandbox.Options{Version: "v1.36.3", Name: "Bad_Name", StateDir: dir}, `"Bad_Name"`},
		{sandbox.Options{Version: "v1.36.3", NodeVersion: "latest", StateDir: dir}, `"latest"`},
		{sandbox.Options{Version: "v1.36.3", Workloads: "lots", StateDir: dir}, `"lots"`},
		{sandbox.Options{Version: "v1.36.3", Nodes: -1, StateDir: dir}, "node count -1"},
	} {
		_, err := sandbox.Start(context.Background(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start(%+v) = %v, want an error mentioning %s", tc.opts, err, tc.want)
		}
	}
}
