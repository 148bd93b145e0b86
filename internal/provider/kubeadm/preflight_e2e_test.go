package kubeadm_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/checks"
	"github.com/kup-project/kup/internal/provider/kubeadm"
	"github.com/kup-project/kup/internal/sshexec"
)

// sshNode is a node object whose SSH endpoint is in its annotations.
func sshNode(name, addr string, port int, user string, controlPlane bool) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: map[string]string{
		sshexec.AnnotationAddress: addr, sshexec.AnnotationPort: fmt.Sprint(port), sshexec.AnnotationUser: user,
	}}}
	if controlPlane {
		n.Labels[kubeadm.ControlPlaneLabel] = ""
	}
	return n
}

// TestPreflightOverSSH runs the kubeadm host checks against real sshd
// hosts: a control-plane host with an expired certificate and a CA
// expiring within the year, a worker nearly out of disk that lost its
// kubelet hold, a dnf worker whose repository is unreachable, and a host
// that cannot be reached at all (its findings are unknown, not passes).
func TestPreflightOverSSH(t *testing.T) {
	f := startFleet(t, []hostSpec{
		{node: "cp-1", controlPlane: true, pm: kubeadm.Apt},
		{node: "worker-1", pm: kubeadm.Apt},
		{node: "worker-2", pm: kubeadm.Dnf},
		{node: "worker-3", pm: kubeadm.Apt},
	}, sandboxRef{}, "1.36.3")
	f.knob(t, "cp-1", "cert-days", "-2")
	f.knob(t, "cp-1", "ca-days", "200")
	f.knob(t, "worker-1", "df-avail-kb", "512000")
	if err := removeHold(f, "worker-1", "kubelet"); err != nil {
		t.Fatal(err)
	}
	f.knob(t, "worker-2", "fail-update", "yes")
	f.knob(t, "worker-3", "df-avail-kb", "4000000")

	e, err := sshexec.New(sshexec.Options{KnownHostsFile: f.lab.KnownHosts(t, "known_hosts"), KeyFile: f.lab.ClientKey, NoAgent: true, ConnectTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var nodes []corev1.Node
	for _, n := range f.nodes() {
		h := f.host[n]
		nodes = append(nodes, sshNode(n, h.Address, h.Port, f.lab.User, n == "cp-1"))
	}
	// Nothing listens on 127.0.0.99.
	nodes = append(nodes, sshNode("gone-1", "127.0.0.99", f.lab.Port, f.lab.User, false))
	hosts := &kubeadm.Hosts{Runner: e, Resolver: &sshexec.Resolver{}}
	got := kubeadm.Preflight(context.Background(), hosts, nodes, time.Now())

	var lines []string
	for _, fd := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s", fd.ID, fd.Severity, fd.Objects[0].Name))
	}
	want := []string{
		"KUP-KUBEADM-001 blocker cp-1", // four expired leaf certificates
		"KUP-KUBEADM-001 blocker cp-1",
		"KUP-KUBEADM-001 blocker cp-1",
		"KUP-KUBEADM-001 blocker cp-1",
		"KUP-KUBEADM-002 warning cp-1", // three CAs within the year
		"KUP-KUBEADM-002 warning cp-1",
		"KUP-KUBEADM-002 warning cp-1",
		"KUP-KUBEADM-003 unknown gone-1",
		"KUP-KUBEADM-003 blocker worker-1",
		"KUP-KUBEADM-004 warning worker-3",
		"KUP-KUBEADM-005 unknown gone-1",
		"KUP-KUBEADM-005 warning worker-1",
		"KUP-KUBEADM-006 unknown gone-1",
		"KUP-KUBEADM-006 blocker worker-2",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, fd := range got {
		switch {
		case fd.ID == kubeadm.DiskTooLow && fd.Severity == checks.Blocker && !strings.Contains(fd.Message, "0.5 GiB free of 100.0 GiB"):
			t.Errorf("disk finding %q does not give the numbers", fd.Message)
		case fd.ID == kubeadm.PackagesNotHeld && fd.Severity == checks.Warning && !strings.Contains(fd.Message, "kubelet not held"):
			t.Errorf("holds finding %q does not name kubelet", fd.Message)
		case fd.ID == kubeadm.RepoUnreachable && fd.Severity == checks.Blocker && !strings.Contains(fd.Message, "Failed to download metadata"):
			t.Errorf("repository finding %q does not quote dnf", fd.Message)
		case fd.Severity == checks.Unknown && !strings.Contains(fd.Message, "127.0.0.99"):
			t.Errorf("unknown finding %q does not say which host could not be reached", fd.Message)
		}
	}
	// The dnf worker's exclude= line counts as its holds.
	for _, fd := range got {
		if fd.ID == kubeadm.PackagesNotHeld && fd.Objects[0].Name == "worker-2" {
			t.Errorf("worker-2 holds its packages with exclude=, got %+v", fd)
		}
	}
	if calls := f.calls("worker-2"); len(calls) == 0 || !strings.HasPrefix(calls[len(calls)-1], "uid=0 dnf makecache") {
		t.Errorf("worker-2 calls %q: want dnf makecache, run as root", calls)
	}
}

func removeHold(f *fleet, node, pkg string) error {
	return removeFile(f.standin[node] + "/state/hold." + pkg)
}
