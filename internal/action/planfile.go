package action

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/report"
)

// DefaultMaxPlanAge bounds how old a saved plan `kup apply PLANFILE`
// accepts: a cluster drifts; a plan of yesterday is a guess about today.
const DefaultMaxPlanAge = 24 * time.Hour

// LoadPlanFile reads a plan saved by `kup plan --save FILE`.
func LoadPlanFile(path string) (*report.Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("reading plan file: %w", err)}
	}
	var p report.Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("plan file %s is not a kup plan: %w", path, err)}
	}
	if p.Kind != report.PlanKind || p.To == "" {
		return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("plan file %s is not a kup plan (kind %q, no target)", path, p.Kind)}
	}
	return &p, nil
}

// CheckPlanStillHolds refuses a saved plan the cluster has moved away
// from: another cluster, a control plane no longer at the plan's start,
// different nodes to roll, blockers the plan did not waive, or a plan
// older than maxAge. Each refusal says what changed.
func CheckPlanStillHolds(ctx context.Context, cfg *rest.Config, p *report.Plan, maxAge time.Duration, now time.Time) error {
	var changed []string
	if p.Cluster != "" && p.Cluster != cfg.Host {
		return &ResultError{Code: CodeNotUpgradable, Err: fmt.Errorf("the saved plan was made for cluster %s, this is %s", p.Cluster, cfg.Host)}
	}
	if maxAge > 0 && !p.Taken.IsZero() && now.Sub(p.Taken) > maxAge {
		changed = append(changed, fmt.Sprintf("it is %s old (limit %s)", now.Sub(p.Taken).Round(time.Minute), maxAge))
	}
	if p.Verdict.Blocked {
		changed = append(changed, fmt.Sprintf("it has %d blocker(s) that were not waived", p.Verdict.Blockers-p.Verdict.WaivedBlockers))
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("cannot reach the Kubernetes API at %s: %w", cfg.Host, err)
	}
	if p.From != "" && sv.GitVersion != p.From {
		changed = append(changed, fmt.Sprintf("the control plane runs %s, the plan starts from %s", sv.GitVersion, p.From))
	}
	if p.Rollout != nil {
		planned := map[string]bool{}
		for _, w := range p.Rollout.Waves {
			for _, n := range w.Nodes {
				planned[n] = true
			}
		}
		for _, b := range p.Rollout.Blocked {
			planned[b.Node] = true
		}
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return fmt.Errorf("listing nodes: %w", err)
		}
		var added, gone []string
		now := map[string]bool{}
		for _, n := range nodes.Items {
			if n.Status.NodeInfo.KubeletVersion == p.To {
				continue
			}
			now[n.Name] = true
			if !planned[n.Name] {
				added = append(added, n.Name)
			}
		}
		for n := range planned {
			if !now[n] {
				gone = append(gone, n)
			}
		}
		sort.Strings(added)
		sort.Strings(gone)
		if len(added) > 0 {
			changed = append(changed, "nodes to roll that the plan does not know: "+strings.Join(added, ", "))
		}
		if len(gone) > 0 {
			changed = append(changed, "nodes the plan rolls that are gone or already upgraded: "+strings.Join(gone, ", "))
		}
	}
	if len(changed) > 0 {
		return &ResultError{Code: CodeNotUpgradable, Err: fmt.Errorf("the saved plan no longer holds (%s); make a new one with `kup plan --to %s --save FILE`", strings.Join(changed, "; "), p.To)}
	}
	return nil
}

// SavePlanFile writes p as JSON to path (mode 0600, through path.part and
// a rename, so a half-written plan never exists).
func SavePlanFile(path string, p *report.Plan) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".part"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("saving the plan: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving the plan: %w", err)
	}
	return nil
}
