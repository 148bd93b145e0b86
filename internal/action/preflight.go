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
		p.To, p.Waive, p.Kubectl = target, waive, "-"
		if p.ControlPlane == nil { // else the caller named it (--provider eks)
			if sb, err := sandboxprovider.Detect(cfgHost); err == nil {
				p.ControlPlane = &sandboxprovider.ControlPlane{Cluster: sb}
				p.EtcdEndpoint = fmt.Sprintf("http://127.0.0.1:%d", sb.Ports.EtcdClient)
			}
		}
		res, err := p.Run(ctx)
		if errors.Is(err, version.ErrSameVersion) {
			// The control plane is at the target already (a resumed or
			// nodes-only run): no path to check; the rollout's own drain
			// policy still refuses unsafe pods before it starts.
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
