package eks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kup-project/kup/internal/provider"
)

// NodegroupLabel is the label EKS puts on every node of a managed node
// group, naming the group.
const NodegroupLabel = "eks.amazonaws.com/nodegroup"

var _ provider.NodeGroups = (*ControlPlane)(nil)

// ManagedNodes maps the nodes of the cluster's managed node groups
// (ListNodegroups, then the nodes carrying NodegroupLabel) to their group.
func (p *ControlPlane) ManagedNodes(ctx context.Context) (map[string]string, error) {
	groups, err := p.nodegroupNames(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(p.Kube)
	if err != nil {
		return nil, err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: NodegroupLabel})
	if err != nil {
		return nil, fmt.Errorf("listing the nodes of %s's managed node groups: %w", p.Cluster, err)
	}
	out := map[string]string{}
	for _, n := range nodes.Items {
		if g := n.Labels[NodegroupLabel]; slices.Contains(groups, g) {
			out[n.Name] = g
		}
	}
	return out, nil
}

func (p *ControlPlane) nodegroupNames(ctx context.Context) ([]string, error) {
	var out []string
	pages := eks.NewListNodegroupsPaginator(p.API, &eks.ListNodegroupsInput{ClusterName: aws.String(p.Cluster)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListNodegroups %s: %w", p.Cluster, err)
		}
		out = append(out, page.Nodegroups...)
	}
	slices.Sort(out)
	return out, nil
}

// UpgradeNodeGroups moves each managed node group to version's minor, one
// group after the other: updateConfig.maxUnavailable set to kup's choice
// first (UpdateNodegroupConfig), then UpdateNodegroupVersion, followed
// with DescribeUpdate. A group already at the minor is skipped; an update
// already in flight (a resumed kup) is followed, not restarted.
func (p *ControlPlane) UpgradeNodeGroups(ctx context.Context, to string, maxUnavailable map[string]int) error {
	minor, err := Minor(to)
	if err != nil {
		return err
	}
	groups, err := p.nodegroupNames(ctx)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := p.upgradeNodegroup(ctx, g, minor, maxUnavailable[g]); err != nil {
			return err
		}
	}
	return nil
}

func (p *ControlPlane) upgradeNodegroup(ctx context.Context, group, minor string, limit int) error {
	d, err := p.API.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String(p.Cluster), NodegroupName: aws.String(group)})
	if err != nil {
		return fmt.Errorf("DescribeNodegroup %s of %s: %w", group, p.Cluster, err)
	}
	ng := d.Nodegroup
	if aws.ToString(ng.Version) == minor {
		return nil
	}
	id, err := p.inFlight(ctx, group, "", types.UpdateTypeVersionUpdate, minor)
	if err != nil {
		return err
	}
	if id == "" {
		if limit > 0 && (ng.UpdateConfig == nil || aws.ToInt32(ng.UpdateConfig.MaxUnavailable) != int32(limit)) {
			out, err := p.API.UpdateNodegroupConfig(ctx, &eks.UpdateNodegroupConfigInput{ClusterName: aws.String(p.Cluster), NodegroupName: aws.String(group),
				UpdateConfig: &types.NodegroupUpdateConfig{MaxUnavailable: aws.Int32(int32(limit))}})
			if err != nil {
				return fmt.Errorf("UpdateNodegroupConfig %s of %s (maxUnavailable %d): %w", group, p.Cluster, limit, err)
			}
			if _, err := p.wait(ctx, p.Poll, aws.ToString(out.Update.Id), group, "", fmt.Sprintf("node group %s maxUnavailable %d", group, limit)); err != nil {
				return err
			}
		}
		out, err := p.API.UpdateNodegroupVersion(ctx, &eks.UpdateNodegroupVersionInput{ClusterName: aws.String(p.Cluster), NodegroupName: aws.String(group), Version: aws.String(minor)})
		if err != nil {
			return fmt.Errorf("UpdateNodegroupVersion %s of %s to %s: %w", group, p.Cluster, minor, err)
		}
		id = aws.ToString(out.Update.Id)
		p.progressf("EKS update %s: node group %s %s → %s, maxUnavailable %d", id, group, aws.ToString(ng.Version), minor, limit)
	} else {
		p.progressf("EKS update %s of node group %s to %s already in progress: following it", id, group, minor)
	}
	_, err = p.wait(ctx, p.NodegroupPoll, id, group, "", fmt.Sprintf("node group %s of %s to %s", group, p.Cluster, minor))
	var ue *UpdateError
	if errors.As(err, &ue) {
		if why := p.explainEvictionFailure(ctx, ue); why != "" {
			return fmt.Errorf("%w; %s", err, why)
		}
	}
	return err
}

// explainEvictionFailure names what EKS does not: the PodDisruptionBudgets
// that refuse the evictions on the nodes a PodEvictionFailure names.
func (p *ControlPlane) explainEvictionFailure(ctx context.Context, ue *UpdateError) string {
	var nodes []string
	for _, e := range ue.Errors {
		if e.ErrorCode == types.ErrorCodePodEvictionFailure {
			nodes = append(nodes, e.ResourceIds...)
		}
	}
	if len(nodes) == 0 {
		return ""
	}
	cs, err := kubernetes.NewForConfig(p.Kube)
	if err != nil {
		return ""
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("kup could not list the PodDisruptionBudgets to say which one held the drain: %v", err)
	}
	var out []string
	for _, node := range nodes {
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
		if err != nil {
			continue
		}
		for _, b := range BlockingPDBs(pods.Items, pdbs.Items) {
			out = append(out, fmt.Sprintf("node %s: %s", node, b))
		}
	}
	if len(out) == 0 {
		return "no PodDisruptionBudget refuses evictions now (it may have recovered since): run the update again"
	}
	return "what holds the drain: " + strings.Join(out, "; ")
}

// BlockingPDBs describes each PodDisruptionBudget that allows no
// disruption now and selects one of pods (the pods still on a node whose
// drain failed). Pure, for table tests.
func BlockingPDBs(pods []corev1.Pod, pdbs []policyv1.PodDisruptionBudget) []string {
	var out []string
	for _, b := range pdbs {
		if b.Status.DisruptionsAllowed > 0 {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		var held []string
		for _, pod := range pods {
			if pod.Namespace == b.Namespace && pod.DeletionTimestamp == nil && sel.Matches(labels.Set(pod.Labels)) {
				held = append(held, pod.Name)
			}
		}
		if len(held) == 0 {
			continue
		}
		rule := ""
		switch {
		case b.Spec.MinAvailable != nil:
			rule = "minAvailable " + b.Spec.MinAvailable.String()
		case b.Spec.MaxUnavailable != nil:
			rule = "maxUnavailable " + b.Spec.MaxUnavailable.String()
		}
		out = append(out, fmt.Sprintf("PodDisruptionBudget %s/%s (%s, %d of %d pods healthy, 0 disruptions allowed) refuses to let pod %s/%s go",
			b.Namespace, b.Name, rule, b.Status.CurrentHealthy, b.Status.ExpectedPods, b.Namespace, strings.Join(held, ", ")))
	}
	slices.Sort(out)
	return out
}
