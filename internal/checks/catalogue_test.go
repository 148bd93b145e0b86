package checks

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

var idRE = regexp.MustCompile(`^KUP-[A-Z]+-\d{3}$`)

func TestCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Catalogue() {
		if !idRE.MatchString(c.ID) || seen[c.ID] {
			t.Errorf("ID %q is malformed or repeated", c.ID)
		}
		seen[c.ID] = true
		if c.Severity != Blocker && c.Severity != Warning && c.Severity != Info {
			t.Errorf("%s: severity %q; the catalogue holds blocker, warning or info (unknown is an outcome)", c.ID, c.Severity)
		}
		if c.Title == "" || c.Action == "" || c.Family == "" {
			t.Errorf("%s: title, action and family are required", c.ID)
		}
		if !strings.HasSuffix(c.Action, ".") {
			t.Errorf("%s: the action should be one sentence ending with a period: %q", c.ID, c.Action)
		}
	}
	// Every ID is produced by the family that owns it.
	for _, c := range Catalogue() {
		src, err := os.ReadFile(c.Family + ".go")
		if err != nil {
			t.Fatalf("%s: family file: %v", c.ID, err)
		}
		name := constName(t, c.ID)
		if !strings.Contains(string(src), name) {
			t.Errorf("%s (%s) is never produced in %s.go", c.ID, name, c.Family)
		}
	}
}

// constName finds the Go constant of an ID in catalogue.go.
func constName(t *testing.T, id string) string {
	src, err := os.ReadFile("catalogue.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+(\w+)\s+= "` + id + `"`).FindStringSubmatch(string(src))
	if m == nil {
		t.Fatalf("no constant for %s", id)
	}
	return m[1]
}

func TestSort(t *testing.T) {
	fs := []Finding{
		{ID: "KUP-B-001", Severity: Info},
		{ID: "KUP-A-001", Severity: Unknown},
		{ID: "KUP-B-001", Severity: Blocker, Objects: []Object{{Kind: "Node", Name: "b"}}},
		{ID: "KUP-B-001", Severity: Blocker, Objects: []Object{{Kind: "Node", Name: "a"}}},
		{ID: "KUP-A-002", Severity: Warning},
	}
	Sort(fs)
	var got []string
	for _, f := range fs {
		got = append(got, key(f))
	}
	want := []string{"blocker KUP-B-001 Node a", "blocker KUP-B-001 Node b", "warning KUP-A-002", "unknown KUP-A-001", "info KUP-B-001"}
	if !slices.Equal(got, want) {
		t.Errorf("Sort: %q, want %q", got, want)
	}
}

// TestRun: Run is every family at once, sorted, and says "could not
// check" for every piece of evidence it was not given.
func TestRun(t *testing.T) {
	s := snapshot([]corev1.Node{mkNode("a"), mkNode("b", cordoned)}, []corev1.Pod{mkPod("ns", "bare", "a")})
	s.Components = append(s.Components, componentAt("kube-apiserver", "v1.36.3"))
	res := Run(Input{Snapshot: s})
	checkKeys(t, "Run", res.Findings, []string{
		"info KUP-NODE-003 Node b", "warning KUP-DRAIN-001 Pod ns/bare",
		"unknown KUP-API-001", "unknown KUP-API-002", "unknown KUP-API-003", "unknown KUP-API-004",
		"unknown KUP-CP-003", "unknown KUP-CP-005",
	})
	if res.Findings[0].Severity != Warning || res.Findings[len(res.Findings)-1].Severity != Info {
		t.Errorf("findings are not sorted worst first: %v", keys(res.Findings))
	}
	if res.Capacity.Nodes != 2 {
		t.Errorf("capacity considered %d nodes, want 2", res.Capacity.Nodes)
	}
	if empty := Run(Input{}); empty.Findings == nil {
		t.Error("Run on nothing returns nil findings; want an empty list")
	}
}
