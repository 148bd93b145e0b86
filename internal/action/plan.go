package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/checks"
	"github.com/kup-project/kup/internal/deprecation"
	"github.com/kup-project/kup/internal/inventory"
	"github.com/kup-project/kup/internal/plan"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/rollbacksafe"
	"github.com/kup-project/kup/internal/version"
)

// CodeBlockers is the result code of a plan with blockers not waived
// (exit 3).
const CodeBlockers = "blockers"

// Plan is `kup plan`: read the cluster once, compute the path, run every
// check, plan the node waves and say which backup will be taken. It
// changes nothing.
type Plan struct {
	// Config reaches the cluster.
	Config *rest.Config
	// ControlPlane, if known, reports components outside the cluster's
	// pods and what the provider can install.
	ControlPlane provider.ControlPlane
	// EtcdEndpoint is one etcd member's client URL, when kup knows it (the
	// sandbox's); empty leaves etcd's health unknown.
	EtcdEndpoint string
	To           string
	// NodesOnly plans the rolls of the nodes behind a control plane that
	// is at To already (version.PathOptions.NodesOnly) instead of failing
	// with version.ErrSameVersion. kup plan and kup apply's preflight set
	// it: an apply whose control plane is there already (upgraded in a
	// provider's console, or by an earlier run) is checked as any other.
	NodesOnly bool
	// Manifests are files or directories scanned for removed APIs.
	Manifests []string
	// MaxUnavailable, ZoneByZone and BudgetRounds shape the waves (see
	// plan.Policy); BudgetRounds 0 is planned as 1.
	MaxUnavailable intstr.IntOrString
	ZoneByZone     bool
	BudgetRounds   int
	// Waive lists finding IDs the user accepts; a plan whose every blocker
	// is waived does not block.
	Waive []string
	// Kubectl: see inventory.Options.
	Kubectl string
	// UpgradeWindow: see checks.Input (default checks.DefaultUpgradeWindow).
	UpgradeWindow time.Duration
	Now           time.Time
}

// Run makes the plan. The error is a *ResultError with CodeUsage (bad
// input), CodeNotUpgradable (no path) or CodeBlockers (blockers found and
// not all waived); the result is returned with it so JSON carries the
// reason. Other errors (the cluster could not be read) come without a
// result.
func (a *Plan) Run(ctx context.Context) (*report.Plan, error) {
	res := &report.Plan{APIVersion: report.PlanAPIVersion, Kind: report.PlanKind, Findings: []checks.Finding{}, Addons: []checks.DetectedAddon{},
		Policy: plan.Policy{MaxUnavailable: a.MaxUnavailable, ZoneByZone: a.ZoneByZone, BudgetRounds: max(a.BudgetRounds, 1)}}
	fail := func(code string, err error) (*report.Plan, error) {
		res.Error = &report.ResultError{Code: code, Message: err.Error()}
		return res, &ResultError{Code: code, Err: err}
	}
	now := a.Now
	if now.IsZero() {
		now = time.Now()
	}
	if a.To == "" {
		return fail(CodeUsage, errors.New("--to is required: the version to plan the upgrade to"))
	}
	to, err := version.Parse(a.To)
	if err != nil {
		return fail(CodeUsage, fmt.Errorf("--to: %w", err))
	}
	res.To = to.String()
	for _, id := range a.Waive {
		if _, ok := checks.Lookup(id); !ok {
			return fail(CodeUsage, fmt.Errorf("--waive %s: no check has this ID (kup plan -o json lists the IDs of the findings)", id))
		}
	}
	if err := res.Policy.Validate(); err != nil {
		return fail(CodeUsage, fmt.Errorf("--max-unavailable: %w", err))
	}
	for _, m := range a.Manifests {
		if _, err := os.Stat(m); err != nil {
			return fail(CodeUsage, fmt.Errorf("--manifests: %w", err))
		}
	}
	if a.Config == nil {
		return fail(CodeUsage, errors.New("no cluster to plan for"))
	}
	res.Cluster = a.Config.Host

	// The extra reads do not depend on the snapshot: run them alongside.
	extrasDone := make(chan *planExtras, 1)
	go func() { extrasDone <- a.readExtras(ctx) }()
	snap, err := inventory.Read(ctx, a.Config, inventory.Options{Scope: inventory.ScopeFull, ControlPlane: a.ControlPlane, Kubectl: a.Kubectl, Now: now})
	extras := <-extrasDone
	if err != nil {
		return nil, err
	}
	res.Taken = snap.Taken
	res.Requests = snap.Requests + extras.requests
	for what, why := range snap.Unknown {
		res.Warnings = append(res.Warnings, fmt.Sprintf("could not read %s: %s", what, why))
	}
	sort.Strings(res.Warnings)

	rel := version.DefaultReleases()
	if stale := rel.Stale(now); stale != "" {
		res.Warnings = append(res.Warnings, stale)
	}
	cv, perrs := snap.ClusterVersions()
	for _, e := range perrs {
		res.Warnings = append(res.Warnings, e.Error())
	}
	if len(cv.APIServers) == 0 {
		return fail(CodeNotUpgradable, fmt.Errorf("the apiserver's version %q could not be read", snap.Server))
	}
	from := oldest(cv.APIServers)
	res.From = from.String()
	opts := version.PathOptions{Cluster: &cv, NodesOnly: a.NodesOnly}
	if a.ControlPlane != nil {
		if inst := a.ControlPlane.Capabilities().Installable; inst != nil {
			opts.Installable = func(v version.Version) bool { return inst(v.String()) }
		}
	}
	path, err := version.Path(from, to, rel, opts)
	if err != nil {
		return fail(CodeNotUpgradable, err)
	}
	res.Path = path
	res.To = path.To.String()

	result := checks.Run(checks.Input{
		Snapshot:             snap,
		Path:                 path,
		Manifests:            extras.manifests,
		ManifestErrors:       extras.manifestErrors,
		Applied:              extras.applied,
		AppliedErr:           extras.appliedErr,
		PersistentVolumes:    extras.pvs,
		PersistentVolumesErr: extras.pvsErr,
		ServingCertificate:   extras.cert,
		Etcd:                 extras.etcd,
		Now:                  now,
		UpgradeWindow:        a.UpgradeWindow,
	})
	res.Findings = result.Findings
	if src, ok := a.ControlPlane.(FindingsSource); ok {
		// The provider's own readiness checks (EKS's upgrade insights),
		// merged with kup's where they are about the same thing.
		pf, err := src.Findings(ctx, path)
		if err != nil {
			pf = []checks.Finding{checks.ProviderUnknown(err.Error())}
		}
		res.Findings = checks.Merge(res.Findings, pf)
	}
	res.Capacity = &result.Capacity
	if result.Addons != nil {
		res.Addons = result.Addons
	}

	// The waves run for every node the path rolls, however many times.
	var toRoll []string
	for _, n := range path.Nodes {
		if n.Rolls > 0 {
			toRoll = append(toRoll, n.Node)
		}
	}
	res.NodesToRoll = len(toRoll)
	nodes := make([]*corev1.Node, len(snap.Nodes))
	for i := range snap.Nodes {
		nodes[i] = &snap.Nodes[i]
	}
	pods := make([]*corev1.Pod, len(snap.Pods))
	for i := range snap.Pods {
		pods[i] = &snap.Pods[i]
	}
	pdbs := make([]*policyv1.PodDisruptionBudget, len(snap.PDBs))
	for i := range snap.PDBs {
		pdbs[i] = &snap.PDBs[i]
	}
	rollout := plan.PlanWaves(plan.Input{Nodes: nodes, Pods: pods, PDBs: pdbs, ToUpgrade: toRoll, Policy: res.Policy})
	res.Rollout = &rollout

	res.Backup = &report.Backup{What: "etcd snapshot", When: "before hop 1"}
	if len(path.Hops) > 0 {
		h := path.Hops[0]
		res.Backup.When = fmt.Sprintf("before hop 1 (control plane %s → %s)", h.From, h.To)
	} else {
		res.Backup.When = "before the first node is cordoned (no control-plane hop)"
	}
	var caps *provider.Capabilities
	provName := ""
	if a.ControlPlane != nil {
		c := a.ControlPlane.Capabilities()
		caps, provName = &c, a.ControlPlane.Name()
	}
	for _, h := range path.Hops {
		res.RollbackSafe = append(res.RollbackSafe, rollbacksafe.HopSafety(rollbacksafe.HopInput{Index: h.Index, From: h.From, To: h.To, Provider: provName, Capabilities: caps}))
	}
	if a.ControlPlane != nil && a.ControlPlane.Capabilities().EtcdNote != "" {
		res.Backup = &report.Backup{What: "no etcd snapshot", When: "(the provider's own backups)", Note: a.ControlPlane.Capabilities().EtcdNote}
	} else if a.EtcdEndpoint != "" {
		res.Backup.Endpoint = a.EtcdEndpoint
		res.Backup.Note = "streamed over etcd's maintenance API, verified, then written in place; kup apply does not start the upgrade without it"
	} else {
		res.Backup.Note = "kup knows no etcd endpoint for this cluster: kup apply will need one to take the snapshot"
	}

	// Waivers: by ID, named explicitly.
	waive := map[string]bool{}
	for _, id := range a.Waive {
		waive[id] = true
	}
	used := map[string]bool{}
	for i := range res.Findings {
		f := &res.Findings[i]
		if waive[f.ID] && f.Severity != checks.Unknown {
			f.Waived = true
			used[f.ID] = true
		}
	}
	res.Waived = slices.Sorted(maps.Keys(waive))
	for _, id := range res.Waived {
		if !used[id] {
			res.Warnings = append(res.Warnings, fmt.Sprintf("--waive %s matched no finding", id))
		}
	}
	res.Verdict.Count(res.Findings)
	if res.Verdict.Blocked {
		var ids []string
		for _, f := range res.Findings {
			if f.Severity == checks.Blocker && !f.Waived && !slices.Contains(ids, f.ID) {
				ids = append(ids, f.ID)
			}
		}
		return res, &ResultError{Code: CodeBlockers, Err: fmt.Errorf("%d blocker(s) found (%s): fix them or waive them by ID with --waive", res.Verdict.Blockers-res.Verdict.WaivedBlockers, strings.Join(ids, ", "))}
	}
	return res, nil
}

// FindingsSource is a provider with readiness checks of its own (EKS's
// upgrade insights); kup plan shows them with its own findings.
type FindingsSource interface {
	Findings(ctx context.Context, path *version.UpgradePath) ([]checks.Finding, error)
}

// planExtras is what the plan reads beyond the snapshot.
type planExtras struct {
	manifests      []deprecation.Usage
	manifestErrors []string
	applied        []metav1.Object
	appliedErr     string
	pvs            []corev1.PersistentVolume
	pvsErr         string
	cert           *inventory.ServingCertificate
	etcd           *inventory.EtcdStatus
	requests       int64
}

// appliedKinds are the kinds of the removal table whose live objects may
// carry a last-applied annotation worth reading, minus those the snapshot
// already holds, and Events, which nobody applies and every cluster has by
// the thousand.
func appliedKinds() []inventory.AppliedKind {
	inSnapshot := map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true, "PodDisruptionBudget": true, "Event": true, "Pod": true,
		"ComponentStatus": true} // a virtual resource nobody applies
	groups := map[string]map[string]bool{}
	for _, e := range deprecation.Builtin().Entries() {
		if e.Kind == "" || inSnapshot[e.Kind] {
			continue
		}
		if groups[e.Kind] == nil {
			groups[e.Kind] = map[string]bool{}
		}
		groups[e.Kind][e.Group] = true
		if e.Replacement != "" && e.Replacement != deprecation.NoReplacement {
			g := ""
			if i := strings.Index(e.Replacement, "/"); i >= 0 {
				g = e.Replacement[:i]
			}
			kind := e.Kind
			if e.ReplacementKind != "" {
				kind = e.ReplacementKind
			}
			if groups[kind] == nil {
				groups[kind] = map[string]bool{}
			}
			groups[kind][g] = true
		}
	}
	var out []inventory.AppliedKind
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		out = append(out, inventory.AppliedKind{Kind: k, Groups: slices.Sorted(maps.Keys(groups[k]))})
	}
	return out
}

// readExtras makes the reads beyond the snapshot, concurrently; each
// failure is recorded for the check that needs it, never fatal.
func (a *Plan) readExtras(ctx context.Context) *planExtras {
	x := &planExtras{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := func(n int64) {
		mu.Lock()
		x.requests += n
		mu.Unlock()
	}
	wg.Go(func() {
		// Served versions that are themselves deprecated (v1 Endpoints) are
		// not listed: kup would show up as their client in the metric.
		table := deprecation.Builtin()
		avoid := func(apiVersion, kind string) bool { _, deprecated := table.Lookup(apiVersion, kind); return deprecated }
		objs, err := inventory.ReadAppliedObjects(ctx, a.Config, appliedKinds(), avoid)
		if objs != nil {
			count(objs.Requests)
			for i := range objs.Objects {
				x.applied = append(x.applied, &objs.Objects[i])
			}
			x.appliedErr = strings.Join(objs.Errors, "; ")
		}
		if err != nil {
			x.appliedErr = err.Error()
		}
	})
	wg.Go(func() {
		pvs, n, err := inventory.ReadPersistentVolumes(ctx, a.Config)
		count(n)
		x.pvs = pvs
		if err != nil {
			x.pvsErr = err.Error()
		}
	})
	wg.Go(func() { x.cert = inventory.ReadServingCertificate(ctx, a.Config) })
	if a.EtcdEndpoint != "" {
		wg.Go(func() { x.etcd = inventory.ReadEtcd(ctx, a.EtcdEndpoint) })
	}
	if len(a.Manifests) > 0 {
		wg.Go(func() {
			us, err := deprecation.ScanManifests(a.Manifests...)
			x.manifests = us
			if err != nil {
				x.manifestErrors = splitJoined(err)
			}
		})
	}
	wg.Wait()
	return x
}

// splitJoined turns an errors.Join into its messages.
func splitJoined(err error) []string {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// PrintPlan writes res in format (table, json, yaml).
func PrintPlan(w io.Writer, res *report.Plan, format string, opts report.PlanTableOptions) error {
	switch format {
	case "", "table":
		return res.WriteTable(w, opts)
	case "json":
		return res.WriteJSON(w)
	case "yaml":
		return res.WriteYAML(w)
	}
	return fmt.Errorf("unknown output format %q (table, json, yaml)", format)
}
