package action

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/rollbacksafe"
)

// TestWriteWindowResult renders what the window commands print: step
// one with its backup, a rollback with its object comparison, a
// completed window.
func TestWriteWindowResult(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	comps := func(bin, emu string) []provider.EmulatedComponent {
		var out []provider.EmulatedComponent
		for _, n := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
			out = append(out, provider.EmulatedComponent{Component: provider.Component{Name: n, Instance: "127.0.0.1", Version: bin}, Emulated: emu})
		}
		return out
	}
	open := &rollbacksafe.Window{State: rollbacksafe.StateOpen, From: "v1.36.3", To: "v1.37.2", Started: t0, Opened: t0.Add(30 * time.Second)}
	rolled := *open
	rolled.State, rolled.Outcome, rolled.Closed = rollbacksafe.StateClosed, rollbacksafe.OutcomeRolledBack, t0.Add(time.Hour)
	done := *open
	done.State, done.Outcome, done.Raised, done.Closed = rollbacksafe.StateClosed, rollbacksafe.OutcomeCompleted, t0.Add(2*time.Hour), t0.Add(2*time.Hour+time.Minute)
	var b bytes.Buffer
	for _, res := range []*WindowResult{
		{Step: rollbacksafe.StepOne, Steps: []rollbacksafe.Step{rollbacksafe.StepOne}, Window: open, Now: t0.Add(90 * time.Second),
			Backup:     &backup.Manifest{Path: "/state/backups/prod/20261125T120000Z.db", Revision: 4242, TotalKeys: 812},
			Components: comps("v1.37.2", "1.36")},
		{Step: rollbacksafe.StepRollback, Steps: []rollbacksafe.Step{rollbacksafe.StepRollback}, Window: &rolled, Now: t0.Add(time.Hour),
			Components: comps("v1.36.3", "1.36"),
			Integrity: []ResourceCheck{
				{Resource: "deployments", InSnapshot: 9, After: 9, SameUID: 9},
				{Resource: "events", InSnapshot: 40, After: 12, SameUID: 12, Managed: true, Missing: []string{"a"}},
				{Resource: "secrets", InSnapshot: 3, After: 3, SameUID: 3},
			}},
		{Step: rollbacksafe.StepTwo, Decision: rollbacksafe.Done, Window: &done, Now: t0.Add(3 * time.Hour), Components: comps("v1.37.2", "1.37"),
			IntegrityNote: "objects not compared: no etcd endpoint (--etcd-endpoint)"},
	} {
		WriteWindowResult(&b, res)
		b.WriteString("----\n")
	}
	got := b.String()
	golden := filepath.Join("testdata", "window-results.golden")
	if updating() {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update if intended):\n%s", golden, got)
	}
}
