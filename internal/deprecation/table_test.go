package deprecation

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		apiVersion, kind string
		want             bool
		removedIn        Minor
		deprecatedIn     Minor
		replacement      string
	}{
		{"extensions/v1beta1", "Ingress", true, 22, 14, "networking.k8s.io/v1"},
		{"networking.k8s.io/v1beta1", "Ingress", true, 22, 19, "networking.k8s.io/v1"},
		{"extensions/v1beta1", "Deployment", true, 16, 8, "apps/v1"},
		{"apps/v1beta2", "StatefulSet", true, 16, 9, "apps/v1"},
		{"extensions/v1beta1", "PodSecurityPolicy", true, 16, 11, "policy/v1beta1"},
		{"policy/v1beta1", "PodDisruptionBudget", true, 25, 21, "policy/v1"},
		{"policy/v1beta1", "PodSecurityPolicy", true, 25, 21, NoReplacement},
		{"batch/v1beta1", "CronJob", true, 25, 21, "batch/v1"},
		{"autoscaling/v2beta1", "HorizontalPodAutoscaler", true, 25, 22, "autoscaling/v2"},
		{"autoscaling/v2beta2", "HorizontalPodAutoscaler", true, 26, 23, "autoscaling/v2"},
		{"storage.k8s.io/v1beta1", "CSIStorageCapacity", true, 27, 24, "storage.k8s.io/v1"},
		{"flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema", true, 29, 26, "flowcontrol.apiserver.k8s.io/v1beta3"},
		{"flowcontrol.apiserver.k8s.io/v1beta3", "PriorityLevelConfiguration", true, 32, 29, "flowcontrol.apiserver.k8s.io/v1"},
		{"apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", true, 22, 16, "apiextensions.k8s.io/v1"},
		{"v1", "Endpoints", true, 0, 33, "discovery.k8s.io/v1"},
		// Served, current APIs are not in the table.
		{"apps/v1", "Deployment", false, 0, 0, ""},
		{"networking.k8s.io/v1", "Ingress", false, 0, 0, ""},
		{"v1", "Service", false, 0, 0, ""},
		// Kinds and apiVersions are case-sensitive, as the apiserver treats them.
		{"extensions/v1beta1", "ingress", false, 0, 0, ""},
		{"Extensions/v1beta1", "Ingress", false, 0, 0, ""},
		{"", "", false, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.apiVersion+" "+tt.kind, func(t *testing.T) {
			e, ok := Builtin().Lookup(tt.apiVersion, tt.kind)
			if ok != tt.want {
				t.Fatalf("Lookup(%q, %q) found=%v, want %v", tt.apiVersion, tt.kind, ok, tt.want)
			}
			if !ok {
				return
			}
			if e.APIVersion() != tt.apiVersion || e.Kind != tt.kind {
				t.Errorf("Lookup returned %s", e)
			}
			if e.RemovedIn != tt.removedIn || e.DeprecatedIn != tt.deprecatedIn || e.Replacement != tt.replacement {
				t.Errorf("got removed %s deprecated %s replacement %q, want %s %s %q",
					e.RemovedIn, e.DeprecatedIn, e.Replacement, tt.removedIn, tt.deprecatedIn, tt.replacement)
			}
		})
	}
}

func TestLookupResource(t *testing.T) {
	tests := []struct {
		group, version, resource, sub string
		wantKind                      string // "" for not found
	}{
		{"policy", "v1beta1", "poddisruptionbudgets", "", "PodDisruptionBudget"},
		{"policy", "v1beta1", "pods", "eviction", "Eviction"},
		{"policy", "v1beta1", "poddisruptionbudgets", "status", "PodDisruptionBudget"}, // falls back to the resource
		{"apps", "v1beta1", "deployments", "scale", "Deployment"},
		{"", "v1", "endpoints", "", "Endpoints"},
		{"policy", "v1beta1", "pods", "", ""}, // pods themselves are not deprecated
		{"apps", "v1", "deployments", "", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s/%s", tt.group, tt.version, tt.resource, tt.sub), func(t *testing.T) {
			e, ok := Builtin().LookupResource(tt.group, tt.version, tt.resource, tt.sub)
			if ok != (tt.wantKind != "") || e.Kind != tt.wantKind {
				t.Errorf("LookupResource = %s, %v; want kind %q", e, ok, tt.wantKind)
			}
		})
	}
}

func names(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.String()
	}
	return out
}

func TestRemovedBetween(t *testing.T) {
	tests := []struct {
		name     string
		from, to int
		want     []string // exact list, in order, when exact is true
		exact    bool
		includes []string
		excludes []string
	}{
		{
			name: "1.25 to 1.26", from: 25, to: 26, exact: true,
			want: []string{
				"autoscaling/v2beta2 HorizontalPodAutoscaler",
				"flowcontrol.apiserver.k8s.io/v1beta1 FlowSchema",
				"flowcontrol.apiserver.k8s.io/v1beta1 PriorityLevelConfiguration",
			},
		},
		{
			name: "1.26 to 1.27", from: 26, to: 27, exact: true,
			want: []string{"storage.k8s.io/v1beta1 CSIStorageCapacity"},
		},
		{
			name: "1.31 to 1.32", from: 31, to: 32, exact: true,
			want: []string{
				"flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema",
				"flowcontrol.apiserver.k8s.io/v1beta3 PriorityLevelConfiguration",
			},
		},
		{
			name: "1.21 to 1.25", from: 21, to: 25,
			includes: []string{
				"extensions/v1beta1 Ingress",
				"networking.k8s.io/v1beta1 Ingress",
				"networking.k8s.io/v1beta1 IngressClass",
				"policy/v1beta1 PodDisruptionBudget",
				"policy/v1beta1 PodSecurityPolicy",
				"batch/v1beta1 CronJob",
				"apiextensions.k8s.io/v1beta1 CustomResourceDefinition",
				"rbac.authorization.k8s.io/v1beta1 ClusterRole",
			},
			excludes: []string{
				"autoscaling/v2beta2 HorizontalPodAutoscaler", // 1.26
				"extensions/v1beta1 Deployment",               // 1.16
				"v1 Endpoints",                                // never removed
			},
		},
		{
			name: "the from release itself is excluded", from: 22, to: 24,
			exact: true, want: nil,
		},
		{
			name: "a downgrade or no move removes nothing", from: 26, to: 22,
			exact: true, want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Builtin().RemovedBetween(tt.from, tt.to)
			gotNames := names(got)
			if tt.exact && !slices.Equal(gotNames, tt.want) {
				t.Fatalf("RemovedBetween(%d, %d) = %q, want %q", tt.from, tt.to, gotNames, tt.want)
			}
			for _, w := range tt.includes {
				if !slices.Contains(gotNames, w) {
					t.Errorf("RemovedBetween(%d, %d) lacks %s", tt.from, tt.to, w)
				}
			}
			for _, w := range tt.excludes {
				if slices.Contains(gotNames, w) {
					t.Errorf("RemovedBetween(%d, %d) includes %s", tt.from, tt.to, w)
				}
			}
			for i, e := range got {
				if int(e.RemovedIn) <= tt.from || int(e.RemovedIn) > tt.to {
					t.Errorf("%s removed in %s is outside (%d, %d]", e, e.RemovedIn, tt.from, tt.to)
				}
				if i > 0 && compareEntries(got[i-1], e) > 0 {
					t.Errorf("%s sorts before %s", got[i-1], e)
				}
			}
		})
	}
}

func TestRemovedBy(t *testing.T) {
	ingress, _ := Builtin().Lookup("extensions/v1beta1", "Ingress")
	endpoints, _ := Builtin().Lookup("v1", "Endpoints")
	tests := []struct {
		e     Entry
		minor int
		want  bool
	}{
		{ingress, 21, false},
		{ingress, 22, true},
		{ingress, 30, true},
		{endpoints, 33, false},
		{endpoints, 99, false},
	}
	for _, tt := range tests {
		if got := tt.e.RemovedBy(tt.minor); got != tt.want {
			t.Errorf("%s.RemovedBy(%d) = %v, want %v", tt.e, tt.minor, got, tt.want)
		}
	}
	if !endpoints.DeprecatedBy(33) || endpoints.DeprecatedBy(32) {
		t.Errorf("Endpoints deprecation should start at 1.33")
	}
}

func TestFinalReplacement(t *testing.T) {
	tests := []struct{ apiVersion, kind, want string }{
		{"flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema", "flowcontrol.apiserver.k8s.io/v1"},
		{"flowcontrol.apiserver.k8s.io/v1beta2", "PriorityLevelConfiguration", "flowcontrol.apiserver.k8s.io/v1"},
		{"extensions/v1beta1", "PodSecurityPolicy", NoReplacement}, // via policy/v1beta1, which has none
		{"extensions/v1beta1", "Ingress", "networking.k8s.io/v1"},
		{"v1", "Endpoints", "discovery.k8s.io/v1"},
	}
	for _, tt := range tests {
		e, ok := Builtin().Lookup(tt.apiVersion, tt.kind)
		if !ok {
			t.Fatalf("%s %s missing from the table", tt.apiVersion, tt.kind)
		}
		if got := Builtin().FinalReplacement(e); got != tt.want {
			t.Errorf("FinalReplacement(%s) = %q, want %q", e, got, tt.want)
		}
	}
	for _, tt := range []struct{ apiVersion, kind, want string }{
		{"v1", "Endpoints", "discovery.k8s.io/v1 EndpointSlice"},
		{"batch/v1beta1", "CronJob", "batch/v1 CronJob"},
		{"policy/v1beta1", "PodSecurityPolicy", NoReplacement},
	} {
		e, _ := Builtin().Lookup(tt.apiVersion, tt.kind)
		if got := e.ReplacementAPI(); got != tt.want {
			t.Errorf("%s.ReplacementAPI() = %q, want %q", e, got, tt.want)
		}
	}
}

// TestBuiltinCoversGuide pins the guide's release sections: each must keep
// its entries, all read from the guide.
func TestBuiltinCoversGuide(t *testing.T) {
	tab := Builtin()
	if tab.ReviewedThrough < 32 {
		t.Fatalf("ReviewedThrough = %s, the guide's v1.32 section is older than that", tab.ReviewedThrough)
	}
	for _, minor := range []int{16, 22, 25, 26, 27, 29, 32} {
		removed := tab.RemovedBetween(minor-1, minor)
		guide := 0
		for _, e := range removed {
			if e.Basis == BasisGuide {
				guide++
			}
		}
		if guide == 0 {
			t.Errorf("no guide entry removed in 1.%d", minor)
		}
	}
	for _, e := range tab.Entries() {
		if e.RemovedIn != 0 && e.RemovedIn < 16 {
			t.Errorf("%s removed in %s, before the table's range", e, e.RemovedIn)
		}
		if e.RemovedIn > tab.ReviewedThrough && (e.DeprecatedIn == 0 || e.DeprecatedIn > tab.ReviewedThrough) {
			t.Errorf("%s: a removal after %s is only in the table if it is already deprecated", e, tab.ReviewedThrough)
		}
		if e.Basis == BasisGuide && e.Replacement != NoReplacement && e.ReplacementSince == 0 {
			t.Errorf("%s: the guide says when %s became available; record it", e, e.Replacement)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	valid := `
  - group: batch
    version: v1beta1
    kind: CronJob
    resource: cronjobs
    deprecatedIn: "1.21"
    removedIn: "1.25"
    replacement: batch/v1
    basis: guide`
	tests := []struct {
		name, doc, wantErr string
	}{
		{"no reviewedThrough", "entries:" + valid, "reviewedThrough"},
		{"unquoted release", "reviewedThrough: 1.30\nentries:" + valid, "quoted"},
		{"not 1.x", `reviewedThrough: "2.1"` + "\nentries:" + valid, "1.N"},
		{"duplicate", `reviewedThrough: "1.30"` + "\nentries:" + valid + valid, "same apiVersion and kind"},
		{"unknown field", `reviewedThrough: "1.30"` + "\nentries:" + valid + "\n    removal: \"1.9\"", "unknown field"},
		{"deprecated after removed", `reviewedThrough: "1.30"` + "\nentries:" +
			strings.Replace(valid, `deprecatedIn: "1.21"`, `deprecatedIn: "1.26"`, 1), "after its removal"},
		{"no replacement", `reviewedThrough: "1.30"` + "\nentries:" +
			strings.Replace(valid, "replacement: batch/v1", "", 1), "replacement is required"},
		{"replacement too late", `reviewedThrough: "1.30"` + "\nentries:" + valid + "\n    replacementSince: \"1.25\"", "not before the removal"},
		{"bad basis", `reviewedThrough: "1.30"` + "\nentries:" +
			strings.Replace(valid, "basis: guide", "basis: rumour", 1), "basis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	tab, err := Load(strings.NewReader(`reviewedThrough: "1.30"` + "\nentries:" + valid))
	if err != nil {
		t.Fatalf("Load(valid) = %v", err)
	}
	if e, ok := tab.Lookup("batch/v1beta1", "CronJob"); !ok || e.RemovedIn != 25 {
		t.Errorf("loaded table lookup = %+v, %v", e, ok)
	}
}

func TestMinorJSON(t *testing.T) {
	e, _ := Builtin().Lookup("batch/v1beta1", "CronJob")
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"removedIn":"1.25"`) || !strings.Contains(string(b), `"deprecatedIn":"1.21"`) {
		t.Errorf("entry JSON %s does not write releases as \"1.N\"", b)
	}
	var back Entry
	if err := json.Unmarshal(b, &back); err != nil || back != e {
		t.Errorf("round trip = %+v, %v; want %+v", back, err, e)
	}
}
