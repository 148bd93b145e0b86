package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/kube"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/verify"
)

// Verify is `kup verify`: check the cluster against the baseline the
// recorded `kup apply` took before it changed anything.
type Verify struct {
	Config     *rest.Config
	JournalDir string
	// Target overrides the journal's target version.
	Target string
	Out    io.Writer
}

// Run verifies and prints every check; the error is non-nil when a check
// fails (exit 1) or there is nothing to compare with.
func (a *Verify) Run(ctx context.Context) (*report.VerifyRecord, error) {
	cs, err := kubernetes.NewForConfig(kube.Fast(a.Config))
	if err != nil {
		return nil, err
	}
	st := &journal.Store{Client: cs, Cluster: a.Config.Host, LocalDir: a.JournalDir}
	j, err := st.Load(ctx)
	if err != nil {
		return nil, err
	}
	if j == nil || len(j.Baseline) == 0 {
		return nil, &ResultError{Code: CodeUsage, Err: errors.New("no baseline is recorded for this cluster: kup verify compares against the baseline `kup apply` takes before it changes anything")}
	}
	var b verify.Baseline
	if err := json.Unmarshal(j.Baseline, &b); err != nil {
		return nil, fmt.Errorf("the journal's baseline is unreadable: %w", err)
	}
	target := a.Target
	if target == "" {
		target = j.Target
	}
	rec, err := verify.Run(ctx, cs, &b, verify.Options{Target: target, Since: j.Started})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(a.Out, "Verifying against the baseline of %s (run %s, target %s):\n", b.Taken.Local().Format("2006-01-02 15:04:05"), j.RunID, target)
	for _, c := range rec.Checks {
		mark := "✓"
		if !c.Passed {
			mark = "✗"
		}
		fmt.Fprintf(a.Out, "  %s %s: %s\n", mark, c.Name, c.Detail)
	}
	if !rec.Passed {
		return rec, errors.New("verification failed")
	}
	return rec, nil
}
