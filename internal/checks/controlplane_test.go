package checks

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kup-project/kup/internal/inventory"
)

func TestControlPlane(t *testing.T) {
	cert := func(left time.Duration) *inventory.ServingCertificate {
		return &inventory.ServingCertificate{Address: "10.0.0.1:6443", Subject: "CN=kube-apiserver", Issuer: "CN=kubernetes", NotAfter: testNow.Add(left)}
	}
	healthy := &inventory.EtcdStatus{Endpoint: "http://127.0.0.1:2379", Healthy: true, DBSize: 100 << 20, DBSizeInUse: 80 << 20, Quota: 2 << 30}
	for _, tc := range []struct {
		name    string
		nodes   []corev1.Node
		kubectl string
		cert    *inventory.ServingCertificate
		etcd    *inventory.EtcdStatus
		window  time.Duration
		want    []string
	}{
		{name: "all well", cert: cert(300 * 24 * time.Hour), etcd: healthy},
		{name: "nothing read", want: []string{"unknown KUP-CP-003", "unknown KUP-CP-005"}},
		{name: "certificate unreadable", cert: &inventory.ServingCertificate{Address: "x", Error: "connection refused"}, etcd: healthy, want: []string{"unknown KUP-CP-003"}},
		{name: "certificate expired", cert: cert(-time.Hour), etcd: healthy, want: []string{"blocker KUP-CP-003 Certificate kube-apiserver serving certificate at 10.0.0.1:6443"}},
		{name: "certificate expires during the upgrade", cert: cert(10 * time.Hour), etcd: healthy, want: []string{"blocker KUP-CP-003 Certificate kube-apiserver serving certificate at 10.0.0.1:6443"}},
		{name: "a longer upgrade window", cert: cert(3 * 24 * time.Hour), window: 4 * 24 * time.Hour, etcd: healthy, want: []string{"blocker KUP-CP-003 Certificate kube-apiserver serving certificate at 10.0.0.1:6443"}},
		{name: "certificate expires within 30 days", cert: cert(20 * 24 * time.Hour), etcd: healthy, want: []string{"warning KUP-CP-004 Certificate kube-apiserver serving certificate at 10.0.0.1:6443"}},
		{name: "etcd unreachable", cert: cert(300 * 24 * time.Hour), etcd: &inventory.EtcdStatus{Endpoint: "http://e", Error: "connection refused"}, want: []string{"unknown KUP-CP-005 Etcd http://e"}},
		{name: "etcd unhealthy with an alarm", cert: cert(300 * 24 * time.Hour), etcd: &inventory.EtcdStatus{Endpoint: "http://e", Healthy: false, HealthReason: "NOSPACE", Alarms: []string{"NOSPACE on member 1"}, DBSize: 2 << 30, Quota: 2 << 30},
			want: []string{"blocker KUP-CP-005 Etcd http://e", "warning KUP-CP-006 Etcd http://e"}},
		{name: "etcd near its quota", cert: cert(300 * 24 * time.Hour), etcd: &inventory.EtcdStatus{Endpoint: "http://e", Healthy: true, DBSize: 1800 << 20, Quota: 2 << 30}, want: []string{"warning KUP-CP-006 Etcd http://e"}},
		{name: "etcd without a quota", cert: cert(300 * 24 * time.Hour), etcd: &inventory.EtcdStatus{Endpoint: "http://e", Healthy: true, DBSize: 1 << 20}, want: []string{"unknown KUP-CP-006 Etcd http://e"}},
		{name: "a kubelet four minors behind", nodes: []corev1.Node{mkNode("old", kubelet("v1.32.1"))}, cert: cert(300 * 24 * time.Hour), etcd: healthy, want: []string{"blocker KUP-CP-001 Node old"}},
		{name: "a kubelet newer than the apiserver", nodes: []corev1.Node{mkNode("new", kubelet("v1.37.2"))}, cert: cert(300 * 24 * time.Hour), etcd: healthy, want: []string{"blocker KUP-CP-001 Node new"}},
		{name: "an old local kubectl is only a warning", kubectl: "v1.33.0", cert: cert(300 * 24 * time.Hour), etcd: healthy, want: []string{"warning KUP-CP-002 Binary kubectl"}},
		{name: "a kubectl fine now but not after", kubectl: "v1.35.0", cert: cert(300 * 24 * time.Hour), etcd: healthy, want: []string{"warning KUP-CP-002 Binary kubectl"}},
	} {
		nodes := tc.nodes
		if nodes == nil {
			nodes = []corev1.Node{mkNode("a")}
		}
		s := snapshot(nodes, nil)
		s.Components = append(s.Components, componentAt("kube-apiserver", "v1.36.3"), componentAt("kube-controller-manager", "v1.36.3"))
		s.Kubectl = tc.kubectl
		in := Input{Snapshot: s, ServingCertificate: tc.cert, Etcd: tc.etcd, UpgradeWindow: tc.window}
		if !strings.Contains(tc.name, "newer") && !strings.Contains(tc.name, "behind") {
			in.Path = pathTo(t, s, "v1.37.2")
		}
		checkKeys(t, tc.name, ControlPlane(in), tc.want)
	}
}

func TestControlPlaneWithoutAPIServer(t *testing.T) {
	s := snapshot([]corev1.Node{mkNode("a")}, nil)
	s.Components = append(s.Components, componentAt("kube-apiserver", "garbage"))
	fs := ControlPlane(Input{Snapshot: s, ServingCertificate: &inventory.ServingCertificate{NotAfter: testNow.Add(1000 * time.Hour)}, Etcd: &inventory.EtcdStatus{Healthy: true}})
	checkKeys(t, "unparseable apiserver version", fs, []string{"unknown KUP-CP-001"})
}
