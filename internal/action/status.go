package action

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/rollout"
)

// Status is `kup status`: where the recorded upgrade of a cluster stands.
type Status struct {
	Config     *rest.Config
	JournalDir string
	Out        io.Writer
	Now        time.Time
}

// nodeLeftovers describes the nodes whose kup state annotation says a
// run began and did not finish them, and the nodes carrying kup's pending
// taint, with the command that finishes each run's nodes.
func nodeLeftovers(nodes []corev1.Node, now time.Time) []string {
	var lines []string
	tainted := rollout.PendingByTarget(nodes)
	runs := map[string]bool{}
	for v := range tainted {
		runs[v] = true
	}
	for i := range nodes {
		n := &nodes[i]
		st, ok := rollout.StateOf(n)
		if !ok || st.Phase == rollout.StepDone {
			continue
		}
		runs[st.Target] = true
		l := fmt.Sprintf("  %s: run to %s, last step %s", n.Name, st.Target, st.Phase)
		if !st.Updated.IsZero() {
			l += fmt.Sprintf(" %s ago", now.Sub(st.Updated).Round(time.Second))
		}
		switch {
		case rollout.KupOwnsCordon(n) && n.Spec.Unschedulable:
			l += "; cordoned by kup"
		case n.Spec.Unschedulable:
			l += "; cordoned by its operator (kup leaves that)"
		default:
			l += "; not cordoned"
		}
		if c := nodeReady(n); c != corev1.ConditionTrue {
			l += "; Ready=" + string(c)
		}
		lines = append(lines, l)
	}
	if len(runs) == 0 {
		return nil
	}
	slices.Sort(lines)
	out := []string{"Nodes kup runs have not finished (their state annotation " + rollout.StateAnnotation + "):"}
	out = append(out, lines...)
	for _, v := range slices.Sorted(maps.Keys(tainted)) {
		out = append(out, fmt.Sprintf("  %d node(s) carry kup's pending taint of a run to %s", len(tainted[v]), v))
	}
	var cmds []string
	for _, v := range slices.Sorted(maps.Keys(runs)) {
		cmds = append(cmds, "kup apply --to "+v)
	}
	out = append(out, "If no kup run is under way, finish them with "+strings.Join(cmds, ", or ")+" (or kup nodes upgrade --to the same version).")
	return out
}

func nodeReady(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

// Run prints the journal's phase, progress and what is left.
func (a *Status) Run(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(a.Config)
	if err != nil {
		return err
	}
	now := a.Now
	if now.IsZero() {
		now = time.Now()
	}
	st := &journal.Store{Client: cs, Cluster: a.Config.Host, LocalDir: a.JournalDir}
	j, err := st.Load(ctx)
	if err != nil {
		return err
	}
	w := a.Out
	// The rollback window outlives apply runs: shown whatever the run.
	win, werr := LoadWindow(ctx, cs, a.Config.Host, a.JournalDir)
	if werr != nil {
		fmt.Fprintf(w, "Rollback window: unknown (%v)\n", werr)
	} else if win != nil {
		fmt.Fprintf(w, "Rollback window %s → %s: %s\n", win.From, win.To, win.Describe(now))
	}
	// The nodes, read once: the run's progress, and what kup runs left
	// on them from their own records (a `kup nodes upgrade` keeps no
	// journal, and a killed one leaves nodes cordoned all the same).
	nodes, nerr := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if nerr != nil {
		nodes = nil // client-go returns an empty list with the error
	}
	// Whether a kup is at work now: every kup that changes the cluster
	// holds the upgrade lock (kup nodes upgrade keeps no journal).
	lease, lerr := cs.CoordinationV1().Leases(journal.Namespace).Get(ctx, journal.LeaseName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(lerr):
		fmt.Fprintln(w, "Running now: no kup (none has taken the upgrade lock on this cluster yet)")
	case lerr != nil:
		fmt.Fprintf(w, "Running now: unknown, reading the upgrade lock failed (%v)\n", lerr)
	default:
		fmt.Fprintln(w, "Running now: "+lockHolder(lease, now))
	}
	if j == nil {
		fmt.Fprintln(w, "No kup apply run is recorded for this cluster.")
	} else {
		a.printRun(ctx, cs, w, j, nodes, now)
	}
	if nerr != nil {
		fmt.Fprintf(w, "Nodes a kup run left unfinished: unknown, listing nodes failed (%v)\n", nerr)
		return nil
	}
	for _, l := range nodeLeftovers(nodes.Items, now) {
		fmt.Fprintln(w, l)
	}
	return nil
}

// lockHolder says who holds kup's upgrade lock: a kup at work, one that
// stopped renewing it (killed, or a laptop asleep: the next kup takes it
// over once it expires), or none.
func lockHolder(lease *coordinationv1.Lease, now time.Time) string {
	h := ptr.Deref(lease.Spec.HolderIdentity, "")
	if h == "" || lease.Spec.RenewTime == nil {
		return "no kup (the upgrade lock is free)"
	}
	ago := now.Sub(lease.Spec.RenewTime.Time)
	if ago >= journal.LeaseTTL(lease, journal.DefaultTTL) {
		return fmt.Sprintf("no kup; %s holds the upgrade lock but stopped renewing it %s ago (killed, or asleep): the next kup takes it over", h, ago.Round(time.Second))
	}
	return fmt.Sprintf("%s (it renewed the upgrade lock %s ago; another kup waits for it to finish)", h, ago.Round(time.Second))
}

// printRun prints the recorded apply run j: phase, progress,
// nodes at the target (nodes is nil when they could not be listed), the
// last steps.
func (a *Status) printRun(ctx context.Context, cs kubernetes.Interface, w io.Writer, j *journal.Journal, nodes *corev1.NodeList, now time.Time) {
	fmt.Fprintf(w, "Upgrade run %s: %s → %s\n", j.RunID, j.From, j.Target)
	fmt.Fprintf(w, "  phase:    %s", j.Phase)
	if j.Reason != "" {
		fmt.Fprintf(w, " (%s)", j.Reason)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  started:  %s (%s ago), last record %s ago, resumed %d time(s)\n", j.Started.Local().Format(time.RFC3339), now.Sub(j.Started).Round(time.Second), now.Sub(j.Updated).Round(time.Second), j.Resumes)
	if len(j.Hops) > 0 {
		fmt.Fprintf(w, "  hops:     %s\n", strings.Join(j.Hops, " → "))
	}
	// What is left, from the cluster (not from the journal).
	if nodes != nil {
		left, cordoned := 0, []string{}
		for _, n := range nodes.Items {
			if n.Status.NodeInfo.KubeletVersion != j.Target {
				left++
			}
			if n.Spec.Unschedulable {
				cordoned = append(cordoned, n.Name)
			}
		}
		fmt.Fprintf(w, "  nodes:    %d of %d at %s", len(nodes.Items)-left, len(nodes.Items), j.Target)
		if len(cordoned) > 0 {
			fmt.Fprintf(w, "; cordoned now: %s", strings.Join(cordoned, ", "))
		}
		fmt.Fprintln(w)
	}
	if sv, err := cs.Discovery().ServerVersion(); err == nil {
		fmt.Fprintf(w, "  control plane: %s\n", sv.GitVersion)
	}
	fmt.Fprintln(w, "  last steps:")
	from := max(0, len(j.Steps)-8)
	for _, s := range j.Steps[from:] {
		fmt.Fprintf(w, "    %s  %-8s %s", s.Started.Local().Format("15:04:05"), s.Status, s.ID)
		if s.Detail != "" && len(s.Detail) < 120 {
			fmt.Fprintf(w, " — %s", s.Detail)
		}
		fmt.Fprintln(w)
	}
	if j.Phase != journal.PhaseDone {
		fmt.Fprintf(w, "Resume with: kup apply --to %s\n", j.Target)
	}
}
