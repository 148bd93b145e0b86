package sandbox

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestKwokStagesPodWorkers: kwok's configuration file carries a
// KwokConfiguration only when pod workers are asked for, and then with
// every parallelism kwok v0.8.0 refuses at zero set (it does not default a
// configuration it reads; TestSandboxEndToEnd starts kwok with one).
func TestKwokStagesPodWorkers(t *testing.T) {
	for _, tc := range []struct {
		workers int
		want    float64 // podPlayStageParallelism; 0: no KwokConfiguration
	}{
		{0, 0},
		{16, 16},
		{1, 1},
	} {
		var confs []map[string]any
		stages := 0
		for doc := range strings.SplitSeq(kwokStages(5*time.Second, tc.workers), "---\n") {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("workers %d: a document does not parse: %v\n%s", tc.workers, err, doc)
			}
			switch m["kind"] {
			case "KwokConfiguration":
				confs = append(confs, m)
			case "Stage":
				stages++
			default:
				t.Errorf("workers %d: unexpected kind %v", tc.workers, m["kind"])
			}
		}
		if stages != 8 {
			t.Errorf("workers %d: %d stages, want 8", tc.workers, stages)
		}
		if tc.want == 0 {
			if len(confs) != 0 {
				t.Errorf("workers 0: %d KwokConfigurations, want none (kwok's defaults)", len(confs))
			}
			continue
		}
		if len(confs) != 1 {
			t.Fatalf("workers %d: %d KwokConfigurations, want 1", tc.workers, len(confs))
		}
		if got := confs[0]["apiVersion"]; got != "config.kwok.x-k8s.io/v1alpha1" {
			t.Errorf("workers %d: apiVersion %v", tc.workers, got)
		}
		opts, _ := confs[0]["options"].(map[string]any)
		if got := opts["podPlayStageParallelism"]; got != tc.want {
			t.Errorf("workers %d: podPlayStageParallelism %v, want %v", tc.workers, got, tc.want)
		}
		for _, k := range []string{"nodePlayStageParallelism", "nodeLeaseParallelism", "podsOnNodeSyncParallelism"} {
			if v, _ := opts[k].(float64); v <= 0 {
				t.Errorf("workers %d: %s is %v; kwok exits unless it is above 0", tc.workers, k, opts[k])
			}
		}
	}
}
