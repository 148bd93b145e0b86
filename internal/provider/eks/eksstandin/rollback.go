package eksstandin

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/eks/types"

	sbx "github.com/kup-project/kup/internal/sandbox"
)

// RollbackWindow is how long after an upgrade EKS lets the control plane
// go back one minor
// (https://docs.aws.amazon.com/eks/latest/userguide/rollback-cluster.html).
const RollbackWindow = 7 * 24 * time.Hour

// startRollback is UpdateClusterVersion to the previous minor, with the
// prerequisites the user guide lists: an in-place upgrade from that minor
// less than 7 days ago, managed node groups not newer than it, and no
// ROLLBACK_READINESS insight in ERROR (unless force). Called with s.mu held.
func (s *Server) startRollback(version, release string, force bool) (any, *apiError) {
	switch {
	case s.previous != version || s.upgradedAt.IsZero():
		return nil, invalidParameter("Cluster %s was not upgraded in place from %s; rollback is not available.", s.opts.Name, version)
	case time.Since(s.upgradedAt) > RollbackWindow:
		return nil, invalidParameter("Rollback window expired: cluster %s was upgraded to %s at %s, more than 7 days ago.", s.opts.Name, s.version, s.upgradedAt.UTC().Format(time.RFC3339))
	}
	for _, g := range s.nodegroups {
		if minorNumber(g.version) > minorNumber(version) {
			return nil, invalidParameter("Nodegroup %s runs Kubernetes %s; roll it back to %s before rolling back the cluster.", g.name, g.version, version)
		}
	}
	for _, ins := range s.opts.Insights {
		if ins.Category == string(types.CategoryRollbackReadiness) && ins.KubernetesVersion == version && ins.Status == string(types.InsightStatusValueError) && !force {
			return nil, invalidParameter("Rollback readiness check failed for insight %q (%s): %s. Set force to true to override.", ins.Name, ins.ID, ins.Reason)
		}
	}
	u := s.newUpdate(string(types.UpdateTypeVersionRollback), "", "", [2]string{"Version", version})
	s.status = string(types.ClusterStatusUpdating)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.opts.Sandbox.UpgradeControlPlane(s.ctx, release, sbx.UpgradeOptions{})
		s.mu.Lock()
		s.status = string(types.ClusterStatusActive)
		if err == nil {
			// One minor back, once: the previous minor is gone.
			s.version, s.previous, s.upgradedAt = version, "", time.Time{}
		}
		s.mu.Unlock()
		if err != nil {
			s.finish(u, errorDetail{ErrorCode: string(types.ErrorCodeUnknown), ErrorMessage: err.Error()})
			return
		}
		s.finish(u)
	}()
	return u.json(), nil
}
