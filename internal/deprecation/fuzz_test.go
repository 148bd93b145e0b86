package deprecation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzScanManifestBytes feeds arbitrary bytes to the manifest scanner: it must
// never panic, and whatever it reports must be a real table entry at a real
// document of the input.
func FuzzScanManifestBytes(f *testing.F) {
	for _, name := range []string{"plain.yaml", "list.json", "broken.yml", "rendered/helm-template.yaml", "chart/templates/ingress.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", "manifests", filepath.FromSlash(name)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("--- {apiVersion: batch/v1beta1, kind: CronJob}\n...\n---\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: List, items: [{apiVersion: policy/v1beta1, kind: PodDisruptionBudget}]}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("\ufeff---\r\n\t- ]\n"))

	tab := Builtin()
	f.Fuzz(func(t *testing.T, data []byte) {
		usages, _ := tab.ScanManifestBytes("fuzz.yaml", data)
		docs := len(splitDocuments(data))
		for _, u := range usages {
			if _, ok := tab.Lookup(u.Entry.APIVersion(), u.Entry.Kind); !ok {
				t.Fatalf("usage of %s, which is not in the table", u.Entry)
			}
			if u.Where.Document < 1 || u.Where.Document > docs {
				t.Fatalf("document %d of %d", u.Where.Document, docs)
			}
			if u.Where.File != "fuzz.yaml" || u.Source != SourceManifest {
				t.Fatalf("location %+v source %q", u.Where, u.Source)
			}
			if u.Where.Item != "" && !strings.HasPrefix(u.Where.Item, "items[") {
				t.Fatalf("item path %q", u.Where.Item)
			}
		}
	})
}
