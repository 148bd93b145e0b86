package sandbox

import (
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// RolloutMix is the node-rollout benchmark's workload, in namespace
// "bench": 40 Deployments, about 20 pods per node (4,000 on 200 nodes),
// ten under each PDB shape the rollout issue names. The sizes follow how
// PDBs are written in practice: maxUnavailable 1 guards small services
// (3–10 replicas, not scaled with the cluster), the percentage shapes
// guard the large ones. The sizes matter: a Deployment of R replicas on R
// nodes under maxUnavailable 1 needs R waves whatever the tool
// (plan.LowerBound's PDB term), so 100-replica Deployments under
// maxUnavailable 1 would make every strategy but the sequential one
// pointless, and the comparison meaningless.
//
// The sandbox benchmark seeds it; plan's admission simulator rolls the
// same cluster with exact timings.
func RolloutMix(nodes int) []Workload {
	// Scaled down for quick runs, a Deployment keeps at least 10 replicas:
	// below that minAvailable 90% allows no disruption at all and its
	// nodes could never be drained.
	scale := func(r int) int32 { return int32(max(10, int(math.Round(float64(r)*float64(nodes)/200)))) }
	// Each PDB gets its own value: they go into API objects.
	parse := func(s string) *intstr.IntOrString {
		if s == "" {
			return nil
		}
		v := intstr.Parse(s)
		return &v
	}
	var out []Workload
	add := func(shape string, sizes []int, scaled bool, minAvail, maxUnavail string) {
		for i, r := range sizes {
			w := Workload{Namespace: "bench", Name: fmt.Sprintf("%s-%02d", shape, i), Kind: "Deployment", Replicas: int32(r)}
			if scaled {
				w.Replicas = scale(r)
			}
			w.PDB = pdb(w.Name, parse(minAvail), parse(maxUnavail))
			out = append(out, w)
		}
	}
	add("one", []int{3, 4, 5, 5, 6, 6, 8, 8, 10, 10}, false, "", "1")                      // 65
	add("ninety", []int{20, 20, 30, 30, 40, 40, 50, 50, 60, 60}, true, "90%", "")          // 400
	add("quarter", []int{60, 80, 100, 100, 120, 120, 140, 140, 160, 180}, true, "", "25%") // 1,200
	add("tenth", []int{150, 180, 200, 220, 230, 240, 250, 260, 295, 310}, true, "", "10%") // 2,335
	return out
}
