package checks

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/deprecation"
)

func helmSecret(t *testing.T, ns, name, status string, rev int, manifest string) corev1.Secret {
	t.Helper()
	rel, _ := json.Marshal(map[string]any{"name": name, "namespace": ns, "version": rev, "info": map[string]any{"status": status},
		"chart": map[string]any{"metadata": map[string]any{"name": name, "version": "1.0.0"}}, "manifest": manifest})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(rel)
	zw.Close()
	return corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sh.helm.release.v1." + name + ".v1",
			Labels: map[string]string{"owner": "helm", "name": name, "status": status, "version": itoa(rev)}},
		Data: map[string][]byte{"release": []byte(base64.StdEncoding.EncodeToString(gz.Bytes()))},
	}
}

func lastApplied(kind, name, apiVersion string) metav1.Object {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
		deprecation.LastAppliedAnnotation: `{"apiVersion":"` + apiVersion + `","kind":"` + kind + `","metadata":{"name":"` + name + `"}}`}}}
}

const metricsText = `# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested
# TYPE apiserver_requested_deprecated_apis gauge
apiserver_requested_deprecated_apis{group="networking.k8s.io",removed_release="1.37",resource="servicecidrs",subresource="",version="v1beta1"} 1
apiserver_requested_deprecated_apis{group="resource.k8s.io",removed_release="1.39",resource="deviceclasses",subresource="",version="v1beta2"} 1
apiserver_requested_deprecated_apis{group="storage.k8s.io",removed_release="1.37",resource="volumeattributesclasses",subresource="",version="v1beta1"} 0
some_other_metric 3
`

func TestAPIs(t *testing.T) {
	base := func() Input {
		s := snapshot([]corev1.Node{mkNode("a")}, nil)
		return Input{Snapshot: s, Path: pathTo(t, s, "v1.37.2")}
	}
	for _, tc := range []struct {
		name string
		edit func(*Input)
		want []string
	}{
		{name: "nothing uses a deprecated API", edit: func(*Input) {}},
		{
			name: "the metric",
			edit: func(in *Input) { in.Snapshot.Metrics = []byte(metricsText) },
			want: []string{"blocker KUP-API-003 APIResource networking.k8s.io/v1beta1/servicecidrs", "info KUP-API-005 APIResource resource.k8s.io/v1beta2/deviceclasses"},
		},
		{
			name: "metrics that could not be read",
			edit: func(in *Input) { in.Snapshot.Unknown["apiserver metrics"] = "forbidden" },
			want: []string{"unknown KUP-API-003"},
		},
		{
			name: "last-applied annotations",
			edit: func(in *Input) {
				in.Applied = []metav1.Object{lastApplied("VolumeAttributesClass", "fast", "storage.k8s.io/v1beta1"), lastApplied("Ingress", "old", "extensions/v1beta1"), lastApplied("Ingress", "new", "networking.k8s.io/v1")}
				d := mkDeployment("ns", "web", 2)
				d.Annotations = map[string]string{deprecation.LastAppliedAnnotation: `{"apiVersion":"apps/v1","kind":"Deployment"}`}
				in.Snapshot.Deployments = append(in.Snapshot.Deployments, d)
			},
			want: []string{"blocker KUP-API-002 VolumeAttributesClass fast", "warning KUP-API-006 Ingress old"},
		},
		{
			name: "an annotation that is not JSON",
			edit: func(in *Input) {
				in.Applied = []metav1.Object{&metav1.ObjectMeta{Name: "bad", Annotations: map[string]string{deprecation.LastAppliedAnnotation: "{"}}}
			},
			want: []string{"unknown KUP-API-002"},
		},
		{
			name: "kinds that could not be listed",
			edit: func(in *Input) { in.AppliedErr = "listing ingresses: forbidden" },
			want: []string{"unknown KUP-API-002"},
		},
		{
			name: "Helm releases: only the deployed revision counts",
			edit: func(in *Input) {
				in.Snapshot.HelmSecrets = []corev1.Secret{
					helmSecret(t, "shop", "web", "deployed", 3, "apiVersion: networking.k8s.io/v1beta1\nkind: IPAddress\nmetadata:\n  name: ip\n"),
					helmSecret(t, "shop", "old", "superseded", 1, "apiVersion: networking.k8s.io/v1beta1\nkind: IPAddress\nmetadata:\n  name: ip\n"),
				}
			},
			want: []string{"blocker KUP-API-001 IPAddress ip"},
		},
		{
			name: "a Helm record that does not decode",
			edit: func(in *Input) {
				s := helmSecret(t, "shop", "web", "deployed", 1, "")
				s.Data["release"] = []byte("not base64!")
				in.Snapshot.HelmSecrets = []corev1.Secret{s}
			},
			want: []string{"unknown KUP-API-001"},
		},
		{
			name: "manifests",
			edit: func(in *Input) {
				us, err := deprecation.ScanManifestBytes("deploy/x.yaml", []byte("apiVersion: networking.k8s.io/v1beta1\nkind: ServiceCIDR\nmetadata:\n  name: r\n---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: e\n  namespace: ns\n---\napiVersion: resource.k8s.io/v1beta1\nkind: DeviceClass\nmetadata:\n  name: later\n"))
				if err != nil {
					t.Fatal(err)
				}
				in.Manifests = us
				in.ManifestErrors = []string{"reading manifest deploy/broken.yaml: permission denied"}
			},
			want: []string{"blocker KUP-API-004 ServiceCIDR r", "info KUP-API-005 Endpoints ns/e", "info KUP-API-005 DeviceClass later", "unknown KUP-API-004"},
		},
	} {
		in := base()
		tc.edit(&in)
		checkKeys(t, tc.name, APIs(in), tc.want)
	}
}

func TestAPIsWithoutPath(t *testing.T) {
	fs := APIs(Input{Snapshot: snapshot(nil, nil)})
	checkKeys(t, "no path", fs, []string{"unknown KUP-API-001", "unknown KUP-API-002", "unknown KUP-API-003", "unknown KUP-API-004"})
}

// TestAPIsAcrossHops: a two-hop path removes what either hop removes.
func TestAPIsAcrossHops(t *testing.T) {
	s := snapshot([]corev1.Node{mkNode("a", kubelet("v1.35.4"))}, nil)
	s.Server = "v1.35.4"
	in := Input{Snapshot: s, Path: pathTo(t, s, "v1.37.2"), Applied: []metav1.Object{lastApplied("IPAddress", "ip", "networking.k8s.io/v1beta1")}}
	fs := APIs(in)
	checkKeys(t, "1.35 → 1.37", fs, []string{"blocker KUP-API-002 IPAddress ip"})
	if !strings.Contains(fs[0].Message, "use networking.k8s.io/v1 IPAddress") {
		t.Errorf("the finding must name the replacement: %s", fs[0].Message)
	}
	in.Path = pathTo(t, s, "v1.36.3")
	checkKeys(t, "1.35 → 1.36 does not remove it yet", APIs(in), []string{"info KUP-API-005 IPAddress ip"})
}
