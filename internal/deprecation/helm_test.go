package deprecation

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// helmRecord builds a release record the way helm's storage driver does
// (pkg/storage/driver/util.go encodeRelease): JSON, gzip, base64. The JSON
// carries the fields helm writes, not only the ones the package reads.
func helmRecord(t *testing.T, name, namespace string, revision int, status, manifest string) []byte {
	t.Helper()
	rel := map[string]any{
		"name": name,
		"info": map[string]any{
			"first_deployed": "2023-03-01T10:00:00Z",
			"last_deployed":  "2023-03-02T10:00:00Z",
			"deleted":        "",
			"description":    "Upgrade complete",
			"status":         status,
		},
		"chart": map[string]any{
			"metadata": map[string]any{
				"name": "web", "version": "1.2.0", "appVersion": "1.2", "apiVersion": "v2",
			},
			"values":    map[string]any{"replicaCount": 2},
			"templates": []any{map[string]any{"name": "templates/ingress.yaml", "data": "e3stIGlmIC5WYWx1ZXMuaW5ncmVzcy5lbmFibGVkIH19"}},
		},
		"config":    map[string]any{"ingress": map[string]any{"enabled": true}},
		"manifest":  manifest,
		"version":   revision,
		"namespace": namespace,
	}
	js, err := json.Marshal(rel)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(js); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(buf.Bytes()))
}

func helmSecret(namespace, name string, revision int, status string, data []byte) HelmSecret {
	return HelmSecret{
		Namespace: namespace,
		Name:      fmt.Sprintf("sh.helm.release.v1.%s.v%d", name, revision),
		Labels: map[string]string{
			"name": name, "owner": "helm", "status": status,
			"version": fmt.Sprint(revision), "modifiedAt": "1677751200",
		},
		Data: data,
	}
}

const webManifestV2 = `---
# Source: web/templates/ingress.yaml
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: web
spec:
  backend:
    serviceName: web
    servicePort: 80
---
# Source: web/templates/pdb.yaml
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: web}
---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
`

func TestDecodeHelmRelease(t *testing.T) {
	record := helmRecord(t, "web", "shop", 2, "deployed", webManifestV2)
	plainJSON := []byte(base64.StdEncoding.EncodeToString([]byte(`{"name":"web","namespace":"shop","version":4,"info":{"status":"superseded"},"chart":{"metadata":{"name":"web","version":"1.1.0"}},"manifest":""}`)))
	tests := []struct {
		name    string
		data    []byte
		want    HelmRelease
		wantErr string
	}{
		{name: "gzip record", data: record, want: HelmRelease{Name: "web", Namespace: "shop", Revision: 2, Status: "deployed", ChartName: "web", ChartVersion: "1.2.0", Manifest: webManifestV2}},
		{name: "still wrapped in the Secret's base64", data: []byte(base64.StdEncoding.EncodeToString(record)), want: HelmRelease{Name: "web", Namespace: "shop", Revision: 2, Status: "deployed", ChartName: "web", ChartVersion: "1.2.0", Manifest: webManifestV2}},
		{name: "uncompressed JSON, as helm also accepts", data: plainJSON, want: HelmRelease{Name: "web", Namespace: "shop", Revision: 4, Status: "superseded", ChartName: "web", ChartVersion: "1.1.0"}},
		{name: "not base64", data: []byte("%%%"), wantErr: "base64"},
		{name: "truncated gzip", data: []byte(base64.StdEncoding.EncodeToString(mustUnbase64(t, record)[:40])), wantErr: "gzip"},
		{name: "not JSON", data: []byte(base64.StdEncoding.EncodeToString([]byte("{oops"))), wantErr: "JSON"},
		{name: "no name", data: []byte(base64.StdEncoding.EncodeToString([]byte(`{"version":1}`))), wantErr: "no release name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel, err := DecodeHelmRelease(tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *rel != tt.want {
				t.Errorf("got %+v\nwant %+v", *rel, tt.want)
			}
		})
	}
}

func mustUnbase64(t *testing.T, b []byte) []byte {
	t.Helper()
	out, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestScanHelmReleases(t *testing.T) {
	v1 := "---\n# Source: web/templates/deployment.yaml\napiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: web\n"
	v3 := "---\n# Source: web/templates/cronjob.yaml\napiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: web-report\n"
	apiV7 := "---\n# Source: api/templates/hpa.yaml\napiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: api\n  namespace: payments\n"
	secrets := []HelmSecret{
		// Release shop/web: revision 1 superseded, 2 deployed, 3 a failed
		// upgrade. Only revision 2 is live and read back by the next upgrade.
		helmSecret("shop", "web", 1, "superseded", helmRecord(t, "web", "shop", 1, "superseded", v1)),
		helmSecret("shop", "web", 3, "failed", helmRecord(t, "web", "shop", 3, "failed", v3)),
		helmSecret("shop", "web", 2, "deployed", helmRecord(t, "web", "shop", 2, "deployed", webManifestV2)),
		// Release payments/api: two deployed records (a crashed helm can leave
		// that); the newer one counts. Revision 10 sorts after 7 as a number.
		helmSecret("payments", "api", 7, "deployed", helmRecord(t, "api", "payments", 7, "deployed", apiV7)),
		helmSecret("payments", "api", 10, "deployed", helmRecord(t, "api", "payments", 10, "deployed", "---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: api\n")),
		// A release stuck in pending-install has nothing live.
		helmSecret("shop", "cart", 1, "pending-install", helmRecord(t, "cart", "shop", 1, "pending-install", v1)),
		// Not Helm's.
		{Namespace: "shop", Name: "db-password", Labels: map[string]string{"app": "db"}, Data: []byte("c2VjcmV0")},
		// Helm's, but the record is damaged: reported, the rest still scanned.
		helmSecret("ops", "broken", 1, "deployed", []byte("H4sIAAAA")),
	}
	usages, err := ScanHelmReleases(secrets)
	if err == nil || !strings.Contains(err.Error(), "ops/sh.helm.release.v1.broken.v1") {
		t.Errorf("error = %v, want one naming the damaged secret", err)
	}

	type row struct {
		entry    string
		obj      ObjectRef
		where    Location
		asString string
	}
	want := []row{
		{
			entry: "extensions/v1beta1 Ingress",
			obj:   ObjectRef{Kind: "Ingress", Name: "web"},
			where: Location{Release: "web", Revision: 2, Chart: "web", ChartVersion: "1.2.0", ReleaseNamespace: "shop", Document: 1, Template: "web/templates/ingress.yaml"},
			asString: "helm release shop/web revision 2 (web-1.2.0) document 1 (web/templates/ingress.yaml): " +
				"extensions/v1beta1 Ingress web (removed in 1.22; use networking.k8s.io/v1)",
		},
		{
			entry: "policy/v1beta1 PodDisruptionBudget",
			obj:   ObjectRef{Kind: "PodDisruptionBudget", Name: "web"},
			where: Location{Release: "web", Revision: 2, Chart: "web", ChartVersion: "1.2.0", ReleaseNamespace: "shop", Document: 2, Template: "web/templates/pdb.yaml"},
		},
	}
	// Sorted by namespace: payments/api (revision 10, clean) before shop/web.
	if len(usages) != len(want) {
		for _, u := range usages {
			t.Log(u)
		}
		t.Fatalf("got %d usages, want %d", len(usages), len(want))
	}
	for i, w := range want {
		u := usages[i]
		if u.Entry.String() != w.entry || u.Object != w.obj || u.Where != w.where || u.Source != SourceHelmRelease {
			t.Errorf("usage %d = %s %+v %+v %s\nwant %s %+v %+v", i, u.Entry, u.Object, u.Where, u.Source, w.entry, w.obj, w.where)
		}
		if w.asString != "" && u.String() != w.asString {
			t.Errorf("usage %d renders as\n%s\nwant\n%s", i, u, w.asString)
		}
	}

	// Without the damaged record there is no error at all.
	if _, err := ScanHelmReleases(secrets[:len(secrets)-1]); err != nil {
		t.Errorf("clean records: %v", err)
	}
}

func TestScanHelmReleasesBadRevisionLabel(t *testing.T) {
	s := helmSecret("shop", "web", 1, "deployed", helmRecord(t, "web", "shop", 1, "deployed", webManifestV2))
	s.Labels["version"] = "one"
	usages, err := ScanHelmReleases([]HelmSecret{s})
	if err == nil || !strings.Contains(err.Error(), `version="one"`) || len(usages) != 0 {
		t.Errorf("usages %v, error %v; want none and an error naming the label", usages, err)
	}
}
