package plan

import (
	"fmt"
	"math/rand/v2"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// shape says how large a random cluster to build.
type shape struct {
	nodesMin, nodesMax       int
	deploysMin, deploysMax   int
	replicasMin, replicasMax int
	namespaces               int
	controlPlane             bool // maybe add 1-3 control-plane nodes
	everyPDB                 bool // every deployment gets a PDB, else about 9 in 10
	// fill is the share of the workers' cpu and memory the deployments
	// request, which keeps every drain feasible with room to spare.
	fill float64
}

// world is a random cluster and what the test knows about it
// independently of the planner: which deployment each pod belongs to.
type world struct {
	nodes  []*v1.Node
	pods   []*v1.Pod
	pdbs   []*policyv1.PodDisruptionBudget
	policy Policy
	// deploy maps a pod to its deployment index, -1 for others.
	deploy map[*v1.Pod]int
	// pdbOf is the PDB of each deployment, nil when it has none.
	pdbOf []*policyv1.PodDisruptionBudget
}

var zoneNames = []string{"z-a", "z-b", "z-c"}

// generate builds a random cluster: nodes in 3 zones (a few cordoned, maybe
// control-plane nodes), a DaemonSet pod per node, deployments with PDBs of
// mixed shape whose replicas are spread at random over the workers that
// have room, and a few unmanaged pods.
func generate(rng *rand.Rand, s shape) world {
	w := world{deploy: map[*v1.Pod]int{}}
	nNodes := s.nodesMin + rng.IntN(s.nodesMax-s.nodesMin+1)
	type room struct{ cpu, mem int64 }
	free := map[string]*room{}
	var workers []*v1.Node
	for i := range nNodes {
		cpu := int64(8 + 8*rng.IntN(2))
		n := worker(fmt.Sprintf("node-%03d", i), zoneNames[rng.IntN(len(zoneNames))], cpu)
		n.Status.Allocatable[v1.ResourceMemory] = *resource.NewQuantity(cpu*4<<30, resource.BinarySI)
		if rng.IntN(12) == 0 {
			n.Spec.Unschedulable = true
		}
		w.nodes = append(w.nodes, n)
		workers = append(workers, n)
		free[n.Name] = &room{cpu * 1000, cpu * 4 << 30}
	}
	if s.controlPlane && rng.IntN(3) == 0 {
		for i := range 1 + rng.IntN(3) {
			w.nodes = append(w.nodes, controlPlane(fmt.Sprintf("cp-%d", i), zoneNames[i%3]))
		}
	}
	for _, n := range w.nodes {
		ds := podOn("kube-system", "proxy-"+n.Name, n.Name, 100, "DaemonSet", map[string]string{"app": "proxy"})
		ds.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}}
		w.pods = append(w.pods, ds)
		w.deploy[ds] = -1
		if r := free[n.Name]; r != nil {
			r.cpu -= 100
		}
	}

	var capCPU, capMem int64
	for _, n := range workers {
		if !n.Spec.Unschedulable {
			capCPU += n.Status.Allocatable.Cpu().MilliValue()
			capMem += n.Status.Allocatable.Memory().Value()
		}
	}
	nDeploys := s.deploysMin + rng.IntN(s.deploysMax-s.deploysMin+1)
	replicas := make([]int, nDeploys)
	total := 0
	for d := range replicas {
		replicas[d] = s.replicasMin + rng.IntN(s.replicasMax-s.replicasMin+1)
		total += replicas[d]
	}
	perCPU := int64(s.fill * float64(capCPU) / float64(total))
	perMem := int64(s.fill * float64(capMem) / float64(total))

	for d := range nDeploys {
		ns := fmt.Sprintf("ns-%d", d%s.namespaces)
		name := fmt.Sprintf("dep-%d", d)
		cpu := max(10, perCPU/2+rng.Int64N(perCPU+1))
		mem := max(1<<20, perMem/2+rng.Int64N(perMem+1))
		zone := ""
		if rng.IntN(5) == 0 {
			zone = zoneNames[rng.IntN(len(zoneNames))]
		}
		placed := 0
		for r := range replicas[d] {
			p := podOn(ns, fmt.Sprintf("%s-%d", name, r), "", 0, "ReplicaSet", map[string]string{"app": name})
			p.Spec.Containers[0].Resources.Requests = v1.ResourceList{
				v1.ResourceCPU:    *resource.NewMilliQuantity(cpu, resource.DecimalSI),
				v1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
			}
			if zone != "" {
				p.Spec.NodeSelector = map[string]string{ZoneLabel: zone}
			}
			// A random worker with room, probing onward from a random start:
			// replicas end up spread, sometimes two on a node.
			start := rng.IntN(len(workers))
			for k := range workers {
				n := workers[(start+k)%len(workers)]
				f := free[n.Name]
				if n.Spec.Unschedulable || (zone != "" && n.Labels[ZoneLabel] != zone) || f.cpu < cpu || f.mem < mem {
					continue
				}
				f.cpu -= cpu
				f.mem -= mem
				p.Spec.NodeName = n.Name
				break
			}
			if p.Spec.NodeName == "" {
				continue // no room: the deployment runs fewer replicas
			}
			placed++
			w.pods = append(w.pods, p)
			w.deploy[p] = d
		}
		w.pdbOf = append(w.pdbOf, nil)
		if placed == 0 || (!s.everyPDB && rng.IntN(10) == 0) {
			continue // some deployments have no PDB
		}
		pdb := mixedPDB(rng, ns, name, int32(placed))
		w.pdbs = append(w.pdbs, pdb)
		w.pdbOf[d] = pdb
	}

	for i := range rng.IntN(4) {
		n := workers[rng.IntN(len(workers))]
		if free[n.Name].cpu < 50 {
			continue
		}
		free[n.Name].cpu -= 50
		p := podOn("debug", fmt.Sprintf("shell-%d", i), n.Name, 50, "", map[string]string{"app": "shell"})
		w.pods = append(w.pods, p)
		w.deploy[p] = -1
	}

	w.policy = Policy{ZoneByZone: rng.IntN(2) == 0}
	if rng.IntN(2) == 0 {
		w.policy.MaxUnavailable = intstr.FromInt32(int32(1 + rng.IntN(5)))
	} else {
		w.policy.MaxUnavailable = intstr.FromString(fmt.Sprintf("%d%%", []int{10, 20, 30}[rng.IntN(3)]))
	}
	if rng.IntN(3) == 0 {
		w.policy.Canary = noCanary()
	}
	return w
}

// mixedPDB builds one of the common PDB shapes, with the status the
// disruption controller would write when every pod is healthy (see
// pkg/controller/disruption: maxUnavailable and minAvailable percentages
// both round up).
func mixedPDB(rng *rand.Rand, ns, name string, expected int32) *policyv1.PodDisruptionBudget {
	p := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}},
	}
	var desired int32
	switch rng.IntN(4) {
	case 0:
		v := intstr.FromInt32(1)
		p.Spec.MaxUnavailable = &v
	case 1:
		v := intstr.FromString("10%")
		p.Spec.MaxUnavailable = &v
	case 2:
		v := intstr.FromString("25%")
		p.Spec.MaxUnavailable = &v
	case 3:
		v := intstr.FromString("90%")
		p.Spec.MinAvailable = &v
	}
	if p.Spec.MaxUnavailable != nil {
		mu, _ := intstr.GetScaledValueFromIntOrPercent(p.Spec.MaxUnavailable, int(expected), true)
		desired = max(expected-int32(mu), 0)
	} else {
		ma, _ := intstr.GetScaledValueFromIntOrPercent(p.Spec.MinAvailable, int(expected), true)
		desired = int32(ma)
	}
	p.Status = policyv1.PodDisruptionBudgetStatus{
		ExpectedPods: expected, DesiredHealthy: desired, CurrentHealthy: expected,
		DisruptionsAllowed: max(expected-desired, 0),
	}
	return p
}
