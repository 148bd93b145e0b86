package kubeadm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kup-project/kup/internal/drain"
	"github.com/kup-project/kup/internal/plan"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/provider/kubeadm"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
	"github.com/kup-project/kup/internal/sshexec"
)

// breakFirst arms a real package failure on the host of the first node
// the rollout upgrades (whichever the planner picks as its canary), then
// lets the kubeadm upgrader run there as usual.
type breakFirst struct {
	provider.NodeUpgrader
	arm   func(node string)
	mu    sync.Mutex
	first string
}

func (b *breakFirst) UpgradeNode(ctx context.Context, n *corev1.Node, v string) error {
	b.mu.Lock()
	if b.first == "" {
		b.first = n.Name
		b.arm(n.Name)
	}
	b.mu.Unlock()
	return b.NodeUpgrader.UpgradeNode(ctx, n, v)
}

// TestKubeletInstallFailureStopsRollout: the kubelet package install
// fails on one worker (dpkg exits non-zero). The rollout stops by its
// policy: that node stays cordoned and is named with the step, the
// command and its exit status; its package holds are put back; its
// kubelet was never restarted; no other node was touched. Hosts are
// found through the kup.dev/ssh-* node annotations.
func TestKubeletInstallFailureStopsRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a sandbox cluster and sshd; skipped with -short")
	}
	kup := sandboxtest.KupBinary(t)
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.37.2", NodeVersion: "v1.36.3", Nodes: 4, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs := c.Client()
	var specs []hostSpec
	for i := range 4 {
		specs = append(specs, hostSpec{node: sandbox.NodeName(i), pm: kubeadm.Apt})
	}
	f := startFleet(t, specs, sandboxRef{kupBin: kup, stateDir: sandboxStateRoot(c), name: c.Name}, "1.36.3")
	for _, n := range f.nodes() {
		h := f.host[n]
		ann, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
			sshexec.AnnotationAddress: h.Address, sshexec.AnnotationPort: fmt.Sprint(h.Port), sshexec.AnnotationUser: f.lab.User,
		}}})
		if _, err := cs.CoreV1().Nodes().Patch(ctx, n, types.MergePatchType, ann, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e, err := sshexec.New(sshexec.Options{KnownHostsFile: f.lab.KnownHosts(t, "known_hosts"), KeyFile: f.lab.ClientKey, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	up := &breakFirst{NodeUpgrader: &kubeadm.NodeUpgrader{Hosts: &kubeadm.Hosts{Runner: e, Resolver: &sshexec.Resolver{}}}, arm: func(n string) { f.knob(t, n, "fail-install", "kubelet") }}
	r := &rollout.Roller{Client: cs, Upgrader: up, Options: rollout.Options{
		Target: "v1.37.2", Policy: plan.Policy{MaxUnavailable: intstr.FromString("50%")},
		Drain: drain.Options{DeleteEmptyDirData: true, Timeout: 3 * time.Minute}, OnFailure: rollout.OnFailureStop,
	}}
	res, err := r.Run(ctx)
	bad := up.first
	if err == nil || bad == "" || !strings.Contains(err.Error(), bad) {
		t.Fatalf("rollout: %v (failed node %q); want it stopped, naming the node", err, bad)
	}
	t.Logf("rollout stopped: %v", err)

	nr := res.Nodes[bad]
	if nr == nil || nr.Outcome != "failed" || !nr.LeftCordoned {
		t.Fatalf("%s: %+v, want failed and left cordoned", bad, nr)
	}
	for _, want := range []string{`"install kubelet and kubectl v1.37.2"`, "exited 100", "dpkg returned an error code (1)", "'kubelet=1.37.2-*'", "left cordoned"} {
		if !strings.Contains(nr.Reason, want) {
			t.Errorf("%s: reason %q does not say %q", bad, nr.Reason, want)
		}
	}
	if left := res.LeftCordoned(); len(left) != 1 || left[0].Node != bad {
		t.Errorf("left cordoned: %+v, want only %s", left, bad)
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, bad, metav1.GetOptions{})
	if err != nil || !node.Spec.Unschedulable || node.Status.NodeInfo.KubeletVersion != "v1.36.3" {
		t.Errorf("%s: cordoned %v, kubelet %s (%v); want still cordoned at v1.36.3", bad, node.Spec.Unschedulable, node.Status.NodeInfo.KubeletVersion, err)
	}
	// On the host: kubeadm moved, the kubelet did not, the kubelet was
	// never restarted, and the holds kup lifted are back.
	if v, _ := f.state(bad, "pkg.kubeadm"); v != "1.37.2" {
		t.Errorf("%s: kubeadm package %s, want 1.37.2 (installed before the failure)", bad, v)
	}
	if v, _ := f.state(bad, "pkg.kubelet"); v != "1.36.3" {
		t.Errorf("%s: kubelet package %s, want 1.36.3", bad, v)
	}
	for _, p := range []string{"kubeadm", "kubelet", "kubectl"} {
		if _, held := f.state(bad, "hold."+p); !held {
			t.Errorf("%s: %s left unheld after the failure", bad, p)
		}
	}
	calls := f.calls(bad)
	if last := calls[len(calls)-1]; last != "uid=0 apt-mark hold kubeadm kubelet kubectl" {
		t.Errorf("%s: last call %q, want the holds restored", bad, last)
	}
	for _, c := range calls {
		if strings.Contains(c, "systemctl") {
			t.Errorf("%s: %q ran after the install failed", bad, c)
		}
	}
	// Every other node is untouched: not cordoned, old kubelet, and its
	// host never received a command.
	for _, n := range f.nodes() {
		if n == bad {
			continue
		}
		node, err := cs.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil || node.Spec.Unschedulable || node.Status.NodeInfo.KubeletVersion != "v1.36.3" {
			t.Errorf("%s: cordoned %v, kubelet %s (%v); want untouched", n, node.Spec.Unschedulable, node.Status.NodeInfo.KubeletVersion, err)
		}
		if calls := f.calls(n); len(calls) != 0 && calls[0] != "" {
			t.Errorf("%s: its host received commands: %q", n, calls)
		}
	}
	// kubectl describe node tells the story.
	evs, err := cs.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + bad + ",reason=KupFailed"})
	if err != nil || len(evs.Items) == 0 || !strings.Contains(evs.Items[0].Message, "exited 100") {
		t.Errorf("no KupFailed event with the exit status on %s: %v %+v", bad, err, evs)
	}
}

func sandboxStateRoot(c *sandbox.Cluster) string {
	return c.Dir[:strings.LastIndex(c.Dir[:strings.LastIndex(c.Dir, "/")], "/")]
}
