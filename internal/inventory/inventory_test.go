package inventory

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestImageTag(t *testing.T) {
	for _, tc := range []struct{ image, want string }{
		{"registry.k8s.io/kube-apiserver:v1.36.3", "v1.36.3"},
		{"localhost:5000/kube-proxy:v1.35.4", "v1.35.4"},
		{"localhost:5000/kube-proxy", ""},
		{"registry.k8s.io/coredns/coredns:v1.12.0@sha256:abcd", "v1.12.0"},
		{"602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/kube-proxy:v1.36.3-eksbuild.2", "v1.36.3-eksbuild.2"},
		{"busybox", ""},
	} {
		if got := imageTag(tc.image); got != tc.want {
			t.Errorf("imageTag(%q) = %q, want %q", tc.image, got, tc.want)
		}
	}
}

func TestComponentsFromPods(t *testing.T) {
	pod := func(name, component, image, node string) corev1.Pod {
		return corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", Labels: map[string]string{"component": component, "tier": "control-plane"}},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Image: image}}},
		}
	}
	pods := []corev1.Pod{
		pod("kube-apiserver-cp1", "kube-apiserver", "registry.k8s.io/kube-apiserver:v1.36.3", "cp1"),
		pod("kube-apiserver-cp2", "kube-apiserver", "registry.k8s.io/kube-apiserver:v1.35.4", "cp2"),
		pod("etcd-cp1", "etcd", "registry.k8s.io/etcd:3.6.4-0", "cp1"),
		pod("coredns-abc", "", "registry.k8s.io/coredns/coredns:v1.12.0", "n1"),
		pod("something", "my-app", "nginx:1.27", "n1"),
	}
	got := componentsFromPods(pods)
	if len(got) != 3 {
		t.Fatalf("want 3 control-plane components, got %+v", got)
	}
	if got[1].Name != "kube-apiserver" || got[1].Version != "v1.35.4" || got[1].Instance != "cp2" {
		t.Errorf("second apiserver: %+v", got[1])
	}
	s := &Snapshot{Components: got, Nodes: []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "garbage"}}}}}
	cv, errs := s.ClusterVersions()
	if len(cv.APIServers) != 2 {
		t.Errorf("want 2 apiservers (HA), got %v", cv.APIServers)
	}
	if len(errs) != 1 {
		t.Errorf("a kubelet reporting garbage must be an error naming the node, got %v", errs)
	} else if want := "kubelet on node n1"; !strings.Contains(errs[0].Error(), want) {
		t.Errorf("error %q does not name %q", errs[0], want)
	}
}
