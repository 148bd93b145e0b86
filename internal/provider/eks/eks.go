// Package eks is the provider for Amazon EKS clusters, through the AWS
// SDK for Go v2: the standard credential chain and profiles, the region
// from --region or the environment, and the SDK's own endpoint override
// (AWS_ENDPOINT_URL_EKS), so nothing of AWS's wire protocol is written
// here.
//
// It moves the control plane one minor per UpdateClusterVersion and
// follows the update with DescribeUpdate (backoff, deadline, EKS's errors
// verbatim) while watching the API server through the kubeconfig; it
// brings the managed add-ons along after each hop, rolls managed node
// groups with the maxUnavailable kup's wave planner chose, and turns
// upgrade insights into findings.
//
// It decides nothing about the path or the waves (the planner does) and
// never touches nodes itself: EKS drains managed node groups; kup reads
// the cluster only to explain what EKS reports.
package eks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/version"
)

// Poll is how kup follows an EKS update: DescribeUpdate after Initial,
// then at intervals doubling up to Max, until the update ends or Deadline
// passes.
type Poll struct {
	Initial, Max time.Duration
	Deadline     time.Duration
}

// DefaultPoll suits a control-plane update (EKS: "should finish within a
// few minutes"; kup allows an hour before it calls it stuck).
var DefaultPoll = Poll{Initial: 5 * time.Second, Max: 30 * time.Second, Deadline: time.Hour}

// ControlPlane is one EKS cluster.
type ControlPlane struct {
	API *eks.Client
	// Cluster is the EKS cluster's name.
	Cluster string
	// Kube reaches the cluster's API server (from the kubeconfig), which
	// kup watches while EKS updates it.
	Kube *rest.Config
	// Poll follows control-plane and add-on updates; NodegroupPoll node
	// group updates (whose deadline must cover every drain).
	Poll, NodegroupPoll Poll
	// Progress receives one line per step (nil: none).
	Progress func(string)
}

var _ provider.ControlPlane = (*ControlPlane)(nil)

// New makes the provider for cluster with the SDK's default
// configuration: credentials from the standard chain (environment,
// shared files and profiles, SSO, IMDS), region from region or the
// environment, endpoint from AWS_ENDPOINT_URL_EKS when set.
func New(ctx context.Context, cluster, region string, kube *rest.Config) (*ControlPlane, error) {
	if cluster == "" {
		return nil, errors.New("--cluster is required with --provider eks: the EKS cluster's name")
	}
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: pass --region, or set AWS_REGION or a profile's region")
	}
	return &ControlPlane{API: eks.NewFromConfig(cfg), Cluster: cluster, Kube: kube, Poll: DefaultPoll,
		NodegroupPoll: Poll{Initial: 10 * time.Second, Max: time.Minute, Deadline: 6 * time.Hour}}, nil
}

func (p *ControlPlane) Name() string { return "eks" }

func (p *ControlPlane) progressf(format string, args ...any) {
	if p.Progress != nil {
		p.Progress(fmt.Sprintf(format, args...))
	}
}

// Capabilities: EKS installs minors, choosing the patch itself, and can
// roll the control plane back one minor within its window.
func (p *ControlPlane) Capabilities() provider.Capabilities {
	return provider.Capabilities{
		InstallableNote: "EKS chooses the patch release of each minor; kup asks for the minor",
		Rollback:        true,
		PatchByProvider: true,
		// "If your cluster has managed node groups attached to it, all of
		// your node groups' Kubernetes versions must match the cluster's
		// Kubernetes version in order to update the cluster to a new
		// Kubernetes version." (API reference, UpdateClusterVersion)
		NodeGroupsFollowEachHop: true,
		EtcdNote:                "EKS runs etcd and gives no access to it; AWS backs it up",
	}
}

// Components reports the API server as it says it runs (/version through
// the kubeconfig; EKS's controller-manager and scheduler are not
// visible), with the minor EKS reports as the source's note.
func (p *ControlPlane) Components(ctx context.Context) ([]provider.Component, error) {
	c, err := p.describe(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(p.Kube)
	if err != nil {
		return nil, err
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("reading the API server's version of EKS cluster %s: %w", p.Cluster, err)
	}
	return []provider.Component{{Name: "kube-apiserver", Instance: aws.ToString(c.Endpoint), Version: v.GitVersion,
		Source: fmt.Sprintf("/version (EKS %s, %s)", aws.ToString(c.Version), aws.ToString(c.PlatformVersion))}}, nil
}

func (p *ControlPlane) describe(ctx context.Context) (*types.Cluster, error) {
	out, err := p.API.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(p.Cluster)})
	if err != nil {
		return nil, fmt.Errorf("DescribeCluster %s: %w", p.Cluster, err)
	}
	return out.Cluster, nil
}

// Health: EKS says ACTIVE with no health issues, and the API server
// answers /readyz through the kubeconfig.
func (p *ControlPlane) Health(ctx context.Context) (*provider.Health, error) {
	comps, err := p.Components(ctx)
	if err != nil {
		return nil, err
	}
	h := &provider.Health{Components: comps}
	c, err := p.describe(ctx)
	if err != nil {
		return nil, err
	}
	if c.Status != types.ClusterStatusActive {
		h.Problems = append(h.Problems, fmt.Sprintf("EKS cluster %s is %s, not ACTIVE", p.Cluster, c.Status))
	}
	if c.Health != nil {
		for _, i := range c.Health.Issues {
			h.Problems = append(h.Problems, fmt.Sprintf("EKS cluster %s health issue %s: %s", p.Cluster, i.Code, aws.ToString(i.Message)))
		}
	}
	if err := p.readyz(ctx); err != nil {
		h.Problems = append(h.Problems, fmt.Sprintf("kube-apiserver of %s: %v", p.Cluster, err))
	}
	return h, nil
}

func (p *ControlPlane) readyz(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(p.Kube)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var code int
	res := cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&code)
	if err := res.Error(); err != nil {
		return fmt.Errorf("/readyz: %w", err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("/readyz answered %d", code)
	}
	return nil
}

var failingCheck = regexp.MustCompile(`\[-\]([A-Za-z0-9/._-]+) failed`)

// readyzSummary names the failing readyz checks rather than quoting the
// whole verbose answer.
func readyzSummary(err error) string {
	var names []string
	for _, m := range failingCheck.FindAllStringSubmatch(err.Error(), -1) {
		names = append(names, m[1])
	}
	if len(names) > 0 {
		return "/readyz failing: " + strings.Join(names, ", ")
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Minor is the EKS version string of v ("1.36" of v1.36.3).
func Minor(v string) (string, error) {
	pv, err := version.Parse(v)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d.%d", pv.Major(), pv.Minor()), nil
}

// Upgrade moves the control plane to version's minor (EKS picks the
// patch): UpdateClusterVersion, unless the cluster is there already or an
// update to it is in flight (a resumed kup follows that one), then
// DescribeUpdate until it ends, watching the API server meanwhile; then
// the managed add-ons follow (see addons.go).
func (p *ControlPlane) Upgrade(ctx context.Context, to string) error {
	minor, err := Minor(to)
	if err != nil {
		return err
	}
	c, err := p.describe(ctx)
	if err != nil {
		return err
	}
	if aws.ToString(c.Version) != minor {
		id, err := p.inFlight(ctx, "", "", types.UpdateTypeVersionUpdate, minor)
		if err != nil {
			return err
		}
		if id == "" {
			out, err := p.API.UpdateClusterVersion(ctx, &eks.UpdateClusterVersionInput{Name: aws.String(p.Cluster), Version: aws.String(minor)})
			if err != nil {
				return fmt.Errorf("UpdateClusterVersion %s to %s: %w", p.Cluster, minor, err)
			}
			id = aws.ToString(out.Update.Id)
			p.progressf("EKS update %s: control plane %s → %s", id, aws.ToString(c.Version), minor)
		} else {
			p.progressf("EKS update %s to %s already in progress: following it", id, minor)
		}
		watch := p.watchAPIServer(ctx)
		_, err = p.wait(ctx, p.Poll, id, "", "", "control plane of "+p.Cluster+" to "+minor)
		seen := watch()
		if seen != "" {
			p.progressf("%s", seen)
		}
		if err != nil {
			return err
		}
	}
	return p.upgradeAddons(ctx, minor)
}

// inFlight returns the id of an update in progress of type typ with the
// Version parameter want, on the cluster (nodegroup and addon empty) or
// on one node group or add-on.
func (p *ControlPlane) inFlight(ctx context.Context, nodegroup, addon string, typ types.UpdateType, want string) (string, error) {
	in := &eks.ListUpdatesInput{Name: aws.String(p.Cluster)}
	if nodegroup != "" {
		in.NodegroupName = aws.String(nodegroup)
	}
	if addon != "" {
		in.AddonName = aws.String(addon)
	}
	pages := eks.NewListUpdatesPaginator(p.API, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("ListUpdates %s: %w", p.Cluster, err)
		}
		for _, id := range page.UpdateIds {
			u, err := p.describeUpdate(ctx, id, nodegroup, addon)
			if err != nil {
				return "", err
			}
			if u.Status != types.UpdateStatusInProgress || u.Type != typ {
				continue
			}
			for _, pr := range u.Params {
				if pr.Type == types.UpdateParamTypeVersion && aws.ToString(pr.Value) == want {
					return id, nil
				}
			}
		}
	}
	return "", nil
}

func (p *ControlPlane) describeUpdate(ctx context.Context, id, nodegroup, addon string) (*types.Update, error) {
	in := &eks.DescribeUpdateInput{Name: aws.String(p.Cluster), UpdateId: aws.String(id)}
	if nodegroup != "" {
		in.NodegroupName = aws.String(nodegroup)
	}
	if addon != "" {
		in.AddonName = aws.String(addon)
	}
	out, err := p.API.DescribeUpdate(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("DescribeUpdate %s of %s: %w", id, p.Cluster, err)
	}
	return out.Update, nil
}

// UpdateError is an EKS update that ended Failed or Cancelled, with EKS's
// errors as it gave them.
type UpdateError struct {
	ID, What string
	Status   types.UpdateStatus
	Errors   []types.ErrorDetail
}

func (e *UpdateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "EKS update %s (%s) %s", e.ID, e.What, e.Status)
	for i, d := range e.Errors {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s: %s", sep, d.ErrorCode, aws.ToString(d.ErrorMessage))
		if len(d.ResourceIds) > 0 {
			fmt.Fprintf(&b, " (resources: %s)", strings.Join(d.ResourceIds, ", "))
		}
	}
	return b.String()
}

// wait follows update id until it ends: nil when Successful, an
// *UpdateError when Failed or Cancelled, an error naming what it waited
// for when the deadline passes.
func (p *ControlPlane) wait(ctx context.Context, poll Poll, id, nodegroup, addon, what string) (*types.Update, error) {
	if poll.Initial <= 0 {
		poll = DefaultPoll
	}
	deadline := time.Now().Add(poll.Deadline)
	interval := poll.Initial
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		u, err := p.describeUpdate(ctx, id, nodegroup, addon)
		if err != nil {
			return nil, err
		}
		switch u.Status {
		case types.UpdateStatusSuccessful:
			return u, nil
		case types.UpdateStatusFailed, types.UpdateStatusCancelled:
			return u, &UpdateError{ID: id, What: what, Status: u.Status, Errors: u.Errors}
		}
		if time.Now().After(deadline) {
			return u, fmt.Errorf("EKS update %s (%s) still %s after %s: kup stops waiting; the update goes on in EKS (aws eks describe-update --name %s --update-id %s)", id, what, u.Status, poll.Deadline, p.Cluster, id)
		}
		interval = min(2*interval, poll.Max)
	}
}

// watchAPIServer polls /readyz every second while EKS updates the control
// plane; the returned function stops it and says what was seen (empty
// when the API server answered throughout).
func (p *ControlPlane) watchAPIServer(ctx context.Context) func() string {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var checks, failed int
	var longest, cur time.Duration
	var last string
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var downSince time.Time
		for {
			err := p.readyz(ctx)
			mu.Lock()
			checks++
			if err != nil && ctx.Err() == nil {
				failed++
				last = readyzSummary(err)
				if downSince.IsZero() {
					downSince = time.Now()
				}
				cur = time.Since(downSince)
				longest = max(longest, cur)
			} else {
				downSince = time.Time{}
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() string {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if failed == 0 {
			return ""
		}
		return fmt.Sprintf("kube-apiserver of %s did not answer /readyz %d of %d times during the update (longest gap %s; last: %s)", p.Cluster, failed, checks, longest.Round(time.Second), last)
	}
}
