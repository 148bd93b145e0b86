package eks

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/kup-project/kup/internal/checks"
)

func TestInsightFinding(t *testing.T) {
	ins := func(name, kv string, st types.InsightStatusValue) *types.Insight {
		return &types.Insight{Id: aws.String("i-1"), Name: aws.String(name), KubernetesVersion: aws.String(kv), Category: types.CategoryUpgradeReadiness,
			InsightStatus: &types.InsightStatus{Status: st, Reason: aws.String("why")}, Recommendation: aws.String("Do this."),
			Resources: []types.InsightResourceDetail{{KubernetesResourceUri: aws.String("/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas")}}}
	}
	for _, tc := range []struct {
		name     string
		in       *types.Insight
		ok       bool
		id       string
		severity checks.Severity
	}{
		{name: "passing: no finding", in: ins("Cluster health issues", "1.36", types.InsightStatusValuePassing)},
		{name: "ERROR for the next hop: blocker", in: ins("Cluster health issues", "1.36", types.InsightStatusValueError), ok: true, id: checks.ProviderBlocker, severity: checks.Blocker},
		{name: "ERROR for a later hop: warning", in: ins("Cluster health issues", "1.37", types.InsightStatusValueError), ok: true, id: checks.ProviderWarning, severity: checks.Warning},
		{name: "WARNING: warning", in: ins("Cluster health issues", "1.36", types.InsightStatusValueWarning), ok: true, id: checks.ProviderWarning, severity: checks.Warning},
		{name: "UNKNOWN: could not check", in: ins("Cluster health issues", "1.36", types.InsightStatusValueUnknown), ok: true, id: checks.ProviderWarning, severity: checks.Unknown},
		{name: "deprecated APIs: kup's ID", in: ins("Deprecated APIs removed in Kubernetes v1.36", "1.36", types.InsightStatusValueError), ok: true, id: checks.APIRemovedCalled, severity: checks.Blocker},
		{name: "kubelet skew: kup's ID", in: ins("Kubelet version skew", "1.36", types.InsightStatusValueWarning), ok: true, id: checks.SkewViolation, severity: checks.Warning},
		{name: "add-ons: kup's ID", in: ins("Amazon EKS add-on version compatibility", "1.36", types.InsightStatusValueError), ok: true, id: checks.AddonUnsupported, severity: checks.Blocker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := InsightFinding(tc.in, "1.36")
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if f.ID != tc.id || f.Severity != tc.severity {
				t.Errorf("got %s %s, want %s %s", f.Severity, f.ID, tc.severity, tc.id)
			}
			if f.Action != "Do this." || !strings.Contains(f.Message, "why") || len(f.Objects) != 1 {
				t.Errorf("the insight's reason, recommendation and resources are not all kept: %+v", f)
			}
		})
	}
}
