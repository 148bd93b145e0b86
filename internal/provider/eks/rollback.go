package eks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
)

// Control-plane rollback, as the Amazon EKS user guide describes it
// ("Rollback cluster to previous Kubernetes version",
// https://docs.aws.amazon.com/eks/latest/userguide/rollback-cluster.html):
//   - UpdateClusterVersion with the previous minor (N-1), one minor only;
//   - within 7 days of an in-place upgrade to N, on an ACTIVE cluster with
//     no update in progress;
//   - gated by the ROLLBACK_READINESS insights (force overrides them; kup
//     never forces);
//   - EKS rolls back neither managed node groups (UpdateNodegroupVersion,
//     the user's job) nor add-ons; kup moves the node groups back first,
//     so no kubelet is ever newer than the API server.

// RollbackWindow is how long after an in-place upgrade EKS allows it.
const RollbackWindow = 7 * 24 * time.Hour

// RollbackGuide is the user guide's page, cited in refusals.
const RollbackGuide = "https://docs.aws.amazon.com/eks/latest/userguide/rollback-cluster.html"

// Rollback is a rollback EKS allows now: the control plane From → To,
// undoing update UpgradeID started at UpgradedAt.
type Rollback struct {
	From, To   string
	UpgradeID  string
	UpgradedAt time.Time
	// Until is when the window closes.
	Until time.Time
}

// RollbackTarget decides from the cluster's minor and its control-plane
// updates whether a rollback is possible at now. EKS gives an update's
// start (createdAt), not its end, so kup measures the window from the
// start: it may refuse up to an upgrade's length early, never late. Pure,
// for table tests.
func RollbackTarget(current string, updates []types.Update, now time.Time) (*Rollback, error) {
	var last *types.Update
	for i := range updates {
		u := &updates[i]
		if u.Status != types.UpdateStatusSuccessful || (u.Type != types.UpdateTypeVersionUpdate && u.Type != types.UpdateTypeVersionRollback) {
			continue
		}
		if last == nil || aws.ToTime(u.CreatedAt).After(aws.ToTime(last.CreatedAt)) {
			last = u
		}
	}
	if last == nil {
		return nil, fmt.Errorf("no in-place upgrade of this cluster to %s is recorded (ListUpdates): EKS rolls back only a cluster upgraded in place (%s)", current, RollbackGuide)
	}
	to := versionParam(last)
	if last.Type == types.UpdateTypeVersionRollback {
		return nil, fmt.Errorf("the cluster was already rolled back to %s (update %s): EKS goes back one minor only (%s)", to, aws.ToString(last.Id), RollbackGuide)
	}
	if to != current {
		return nil, fmt.Errorf("the last upgrade (update %s) was to %s but the cluster runs %s: nothing kup can roll back", aws.ToString(last.Id), to, current)
	}
	var major, minor int
	if _, err := fmt.Sscanf(current, "%d.%d", &major, &minor); err != nil || minor == 0 {
		return nil, fmt.Errorf("cluster version %q: not a Kubernetes minor", current)
	}
	at := aws.ToTime(last.CreatedAt)
	rb := &Rollback{From: current, To: fmt.Sprintf("%d.%d", major, minor-1), UpgradeID: aws.ToString(last.Id), UpgradedAt: at, Until: at.Add(RollbackWindow)}
	if now.After(rb.Until) {
		return nil, fmt.Errorf("outside the rollback window: the upgrade to %s (update %s) started %s, %s ago; EKS allows a rollback only within 7 days of an upgrade (%s)",
			current, rb.UpgradeID, at.UTC().Format(time.RFC3339), now.Sub(at).Round(time.Hour), RollbackGuide)
	}
	return rb, nil
}

func versionParam(u *types.Update) string {
	for _, p := range u.Params {
		if p.Type == types.UpdateParamTypeVersion {
			return aws.ToString(p.Value)
		}
	}
	return ""
}

// RollbackCheck reads what RollbackTarget needs: the cluster's minor and
// its control-plane updates.
func (p *ControlPlane) RollbackCheck(ctx context.Context, now time.Time) (*Rollback, error) {
	c, err := p.describe(ctx)
	if err != nil {
		return nil, err
	}
	if c.Status != types.ClusterStatusActive {
		return nil, fmt.Errorf("EKS cluster %s is %s: a rollback needs it ACTIVE with no update in progress", p.Cluster, c.Status)
	}
	var updates []types.Update
	pages := eks.NewListUpdatesPaginator(p.API, &eks.ListUpdatesInput{Name: aws.String(p.Cluster)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListUpdates %s: %w", p.Cluster, err)
		}
		for _, id := range page.UpdateIds {
			u, err := p.describeUpdate(ctx, id, "", "")
			if err != nil {
				return nil, err
			}
			updates = append(updates, *u)
		}
	}
	return RollbackTarget(aws.ToString(c.Version), updates, now)
}

// RollbackBlockers are the ROLLBACK_READINESS insights in ERROR for the
// rollback's target; skipSkew leaves out the version-skew ones (which the
// node groups' own rollback resolves).
func (p *ControlPlane) RollbackBlockers(ctx context.Context, rb *Rollback, skipSkew bool) ([]string, error) {
	ins, err := p.insights(ctx, types.CategoryRollbackReadiness)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, i := range ins {
		if aws.ToString(i.KubernetesVersion) != rb.To || i.InsightStatus == nil || i.InsightStatus.Status != types.InsightStatusValueError {
			continue
		}
		if skipSkew && strings.Contains(strings.ToLower(aws.ToString(i.Name)), "skew") {
			continue
		}
		out = append(out, fmt.Sprintf("EKS insight %q: %s — %s", aws.ToString(i.Name), aws.ToString(i.InsightStatus.Reason), aws.ToString(i.Recommendation)))
	}
	slices.Sort(out)
	return out, nil
}

// RollBack does rb in the order EKS needs: every managed node group
// newer than rb.To back to it (maxUnavailable from kup's planner), the
// ROLLBACK_READINESS insights checked again, then the control plane.
// Add-ons are left as they are (EKS does not roll them back either; the
// versions of the newer minor kup installed are compatible with the
// previous one or EKS's insights say otherwise).
func (p *ControlPlane) RollBack(ctx context.Context, rb *Rollback, maxUnavailable map[string]int) error {
	if blockers, err := p.RollbackBlockers(ctx, rb, true); err != nil {
		return err
	} else if len(blockers) > 0 {
		return fmt.Errorf("EKS's rollback readiness checks fail for %s, nothing was changed: %s", rb.To, strings.Join(blockers, "; "))
	}
	groups, err := p.nodegroupNames(ctx)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := p.upgradeNodegroup(ctx, g, rb.To, maxUnavailable[g]); err != nil {
			return fmt.Errorf("rolling node group %s back to %s (the control plane is still at %s): %w", g, rb.To, rb.From, err)
		}
	}
	if blockers, err := p.RollbackBlockers(ctx, rb, false); err != nil {
		return err
	} else if len(blockers) > 0 {
		return fmt.Errorf("the node groups are back at %s, but EKS's rollback readiness checks still fail; the control plane stays at %s: %s", rb.To, rb.From, strings.Join(blockers, "; "))
	}
	id, err := p.inFlight(ctx, "", "", types.UpdateTypeVersionRollback, rb.To)
	if err != nil {
		return err
	}
	if id == "" {
		out, err := p.API.UpdateClusterVersion(ctx, &eks.UpdateClusterVersionInput{Name: aws.String(p.Cluster), Version: aws.String(rb.To)})
		if err != nil {
			return fmt.Errorf("UpdateClusterVersion %s back to %s: %w", p.Cluster, rb.To, err)
		}
		id = aws.ToString(out.Update.Id)
		p.progressf("EKS update %s: control plane %s → %s (rollback)", id, rb.From, rb.To)
	}
	watch := p.watchAPIServer(ctx)
	_, err = p.wait(ctx, p.Poll, id, "", "", "rollback of "+p.Cluster+" to "+rb.To)
	if seen := watch(); seen != "" {
		p.progressf("%s", seen)
	}
	return err
}
