package controlplane

import (
	"errors"
	"strings"
	"testing"

	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/version"
)

// served is what the Go module proxy serves of k8s.io/kubernetes 1.35–1.37
// (the sandbox provider's installable versions).
var served = map[string]bool{"v1.35.4": true, "v1.36.1": true, "v1.36.3": true, "v1.37.2": true}

func installableFrom(set map[string]bool) provider.Capabilities {
	return provider.Capabilities{Installable: func(v string) bool { return set[v] }, InstallableNote: "only what the proxy serves"}
}

func cp(api, cm, sched string) []provider.Component {
	return []provider.Component{
		{Name: "kube-apiserver", Instance: "a", Version: api},
		{Name: "kube-controller-manager", Instance: "a", Version: cm},
		{Name: "kube-scheduler", Instance: "a", Version: sched},
		{Name: "etcd", Instance: "a", Version: "v3.6.16"},
	}
}

func kubelets(vs ...string) map[string]version.Version {
	out := map[string]version.Version{}
	for i, v := range vs {
		out[string(rune('a'+i))+"-node"] = version.MustParse(v)
	}
	return out
}

func TestPlanRoute(t *testing.T) {
	for _, tc := range []struct {
		name       string
		components []provider.Component
		kubelets   map[string]version.Version
		target     string
		caps       provider.Capabilities
		// hops are "from>to" with a "!" prefix for a finish hop.
		hops    []string
		to      string
		notes   []string // substrings, in order
		err     string
		errIs   error
		noNotes bool
	}{
		{
			name:       "two minor hops through the newest served patch",
			components: cp("v1.35.4", "v1.35.4", "v1.35.4"), kubelets: kubelets("v1.35.4", "v1.35.4"),
			target: "v1.37.2", caps: installableFrom(served),
			hops: []string{"v1.35.4>v1.36.3", "v1.36.3>v1.37.2"}, to: "v1.37.2", noNotes: true,
		},
		{
			name:       "the provider holds an intermediate hop back",
			components: cp("v1.35.4", "v1.35.4", "v1.35.4"), target: "v1.37.2",
			caps: installableFrom(map[string]bool{"v1.36.1": true, "v1.37.2": true}),
			hops: []string{"v1.35.4>v1.36.1", "v1.36.1>v1.37.2"}, to: "v1.37.2",
			notes: []string{"v1.36.1 is the newest patch of 1.36 the sandbox provider can install; the newest release is v1.36.3 (only what the proxy serves)"},
		},
		{
			name:       "a minor-only target resolves to the newest installable patch, and says it is not the newest release",
			components: cp("v1.36.3", "v1.36.3", "v1.36.3"), target: "1.37",
			caps: installableFrom(map[string]bool{"v1.37.1": true}),
			hops: []string{"v1.36.3>v1.37.1"}, to: "v1.37.1",
			notes: []string{"target v1.37 resolved to v1.37.1", "v1.37.1 is the newest patch of 1.37 the sandbox provider can install; the newest release is v1.37.2"},
		},
		{
			name:       "any version installable: no note",
			components: cp("v1.36.3", "v1.36.3", "v1.36.3"), target: "v1.37.2",
			hops: []string{"v1.36.3>v1.37.2"}, to: "v1.37.2", noNotes: true,
		},
		{
			name:       "already at the target: no hops",
			components: cp("v1.37.2", "v1.37.2", "v1.37.2"), target: "v1.37.2", caps: installableFrom(served),
			to: "v1.37.2", noNotes: true,
		},
		{
			name:       "an earlier run stopped mid-hop: finish it",
			components: cp("v1.37.2", "v1.36.3", "v1.36.3"), target: "v1.37.2", caps: installableFrom(served),
			hops: []string{"!v1.36.3>v1.37.2"}, to: "v1.37.2",
		},
		{
			name:       "finish the half-done hop, then go on",
			components: cp("v1.36.3", "v1.36.3", "v1.35.4"), kubelets: kubelets("v1.35.4"), target: "v1.37.2", caps: installableFrom(served),
			hops: []string{"!v1.35.4>v1.36.3", "v1.36.3>v1.37.2"}, to: "v1.37.2",
		},
		{
			name:       "HA apiservers at two versions: the newest sets the start",
			components: append(cp("v1.36.3", "v1.36.3", "v1.36.3"), provider.Component{Name: "kube-apiserver", Instance: "b", Version: "v1.35.4"}),
			target:     "v1.37.2", caps: installableFrom(served),
			hops: []string{"!v1.35.4>v1.36.3", "v1.36.3>v1.37.2"}, to: "v1.37.2",
		},
		{
			name:       "a kubelet four minors behind the target hop needs a node roll first",
			components: cp("v1.35.4", "v1.35.4", "v1.35.4"), kubelets: kubelets("v1.35.4", "v1.33.12"), target: "v1.37.2",
			err: "before node(s) b-node (kubelet v1.33.12 → v1.36.3) are rolled",
		},
		{
			name:       "downgrade refused",
			components: cp("v1.37.2", "v1.37.2", "v1.37.2"), target: "v1.36.3", errIs: version.ErrDowngrade,
		},
		{
			name:       "target the provider cannot install",
			components: cp("v1.36.3", "v1.36.3", "v1.36.3"), target: "v1.37.1", caps: installableFrom(served), errIs: version.ErrNotInstallable,
		},
		{
			name:       "no apiserver reported",
			components: []provider.Component{{Name: "etcd", Version: "v3.6.16"}}, target: "v1.37.2",
			err: "reports no kube-apiserver",
		},
		{
			name:       "unreadable component version",
			components: cp("v1.36.3", "garbage", "v1.36.3"), target: "v1.37.2",
			err: `kube-controller-manager at a reports version "garbage"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := PlanRoute(RouteInput{
				State:  State{Components: tc.components, Kubelets: tc.kubelets},
				Target: version.MustParse(tc.target), Provider: "sandbox", Capabilities: tc.caps,
			})
			if tc.err != "" || tc.errIs != nil {
				if err == nil {
					t.Fatalf("want an error, got route %+v", r)
				}
				if tc.err != "" && !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %q lacks %q", err, tc.err)
				}
				if tc.errIs != nil && !errors.Is(err, tc.errIs) {
					t.Errorf("error %v is not %v", err, tc.errIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, h := range r.Hops {
				if h.Index != i+1 {
					t.Errorf("hop %d has index %d", i+1, h.Index)
				}
				if h.Reason == "" {
					t.Errorf("hop %d has no reason", h.Index)
				}
				s := h.From.String() + ">" + h.To.String()
				if h.Finish {
					s = "!" + s
				}
				got = append(got, s)
			}
			if strings.Join(got, " ") != strings.Join(tc.hops, " ") {
				t.Errorf("hops %v, want %v", got, tc.hops)
			}
			if r.To.String() != tc.to {
				t.Errorf("route to %s, want %s", r.To, tc.to)
			}
			if tc.noNotes && len(r.Notes) > 0 {
				t.Errorf("want no notes, got %q", r.Notes)
			}
			all := strings.Join(r.Notes, "\n")
			for _, n := range tc.notes {
				if !strings.Contains(all, n) {
					t.Errorf("notes lack %q:\n%s", n, all)
				}
			}
		})
	}
}
