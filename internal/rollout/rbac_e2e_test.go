package rollout_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestRolloutNarrowKubeconfig runs kup as users whose RBAC lacks what it
// reads. One that may not list StatefulSets: the rollout stops before
// touching a node, naming them. One that may list PodDisruptionBudgets
// but not watch them: continuous admission's cache would freeze them at
// the start, so kup says so and reads with LIST instead, and finishes.
// And, between them, an API server that never answers the live cache's
// LIST: the cache's sync deadline ends the wait with an error.
func TestRolloutNarrowKubeconfig(t *testing.T) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.37.2", NodeVersion: "v1.36.3", Nodes: 3, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := c.Client()

	all := []string{"get", "list", "watch"}
	rules := sandboxtest.RolloutRules
	as := func(t *testing.T, user string, r []rbacv1.PolicyRule) kubernetes.Interface {
		t.Helper()
		return kubernetes.NewForConfigOrDie(sandboxtest.As(ctx, t, c, user, r))
	}
	up := &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: 200 * time.Millisecond}
	untouched := func(t *testing.T) {
		t.Helper()
		assertCordoned(ctx, t, c, map[string]bool{})
		nodes, err := admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes.Items {
			if n.Status.NodeInfo.KubeletVersion != "v1.36.3" {
				t.Errorf("node %s at %s: a rollout that should not have started upgraded it", n.Name, n.Status.NodeInfo.KubeletVersion)
			}
		}
	}

	t.Run("no-list", func(t *testing.T) {
		r := &rollout.Roller{Client: as(t, "kup-no-sts", rules(all, nil)), Upgrader: up, Options: testOptions(1)}
		_, err := r.Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "statefulsets") || !strings.Contains(err.Error(), "forbidden") {
			t.Fatalf("want an error naming statefulsets as forbidden, got %v", err)
		}
		untouched(t)
	})
	t.Run("cache-never-syncs", func(t *testing.T) {
		// An API server that answers kup's first LIST of StatefulSets and
		// then never the informer's (too loaded to answer, a proxy that
		// drops long requests): the live cache's sync deadline turns the
		// wait into an error naming the type and the way round it, before
		// any node is touched. (Before list-not-watch, which upgrades
		// the nodes.)
		defer rollout.SetCacheSyncTimeout(3 * time.Second)()
		cfg := c.RESTConfig()
		var sts atomic.Int32
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(req *http.Request) (*http.Response, error) {
				if strings.HasSuffix(req.URL.Path, "/statefulsets") && sts.Add(1) > 1 {
					<-req.Context().Done()
					return nil, req.Context().Err()
				}
				return rt.RoundTrip(req)
			})
		})
		_, err := (&rollout.Roller{Client: kubernetes.NewForConfigOrDie(cfg), Upgrader: up, Options: testOptions(1)}).Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "StatefulSet") || !strings.Contains(err.Error(), "did not sync within 3s") || !strings.Contains(err.Error(), "--continuous=false") {
			t.Fatalf("want an error naming StatefulSets, the 3s deadline and --continuous=false, got %v", err)
		}
		if n := sts.Load(); n < 2 {
			t.Errorf("%d request(s) for StatefulSets: the informer's was never held back", n)
		}
		untouched(t)
	})
	t.Run("list-not-watch", func(t *testing.T) {
		// The live cache syncs from its LIST, then the watch is refused:
		// kup must not plan on PDBs frozen at the start, and reads with
		// LIST instead, saying so.
		var said []string
		opts := testOptions(1)
		opts.Progress = func(e rollout.Event) {
			if strings.Contains(e.Message, "cannot watch") {
				said = append(said, e.Message)
			}
		}
		r := &rollout.Roller{Client: as(t, "kup-no-watch", rules([]string{"get", "list"}, all)), Upgrader: up, Options: opts}
		res, err := r.Run(ctx)
		if err != nil {
			t.Fatalf("a kubeconfig that may list PDBs but not watch them: the rollout failed: %v", err)
		}
		if len(said) != 1 || !strings.Contains(said[0], "PodDisruptionBudgets") || !strings.Contains(said[0], "LIST") {
			t.Errorf("want one event naming the PodDisruptionBudgets watch and the LIST fallback, got %q", said)
		}
		for n, nr := range res.Nodes {
			if nr.Outcome != "upgraded" {
				t.Errorf("node %s: %s (%s)", n, nr.Outcome, nr.Reason)
			}
		}
		assertCordoned(ctx, t, c, map[string]bool{})
	})
}
