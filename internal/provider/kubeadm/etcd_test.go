package kubeadm

import (
	"strings"
	"testing"
)

// kubeadmManifest is the shape kubeadm writes (trimmed to what matters).
const kubeadmManifest = `apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --advertise-address=10.0.0.10
    - --etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt
    - --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt
    - --etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key
    - --etcd-servers=https://127.0.0.1:2379
    image: registry.k8s.io/kube-apiserver:v1.36.3
    name: kube-apiserver
`

func TestParseAPIServerEtcd(t *testing.T) {
	for _, tc := range []struct {
		name     string
		manifest string
		want     EtcdFlags
		local    string
		err      string
	}{
		{name: "kubeadm stacked etcd", manifest: kubeadmManifest,
			want:  EtcdFlags{Servers: []string{"https://127.0.0.1:2379"}, CAFile: "/etc/kubernetes/pki/etcd/ca.crt", CertFile: "/etc/kubernetes/pki/apiserver-etcd-client.crt", KeyFile: "/etc/kubernetes/pki/apiserver-etcd-client.key"},
			local: "https://127.0.0.1:2379"},
		{name: "external etcd, flags as separate arguments",
			manifest: "spec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver]\n    args: [--etcd-servers, 'https://10.0.0.5:2379,https://10.0.0.6:2379', --etcd-cafile, /pki/ca.crt]\n",
			want:     EtcdFlags{Servers: []string{"https://10.0.0.5:2379", "https://10.0.0.6:2379"}, CAFile: "/pki/ca.crt"},
			local:    "https://10.0.0.5:2379"},
		{name: "loopback member preferred",
			manifest: "spec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver, '--etcd-servers=https://10.0.0.5:2379,http://localhost:2379']\n",
			want:     EtcdFlags{Servers: []string{"https://10.0.0.5:2379", "http://localhost:2379"}},
			local:    "http://localhost:2379"},
		{name: "other containers ignored",
			manifest: "spec:\n  containers:\n  - name: sidecar\n    command: [x, --etcd-servers=http://evil:1]\n",
			err:      "no kube-apiserver container with --etcd-servers"},
		{name: "key without certificate",
			manifest: "spec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver, --etcd-servers=https://127.0.0.1:2379, --etcd-keyfile=/k]\n",
			err:      "without the other"},
		{name: "not YAML", manifest: "{{{", err: "not a pod manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAPIServerEtcd([]byte(tc.manifest))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Servers, ",") != strings.Join(tc.want.Servers, ",") || got.CAFile != tc.want.CAFile || got.CertFile != tc.want.CertFile || got.KeyFile != tc.want.KeyFile {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if l := got.LocalServer(); l != tc.local {
				t.Errorf("LocalServer = %q, want %q", l, tc.local)
			}
		})
	}
}
