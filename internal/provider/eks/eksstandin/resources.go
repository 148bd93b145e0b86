package eksstandin

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubectl/pkg/drain"
)

// Insights: ListInsights filters on category, Kubernetes version and
// status, as the API reference says; DescribeInsight adds the
// recommendation and the resources.

func (ins Insight) summary() map[string]any {
	now := epoch(time.Now())
	return map[string]any{"id": ins.ID, "name": ins.Name, "category": ins.Category, "kubernetesVersion": ins.KubernetesVersion,
		"description": ins.Description, "lastRefreshTime": now, "lastTransitionTime": now,
		"insightStatus": map[string]string{"status": ins.Status, "reason": ins.Reason}}
}

func (s *Server) listInsights(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	var in struct {
		Filter struct {
			Categories         []string `json:"categories"`
			KubernetesVersions []string `json:"kubernetesVersions"`
			Statuses           []string `json:"statuses"`
		} `json:"filter"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return nil, err
		}
	}
	match := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	out := []any{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ins := range s.opts.Insights {
		if match(in.Filter.Categories, ins.Category) && match(in.Filter.KubernetesVersions, ins.KubernetesVersion) && match(in.Filter.Statuses, ins.Status) {
			out = append(out, ins.summary())
		}
	}
	return map[string]any{"insights": out}, nil
}

func (s *Server) describeInsight(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ins := range s.opts.Insights {
		if ins.ID != r.PathValue("id") {
			continue
		}
		m := ins.summary()
		m["recommendation"] = ins.Recommendation
		res := []any{}
		for _, uri := range ins.Resources {
			res = append(res, map[string]any{"kubernetesResourceUri": uri, "insightStatus": map[string]string{"status": ins.Status, "reason": ins.Reason}})
		}
		m["resources"] = res
		return map[string]any{"insight": m}, nil
	}
	return nil, notFound("Insight " + r.PathValue("id"))
}

// Add-ons.

func (s *Server) listAddons(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := []string{}
	for n := range s.addons {
		names = append(names, n)
	}
	slices.Sort(names)
	return map[string]any{"addons": names}, nil
}

func (s *Server) describeAddon(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.addons[r.PathValue("addon")]
	if a == nil {
		return nil, notFound("No addon: " + r.PathValue("addon") + " found in cluster: " + s.opts.Name)
	}
	return map[string]any{"addon": map[string]any{"addonName": a.name, "clusterName": s.opts.Name, "addonVersion": a.version, "status": a.status,
		"health": map[string]any{"issues": []any{}}}}, nil
}

func (s *Server) describeAddonVersions(r *http.Request) (any, *apiError) {
	q := r.URL.Query()
	byName := map[string][]any{}
	var names []string
	for _, v := range s.opts.AddonVersions {
		if n := q.Get("addonName"); n != "" && v.Addon != n {
			continue
		}
		if k := q.Get("kubernetesVersion"); k != "" && !slices.Contains(v.Clusters, k) {
			continue
		}
		var compat []any
		for _, c := range v.Clusters {
			compat = append(compat, map[string]any{"clusterVersion": c, "defaultVersion": v.Default, "platformVersions": []string{"*"}})
		}
		if _, ok := byName[v.Addon]; !ok {
			names = append(names, v.Addon)
		}
		byName[v.Addon] = append(byName[v.Addon], map[string]any{"addonVersion": v.Version, "architecture": []string{"amd64", "arm64"}, "compatibilities": compat})
	}
	out := []any{}
	for _, n := range names {
		out = append(out, map[string]any{"addonName": n, "type": "networking", "owner": "aws", "publisher": "eks", "addonVersions": byName[n]})
	}
	return map[string]any{"addons": out}, nil
}

// addonMinor is "v1.20" of "v1.20.4-eksbuild.1".
func addonMinor(v string) string {
	v = strings.SplitN(v, "-", 2)[0]
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// updateAddon is UpdateAddon. The version must be in the catalogue and
// compatible with the cluster's minor; vpc-cni may move one minor at a time
// (the EKS user guide: "update one minor version at a time").
func (s *Server) updateAddon(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	var in struct {
		AddonVersion     string `json:"addonVersion"`
		ResolveConflicts string `json:"resolveConflicts"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	name := r.PathValue("addon")
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.addons[name]
	if a == nil {
		return nil, notFound("No addon: " + name + " found in cluster: " + s.opts.Name)
	}
	if u := s.inProgress("", name); u != nil {
		return nil, inUse("Addon %s is in the middle of update %s.", name, u.ID)
	}
	ok := false
	for _, v := range s.opts.AddonVersions {
		if v.Addon == name && v.Version == in.AddonVersion && slices.Contains(v.Clusters, s.version) {
			ok = true
		}
	}
	if !ok {
		return nil, invalidParameter("Addon version specified is not supported for cluster version %s: %s %s", s.version, name, in.AddonVersion)
	}
	if name == "vpc-cni" && addonMinor(a.version) != addonMinor(in.AddonVersion) && !adjacentMinor(a.version, in.AddonVersion) {
		return nil, invalidParameter("Updating %s from %s to %s skips a minor version; update one minor version at a time.", name, a.version, in.AddonVersion)
	}
	u := s.newUpdate(string(types.UpdateTypeAddonUpdate), "", name, [2]string{"AddonVersion", in.AddonVersion}, [2]string{"ResolveConflicts", in.ResolveConflicts})
	a.status = string(types.AddonStatusUpdating)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.opts.AddonUpdateTime):
		}
		s.mu.Lock()
		a.version, a.status = in.AddonVersion, string(types.AddonStatusActive)
		s.mu.Unlock()
		s.finish(u)
	}()
	return u.json(), nil
}

func adjacentMinor(a, b string) bool {
	var am, an, bm, bn int
	if _, err := fmt.Sscanf(addonMinor(a), "v%d.%d", &am, &an); err != nil {
		return false
	}
	if _, err := fmt.Sscanf(addonMinor(b), "v%d.%d", &bm, &bn); err != nil {
		return false
	}
	return am == bm && (bn == an+1 || bn == an-1)
}

// Managed node groups.

func (s *Server) listNodegroups(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := []string{}
	for n := range s.nodegroups {
		names = append(names, n)
	}
	slices.Sort(names)
	return map[string]any{"nodegroups": names}, nil
}

func (s *Server) nodes(ctx context.Context, group string) ([]corev1.Node, error) {
	l, err := s.opts.Sandbox.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: NodegroupLabel + "=" + group})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(l.Items, func(a, b corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	return l.Items, nil
}

func (s *Server) describeNodegroup(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	s.mu.Lock()
	g := s.nodegroups[r.PathValue("ng")]
	var name, version, status string
	var maxU int
	if g != nil {
		name, version, status, maxU = g.name, g.version, g.status, g.maxUnavailable
	}
	s.mu.Unlock()
	if g == nil {
		return nil, notFound("No node group found for name: " + r.PathValue("ng") + ".")
	}
	nodes, err := s.nodes(r.Context(), name)
	if err != nil {
		return nil, &apiError{status: http.StatusInternalServerError, code: "ServerException", message: err.Error()}
	}
	n := len(nodes)
	return map[string]any{"nodegroup": map[string]any{
		"nodegroupName": name, "clusterName": s.opts.Name, "version": version, "releaseVersion": version + ".0-20260101", "status": status,
		"nodegroupArn":  "arn:aws:eks:us-east-1:000000000000:nodegroup/" + s.opts.Name + "/" + name,
		"scalingConfig": map[string]int{"minSize": n, "maxSize": n + 1, "desiredSize": n},
		"updateConfig":  map[string]int{"maxUnavailable": maxU},
		"labels":        map[string]string{NodegroupLabel: name},
		"health":        map[string]any{"issues": []any{}},
	}}, nil
}

func (s *Server) updateNodegroupConfig(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	var in struct {
		UpdateConfig *struct {
			MaxUnavailable           int `json:"maxUnavailable"`
			MaxUnavailablePercentage int `json:"maxUnavailablePercentage"`
		} `json:"updateConfig"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	name := r.PathValue("ng")
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.nodegroups[name]
	if g == nil {
		return nil, notFound("No node group found for name: " + name + ".")
	}
	if u := s.inProgress(name, ""); u != nil {
		return nil, inUse("Nodegroup %s is currently being updated (update %s).", name, u.ID)
	}
	if in.UpdateConfig == nil || in.UpdateConfig.MaxUnavailable < 1 || in.UpdateConfig.MaxUnavailable > 100 {
		return nil, invalidParameter("maxUnavailable must be between 1 and 100.")
	}
	u := s.newUpdate(string(types.UpdateTypeConfigUpdate), name, "", [2]string{"MaxUnavailable", fmt.Sprint(in.UpdateConfig.MaxUnavailable)})
	g.maxUnavailable = in.UpdateConfig.MaxUnavailable
	u.Status = string(types.UpdateStatusSuccessful)
	return u.json(), nil
}

// updateNodegroupVersion is UpdateNodegroupVersion: the group's nodes go
// maxUnavailable at a time through cordon, drain (Eviction API, limited
// per node) and the new kubelet. Without force, a drain that reaches the
// limit fails the update with PodEvictionFailure and the node stays
// cordoned at its old version, as EKS leaves it.
func (s *Server) updateNodegroupVersion(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	var in struct {
		Version string `json:"version"`
		Force   bool   `json:"force"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	name := r.PathValue("ng")
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.nodegroups[name]
	if g == nil {
		return nil, notFound("No node group found for name: " + name + ".")
	}
	if u := s.inProgress(name, ""); u != nil {
		return nil, inUse("Nodegroup %s is currently being updated (update %s).", name, u.ID)
	}
	if in.Version == "" {
		in.Version = s.version
	}
	release, known := s.opts.Releases[in.Version]
	if !known || minorNumber(in.Version) > minorNumber(s.version) {
		return nil, invalidParameter("Requested Nodegroup Kubernetes version %s is not supported: the cluster runs %s.", in.Version, s.version)
	}
	u := s.newUpdate(string(types.UpdateTypeVersionUpdate), name, "", [2]string{"Version", in.Version}, [2]string{"ReleaseVersion", in.Version + ".0-20260101"})
	g.status = string(types.NodegroupStatusUpdating)
	maxU := g.maxUnavailable
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		failed := s.roll(name, release, maxU, in.Force)
		s.mu.Lock()
		g.status = string(types.NodegroupStatusActive)
		if failed == nil {
			g.version = in.Version
		}
		s.mu.Unlock()
		if failed != nil {
			s.finish(u, *failed)
			return
		}
		s.finish(u)
	}()
	return u.json(), nil
}

// roll upgrades the group's nodes not yet at release, maxUnavailable at a
// time. It returns the update's error detail, or nil.
func (s *Server) roll(group, release string, maxUnavailable int, force bool) *errorDetail {
	ctx := s.ctx
	nodes, err := s.nodes(ctx, group)
	if err != nil {
		return &errorDetail{ErrorCode: string(types.ErrorCodeUnknown), ErrorMessage: err.Error()}
	}
	var todo []string
	for _, n := range nodes {
		if n.Status.NodeInfo.KubeletVersion != release {
			todo = append(todo, n.Name)
		}
	}
	cs := s.opts.Sandbox.Client()
	for len(todo) > 0 {
		batch := todo[:min(maxUnavailable, len(todo))]
		todo = todo[len(batch):]
		var mu sync.Mutex
		var stuck []string
		var other error
		var wg sync.WaitGroup
		for _, node := range batch {
			wg.Go(func() {
				h := &drain.Helper{Ctx: ctx, Client: cs, Force: true, IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
					GracePeriodSeconds: -1, Timeout: s.opts.EvictionLimit, DisableEviction: force, Out: discard{}, ErrOut: discard{}}
				n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
				if err == nil {
					err = drain.RunCordonOrUncordon(h, n, true)
				}
				if err == nil {
					if derr := drain.RunNodeDrain(h, node); derr != nil {
						mu.Lock()
						stuck = append(stuck, node)
						mu.Unlock()
						return
					}
					err = s.opts.Sandbox.SetNodeVersion(ctx, node, release)
				}
				if err == nil {
					n, err = cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
					if err == nil {
						err = drain.RunCordonOrUncordon(h, n, false)
					}
				}
				if err != nil {
					mu.Lock()
					other = fmt.Errorf("node %s: %w", node, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(stuck) > 0 {
			slices.Sort(stuck)
			return &errorDetail{ErrorCode: string(types.ErrorCodePodEvictionFailure),
				ErrorMessage: "Reached max retries while trying to evict pods from nodes in node group " + group, ResourceIDs: stuck}
		}
		if other != nil {
			return &errorDetail{ErrorCode: string(types.ErrorCodeUnknown), ErrorMessage: other.Error()}
		}
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
