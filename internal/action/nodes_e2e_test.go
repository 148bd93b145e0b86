package action_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/plan"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestNodesUpgradeDryRun: `kup nodes upgrade --dry-run` prints the waves,
// says they overlap when kup would run them continuously, prints the
// lower bound, and changes nothing: no node cordoned or tainted, every
// kubelet where it was. A malformed --to is a usage error.
func TestNodesUpgradeDryRun(t *testing.T) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.37.2", NodeVersion: "v1.36.3", Nodes: 6, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs := c.Client()

	for _, tc := range []struct {
		name       string
		continuous bool
		want       string
	}{
		{"continuous", true, "kup starts each node as soon as its PDBs and --max-unavailable allow (--continuous)"},
		{"batched", false, "each wave starts once the previous wave's drains are done (--overlap-waves)"},
	} {
		// Both overlap, so the overlap bound comes first; it is below
		// the bound of waves one after another (6 waves here).
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			a := &action.NodesUpgrade{Config: c.RESTConfig(), DryRun: true, Out: &out, PerNode: 30 * time.Second, PodReady: 5 * time.Second,
				Options: rollout.Options{Target: "v1.37.2", Overlap: true, Continuous: tc.continuous,
					Policy: plan.Policy{MaxUnavailable: intstr.FromInt32(2)}}}
			res, err := a.Run(ctx)
			if err != nil || res != nil {
				t.Fatalf("dry run: result %v, err %v; want no result and no error\n%s", res, err, out.String())
			}
			text := out.String()
			t.Logf("dry run:\n%s", text)
			for _, w := range []string{"6 node(s) to roll to v1.37.2 in ", "  wave 1 ", "limited by: canary", tc.want, "Lower bound: ", "makespan ≥ ", "with --overlap-waves=false, waves one after another)"} {
				if !strings.Contains(text, w) {
					t.Errorf("dry run output lacks %q", w)
				}
			}
			var overlap, serial time.Duration
			if i := strings.Index(text, "makespan ≥ "); i >= 0 {
				overlap, _ = time.ParseDuration(strings.Fields(text[i+len("makespan ≥ "):])[0])
			}
			if i := strings.Index(text, "(≥ "); i >= 0 {
				serial, _ = time.ParseDuration(strings.Fields(text[i+len("(≥ "):])[0])
			}
			if overlap <= 0 || serial <= overlap {
				t.Errorf("bounds: %s with overlapping waves, %s one after another; want both, the first smaller", overlap, serial)
			}
		})
	}

	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Spec.Unschedulable || len(n.Spec.Taints) > 0 || n.Status.NodeInfo.KubeletVersion != "v1.36.3" {
			t.Errorf("node %s after a dry run: unschedulable=%v taints=%v kubelet %s; want untouched at v1.36.3",
				n.Name, n.Spec.Unschedulable, n.Spec.Taints, n.Status.NodeInfo.KubeletVersion)
		}
	}

	_, err = (&action.NodesUpgrade{Config: c.RESTConfig(), DryRun: true, Out: &bytes.Buffer{}, Options: rollout.Options{Target: "one.two"}}).Run(ctx)
	var re *action.ResultError
	if !errors.As(err, &re) || re.Code != action.CodeUsage || !strings.Contains(err.Error(), "--to") {
		t.Errorf("--to one.two: err %v, want a usage error naming --to", err)
	}
}
