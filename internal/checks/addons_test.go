package checks

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/inventory"
)

func daemonSet(ns, name string, images ...string) appsv1.DaemonSet {
	d := appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, img := range images {
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "c", Image: img})
	}
	return d
}

func deploymentWith(ns, name string, images ...string) appsv1.Deployment {
	d := appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, img := range images {
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "c", Image: img})
	}
	return d
}

func TestAddons(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ds       []appsv1.DaemonSet
		deps     []appsv1.Deployment
		from, to string
		detected []string // name version
		want     []string
	}{
		{name: "nothing known", deps: []appsv1.Deployment{deploymentWith("ns", "app", "registry.example.com/app:1.0")}, from: "v1.36.3", to: "v1.37.2"},
		{
			name: "ingress-nginx tested up to 1.35 only",
			deps: []appsv1.Deployment{deploymentWith("ingress-nginx", "ingress-nginx-controller", "registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:abcd")},
			from: "v1.35.4", to: "v1.37.2",
			detected: []string{"ingress-nginx v1.15.1"},
			want:     []string{"warning KUP-ADDON-001 Deployment ingress-nginx/ingress-nginx-controller"},
		},
		{
			name: "ingress-nginx supported on the whole path",
			deps: []appsv1.Deployment{deploymentWith("ingress-nginx", "ctl", "registry.k8s.io/ingress-nginx/controller:v1.15.0")},
			from: "v1.34.6", to: "v1.35.4",
			detected: []string{"ingress-nginx v1.15.0"},
		},
		{
			name: "cert-manager: no row for its version",
			deps: []appsv1.Deployment{deploymentWith("cert-manager", "cert-manager", "quay.io/jetstack/cert-manager-controller:v1.99.0")},
			from: "v1.36.3", to: "v1.37.2",
			detected: []string{"cert-manager v1.99.0"},
			want:     []string{"info KUP-ADDON-002 Deployment cert-manager/cert-manager"},
		},
		{
			name: "metrics-server states a lower bound only",
			deps: []appsv1.Deployment{deploymentWith("kube-system", "metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.8.0")},
			from: "v1.36.3", to: "v1.37.2",
			detected: []string{"metrics-server v0.8.0"},
		},
		{
			name: "kube-proxy follows the skew policy",
			ds:   []appsv1.DaemonSet{daemonSet("kube-system", "kube-proxy", "registry.k8s.io/kube-proxy:v1.33.5")},
			from: "v1.36.3", to: "v1.37.2",
			detected: []string{"kube-proxy v1.33.5"},
			want:     []string{"warning KUP-ADDON-001 DaemonSet kube-system/kube-proxy"},
		},
		{
			name: "CNIs, CoreDNS and a CSI driver",
			ds: []appsv1.DaemonSet{
				daemonSet("kube-system", "calico-node", "docker.io/calico/cni:v3.29.1", "docker.io/calico/node:v3.29.1"),
				daemonSet("kube-system", "cilium", "quay.io/cilium/cilium:v1.18.0"),
				daemonSet("kube-flannel", "kube-flannel-ds", "ghcr.io/flannel-io/flannel:v0.26.0"),
				daemonSet("kube-system", "ebs-csi-node", "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver:v1.40.0", "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0"),
			},
			deps: []appsv1.Deployment{deploymentWith("kube-system", "coredns", "registry.k8s.io/coredns/coredns:v1.12.1")},
			from: "v1.36.3", to: "v1.37.2",
			detected: []string{"Flannel v0.26.0", "Calico v3.29.1", "Cilium v1.18.0", "CSI driver ebs-csi-node v1.40.0", "CoreDNS v1.12.1"},
			want:     []string{"warning KUP-ADDON-001 DaemonSet kube-system/calico-node", "info KUP-ADDON-002 DaemonSet kube-system/cilium"},
		},
		{
			name: "an untagged image",
			deps: []appsv1.Deployment{deploymentWith("ingress-nginx", "ctl", "ingress-nginx/controller")},
			from: "v1.36.3", to: "v1.37.2",
			detected: []string{"ingress-nginx "},
			want:     []string{"info KUP-ADDON-002 Deployment ingress-nginx/ctl"},
		},
	} {
		s := snapshot([]corev1.Node{mkNode("a", kubelet(tc.from))}, nil)
		s.Server = tc.from
		s.DaemonSets, s.Deployments = tc.ds, tc.deps
		fs, detected := Addons(Input{Snapshot: s, Path: pathTo(t, s, tc.to)})
		checkKeys(t, tc.name, fs, tc.want)
		var got []string
		for _, d := range detected {
			got = append(got, d.Name+" "+d.Version)
		}
		if strings.Join(got, "|") != strings.Join(tc.detected, "|") {
			t.Errorf("%s: detected %q, want %q", tc.name, got, tc.detected)
		}
	}
}

// TestAddonsMessages: the warning cites the vendor's table and the
// minors that fail; a versions-scope snapshot (kube-system only) works too.
func TestAddonsMessages(t *testing.T) {
	s := snapshot([]corev1.Node{mkNode("a", kubelet("v1.34.6"))}, nil)
	s.Server = "v1.34.6"
	s.Addons = []inventory.Addon{{Kind: "Deployment", Namespace: "kube-system", Name: "ingress", Images: []string{"registry.k8s.io/ingress-nginx/controller:v1.13.2"}}}
	fs, _ := Addons(Input{Snapshot: s, Path: pathTo(t, s, "v1.36.3")})
	if len(fs) != 1 || !strings.Contains(fs[0].Message, "not supported on Kubernetes 1.35, 1.36") ||
		!strings.Contains(fs[0].Message, "github.com/kubernetes/ingress-nginx") || !strings.Contains(fs[0].Message, "1.29 to 1.33") {
		t.Errorf("want the failing minors, the supported range and the source: %+v", fs)
	}
	fs, _ = Addons(Input{Snapshot: s})
	checkKeys(t, "no path", fs, []string{"unknown KUP-ADDON-001 Deployment kube-system/ingress"})
}

func TestSplitImage(t *testing.T) {
	for _, tc := range []struct{ image, repo, tag string }{
		{"registry.k8s.io/ingress-nginx/controller:v1.12.1@sha256:abc", "ingress-nginx/controller", "v1.12.1"},
		{"nginx", "nginx", ""},
		{"nginx:1.27", "nginx", "1.27"},
		{"localhost:5000/team/app:2", "team/app", "2"},
		{"calico/node:v3.29.1", "calico/node", "v3.29.1"},
		{"quay.io/cilium/cilium@sha256:abc", "cilium/cilium", ""},
	} {
		if repo, tag := splitImage(tc.image); repo != tc.repo || tag != tc.tag {
			t.Errorf("splitImage(%q) = %q, %q; want %q, %q", tc.image, repo, tag, tc.repo, tc.tag)
		}
	}
}

func FuzzSplitImage(f *testing.F) {
	for _, s := range []string{"a/b:c@d", "host:1/x", ":", "@", "a:b:c", "x/y/z:v1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, image string) {
		repo, tag := splitImage(image)
		if strings.Contains(tag, "/") || strings.Contains(tag, "@") {
			t.Errorf("splitImage(%q): tag %q holds a path or digest", image, tag)
		}
		if len(repo)+len(tag) > len(image) {
			t.Errorf("splitImage(%q) = %q, %q: longer than the input", image, repo, tag)
		}
	})
}

func TestLoadAddonTable(t *testing.T) {
	if tb := BuiltinAddonTable(); len(tb.Addons) < 10 || tb.Reviewed == "" {
		t.Fatalf("the embedded table is too small: %+v", tb)
	}
	for _, a := range BuiltinAddonTable().Addons {
		if !strings.HasPrefix(a.Source, "https://") {
			t.Errorf("add-on %s cites no source URL", a.Name)
		}
	}
	for _, bad := range []string{
		"addons: [{name: x, images: [x]}]", // no source
		"addons: [{name: x, images: [x], source: s, ranges: [{from: \"2.0\", below: \"1.0\", kubernetesMin: \"1.20\"}]}]",
		"addons: [{name: x, images: [x], source: s, ranges: [{from: \"1.0\", kubernetesMin: \"1.30\", kubernetesMax: \"1.20\"}]}]",
		"addons: [{name: x, images: [x], source: s, ranges: [{from: \"1.0\", kubernetesMin: \"two\"}]}]",
		"addons: [{name: x, images: [x], source: s, unknownField: 1}]",
	} {
		if _, err := LoadAddonTable([]byte(bad)); err == nil {
			t.Errorf("LoadAddonTable(%q) accepted a broken table", bad)
		}
	}
}

func FuzzLoadAddonTable(f *testing.F) {
	f.Add(builtinAddons)
	f.Add([]byte("addons: [{name: x, images: [x], source: s, ranges: [{from: \"1.0\", kubernetesMin: \"1.2\"}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := LoadAddonTable(data)
		if err != nil {
			return
		}
		// A table that loads must judge without panicking.
		s := snapshot([]corev1.Node{mkNode("a")}, nil)
		s.Deployments = []appsv1.Deployment{deploymentWith("ns", "x", "x:v1.0.0", "ingress-nginx/controller:v1.2.3")}
		Addons(Input{Snapshot: s, AddonTable: tb, Path: pathTo(t, s, "v1.37.2")})
	})
}
