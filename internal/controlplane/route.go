package controlplane

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/version"
)

// State is what the walker reads before it plans: every control-plane
// component instance the provider sees and every node's kubelet.
type State struct {
	Components []provider.Component
	// Kubelets maps node name to kubelet version.
	Kubelets map[string]version.Version
}

// RouteInput is everything PlanRoute decides from.
type RouteInput struct {
	State  State
	Target version.Version
	// Releases is the release table; nil means the embedded one.
	Releases *version.Releases
	// Provider names the control-plane provider in notes.
	Provider     string
	Capabilities provider.Capabilities
}

// Hop is one step of a route: the whole control plane from From to To.
type Hop struct {
	Index int             `json:"index"` // 1-based
	From  version.Version `json:"from"`
	To    version.Version `json:"to"`
	// Finish marks a hop an earlier run left half done (some component
	// already at To): the provider only moves what is behind.
	Finish bool   `json:"finish,omitempty"`
	Reason string `json:"reason"`
}

func (h Hop) String() string { return fmt.Sprintf("hop %d (%s → %s)", h.Index, h.From, h.To) }

// Route is the walk PlanRoute decided: hops in order, and notes the user
// should read (a provider that cannot install the newest patch, …).
type Route struct {
	From  version.Version `json:"from"`
	To    version.Version `json:"to"`
	Hops  []Hop           `json:"hops"`
	Notes []string        `json:"notes,omitempty"`
}

// Component names as providers report them.
const (
	apiServer         = "kube-apiserver"
	controllerManager = "kube-controller-manager"
	scheduler         = "kube-scheduler"
	cloudController   = "cloud-controller-manager"
)

// moving lists the components a hop moves (etcd is not one of them).
var moving = map[string]bool{apiServer: true, controllerManager: true, scheduler: true, cloudController: true}

// PlanRoute decides the hops from the control plane as it is to target.
//
// The apiservers set the starting point: if a component is behind the
// newest apiserver (an earlier run stopped mid-hop) the first hop
// finishes that one. From there the version path (version.Path) climbs
// one minor per hop through the newest patch of each minor the provider
// can install; a note says so whenever that patch is older than the
// newest release. A route whose path needs nodes rolled before a hop is
// refused: this walk moves only the control plane, and moving it past a
// kubelet's skew limit would break the nodes. A control plane already at
// target gives a route with no hops.
func PlanRoute(in RouteInput) (*Route, error) {
	rel := in.Releases
	if rel == nil {
		rel = version.DefaultReleases()
	}
	cv, err := clusterVersions(in.State)
	if err != nil {
		return nil, err
	}
	oldestAPI, newestAPI := span(cv.APIServers)
	oldestAll := oldestAPI
	var behind []string
	for _, c := range in.State.Components {
		if !moving[c.Name] {
			continue
		}
		v, _ := version.Parse(c.Version) // parsed above
		if v.Compare(newestAPI) < 0 {
			behind = append(behind, fmt.Sprintf("%s %s", c.Name, v))
			if v.Compare(oldestAll) < 0 {
				oldestAll = v
			}
		}
	}

	var installable func(version.Version) bool
	if inst := in.Capabilities.Installable; inst != nil {
		installable = func(v version.Version) bool { return inst(v.String()) }
	}
	r := &Route{From: oldestAll, To: in.Target}
	if len(behind) > 0 {
		sort.Strings(behind)
		r.Hops = append(r.Hops, Hop{Index: 1, From: oldestAll, To: newestAPI, Finish: true,
			Reason: fmt.Sprintf("finish the hop an earlier run left half done: kube-apiserver is at %s but %s is behind", newestAPI, strings.Join(behind, ", "))})
	}

	// The path starts where every apiserver will be after the finish hop.
	cv.APIServers = fill(len(cv.APIServers), newestAPI)
	cv.ControllerManagers = fill(len(cv.ControllerManagers), newestAPI)
	cv.Schedulers = fill(len(cv.Schedulers), newestAPI)
	cv.CloudControllerManagers = fill(len(cv.CloudControllerManagers), newestAPI)
	p, err := version.Path(newestAPI, in.Target, rel, version.PathOptions{Installable: installable, Cluster: &cv})
	var pe *version.PathError
	switch {
	case errors.As(err, &pe) && errors.Is(err, version.ErrSameVersion):
		r.To = newestAPI
		return r, nil
	case err != nil:
		return nil, err
	}
	r.To = p.To
	r.Notes = append(r.Notes, p.Notes...)
	for _, h := range p.Hops {
		if len(h.NodeRolls) > 0 {
			var nodes []string
			for _, nr := range h.NodeRolls {
				nodes = append(nodes, fmt.Sprintf("%s (kubelet %s → %s)", nr.Node, nr.From, nr.To))
			}
			alternative := ""
			if h.Index > 1 {
				alternative = fmt.Sprintf(", or choose a target up to %s", h.From)
			}
			return nil, fmt.Errorf("the control plane cannot go from %s to %s before node(s) %s are rolled: a kubelet may trail kube-apiserver by at most three minors; run `kup nodes upgrade --to %s` first%s",
				h.From, h.To, strings.Join(short(nodes, 5), ", "), h.NodeRolls[0].To, alternative)
		}
		r.Hops = append(r.Hops, Hop{Index: len(r.Hops) + 1, From: h.From, To: h.To, Reason: h.Reason})
	}
	// Say so where the provider holds a hop back from the newest release
	// (version.Path does for intermediate hops; the last hop too here).
	for _, h := range r.Hops {
		newest, ok := rel.NewestPatch(h.To)
		if !ok || newest.Compare(h.To) <= 0 || installable == nil || installable(newest) {
			continue
		}
		note := fmt.Sprintf("%s is the newest patch of %s the %s provider can install; the newest release is %s", h.To, h.To.MinorString(), in.Provider, newest)
		if in.Capabilities.InstallableNote != "" {
			note += " (" + in.Capabilities.InstallableNote + ")"
		}
		r.Notes = append(r.Notes, note)
	}
	return r, nil
}

// clusterVersions parses the state into the skew policy's terms.
func clusterVersions(st State) (version.ClusterVersions, error) {
	var cv version.ClusterVersions
	for _, c := range st.Components {
		if !moving[c.Name] {
			continue
		}
		v, err := version.Parse(c.Version)
		if err != nil {
			return cv, fmt.Errorf("%s at %s reports version %q: %w", c.Name, c.Instance, c.Version, err)
		}
		switch c.Name {
		case apiServer:
			cv.APIServers = append(cv.APIServers, v)
		case controllerManager:
			cv.ControllerManagers = append(cv.ControllerManagers, v)
		case scheduler:
			cv.Schedulers = append(cv.Schedulers, v)
		case cloudController:
			cv.CloudControllerManagers = append(cv.CloudControllerManagers, v)
		}
	}
	if len(cv.APIServers) == 0 {
		return cv, errors.New("the provider reports no kube-apiserver: cannot tell where the control plane is")
	}
	cv.Kubelets = st.Kubelets
	return cv, nil
}

func span(vs []version.Version) (oldest, newest version.Version) {
	oldest, newest = vs[0], vs[0]
	for _, v := range vs[1:] {
		if v.Compare(oldest) < 0 {
			oldest = v
		}
		if v.Compare(newest) > 0 {
			newest = v
		}
	}
	return oldest, newest
}

func fill(n int, v version.Version) []version.Version {
	out := make([]version.Version, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func short(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
}
