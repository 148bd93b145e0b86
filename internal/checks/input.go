package checks

import (
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kup-project/kup/internal/capacity"
	"github.com/kup-project/kup/internal/deprecation"
	"github.com/kup-project/kup/internal/inventory"
	"github.com/kup-project/kup/internal/version"
)

// Defaults for the Input thresholds.
const (
	// DefaultUpgradeWindow is how long an upgrade is assumed to take when
	// the caller does not say: a certificate expiring within it is a
	// blocker.
	DefaultUpgradeWindow = 24 * time.Hour
	// DefaultLongGracePeriod: pods that may take longer than this to stop
	// slow every drain down.
	DefaultLongGracePeriod = 5 * time.Minute
	// CertWarnBefore: a serving certificate expiring sooner than this is a
	// warning.
	CertWarnBefore = 30 * 24 * time.Hour
	// EtcdQuotaWarn is the share of the backend quota above which etcd is
	// "close to its quota".
	EtcdQuotaWarn = 0.8
)

// Input is everything the checks look at. Only Snapshot is required; a
// nil piece of evidence makes the checks that need it report Unknown.
type Input struct {
	Snapshot *inventory.Snapshot
	// Path is the upgrade path; the API, add-on and skew checks judge
	// every minor it passes through. Nil: those checks report Unknown.
	Path *version.UpgradePath
	// Manifests are the usages found in --manifests files, and the errors
	// met reading them (each yields an Unknown finding).
	Manifests      []deprecation.Usage
	ManifestErrors []string
	// Applied are objects carrying last-applied annotations, beyond the
	// workloads and PDBs the snapshot already holds (see
	// inventory.ReadAppliedObjects); AppliedErr says what could not be
	// listed.
	Applied    []metav1.Object
	AppliedErr string
	// PersistentVolumes lets the drain check tell local volumes apart;
	// PersistentVolumesErr says why they could not be read.
	PersistentVolumes    []corev1.PersistentVolume
	PersistentVolumesErr string
	// ServingCertificate is the apiserver's, from a TLS handshake; nil
	// when not read.
	ServingCertificate *inventory.ServingCertificate
	// Etcd is etcd's health and status; nil when no endpoint is known.
	Etcd *inventory.EtcdStatus
	// Now is the time the checks judge at (default Snapshot.Taken).
	Now time.Time
	// UpgradeWindow is how long the upgrade may take (default
	// DefaultUpgradeWindow).
	UpgradeWindow time.Duration
	// LongGracePeriod (default DefaultLongGracePeriod).
	LongGracePeriod time.Duration
	// APITable and AddonTable override the embedded tables (tests).
	APITable   *deprecation.Table
	AddonTable *AddonTable
}

// Result is everything Run decided.
type Result struct {
	Findings []Finding `json:"findings"`
	// Capacity is the estimate of how many nodes can be down at once.
	Capacity CapacitySummary `json:"capacity"`
	// Addons are the add-ons recognised, with their verdicts.
	Addons []DetectedAddon `json:"addons"`
}

// Run runs every check and returns the findings sorted (see Sort).
func Run(in Input) Result {
	x := newIndex(in)
	var fs []Finding
	fs = append(fs, health(x)...)
	fs = append(fs, apis(x)...)
	fs = append(fs, drain(x)...)
	capFindings, summary := capacityCheck(x)
	fs = append(fs, capFindings...)
	fs = append(fs, hygiene(x)...)
	addonFindings, detected := addons(x)
	fs = append(fs, addonFindings...)
	fs = append(fs, controlPlane(x)...)
	Sort(fs)
	if fs == nil {
		fs = []Finding{}
	}
	return Result{Findings: fs, Capacity: summary, Addons: detected}
}

// index is the Input with the lookups several checks share, built once.
type index struct {
	in   Input
	snap *inventory.Snapshot
	now  time.Time
	// pods are the pods not finished (Succeeded/Failed), by namespace.
	podsByNS map[string][]*corev1.Pod
	pods     []*corev1.Pod
	nodes    map[string]*corev1.Node
	// rsOwner maps namespace/name of a ReplicaSet to its Deployment.
	rsOwner map[string]Object
	pdbs    []*policyv1.PodDisruptionBudget
	// pdbPods[i] are the live pods PDB i selects; podPDBs the reverse.
	pdbPods [][]*corev1.Pod
	podPDBs map[*corev1.Pod][]int
	// fromMinor and toMinor bound the path (0 without one); hopMinors are
	// the control plane's minors after each hop.
	fromMinor, toMinor int
	hopMinors          []int
	// rolled are the nodes the path rolls; nil means every node.
	rolled map[string]bool
}

func newIndex(in Input) *index {
	s := in.Snapshot
	if s == nil {
		s = &inventory.Snapshot{}
	}
	x := &index{in: in, snap: s, now: in.Now, podsByNS: map[string][]*corev1.Pod{},
		nodes: map[string]*corev1.Node{}, rsOwner: map[string]Object{}, podPDBs: map[*corev1.Pod][]int{}}
	if x.now.IsZero() {
		x.now = s.Taken
	}
	if x.in.UpgradeWindow <= 0 {
		x.in.UpgradeWindow = DefaultUpgradeWindow
	}
	if x.in.LongGracePeriod <= 0 {
		x.in.LongGracePeriod = DefaultLongGracePeriod
	}
	for i := range s.Nodes {
		x.nodes[s.Nodes[i].Name] = &s.Nodes[i]
	}
	for i := range s.Pods {
		p := &s.Pods[i]
		if finished(p) {
			continue
		}
		x.pods = append(x.pods, p)
		x.podsByNS[p.Namespace] = append(x.podsByNS[p.Namespace], p)
	}
	for i := range s.ReplicaSets {
		rs := &s.ReplicaSets[i]
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == "Deployment" {
			x.rsOwner[rs.Namespace+"/"+rs.Name] = Object{Kind: "Deployment", Namespace: rs.Namespace, Name: ref.Name}
		}
	}
	// Pods by namespace and label, so a budget's matchLabels narrow its
	// candidates at once: 300 budgets over 30,000 pods in one namespace
	// would otherwise be 9 million selector matches.
	byLabel := map[string]map[string][]*corev1.Pod{}
	if len(s.PDBs) > 0 {
		for _, p := range x.pods {
			m := byLabel[p.Namespace]
			if m == nil {
				m = map[string][]*corev1.Pod{}
				byLabel[p.Namespace] = m
			}
			for k, v := range p.Labels {
				m[k+"="+v] = append(m[k+"="+v], p)
			}
		}
	}
	for i := range s.PDBs {
		pdb := &s.PDBs[i]
		idx := len(x.pdbs)
		x.pdbs = append(x.pdbs, pdb)
		var matched []*corev1.Pod
		// As the eviction API and the disruption controller do: an invalid
		// or nil selector (policy/v1) matches nothing, an empty one
		// everything in the namespace.
		if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err == nil && pdb.Spec.Selector != nil {
			candidates := x.podsByNS[pdb.Namespace]
			for k, v := range pdb.Spec.Selector.MatchLabels {
				if c := byLabel[pdb.Namespace][k+"="+v]; len(c) < len(candidates) {
					candidates = c
				}
			}
			for _, p := range candidates {
				if sel.Matches(labels.Set(p.Labels)) {
					matched = append(matched, p)
					x.podPDBs[p] = append(x.podPDBs[p], idx)
				}
			}
		}
		x.pdbPods = append(x.pdbPods, matched)
	}
	if p := in.Path; p != nil {
		x.fromMinor, x.toMinor = p.From.Minor(), p.To.Minor()
		for _, h := range p.Hops {
			if len(x.hopMinors) == 0 || x.hopMinors[len(x.hopMinors)-1] != h.To.Minor() {
				x.hopMinors = append(x.hopMinors, h.To.Minor())
			}
		}
		x.rolled = map[string]bool{}
		for _, n := range p.Nodes {
			if n.Rolls > 0 {
				x.rolled[n.Node] = true
			}
		}
	}
	return x
}

func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// rolls reports whether the upgrade drains node (every node, without a
// path).
func (x *index) rolls(node string) bool { return x.rolled == nil || x.rolled[node] }

// owner is the workload a pod belongs to: its Deployment (through the
// ReplicaSet), StatefulSet, DaemonSet, Job…, or the pod itself.
func (x *index) owner(p *corev1.Pod) Object {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return Object{Kind: "Pod", Namespace: p.Namespace, Name: p.Name}
	}
	if ref.Kind == "ReplicaSet" {
		if d, ok := x.rsOwner[p.Namespace+"/"+ref.Name]; ok {
			return d
		}
	}
	return Object{Kind: ref.Kind, Namespace: p.Namespace, Name: ref.Name}
}

func podObject(p *corev1.Pod) Object {
	return Object{Kind: "Pod", Namespace: p.Namespace, Name: p.Name}
}

func pdbObject(p *policyv1.PodDisruptionBudget) Object {
	return Object{Kind: "PodDisruptionBudget", Namespace: p.Namespace, Name: p.Name}
}

func nodeObject(name string) Object { return Object{Kind: "Node", Name: name} }

// evicted reports whether a drain of the pod's node evicts it.
func evicted(p *corev1.Pod) bool { return capacity.DrainFate(p).Evicted() }

// byOwner groups pods by their workload, in a stable order.
type ownerGroup struct {
	owner Object
	pods  []*corev1.Pod
}

func (x *index) groupByOwner(pods []*corev1.Pod) []ownerGroup {
	at := map[Object]int{}
	var out []ownerGroup
	for _, p := range pods {
		o := x.owner(p)
		i, ok := at[o]
		if !ok {
			i = len(out)
			at[o] = i
			out = append(out, ownerGroup{owner: o})
		}
		out[i].pods = append(out[i].pods, p)
	}
	sort.Slice(out, func(i, j int) bool { return compareObjects(out[i].owner, out[j].owner) < 0 })
	for _, g := range out {
		sort.Slice(g.pods, func(i, j int) bool { return g.pods[i].Name < g.pods[j].Name })
	}
	return out
}

// objectsOf lists the owner then its pods.
func objectsOf(g ownerGroup) []Object {
	out := make([]Object, 0, len(g.pods)+1)
	if g.owner.Kind != "Pod" {
		out = append(out, g.owner)
	}
	for _, p := range g.pods {
		out = append(out, podObject(p))
	}
	return out
}

// podNames lists up to n pod names, then how many more.
func podNames(pods []*corev1.Pod, n int) string {
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return listNames(names, n)
}

func listNames(names []string, n int) string {
	if len(names) <= n {
		return joinComma(names)
	}
	return joinComma(names[:n]) + ", … (" + itoa(len(names)-n) + " more)"
}

// workloadTemplate is the pod spec a workload object declares.
func (x *index) workloadTemplate(o Object) (*corev1.PodSpec, bool) {
	s := x.snap
	switch o.Kind {
	case "Deployment":
		for i := range s.Deployments {
			if d := &s.Deployments[i]; d.Namespace == o.Namespace && d.Name == o.Name {
				return &d.Spec.Template.Spec, true
			}
		}
	case "StatefulSet":
		for i := range s.StatefulSets {
			if d := &s.StatefulSets[i]; d.Namespace == o.Namespace && d.Name == o.Name {
				return &d.Spec.Template.Spec, true
			}
		}
	case "DaemonSet":
		for i := range s.DaemonSets {
			if d := &s.DaemonSets[i]; d.Namespace == o.Namespace && d.Name == o.Name {
				return &d.Spec.Template.Spec, true
			}
		}
	}
	return nil, false
}

// replicas returns spec.replicas (nil means 1, as the API defaults it).
func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func joinComma(s []string) string { return strings.Join(s, ", ") }

func itoa(n int) string { return strconv.Itoa(n) }

// plural renders "1 pod", "3 pods".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return itoa(n) + " " + what + "s"
}
