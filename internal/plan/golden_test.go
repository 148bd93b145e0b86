package plan

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenScenarios are small clusters whose whole plan is kept in testdata/,
// rendered as text and as the JSON a plan file holds.
func goldenScenarios() map[string]Input {
	shop := func() Input {
		nodes := []*v1.Node{
			controlPlane("cp-1", "z-a"),
			worker("w-a1", "z-a", 8), worker("w-a2", "z-a", 8), worker("w-a3", "z-a", 8, cordoned),
			worker("w-b1", "z-b", 8), worker("w-b2", "z-b", 8), worker("w-b3", "z-b", 8),
		}
		pods := concat(
			app("shop", "cart", 200, "w-a1", "w-a1", "w-a1", "w-b1", "w-b2"),
			app("shop", "web", 300, "w-a1", "w-a2", "w-b1", "w-b2", "w-b3", "w-a3"),
			app("shop", "db", 1000, "w-b3"),
			[]*v1.Pod{
				podOn("ops", "debug", "w-a2", 100, "", nil),
				podOn("kube-system", "proxy-cp-1", "cp-1", 100, "DaemonSet", nil),
				podOn("kube-system", "coredns-0", "cp-1", 100, "ReplicaSet", map[string]string{"k8s-app": "kube-dns"}),
			},
		)
		pods[len(pods)-1].Spec.Tolerations = []v1.Toleration{{Key: ControlPlaneLabel, Operator: v1.TolerationOpExists}}
		return Input{
			Nodes: nodes, Pods: pods, ToUpgrade: names(nodes),
			PDBs: []*policyv1.PodDisruptionBudget{
				pdb("shop", "cart", 5, 4), // maxUnavailable 1
				pdb("shop", "web", 6, 4),  // maxUnavailable 2
				pdb("shop", "db", 1, 1),   // one replica, minAvailable 1
			},
			Policy: Policy{MaxUnavailable: count(3)},
		}
	}
	zones := func() Input {
		var nodes []*v1.Node
		for _, z := range []string{"z-a", "z-b", "z-c"} {
			for i := 1; i <= 4; i++ {
				nodes = append(nodes, worker(fmt.Sprintf("%s-%d", z, i), z, 8))
			}
		}
		pods := concat(
			app("pay", "api", 500, "z-a-1", "z-a-2", "z-a-3", "z-b-1", "z-b-2", "z-c-1", "z-c-4"),
			app("pay", "worker", 250, "z-a-4", "z-b-3", "z-b-4", "z-c-2", "z-c-3"),
		)
		return Input{
			Nodes: nodes, Pods: pods, ToUpgrade: names(nodes),
			PDBs:   []*policyv1.PodDisruptionBudget{pdb("pay", "api", 7, 5), pdb("pay", "worker", 5, 4)},
			Policy: Policy{MaxUnavailable: percent(25), ZoneByZone: true},
		}
	}
	tight := func() Input {
		nodes := []*v1.Node{worker("n1", "", 4), worker("n2", "", 4), worker("n3", "", 4), worker("n4", "", 4), worker("gpu-1", "", 4)}
		nodes[4].Labels["accelerator"] = "a100"
		pods := concat(
			app("ml", "train", 3000, "gpu-1"),
			app("web", "front", 1500, "n1", "n1", "n2", "n3"),
			app("web", "cache", 2500, "n4"),
		)
		pods[0].Spec.NodeSelector = map[string]string{"accelerator": "a100"}
		return Input{
			Nodes: nodes, Pods: pods, ToUpgrade: names(nodes),
			Policy: Policy{MaxUnavailable: count(4), Canary: noCanary()},
		}
	}
	return map[string]Input{"shop": shop(), "zones-percent": zones(), "tight-capacity": tight()}
}

func TestGolden(t *testing.T) {
	for name, in := range goldenScenarios() {
		t.Run(name, func(t *testing.T) {
			p := PlanWaves(in)
			js, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got := render(p, LowerBound(in, 12*time.Minute, 3*time.Minute)) + "\n" + string(js) + "\n"
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run go test -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("plan for %s differs from %s (go test -update to accept):\n%s", name, path, got)
			}
			var back Plan
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatalf("plan JSON does not read back: %v", err)
			}
			if again, _ := json.MarshalIndent(back, "", "  "); string(again) != string(js) {
				t.Errorf("plan JSON does not round-trip")
			}
		})
	}
}

// render is a plain text view of a plan for review in golden files.
func render(p Plan, b Bound) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d waves; lower bound %d waves, %s, decided by %s\n", len(p.Waves), b.Waves, b.Makespan.Duration, b.DecidedBy)
	for _, t := range b.Terms {
		fmt.Fprintf(&sb, "  bound %-18s %3d  %s\n", t.Name, t.Waves, t.Detail)
	}
	for _, w := range p.Waves {
		fmt.Fprintf(&sb, "wave %-2d %-28s zone=%-4s pods=%-3d limit: %s", w.Index, strings.Join(w.Nodes, ","), w.Zone, w.PodsEvicted, w.Limit.Reason)
		if w.Limit.HeldBack > 0 {
			fmt.Fprintf(&sb, " (%d held back, first %s)", w.Limit.HeldBack, w.Limit.Node)
		}
		sb.WriteString("\n")
		for _, bw := range w.BudgetWaits {
			fmt.Fprintf(&sb, "        waits: %s\n", bw)
		}
		if len(w.Cordoned) > 0 {
			fmt.Fprintf(&sb, "        cordoned before, left cordoned: %s\n", strings.Join(w.Cordoned, ", "))
		}
		if len(w.Unmanaged) > 0 {
			fmt.Fprintf(&sb, "        deleted for good (no controller): %s\n", strings.Join(w.Unmanaged, ", "))
		}
	}
	for _, bl := range p.Blocked {
		fmt.Fprintf(&sb, "blocked %s (%s): %s\n", bl.Node, bl.Cause, bl.Reason)
	}
	return sb.String()
}
