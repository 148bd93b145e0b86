package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/kup-project/kup/internal/capacity"
	"github.com/kup-project/kup/internal/checks"
	"github.com/kup-project/kup/internal/plan"
	"github.com/kup-project/kup/internal/version"
)

// The -update flag rewrites golden files. Another test file of this
// package may define it first; both then share it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func updating() bool { return flag.Lookup("update").Value.String() == "true" }

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updating() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// samplePlan is a plan with a finding of every severity, a waived one, a
// two-hop path, waves, a blocked node, capacity and add-ons.
func samplePlan(t *testing.T) *Plan {
	t.Helper()
	cv := version.ClusterVersions{APIServers: []version.Version{version.MustParse("v1.35.4")},
		Kubelets: map[string]version.Version{"node-000": version.MustParse("v1.35.4"), "node-001": version.MustParse("v1.35.4"), "node-002": version.MustParse("v1.34.6")}}
	p, err := version.Path(version.MustParse("v1.35.4"), version.MustParse("v1.37.2"), nil, version.PathOptions{Cluster: &cv})
	if err != nil {
		t.Fatal(err)
	}
	fs := []checks.Finding{
		{ID: "KUP-PDB-001", Severity: checks.Blocker, Title: "PodDisruptionBudget allows no disruption even when every pod is healthy",
			Objects: []checks.Object{{Kind: "PodDisruptionBudget", Namespace: "shop", Name: "cart"}, {Kind: "Deployment", Namespace: "shop", Name: "cart"}},
			Message: "PodDisruptionBudget shop/cart (minAvailable 2) expects 2 pod(s) and needs 2 healthy", Action: "Add replicas."},
		{ID: "KUP-API-002", Severity: checks.Blocker, Title: "Object was last applied with an API the upgrade removes", Waived: true,
			Objects: []checks.Object{{Kind: "VolumeAttributesClass", Name: "fast"}}, Message: "storage.k8s.io/v1beta1 is removed in 1.37", Action: "Re-apply with v1."},
		{ID: "KUP-DRAIN-001", Severity: checks.Warning, Title: "Pod without a controller: a drain deletes it for good",
			Objects: []checks.Object{{Kind: "Pod", Namespace: "ops", Name: "debug"}}, Message: "pod ops/debug on node node-001 has no controller", Action: "Run it under a controller."},
		{ID: "KUP-CP-005", Severity: checks.Unknown, Title: "etcd is unhealthy or has active alarms", Message: "could not check: no etcd endpoint", Action: "Check by hand."},
		{ID: "KUP-DRAIN-002", Severity: checks.Info, Title: "Pods keep data in emptyDir volumes, which a drain deletes",
			Objects: []checks.Object{{Kind: "StatefulSet", Namespace: "data", Name: "db"}, {Kind: "Pod", Namespace: "data", Name: "db-0"}, {Kind: "Pod", Namespace: "data", Name: "db-1"}, {Kind: "Pod", Namespace: "data", Name: "db-2"}, {Kind: "Pod", Namespace: "data", Name: "db-3"}},
			Message: "5 pods of StatefulSet data/db keep emptyDir volume(s) scratch", Action: "Nothing to do for scratch data."},
	}
	r := &Plan{
		APIVersion: PlanAPIVersion, Kind: PlanKind,
		Cluster: "https://127.0.0.1:6443", Taken: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		From: "v1.35.4", To: "v1.37.2", Path: p, Findings: fs, Requests: 47,
		Backup: &Backup{What: "etcd snapshot", When: "before hop 1 (control plane v1.35.4 → v1.36.3)", Endpoint: "http://127.0.0.1:2379", Note: "verified before the first hop"},
		Policy: plan.Policy{MaxUnavailable: intstr.FromInt32(2)},
		Rollout: &plan.Plan{
			Waves: []plan.Wave{
				{Index: 1, Nodes: []string{"node-000"}, Zone: "zone-a", Limit: plan.Limit{Kind: plan.LimitCanary, Reason: "the first worker wave is a single canary node"}, PodsEvicted: 4},
				{Index: 2, Nodes: []string{"node-001"}, Limit: plan.Limit{Kind: plan.LimitNoMoreNodes, Reason: "no more nodes"}, PodsEvicted: 3, Unmanaged: []string{"ops/debug"}, Cordoned: []string{"node-001"}},
			},
			Blocked:    []plan.BlockedNode{{Node: "node-002", Cause: plan.BlockedByPDB, PDBs: []string{"shop/cart"}, Reason: "PDB shop/cart allows 0 disruptions"}},
			LowerBound: plan.Bound{Waves: 2, DecidedBy: "canary"},
		},
		NodesToRoll: 3,
		Capacity:    &checks.CapacitySummary{Nodes: 3, MaxDown: []string{"node-000", "node-001"}, Undrainable: []capacity.Undrainable{{Node: "node-002"}}},
		Addons: []checks.DetectedAddon{
			{Name: "ingress-nginx", Version: "v1.13.2", Workload: checks.Object{Kind: "Deployment", Namespace: "ingress-nginx", Name: "controller"},
				Verdicts: []checks.AddonVerdict{{Kubernetes: "1.36", Verdict: checks.VerdictUnsupported}, {Kubernetes: "1.37", Verdict: checks.VerdictUnsupported}}},
			{Name: "CoreDNS", Version: "v1.12.1", Workload: checks.Object{Kind: "Deployment", Namespace: "kube-system", Name: "coredns"}, Note: "no matrix"},
		},
		Waived:   []string{"KUP-API-002"},
		Warnings: []string{"could not read warning events: forbidden"},
	}
	r.Verdict.Count(r.Findings)
	return r
}

func TestPlanTableGolden(t *testing.T) {
	r := samplePlan(t)
	for _, tc := range []struct {
		name string
		opts PlanTableOptions
	}{
		{"plan.golden", PlanTableOptions{}},
		{"plan-color.golden", PlanTableOptions{Color: true}},
		{"plan-all.golden", PlanTableOptions{ListAll: true}},
	} {
		var b bytes.Buffer
		if err := r.WriteTable(&b, tc.opts); err != nil {
			t.Fatal(err)
		}
		golden(t, tc.name, b.Bytes())
		if !tc.opts.Color && strings.Contains(b.String(), "\x1b[") {
			t.Errorf("%s: colour escapes without Color", tc.name)
		}
	}
}

func TestPlanJSONGolden(t *testing.T) {
	r := samplePlan(t)
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan.json.golden", b.Bytes())
	var back Plan
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.APIVersion != PlanAPIVersion || len(back.Findings) != len(r.Findings) || back.Verdict != r.Verdict || len(back.Rollout.Waves) != 2 {
		t.Errorf("JSON round trip lost data: %+v", back.Verdict)
	}
	var y bytes.Buffer
	if err := r.WriteYAML(&y); err != nil {
		t.Fatal(err)
	}
	var fromYAML Plan
	if err := yaml.Unmarshal(y.Bytes(), &fromYAML); err != nil || fromYAML.Verdict != r.Verdict || fromYAML.Kind != PlanKind {
		t.Errorf("YAML round trip: %v %+v", err, fromYAML.Verdict)
	}
}

func TestPlanVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   []checks.Finding
		want PlanVerdict
	}{
		{"nothing", nil, PlanVerdict{}},
		{"a blocker", []checks.Finding{{Severity: checks.Blocker}, {Severity: checks.Info}}, PlanVerdict{Blocked: true, Blockers: 1, Info: 1}},
		{"every blocker waived", []checks.Finding{{Severity: checks.Blocker, Waived: true}, {Severity: checks.Warning}, {Severity: checks.Unknown}}, PlanVerdict{Blockers: 1, WaivedBlockers: 1, Warnings: 1, Unknown: 1}},
		{"one of two waived", []checks.Finding{{Severity: checks.Blocker, Waived: true}, {Severity: checks.Blocker}}, PlanVerdict{Blocked: true, Blockers: 2, WaivedBlockers: 1}},
	} {
		var v PlanVerdict
		v.Count(tc.fs)
		if v != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, v, tc.want)
		}
	}
}

// TestPlanTableVerdictLines: the last line says what apply will do.
func TestPlanTableVerdictLines(t *testing.T) {
	for _, tc := range []struct {
		fs   []checks.Finding
		want string
	}{
		{nil, "Ready: 0 blocker(s)"},
		{[]checks.Finding{{ID: "KUP-X-001", Severity: checks.Blocker, Waived: true}}, "Ready, with waivers"},
		{[]checks.Finding{{ID: "KUP-X-001", Severity: checks.Blocker}}, "Blocked: 1 blocker(s)"},
	} {
		r := &Plan{Findings: tc.fs}
		r.Verdict.Count(tc.fs)
		var b bytes.Buffer
		if err := r.WriteTable(&b, PlanTableOptions{}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("want %q in:\n%s", tc.want, b.String())
		}
	}
}
