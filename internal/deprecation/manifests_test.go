package deprecation

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// found is the comparable summary of a Usage used by the manifest tests.
type found struct {
	file     string
	doc      int
	item     string
	template string
	entry    string
	object   string
}

func summarize(us []Usage) []found {
	out := make([]found, len(us))
	for i, u := range us {
		out[i] = found{filepath.ToSlash(u.Where.File), u.Where.Document, u.Where.Item, u.Where.Template, u.Entry.String(), u.Object.String()}
	}
	return out
}

func TestScanManifestsDir(t *testing.T) {
	dir := filepath.Join("testdata", "manifests")
	usages, err := ScanManifests(dir)

	want := []found{
		{"testdata/manifests/broken.yml", 1, "", "", "flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema", "FlowSchema batch-jobs"},
		{"testdata/manifests/broken.yml", 3, "", "", "storage.k8s.io/v1beta1 CSIStorageCapacity", "CSIStorageCapacity storage/zone-a"},
		{"testdata/manifests/list.json", 1, "items[0]", "", "extensions/v1beta1 Ingress", "Ingress edge/legacy"},
		{"testdata/manifests/list.json", 1, "items[2]", "", "rbac.authorization.k8s.io/v1beta1 ClusterRole", "ClusterRole edge-reader"},
		// The licence comment is not a document and the empty one between two
		// markers is: the CronJob is the third document a reader counts.
		{"testdata/manifests/plain.yaml", 3, "", "", "batch/v1beta1 CronJob", "CronJob jobs/nightly"},
		{"testdata/manifests/rendered/helm-template.yaml", 1, "", "web/templates/pdb.yaml", "policy/v1beta1 PodDisruptionBudget", "PodDisruptionBudget web"},
		{"testdata/manifests/rendered/helm-template.yaml", 3, "", "web/templates/hpa.yaml", "autoscaling/v2beta2 HorizontalPodAutoscaler", "HorizontalPodAutoscaler web"},
		{"testdata/manifests/rendered/helm-template.yaml", 4, "", "web/templates/ingress.yaml", "networking.k8s.io/v1beta1 Ingress", "Ingress web"},
	}
	got := summarize(usages)
	if len(got) != len(want) {
		for _, g := range got {
			t.Logf("%+v", g)
		}
		t.Fatalf("got %d usages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("usage %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
		if usages[i].Source != SourceManifest {
			t.Errorf("usage %d source %q", i, usages[i].Source)
		}
	}

	// Two bad documents, each named; neither stopped the scan (the usages
	// after them are above). Hidden directories and non-manifest files were
	// not read: their removed Deployments are absent.
	if err == nil {
		t.Fatal("no error for the malformed documents")
	}
	msg := err.Error()
	for _, w := range []string{
		filepath.Join(dir, "broken.yml") + " document 2 (from line 9): not valid YAML",
		filepath.Join(dir, "chart", "templates", "ingress.yaml") + " document 1 (from line 1): not valid YAML (an unrendered Helm template?",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	if n := strings.Count(msg, "not valid YAML"); n != 2 {
		t.Errorf("%d document errors, want 2: %s", n, msg)
	}
}

func TestScanManifestsPaths(t *testing.T) {
	// A file named directly is scanned whatever its extension.
	usages, err := ScanManifests(filepath.Join("testdata", "manifests", "notes.txt"), filepath.Join("testdata", "manifests", "plain.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := summarize(usages)
	if len(got) != 2 || got[0].entry != "extensions/v1beta1 Deployment" || got[1].entry != "batch/v1beta1 CronJob" {
		t.Errorf("got %+v", got)
	}

	_, err = ScanManifests(filepath.Join("testdata", "no-such-dir"))
	if err == nil || !strings.Contains(err.Error(), "no-such-dir") {
		t.Errorf("missing path error = %v", err)
	}

	// A symbolic link loop under a directory does not hang the walk.
	tmp := t.TempDir()
	if err := os.Symlink(tmp, filepath.Join(tmp, "loop")); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "a.yaml"), []byte("apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	usages, err = ScanManifests(tmp)
	if err != nil || len(usages) != 1 {
		t.Errorf("walk with a link loop: %d usages, %v", len(usages), err)
	}
}

func TestScanManifestBytes(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    []found
		wantErr []string
	}{
		{name: "empty file", data: ""},
		{name: "only comments and markers", data: "# nothing\n---\n---\n# still nothing\n"},
		{
			name: "single object without markers, CRLF and a byte order mark",
			data: "\ufeffapiVersion: policy/v1beta1\r\nkind: PodSecurityPolicy\r\nmetadata:\r\n  name: restricted\r\n",
			want: []found{{"f.yaml", 1, "", "", "policy/v1beta1 PodSecurityPolicy", "PodSecurityPolicy restricted"}},
		},
		{
			name: "content on the marker line",
			data: "--- {apiVersion: batch/v1beta1, kind: CronJob, metadata: {name: a, namespace: team}}\n--- # a comment\napiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: b}\n",
			want: []found{
				{"f.yaml", 1, "", "", "batch/v1beta1 CronJob", "CronJob team/a"},
				{"f.yaml", 2, "", "", "batch/v1beta1 CronJob", "CronJob b"},
			},
		},
		{
			name: "document end markers",
			data: "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: a}\n...\n# between documents\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: b}\n...\n",
			want: []found{
				{"f.yaml", 1, "", "", "batch/v1beta1 CronJob", "CronJob a"},
				{"f.yaml", 2, "", "", "v1 Endpoints", "Endpoints b"},
			},
		},
		{
			name: "YAML that is not an object is skipped",
			data: "- a\n- b\n---\njust a string\n---\n42\n---\nreplicaCount: 3\n---\napiVersion: v2\nname: chart\n",
		},
		{
			name: "nested and typed Lists",
			data: `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: List
    items:
      - {apiVersion: policy/v1beta1, kind: PodDisruptionBudget, metadata: {name: inner}}
  - "not an object"
  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: fine}}
---
apiVersion: extensions/v1beta1
kind: DeploymentList
items:
  - {apiVersion: extensions/v1beta1, kind: Deployment, metadata: {name: old}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: has-items-but-is-not-a-list}
items:
  - {apiVersion: extensions/v1beta1, kind: Deployment, metadata: {name: ignored}}
`,
			want: []found{
				{"f.yaml", 1, "items[0].items[0]", "", "policy/v1beta1 PodDisruptionBudget", "PodDisruptionBudget inner"},
				{"f.yaml", 2, "items[0]", "", "extensions/v1beta1 Deployment", "Deployment old"},
			},
		},
		{
			name: "bad documents are reported and skipped",
			data: "apiVersion: batch/v1beta1\nkind: [CronJob]\n---\napiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: ok}\n---\nkey: [unclosed\n---\napiVersion: v1\nkind: List\nitems:\n  - {apiVersion: 3, kind: Pod}\n",
			want: []found{{"f.yaml", 2, "", "", "batch/v1beta1 CronJob", "CronJob ok"}},
			wantErr: []string{
				"f.yaml document 1: kind is a []interface {}, not a string",
				"f.yaml document 3 (from line 8): not valid YAML",
				"f.yaml document 4: items[0]: apiVersion is a float64, not a string",
			},
		},
		{
			name: "JSON",
			data: `{"apiVersion": "scheduling.k8s.io/v1beta1", "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000}`,
			want: []found{{"f.yaml", 1, "", "", "scheduling.k8s.io/v1beta1 PriorityClass", "PriorityClass high"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			usages, err := ScanManifestBytes("f.yaml", []byte(tt.data))
			got := summarize(usages)
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v (err %v)", got, tt.want, err)
			}
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Errorf("usage %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
}

func TestUsageString(t *testing.T) {
	usages, _ := ScanManifestBytes("deploy/app.yaml", []byte("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: policy/v1beta1, kind: PodSecurityPolicy, metadata: {name: restricted}}\n- {apiVersion: v1, kind: Endpoints, metadata: {name: web, namespace: shop}}\n"))
	want := []string{
		"deploy/app.yaml document 1 items[0]: policy/v1beta1 PodSecurityPolicy restricted (removed in 1.25; no replacement)",
		"deploy/app.yaml document 1 items[1]: v1 Endpoints shop/web (deprecated in 1.33; use discovery.k8s.io/v1)",
	}
	if len(usages) != len(want) {
		t.Fatalf("got %v", usages)
	}

	// The other sources render their own locations.
	metric, err := ScanMetrics(strings.NewReader(`apiserver_requested_deprecated_apis{group="policy",removed_release="1.25",resource="pods",subresource="eviction",version="v1beta1"} 1
apiserver_requested_deprecated_apis{group="stable.example.com",removed_release="",resource="crontabs",subresource="",version="v1beta1"} 1
`))
	if err != nil {
		t.Fatal(err)
	}
	usages = append(usages, metric...)
	applied, err := ScanLastApplied(withLastApplied("shop", "web", `{"apiVersion":"extensions/v1beta1","kind":"Ingress"}`))
	if err != nil {
		t.Fatal(err)
	}
	usages = append(usages, applied...)
	want = append(want,
		"apiserver metric for stable.example.com/v1beta1/crontabs: stable.example.com/v1beta1 crontabs (deprecated)",
		"apiserver metric for policy/v1beta1/pods/eviction: policy/v1beta1 Eviction (removed in 1.25; use policy/v1)",
		"last-applied: extensions/v1beta1 Ingress shop/web (removed in 1.22; use networking.k8s.io/v1)",
	)
	if len(usages) != len(want) {
		t.Fatalf("got %v", usages)
	}
	for i, w := range want {
		if usages[i].String() != w {
			t.Errorf("usage %d renders as\n%s\nwant\n%s", i, usages[i], w)
		}
	}
}

func TestSplitDocuments(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		bodies []string
		lines  []int
	}{
		{"no marker", "a: 1\nb: 2\n", []string{"a: 1\nb: 2\n"}, []int{1}},
		{"leading comment is no document", "# c\n---\na: 1\n", []string{"a: 1\n"}, []int{3}},
		{"empty document counts", "a: 1\n---\n---\nb: 2", []string{"a: 1\n", "", "b: 2"}, []int{1, 3, 4}},
		{"content on the marker", "--- a: 1\n--- #c\nb: 2\n", []string{"a: 1\n", "b: 2\n"}, []int{1, 3}},
		{"end marker", "a: 1\n...\n# c\n---\nb: 2\n...\n", []string{"a: 1\n", "b: 2\n"}, []int{1, 5}},
		{"indented marker is content", "a: |\n  ---\n  x\n", []string{"a: |\n  ---\n  x\n"}, []int{1}},
		{"trailing marker adds nothing", "a: 1\n---\n", []string{"a: 1\n"}, []int{1}},
		{"empty", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := splitDocuments([]byte(tt.data))
			var bodies []string
			var lines []int
			for _, d := range docs {
				bodies = append(bodies, string(d.body))
				lines = append(lines, d.line)
			}
			if strings.Join(bodies, "|") != strings.Join(tt.bodies, "|") || len(bodies) != len(tt.bodies) {
				t.Errorf("bodies = %q, want %q", bodies, tt.bodies)
			}
			if fmt.Sprint(lines) != fmt.Sprint(tt.lines) {
				t.Errorf("lines = %v, want %v", lines, tt.lines)
			}
		})
	}
}
