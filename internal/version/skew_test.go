package version

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func vs(ss ...string) []Version {
	out := make([]Version, len(ss))
	for i, s := range ss {
		out[i] = MustParse(s)
	}
	return out
}

func nodes(kv ...string) map[string]Version {
	m := map[string]Version{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = MustParse(kv[i+1])
	}
	return m
}

func ptr(s string) *Version {
	v := MustParse(s)
	return &v
}

// found renders violations as "rule component object" for table comparison.
func found(vs []SkewViolation) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s %s %s", v.Rule, v.Component, v.Object))
	}
	return out
}

func TestCheckSkew(t *testing.T) {
	tests := []struct {
		name    string
		c       ClusterVersions
		want    []string
		explain []string // phrases the first violation's explanation must contain
	}{
		{
			name: "all at one version",
			c: ClusterVersions{APIServers: vs("v1.37.2", "v1.37.2"), ControllerManagers: vs("v1.37.2"), Schedulers: vs("v1.37.2"),
				CloudControllerManagers: vs("v1.37.2"), Kubelets: nodes("a", "v1.37.2"), KubeProxies: nodes("a", "v1.37.2"), Kubectl: ptr("v1.37.0")},
		},
		{
			name: "patch and distribution differences never count",
			c: ClusterVersions{APIServers: vs("v1.37.0-eks-1", "v1.37.2"), ControllerManagers: vs("v1.37.2+k3s1"),
				Kubelets: nodes("a", "v1.37.2-gke.1200"), Kubectl: ptr("v1.37.9")},
		},
		{
			name:    "HA apiservers two minors apart",
			c:       ClusterVersions{APIServers: vs("v1.37.2", "v1.35.4", "v1.36.3")},
			want:    []string{"kube-apiserver-ha-within-1-minor kube-apiserver kube-apiserver[1]"},
			explain: []string{"kube-apiserver[1] v1.35.4 is 2 minors behind kube-apiserver[0] v1.37.2 (max 1", "one minor at a time"},
		},
		{
			name: "HA apiservers one minor apart are fine",
			c:    ClusterVersions{APIServers: vs("v1.37.2", "v1.36.3"), Kubelets: nodes("a", "v1.34.0")},
		},
		{
			name: "HA skew narrows the kubelet range: no kubelet at the newer minor",
			c:    ClusterVersions{APIServers: vs("v1.37.2", "v1.36.3"), Kubelets: nodes("a", "v1.37.0", "b", "v1.34.0")},
			want: []string{"kubelet-newer-than-apiserver kubelet a"},
		},
		{
			name:    "kubelet four minors behind",
			c:       ClusterVersions{APIServers: vs("v1.37.2"), Kubelets: nodes("node-4", "v1.33.9", "node-1", "v1.34.4")},
			want:    []string{"kubelet-older-than-n-3 kubelet node-4"},
			explain: []string{"kubelet v1.33.9 on node node-4 is 4 minors behind kube-apiserver[0] v1.37.2 (max 3", "at least 1.34"},
		},
		{
			name:    "kubelet newer than apiserver",
			c:       ClusterVersions{APIServers: vs("v1.36.3"), Kubelets: nodes("n", "v1.37.2")},
			want:    []string{"kubelet-newer-than-apiserver kubelet n"},
			explain: []string{"kubelet v1.37.2 on node n is 1 minor newer than kube-apiserver[0] v1.36.3", "upgrade the control plane to 1.37 first"},
		},
		{
			name:    "kubectl two minors older",
			c:       ClusterVersions{APIServers: vs("v1.37.2"), Kubectl: ptr("v1.35.0")},
			want:    []string{"kubectl-within-1-minor kubectl kubectl"},
			explain: []string{"kubectl v1.35.0 is 2 minors older than kube-apiserver[0] v1.37.2", "1.36, 1.37 or 1.38"},
		},
		{
			name: "kubectl two minors newer",
			c:    ClusterVersions{APIServers: vs("v1.35.4"), Kubectl: ptr("v1.37.2")},
			want: []string{"kubectl-within-1-minor kubectl kubectl"},
		},
		{
			name:    "kubectl with HA skew must fit both apiservers",
			c:       ClusterVersions{APIServers: vs("v1.37.2", "v1.36.3"), Kubectl: ptr("v1.38.0")},
			want:    []string{"kubectl-within-1-minor kubectl kubectl"},
			explain: []string{"kubectl v1.38.0 is 2 minors newer than kube-apiserver[1] v1.36.3", "1.36 or 1.37"},
		},
		{
			name: "kubectl one minor either way is fine",
			c:    ClusterVersions{APIServers: vs("v1.37.2"), Kubectl: ptr("v1.38.0")},
		},
		{
			name: "controllers: one minor older is fine, two is not, newer never",
			c: ClusterVersions{APIServers: vs("v1.37.2"), ControllerManagers: vs("v1.36.3"), Schedulers: vs("v1.35.4"),
				CloudControllerManagers: vs("v1.38.0")},
			want: []string{
				"controller-older-than-n-1 kube-scheduler kube-scheduler[0]",
				"controller-newer-than-apiserver cloud-controller-manager cloud-controller-manager[0]",
			},
		},
		{
			name:    "controllers must not be newer than the oldest HA apiserver",
			c:       ClusterVersions{APIServers: vs("v1.37.2", "v1.36.3"), ControllerManagers: vs("v1.37.2")},
			want:    []string{"controller-newer-than-apiserver kube-controller-manager kube-controller-manager[0]"},
			explain: []string{"newer than kube-apiserver[1] v1.36.3", "upgrade every kube-apiserver to 1.37"},
		},
		{
			name: "kube-proxy rules mirror the kubelet's",
			c: ClusterVersions{APIServers: vs("v1.37.2"), Kubelets: nodes("a", "v1.37.2", "b", "v1.34.0"),
				KubeProxies: nodes("a", "v1.33.0", "b", "v1.38.0")},
			want: []string{
				"kube-proxy-older-than-n-3 kube-proxy a",
				"kube-proxy-kubelet-skew kube-proxy a",
				"kube-proxy-newer-than-apiserver kube-proxy b",
				"kube-proxy-kubelet-skew kube-proxy b",
			},
		},
		{
			name: "kube-proxy three minors from its kubelet is fine",
			c:    ClusterVersions{APIServers: vs("v1.37.2"), Kubelets: nodes("a", "v1.34.0"), KubeProxies: nodes("a", "v1.37.2")},
		},
		// Before 1.28 (KEP-3935) kubelets could trail by two minors only; the
		// policy words it as "kubelet < 1.25 may only be up to two minor
		// versions older", which is the same boundary.
		{
			name: "pre-1.28: kubelet 1.24 with apiserver 1.27 (n-3) is out",
			c:    ClusterVersions{APIServers: vs("v1.27.16"), Kubelets: nodes("old", "v1.24.17", "ok", "v1.25.16")},
			want: []string{"kubelet-older-than-n-2 kubelet old"},
			explain: []string{"kubelet v1.24.17 on node old is 3 minors behind kube-apiserver[0] v1.27.16 (max 2",
				"at least 1.25"},
		},
		{
			name: "pre-1.28: kubelet 1.24 with apiserver 1.26 (n-2) is fine",
			c:    ClusterVersions{APIServers: vs("v1.26.15"), Kubelets: nodes("a", "v1.24.17")},
		},
		{
			name: "1.28: kubelet 1.25 (n-3) is fine",
			c:    ClusterVersions{APIServers: vs("v1.28.15"), Kubelets: nodes("a", "v1.25.16")},
		},
		{
			name: "1.28: kubelet 1.24 (n-4) is out",
			c:    ClusterVersions{APIServers: vs("v1.28.15"), Kubelets: nodes("a", "v1.24.17")},
			want: []string{"kubelet-older-than-n-2 kubelet a"},
		},
		{
			name: "pre-1.28 kube-proxy",
			c:    ClusterVersions{APIServers: vs("v1.26.0"), KubeProxies: nodes("a", "v1.23.0")},
			want: []string{"kube-proxy-older-than-n-2 kube-proxy a"},
		},
		{
			name: "no apiservers: only kube-proxy against its kubelet",
			c:    ClusterVersions{Kubelets: nodes("a", "v1.37.0"), KubeProxies: nodes("a", "v1.33.0"), Kubectl: ptr("v1.20.0")},
			want: []string{"kube-proxy-kubelet-skew kube-proxy a"},
		},
		{
			name: "empty cluster",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckSkew(tt.c)
			if got == nil {
				t.Fatal("CheckSkew returned nil, want an empty slice")
			}
			want := tt.want
			if want == nil {
				want = []string{}
			}
			if g, w := strings.Join(found(got), "\n"), strings.Join(want, "\n"); g != w {
				t.Fatalf("violations:\n%s\nwant:\n%s", g, w)
			}
			for _, phrase := range tt.explain {
				if !strings.Contains(got[0].Explanation, phrase) {
					t.Errorf("explanation %q lacks %q", got[0].Explanation, phrase)
				}
			}
			for _, v := range got {
				if v.Version.IsZero() || v.AgainstVersion.IsZero() || v.Object == "" || v.AgainstObject == "" || v.Against == "" {
					t.Errorf("violation %+v does not name both sides", v)
				}
				if strings.Contains(v.Explanation, "\n") {
					t.Errorf("explanation is not one line: %q", v.Explanation)
				}
			}
		})
	}
}

func TestSkewViolationJSON(t *testing.T) {
	got := CheckSkew(ClusterVersions{APIServers: vs("v1.37.2"), Kubelets: nodes("node-4", "v1.33.9-eks-1")})
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"rule":"kubelet-older-than-n-3"`, `"component":"kubelet"`, `"object":"node-4"`,
		`"version":"v1.33.9-eks-1"`, `"against":"kube-apiserver"`, `"againstVersion":"v1.37.2"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
}
