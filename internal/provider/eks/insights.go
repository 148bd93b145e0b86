package eks

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/kup-project/kup/internal/checks"
	"github.com/kup-project/kup/internal/version"
)

// Findings turns the cluster's UPGRADE_READINESS insights into findings
// for the plan: every insight not PASSING, with its description, reason
// and recommendation. An ERROR for the path's next hop is a blocker (EKS
// itself refuses UpdateClusterVersion then, unless forced).
func (p *ControlPlane) Findings(ctx context.Context, path *version.UpgradePath) ([]checks.Finding, error) {
	next := ""
	if path != nil && len(path.Hops) > 0 {
		next = fmt.Sprintf("%d.%d", path.Hops[0].To.Major(), path.Hops[0].To.Minor())
	}
	ins, err := p.insights(ctx, types.CategoryUpgradeReadiness)
	if err != nil {
		return nil, err
	}
	var out []checks.Finding
	for _, i := range ins {
		if f, ok := InsightFinding(i, next); ok {
			out = append(out, f)
		}
	}
	return out, nil
}

// insights lists the insights of category not PASSING, each described.
func (p *ControlPlane) insights(ctx context.Context, category types.Category) ([]*types.Insight, error) {
	var out []*types.Insight
	pages := eks.NewListInsightsPaginator(p.API, &eks.ListInsightsInput{ClusterName: aws.String(p.Cluster),
		Filter: &types.InsightsFilter{Categories: []types.Category{category},
			Statuses: []types.InsightStatusValue{types.InsightStatusValueError, types.InsightStatusValueWarning, types.InsightStatusValueUnknown}}})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListInsights %s (%s): %w", p.Cluster, category, err)
		}
		for _, s := range page.Insights {
			d, err := p.API.DescribeInsight(ctx, &eks.DescribeInsightInput{ClusterName: aws.String(p.Cluster), Id: s.Id})
			if err != nil {
				return nil, fmt.Errorf("DescribeInsight %s of %s: %w", aws.ToString(s.Id), p.Cluster, err)
			}
			out = append(out, d.Insight)
		}
	}
	return out, nil
}

// InsightFinding maps one insight to a finding; ok is false for a PASSING
// one. An insight kup has a check for keeps that check's ID (so the two
// merge into one finding): deprecated APIs, version skew, add-on
// compatibility. The others are KUP-PROV-001 (ERROR for the next hop) or
// KUP-PROV-002. Pure, for table tests.
func InsightFinding(i *types.Insight, nextMinor string) (checks.Finding, bool) {
	status, reason := types.InsightStatusValueUnknown, ""
	if i.InsightStatus != nil {
		status, reason = i.InsightStatus.Status, aws.ToString(i.InsightStatus.Reason)
	}
	if status == types.InsightStatusValuePassing {
		return checks.Finding{}, false
	}
	name, kv := aws.ToString(i.Name), aws.ToString(i.KubernetesVersion)
	blocking := status == types.InsightStatusValueError && kv == nextMinor
	msg := fmt.Sprintf("EKS insight %q (%s) for Kubernetes %s: %s", name, aws.ToString(i.Id), kv, status)
	if reason != "" {
		msg += " — " + reason
	}
	if d := aws.ToString(i.Description); d != "" {
		msg += ". " + strings.TrimSuffix(d, ".") + "."
	} else if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	if status == types.InsightStatusValueError && kv != nextMinor {
		msg += fmt.Sprintf(" (Not the next hop's minor %s: it matters later on the path.)", nextMinor)
	}
	var objs []checks.Object
	for _, r := range i.Resources {
		if u := aws.ToString(r.KubernetesResourceUri); u != "" {
			objs = append(objs, checks.Object{Kind: "Resource", Name: u})
		} else if a := aws.ToString(r.Arn); a != "" {
			objs = append(objs, checks.Object{Kind: "AWS", Name: a})
		}
	}
	rec := aws.ToString(i.Recommendation)
	f := checks.ProviderFinding(blocking, "EKS: "+name, msg, rec, objs...)
	if id := kupCheckOf(name); id != "" {
		f.ID = id
		f.Title = "EKS: " + name
		f.Action = rec
	}
	switch {
	case blocking:
		f.Severity = checks.Blocker
	case status == types.InsightStatusValueUnknown:
		f.Severity = checks.Unknown
	default:
		f.Severity = checks.Warning
	}
	return f, true
}

// kupCheckOf is the kup check an insight agrees with, by the insight's
// name as EKS publishes it (https://docs.aws.amazon.com/eks/latest/userguide/cluster-insights.html).
func kupCheckOf(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "deprecated api"):
		return checks.APIRemovedCalled
	case strings.Contains(n, "version skew"):
		return checks.SkewViolation
	case strings.Contains(n, "add-on") && strings.Contains(n, "compatib"):
		return checks.AddonUnsupported
	}
	return ""
}
