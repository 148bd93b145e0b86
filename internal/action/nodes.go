package action

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/drain"
	"github.com/kup-project/kup/internal/kube"
	"github.com/kup-project/kup/internal/plan"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/version"
)

// NodesUpgrade is `kup nodes upgrade`: roll the nodes' kubelets to To in
// PDB-aware waves (the control plane must already be there), or with
// DryRun print the waves it would run.
type NodesUpgrade struct {
	Config   *rest.Config
	Upgrader provider.NodeUpgrader
	Options  rollout.Options
	DryRun   bool
	// PerNode and PodReady estimate the makespan bound for the dry run.
	PerNode, PodReady time.Duration
	Out               io.Writer
	// LockTTL is the upgrade lock's lease (default journal.DefaultTTL).
	LockTTL time.Duration
}

// Run executes (or plans) the rollout.
func (a *NodesUpgrade) Run(ctx context.Context) (*rollout.Result, error) {
	if _, err := version.Parse(a.Options.Target); err != nil {
		return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("--to: %w", err)}
	}
	cs, err := kubernetes.NewForConfig(kube.Resilient(kube.Fast(a.Config), 0))
	if err != nil {
		return nil, err
	}
	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("cannot reach the Kubernetes API at %s: %w (check --kubeconfig and --context)", a.Config.Host, err)
	}
	// A kubelet may not be newer than the apiserver (version-skew policy).
	api, _ := version.Parse(sv.GitVersion)
	tgt, _ := version.Parse(a.Options.Target)
	if api.Compare(tgt) < 0 {
		return nil, &ResultError{Code: CodeNotUpgradable, Err: fmt.Errorf("kubelets cannot go to %s while kube-apiserver is at %s: a kubelet may not be newer than the apiserver; upgrade the control plane first", tgt, sv.GitVersion)}
	}
	if a.DryRun {
		return nil, a.dryRun(ctx, cs)
	}
	ctx, release, err := holdLock(ctx, cs, "nodes upgrade to "+a.Options.Target, a.LockTTL, a.Out)
	if err != nil {
		return nil, err
	}
	defer release()
	r := &rollout.Roller{Client: cs, Upgrader: a.Upgrader, Options: a.Options}
	res, err := r.Run(ctx)
	return res, lockLost(ctx, err)
}

func (a *NodesUpgrade) dryRun(ctx context.Context, cs kubernetes.Interface) error {
	list := metav1.ListOptions{ResourceVersion: "0"}
	nodes, err := cs.CoreV1().Nodes().List(ctx, list)
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, list)
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, list)
	if err != nil {
		return fmt.Errorf("listing PodDisruptionBudgets: %w", err)
	}
	in := plan.Input{Policy: a.Options.Policy}
	if in.Policy.MaxUnavailable == (intstr.IntOrString{}) {
		in.Policy.MaxUnavailable = intstr.FromInt32(1)
	}
	want := map[string]bool{}
	for _, n := range a.Options.Nodes {
		want[n] = true
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		in.Nodes = append(in.Nodes, n)
		if rollout.Due(n, a.Options.Target) && (len(want) == 0 || want[n.Name]) {
			in.ToUpgrade = append(in.ToUpgrade, n.Name)
		}
	}
	for i := range pods.Items {
		in.Pods = append(in.Pods, &pods.Items[i])
	}
	for i := range pdbs.Items {
		in.PDBs = append(in.PDBs, &pdbs.Items[i])
	}
	p := plan.PlanWaves(in)
	WriteWaves(a.Out, p, a.Options.Target, len(in.ToUpgrade))
	overlap := a.Options.WavesOverlap()
	if overlap && len(p.Waves) > 1 {
		if a.Options.Continuous {
			fmt.Fprintln(a.Out, "These waves overlap: after the canary, kup starts each node as soon as its PDBs and --max-unavailable allow (--continuous), re-reading the cluster as it goes; they are the order and the limits as the cluster stands now.")
		} else {
			fmt.Fprintln(a.Out, "These waves overlap: after the canary, each wave starts once the previous wave's drains are done (--overlap-waves), re-planned from the cluster as it stands then.")
		}
	}
	inScope := map[string]bool{}
	for _, n := range in.ToUpgrade {
		inScope[n] = true
	}
	for _, pod := range in.Pods {
		if inScope[pod.Spec.NodeName] {
			if why := drain.Refusal(pod, a.Options.Drain); why != "" {
				fmt.Fprintf(a.Out, "  refused  node %s: %s\n", pod.Spec.NodeName, why)
			}
		}
	}
	b := plan.LowerBound(in, a.PerNode, a.PodReady)
	fmt.Fprintf(a.Out, "Lower bound: %d waves (%s)", b.Waves, b.DecidedBy)
	if a.PerNode > 0 {
		if overlap {
			// The waves overlap (kup's default): the bound that holds is
			// the overlap bound, first; the other is what
			// --overlap-waves=false would be held to.
			fmt.Fprintf(a.Out, "; makespan ≥ %s at %s per node and %s pod readiness (≥ %s with --overlap-waves=false, waves one after another)",
				plan.OverlapBound(in, a.PerNode, a.PodReady).Round(time.Second), a.PerNode, a.PodReady, b.Makespan.Duration)
		} else {
			fmt.Fprintf(a.Out, "; makespan ≥ %s at %s per node and %s pod readiness, waves one after another", b.Makespan.Duration, a.PerNode, a.PodReady)
		}
	}
	fmt.Fprintln(a.Out)
	return nil
}

// WriteWaves prints a wave plan: one line per wave with what limited it.
func WriteWaves(w io.Writer, p plan.Plan, target string, n int) {
	fmt.Fprintf(w, "%d node(s) to roll to %s in %d wave(s):\n", n, target, len(p.Waves))
	for _, wv := range p.Waves {
		fmt.Fprintf(w, "  wave %-3d %2d node(s)  %-40s limited by: %s\n", wv.Index, len(wv.Nodes), short(wv.Nodes), wv.Limit.Reason)
		for _, bw := range wv.BudgetWaits {
			fmt.Fprintf(w, "           waits: %s\n", bw)
		}
		if len(wv.Unmanaged) > 0 {
			fmt.Fprintf(w, "           deletes for good (no controller): %s\n", strings.Join(wv.Unmanaged, ", "))
		}
		if len(wv.Cordoned) > 0 {
			fmt.Fprintf(w, "           cordoned before, left cordoned: %s\n", strings.Join(wv.Cordoned, ", "))
		}
	}
	for _, b := range p.Blocked {
		fmt.Fprintf(w, "  blocked  %s: %s\n", b.Node, b.Reason)
	}
}

func short(nodes []string) string {
	if len(nodes) <= 4 {
		return strings.Join(nodes, ",")
	}
	return strings.Join(nodes[:3], ",") + fmt.Sprintf(",… (+%d)", len(nodes)-3)
}

// RolloutShape says how the nodes went: "in 15 wave(s), at most 12 down
// at once", or, admitted continuously, "admitted continuously (70
// starts), at most 12 down at once" — there the count of admissions is
// not a count of waves a reader would recognise.
func RolloutShape(waves int, continuous bool, mostDown int) string {
	s := fmt.Sprintf("in %d wave(s)", waves)
	if continuous {
		s = fmt.Sprintf("admitted continuously (%d start(s))", waves)
	}
	if mostDown > 0 {
		s += fmt.Sprintf(", at most %d down at once", mostDown)
	}
	return s
}

// WriteRolloutSummary prints what a rollout did, naming every node that
// failed or stays cordoned, with the reason.
func WriteRolloutSummary(w io.Writer, res *rollout.Result) {
	if res == nil {
		return
	}
	upgraded := 0
	for _, n := range res.Nodes {
		if n.Outcome == "upgraded" {
			upgraded++
		}
	}
	fmt.Fprintf(w, "\n%d of %d node(s) at kubelet %s, %s, %s; %d eviction(s) for %d pod(s) (%.2f per pod), %d refused with 429\n",
		upgraded, len(res.Nodes), res.Target, RolloutShape(len(res.Waves), res.Continuous, res.MostDown()), res.Makespan.Round(time.Second), res.Evictions, res.EvictablePods, res.EvictionsPerPod(), res.Refusals)
	for _, n := range res.Failed() {
		fmt.Fprintf(w, "  ✗ %s %s: %s\n", n.Node, n.Outcome, n.Reason)
	}
	var cordoned []string
	for _, n := range res.LeftCordoned() {
		cordoned = append(cordoned, n.Node+" ("+n.Reason+")")
	}
	sort.Strings(cordoned)
	if len(cordoned) > 0 {
		fmt.Fprintf(w, "  still cordoned: %s\n", strings.Join(cordoned, "; "))
	}
	for _, b := range res.Blocked {
		fmt.Fprintf(w, "  blocked %s: %s\n", b.Node, b.Reason)
	}
}

// ProgressPrinter returns a rollout progress callback printing one line
// per event.
func ProgressPrinter(w io.Writer) func(rollout.Event) {
	return func(e rollout.Event) {
		where := ""
		if e.Wave > 0 {
			where = fmt.Sprintf("wave %d ", e.Wave)
		}
		if e.Node != "" {
			where += e.Node + " "
		}
		fmt.Fprintf(w, "%s %s%s: %s\n", e.Time.Format("15:04:05"), where, e.Step, e.Message)
	}
}
