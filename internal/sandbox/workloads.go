package sandbox

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Workload is one seeded workload and the PDB protecting it, described as
// data so tests can state what they expect of it.
type Workload struct {
	Namespace string
	Name      string
	Kind      string // Deployment, StatefulSet, DaemonSet, Pod
	Replicas  int32
	// PDB is nil when the workload has none.
	PDB *PDBSpec
	// NoRequests leaves the containers without requests or limits.
	NoRequests bool
	// CrashLoop makes the pods crash-loop (never Ready).
	CrashLoop bool
	// EmptyDir gives the pods an emptyDir volume.
	EmptyDir bool
	// SpreadZones adds a topology spread constraint across zones.
	SpreadZones bool
	// Problem marks what --with-problems seeds.
	Problem bool
}

// PDBSpec is a PodDisruptionBudget in short form.
type PDBSpec struct {
	Name           string
	MinAvailable   *intstr.IntOrString
	MaxUnavailable *intstr.IntOrString
	// Selector overrides the default selector (app=<workload name>).
	Selector map[string]string
}

func count(n int) *intstr.IntOrString   { v := intstr.FromInt32(int32(n)); return &v }
func percent(p int) *intstr.IntOrString { v := intstr.FromString(fmt.Sprintf("%d%%", p)); return &v }
func pdb(name string, minAvail, maxUnavail *intstr.IntOrString) *PDBSpec {
	return &PDBSpec{Name: name, MinAvailable: minAvail, MaxUnavailable: maxUnavail}
}

// DefaultWorkloads is the realistic mix `--workloads default` seeds for a
// sandbox of n nodes: Deployments of different sizes with PDBs of every
// shape (maxUnavailable as a count and as a percent, minAvailable), a
// StatefulSet with an emptyDir and a PDB, pods spread over zones, and a
// DaemonSet. Every container has requests.
func DefaultWorkloads(nodes int) []Workload {
	frontend := int32(max(4, nodes))
	return []Workload{
		{Namespace: "shop", Name: "frontend", Kind: "Deployment", Replicas: frontend, PDB: pdb("frontend", nil, percent(10))},
		{Namespace: "shop", Name: "cart", Kind: "Deployment", Replicas: 6, PDB: pdb("cart", nil, count(1))},
		{Namespace: "shop", Name: "checkout", Kind: "Deployment", Replicas: 4, PDB: pdb("checkout", count(3), nil)},
		{Namespace: "shop", Name: "search", Kind: "Deployment", Replicas: 5, SpreadZones: true, PDB: pdb("search", nil, percent(25))},
		{Namespace: "data", Name: "db", Kind: "StatefulSet", Replicas: 3, EmptyDir: true, PDB: pdb("db", nil, count(1))},
		{Namespace: "data", Name: "reports", Kind: "Deployment", Replicas: 2, PDB: pdb("reports", percent(50), nil)},
		{Namespace: "monitoring", Name: "node-agent", Kind: "DaemonSet"},
	}
}

// ProblemWorkloads is what `--with-problems` adds: each is something
// kup's preflight must name.
func ProblemWorkloads() []Workload {
	return []Workload{
		// minAvailable 1 of 1 replica: 0 disruptions allowed, ever.
		{Namespace: "problems", Name: "singleton", Kind: "Deployment", Replicas: 1, PDB: pdb("singleton", count(1), nil), Problem: true},
		// A bare pod: a drain deletes it for good.
		{Namespace: "problems", Name: "unmanaged", Kind: "Pod", Replicas: 1, Problem: true},
		// Two PDBs select the same pods: the Eviction API refuses outright.
		{Namespace: "problems", Name: "double-covered", Kind: "Deployment", Replicas: 2, PDB: pdb("double-covered-a", nil, count(1)), Problem: true},
		{Namespace: "problems", Name: "double-covered-b", Kind: "PDBOnly", PDB: &PDBSpec{Name: "double-covered-b", MaxUnavailable: count(1), Selector: map[string]string{"app": "double-covered"}}, Problem: true},
		// A PDB whose selector matches no pod.
		{Namespace: "problems", Name: "selects-nothing", Kind: "PDBOnly", PDB: &PDBSpec{Name: "selects-nothing", MinAvailable: count(1), Selector: map[string]string{"app": "does-not-exist"}}, Problem: true},
		{Namespace: "problems", Name: "crashloop", Kind: "Deployment", Replicas: 1, CrashLoop: true, Problem: true},
		{Namespace: "problems", Name: "no-requests", Kind: "Deployment", Replicas: 2, NoRequests: true, Problem: true},
	}
}

// ScaleWorkloads are n Deployments of r replicas, each with a 10%
// maxUnavailable PDB, for benchmarks.
func ScaleWorkloads(n, r int) []Workload {
	var ws []Workload
	for i := range n {
		name := fmt.Sprintf("app-%03d", i)
		ws = append(ws, Workload{Namespace: "bench", Name: name, Kind: "Deployment", Replicas: int32(r), PDB: pdb(name, nil, percent(10))})
	}
	return ws
}

func (c *Cluster) seed(ctx context.Context, opts Options) error {
	var ws []Workload
	if opts.Workloads == "default" {
		ws = append(ws, DefaultWorkloads(opts.Nodes)...)
	}
	if opts.WithProblems {
		ws = append(ws, ProblemWorkloads()...)
	}
	ws = append(ws, ScaleWorkloads(opts.Deployments, opts.Replicas)...)
	if len(ws) > 0 {
		c.progressf("seeding %d workloads", len(ws))
	}
	return c.Apply(ctx, ws...)
}

// Apply creates the workloads (and their namespaces and PDBs) in the
// sandbox; objects that already exist are left alone.
func (c *Cluster) Apply(ctx context.Context, ws ...Workload) error {
	cs := c.Client()
	seen := map[string]bool{}
	for _, w := range ws {
		if !seen[w.Namespace] {
			seen[w.Namespace] = true
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.Namespace, Labels: map[string]string{SandboxLabel: "true"}}}
			if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating namespace %s: %w", w.Namespace, err)
			}
		}
	}
	return parallel(ctx, len(ws), 8, func(ctx context.Context, i int) error {
		w := ws[i]
		if err := c.createWorkload(ctx, w); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s/%s: %w", w.Kind, w.Namespace, w.Name, err)
		}
		if w.PDB != nil {
			if err := c.createPDB(ctx, w); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating PodDisruptionBudget %s/%s: %w", w.Namespace, w.PDB.Name, err)
			}
		}
		return nil
	})
}

func (w Workload) labels() map[string]string {
	return map[string]string{"app": w.Name, SandboxLabel: "true"}
}

// PodRequests is what each of w's pods requests.
func (w Workload) PodRequests() corev1.ResourceList {
	return w.podTemplate().Spec.Containers[0].Resources.Requests
}

func (w Workload) podTemplate() corev1.PodTemplateSpec {
	container := corev1.Container{
		Name:  "app",
		Image: "registry.k8s.io/pause:3.10",
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}},
	}
	if w.NoRequests {
		container.Resources = corev1.ResourceRequirements{}
		container.ReadinessProbe = nil
	}
	spec := corev1.PodSpec{
		Containers:                    []corev1.Container{container},
		TerminationGracePeriodSeconds: ptr.To[int64](5),
		// kwok nodes carry no taints, but tolerate kwok's own in case a
		// user's sandbox adds it.
		Tolerations: []corev1.Toleration{{Key: KwokNodeAnnotation, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
	}
	if w.EmptyDir {
		spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	}
	if w.SpreadZones {
		spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": w.Name}},
		}}
	}
	meta := metav1.ObjectMeta{Labels: w.labels()}
	if w.CrashLoop {
		meta.Annotations = map[string]string{CrashLoopAnnotation: "true"}
	}
	return corev1.PodTemplateSpec{ObjectMeta: meta, Spec: spec}
}

func (c *Cluster) createWorkload(ctx context.Context, w Workload) error {
	cs := c.Client()
	om := metav1.ObjectMeta{Name: w.Name, Namespace: w.Namespace, Labels: w.labels()}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": w.Name}}
	var err error
	switch w.Kind {
	case "Deployment":
		_, err = cs.AppsV1().Deployments(w.Namespace).Create(ctx, &appsv1.Deployment{ObjectMeta: om, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(w.Replicas), Selector: sel, Template: w.podTemplate(),
		}}, metav1.CreateOptions{})
	case "StatefulSet":
		_, err = cs.AppsV1().StatefulSets(w.Namespace).Create(ctx, &appsv1.StatefulSet{ObjectMeta: om, Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(w.Replicas), Selector: sel, Template: w.podTemplate(), ServiceName: w.Name,
			PodManagementPolicy: appsv1.ParallelPodManagement,
		}}, metav1.CreateOptions{})
	case "DaemonSet":
		_, err = cs.AppsV1().DaemonSets(w.Namespace).Create(ctx, &appsv1.DaemonSet{ObjectMeta: om, Spec: appsv1.DaemonSetSpec{
			Selector: sel, Template: w.podTemplate(),
		}}, metav1.CreateOptions{})
	case "Pod":
		t := w.podTemplate()
		om.Labels = t.Labels
		_, err = cs.CoreV1().Pods(w.Namespace).Create(ctx, &corev1.Pod{ObjectMeta: om, Spec: t.Spec}, metav1.CreateOptions{})
	case "PDBOnly":
	default:
		return fmt.Errorf("unknown workload kind %q", w.Kind)
	}
	return err
}

func (c *Cluster) createPDB(ctx context.Context, w Workload) error {
	sel := w.PDB.Selector
	if sel == nil {
		sel = map[string]string{"app": w.Name}
	}
	p := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: w.PDB.Name, Namespace: w.Namespace, Labels: map[string]string{SandboxLabel: "true"}},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: w.PDB.MinAvailable, MaxUnavailable: w.PDB.MaxUnavailable,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
		},
	}
	_, err := c.Client().PolicyV1().PodDisruptionBudgets(w.Namespace).Create(ctx, p, metav1.CreateOptions{})
	return err
}

// waitWorkloadsSettled waits until every Deployment, StatefulSet and
// DaemonSet that is not meant to crash-loop has all replicas ready, and
// every PDB's status reflects its current generation.
func (c *Cluster) waitWorkloadsSettled(ctx context.Context, timeout time.Duration) error {
	cs := c.Client()
	return waitFor(ctx, timeout, "seeded workloads available", c.Processes[Kwok], func(ctx context.Context) error {
		deps, err := cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, d := range deps.Items {
			if d.Spec.Template.Annotations[CrashLoopAnnotation] != "" {
				continue
			}
			if d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas != ptr.Deref(d.Spec.Replicas, 1) || d.Status.UpdatedReplicas != ptr.Deref(d.Spec.Replicas, 1) {
				return fmt.Errorf("deployment %s/%s: %d of %d available", d.Namespace, d.Name, d.Status.AvailableReplicas, ptr.Deref(d.Spec.Replicas, 1))
			}
		}
		sts, err := cs.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, s := range sts.Items {
			if s.Status.ObservedGeneration < s.Generation || s.Status.AvailableReplicas != ptr.Deref(s.Spec.Replicas, 1) {
				return fmt.Errorf("statefulset %s/%s: %d of %d available", s.Namespace, s.Name, s.Status.AvailableReplicas, ptr.Deref(s.Spec.Replicas, 1))
			}
		}
		dss, err := cs.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, d := range dss.Items {
			if d.Status.ObservedGeneration < d.Generation || d.Status.DesiredNumberScheduled == 0 && d.Status.ObservedGeneration == 0 || d.Status.NumberAvailable < d.Status.DesiredNumberScheduled {
				return fmt.Errorf("daemonset %s/%s: %d of %d available", d.Namespace, d.Name, d.Status.NumberAvailable, d.Status.DesiredNumberScheduled)
			}
		}
		pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, p := range pdbs.Items {
			if p.Status.ObservedGeneration < p.Generation {
				return fmt.Errorf("poddisruptionbudget %s/%s: status not yet computed", p.Namespace, p.Name)
			}
		}
		return nil
	})
}
