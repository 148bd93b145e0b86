package deprecation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScanMetricsFixture(t *testing.T) {
	// A kube-apiserver 1.24 /metrics page, trimmed to a few families of each
	// type, where clients still call several APIs removed in 1.25 and 1.26.
	f, err := os.Open(filepath.Join("testdata", "metrics", "apiserver-1.24.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	usages, err := ScanMetrics(f)
	if err != nil {
		t.Fatalf("ScanMetrics: %v", err)
	}

	type row struct {
		entry, kind, resource, sub string
		removed                    Minor
		basis                      string
	}
	want := []row{
		{"stable.example.com/v1beta1 crontabs", "", "stable.example.com/v1beta1/crontabs", "", 0, BasisMetric},
		{"batch/v1beta1 CronJob", "CronJob", "batch/v1beta1/cronjobs", "", 25, BasisGuide},
		{"discovery.k8s.io/v1beta1 EndpointSlice", "EndpointSlice", "discovery.k8s.io/v1beta1/endpointslices", "", 25, BasisGuide},
		{"policy/v1beta1 Eviction", "Eviction", "policy/v1beta1/pods", "eviction", 25, BasisLifecycle},
		{"policy/v1beta1 PodDisruptionBudget", "PodDisruptionBudget", "policy/v1beta1/poddisruptionbudgets", "", 25, BasisGuide},
		{"autoscaling/v2beta2 HorizontalPodAutoscaler", "HorizontalPodAutoscaler", "autoscaling/v2beta2/horizontalpodautoscalers", "", 26, BasisGuide},
		{"flowcontrol.apiserver.k8s.io/v1beta1 FlowSchema", "FlowSchema", "flowcontrol.apiserver.k8s.io/v1beta1/flowschemas", "status", 26, BasisGuide},
	}
	if len(usages) != len(want) {
		for _, u := range usages {
			t.Log(u)
		}
		t.Fatalf("got %d usages, want %d", len(usages), len(want))
	}
	for i, w := range want {
		u := usages[i]
		got := row{u.Entry.String(), u.Object.Kind, u.Where.Resource, u.Where.Subresource, u.Entry.RemovedIn, u.Entry.Basis}
		if got != w {
			t.Errorf("usage %d = %+v, want %+v", i, got, w)
		}
		if u.Source != SourceMetric {
			t.Errorf("usage %d source = %q", i, u.Source)
		}
	}
	// Upgrading this 1.24 cluster to 1.25 breaks the four 1.25 usages, not the
	// HPA and FlowSchema ones (1.26) nor the CRD (no removal known).
	broken := 0
	for _, u := range usages {
		if u.Removed(25) {
			broken++
		}
	}
	if broken != 4 {
		t.Errorf("%d usages removed by 1.25, want 4", broken)
	}
}

func TestScanMetrics(t *testing.T) {
	const help = "# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested.\n" +
		"# TYPE apiserver_requested_deprecated_apis gauge\n"
	tests := []struct {
		name      string
		text      string
		wantKinds []string
		wantErr   string
	}{
		{name: "empty page", text: ""},
		{name: "metric absent", text: "# TYPE go_goroutines gauge\ngo_goroutines 12\n"},
		{
			name:      "zero values are ignored",
			text:      help + `apiserver_requested_deprecated_apis{group="batch",removed_release="1.25",resource="cronjobs",subresource="",version="v1beta1"} 0` + "\n",
			wantKinds: nil,
		},
		{
			name:      "no trailing newline, untyped",
			text:      `apiserver_requested_deprecated_apis{group="batch",removed_release="1.25",resource="cronjobs",subresource="",version="v1beta1"} 1`,
			wantKinds: []string{"CronJob"},
		},
		{
			name: "unrelated lines the parser would refuse do not matter",
			text: "this is { not prometheus\n" + help +
				`apiserver_requested_deprecated_apis{group="",removed_release="",resource="endpoints",subresource="",version="v1"} 1` + "\n" +
				"another_metric{le=\"oops 3\n",
			wantKinds: []string{"Endpoints"},
		},
		{
			name:    "malformed series of the metric",
			text:    help + `apiserver_requested_deprecated_apis{group="batch",resource="cronjobs" 1` + "\n",
			wantErr: "parsing apiserver_requested_deprecated_apis",
		},
		{
			name: "series without a resource",
			text: help + `apiserver_requested_deprecated_apis{group="batch",version="v1beta1"} 1` + "\n" +
				`apiserver_requested_deprecated_apis{group="batch",removed_release="1.25",resource="cronjobs",subresource="",version="v1beta1"} 1` + "\n",
			wantKinds: []string{"CronJob"},
			wantErr:   "no version or resource",
		},
		{
			name:      "unknown resource with a bad removed_release",
			text:      help + `apiserver_requested_deprecated_apis{group="x.example",removed_release="two",resource="widgets",subresource="",version="v1beta1"} 1` + "\n",
			wantKinds: []string{""},
			wantErr:   "removed_release",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			usages, err := ScanMetrics(strings.NewReader(tt.text))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("ScanMetrics: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("ScanMetrics error = %v, want one mentioning %q", err, tt.wantErr)
			}
			var kinds []string
			for _, u := range usages {
				kinds = append(kinds, u.Object.Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(tt.wantKinds, ",") || len(kinds) != len(tt.wantKinds) {
				t.Errorf("kinds = %q, want %q", kinds, tt.wantKinds)
			}
		})
	}
}
