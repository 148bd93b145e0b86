package exec

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name, ip string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
}

func TestUpgraderRunsTemplate(t *testing.T) {
	u, err := New(`echo "{{.Node}} {{.Address}} {{.Version}} $KUP_VERSION"`)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.UpgradeNode(context.Background(), node("n1", "10.0.0.7"), "v1.37.2"); err != nil {
		t.Fatal(err)
	}
	out := u.Outputs()["n1"]
	if got := strings.TrimSpace(out.Stdout); got != "n1 10.0.0.7 v1.37.2 v1.37.2" {
		t.Errorf("stdout %q", got)
	}
}

func TestUpgraderReportsFailure(t *testing.T) {
	u, err := New(`echo starting; echo "apt: unable to locate kubelet={{.Version}}" >&2; exit 100`)
	if err != nil {
		t.Fatal(err)
	}
	err = u.UpgradeNode(context.Background(), node("n2", "10.0.0.8"), "v1.37.2")
	if err == nil || !strings.Contains(err.Error(), "n2") || !strings.Contains(err.Error(), "exited 100") || !strings.Contains(err.Error(), "unable to locate kubelet=v1.37.2") {
		t.Fatalf("want an error naming the node, exit code and stderr, got %v", err)
	}
	if out := u.Outputs()["n2"]; out.ExitCode != 100 || !strings.Contains(out.Stdout, "starting") {
		t.Errorf("output not captured: %+v", out)
	}
}

func TestNewRejectsBadTemplates(t *testing.T) {
	for _, cmd := range []string{"", "  ", "upgrade {{.Nodes}}", "upgrade {{.Node"} {
		if _, err := New(cmd); err == nil {
			t.Errorf("New(%q) accepted a bad template", cmd)
		}
	}
}
