package action

import (
	"context"
	"errors"
	"fmt"

	"github.com/kup-project/kup/internal/apply"
	"github.com/kup-project/kup/internal/checks"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/version"
)

// PreflightHook runs exactly what `kup plan` runs and hands apply the
// blockers that are not waived. planFor returns the plan action to run
// (its Config and policy); the hook fills in the target and waivers.
func PreflightHook(cfgHost string, waive []string, planFor func() *Plan) apply.Preflight {
	return func(ctx context.Context, target string) ([]report.FindingSummary, []report.FindingSummary, error) {
		p := planFor()
		// NodesOnly: a control plane at the target with nodes behind is
		// checked too. Only a new run gets here (a resumed one skips
		// the preflight its first attempt passed), so what an earlier,
		// finished run left is for the findings to say.
		p.To, p.Waive, p.Kubectl, p.NodesOnly = target, waive, "-", true
		if p.ControlPlane == nil { // else the caller named it (--provider eks)
			if sb, err := sandboxprovider.Detect(cfgHost); err == nil {
				p.ControlPlane = &sandboxprovider.ControlPlane{Cluster: sb}
				p.EtcdEndpoint = fmt.Sprintf("http://127.0.0.1:%d", sb.Ports.EtcdClient)
			}
		}
		res, err := p.Run(ctx)
		if errors.Is(err, version.ErrSameVersion) {
			// Control plane and every node at the target: nothing will
			// change, so there is nothing to check.
			return nil, nil, nil
		}
		var re *ResultError
		if err != nil && !(errors.As(err, &re) && re.Code == CodeBlockers) {
			return nil, nil, err
		}
		if res == nil {
			return nil, nil, err
		}
		var blockers, all []report.FindingSummary
		for _, f := range res.Findings {
			s := report.FindingSummary{ID: f.ID, Severity: string(f.Severity), Title: f.Title, Waived: f.Waived}
			for _, o := range f.Objects {
				s.Objects = append(s.Objects, o.String())
			}
			all = append(all, s)
			if f.Severity == checks.Blocker && !f.Waived {
				blockers = append(blockers, s)
			}
		}
		return blockers, all, nil
	}
}
