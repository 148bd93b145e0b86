package action

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/kup-project/kup/internal/journal"
)

// Status is `kup status`: where the recorded upgrade of a cluster stands.
type Status struct {
	Config     *rest.Config
	JournalDir string
	Out        io.Writer
	Now        time.Time
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
	if j == nil && win != nil {
		fmt.Fprintln(w, "No kup apply run is recorded for this cluster.")
		return nil
	}
	if j == nil {
		fmt.Fprintln(w, "No upgrade is recorded for this cluster.")
		return nil
	}
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
	if lease, err := cs.CoordinationV1().Leases(journal.Namespace).Get(ctx, journal.LeaseName, metav1.GetOptions{}); err == nil {
		if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h != "" && lease.Spec.RenewTime != nil {
			fmt.Fprintf(w, "  running:  %s (renewed %s ago)\n", h, now.Sub(lease.Spec.RenewTime.Time).Round(time.Second))
		} else {
			fmt.Fprintln(w, "  running:  no kup holds the lock")
		}
	}
	// What is left, from the cluster (not from the journal).
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err == nil {
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
	return nil
}
