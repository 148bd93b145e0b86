package action_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/drain"
	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/plan"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestOneKupAtATime: kup nodes upgrade and kup controlplane upgrade take
// the upgrade lock kup apply holds. While another kup holds it they
// refuse, naming the holder, and touch nothing; a rollout whose lock is
// taken over stops at once, saying so, and leaves only cordons its state
// annotations name as kup's, which the next run gives back.
func TestOneKupAtATime(t *testing.T) {
	t.Parallel() // its own sandbox
	const target = "v1.37.2"
	c := sandboxtest.Start(t, sandbox.Options{Version: target, NodeVersion: "v1.36.3", Nodes: 4, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cs := c.Client()
	nodes := func() (upgraded int, cordoned []string) {
		t.Helper()
		l, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range l.Items {
			n := &l.Items[i]
			if n.Status.NodeInfo.KubeletVersion == target {
				upgraded++
			}
			if n.Spec.Unschedulable {
				cordoned = append(cordoned, n.Name)
				if !rollout.KupOwnsCordon(n) {
					t.Errorf("node %s is cordoned with no kup state saying kup did it: %q", n.Name, n.Annotations[rollout.StateAnnotation])
				}
			}
		}
		return upgraded, cordoned
	}
	nodesUpgrade := func(ttl time.Duration, progress func(rollout.Event)) *action.NodesUpgrade {
		return &action.NodesUpgrade{Config: c.RESTConfig(), Out: &bytes.Buffer{}, LockTTL: ttl,
			Upgrader: &sandboxprovider.NodeUpgrader{Cluster: c, UpgradeTime: time.Second},
			Options: rollout.Options{Target: target, Policy: plan.Policy{MaxUnavailable: intstr.FromInt32(1)}, Progress: progress,
				Drain: drain.Options{DeleteEmptyDirData: true, Timeout: 2 * time.Minute}}}
	}

	// Another kup holds the lock: both commands refuse and name it.
	other, err := journal.Acquire(ctx, cs, "other@elsewhere pid 1 run x", journal.DefaultTTL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = nodesUpgrade(0, nil).Run(ctx)
	if !errors.Is(err, journal.ErrHeld) || !strings.Contains(err.Error(), "other@elsewhere pid 1") {
		t.Errorf("kup nodes upgrade while another kup holds the lock: %v; want it refused, naming the holder", err)
	}
	_, err = (&action.ControlPlaneUpgrade{Config: c.RESTConfig(), ControlPlane: &sandboxprovider.ControlPlane{Cluster: c}, To: target, SkipBackup: true}).Run(ctx)
	if !errors.Is(err, journal.ErrHeld) || !strings.Contains(err.Error(), "other@elsewhere pid 1") {
		t.Errorf("kup controlplane upgrade while another kup holds the lock: %v; want it refused, naming the holder", err)
	}
	if up, cordoned := nodes(); up != 0 || len(cordoned) != 0 {
		t.Fatalf("refused, yet %d node(s) upgraded and %v cordoned", up, cordoned)
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// The lock is taken over (this kup stopped renewing it for longer
	// than its TTL, as far as the other knows) after the first node is
	// done: the rollout stops and says why.
	// Progress is called from the nodes' goroutines.
	takeOver := make(chan struct{})
	var once sync.Once
	a := nodesUpgrade(2*time.Second, func(e rollout.Event) {
		if e.Node != "" && e.Step == rollout.StepDone {
			once.Do(func() { close(takeOver) })
		}
	})
	go func() {
		select {
		case <-takeOver:
		case <-ctx.Done():
			return
		}
		// The rollout renews the same Lease meanwhile: retry on its
		// conflicts.
		leases := cs.CoordinationV1().Leases(journal.Namespace)
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			l, err := leases.Get(ctx, journal.LeaseName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			now := metav1.NewMicroTime(time.Now())
			l.Spec.HolderIdentity, l.Spec.RenewTime = ptr.To("thief@elsewhere pid 2"), &now
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
			return err
		}); err != nil {
			t.Error(err)
		}
	}()
	res, err := a.Run(ctx)
	if !errors.Is(err, journal.ErrHeld) || !strings.Contains(err.Error(), "thief@elsewhere pid 2 took the lock over") {
		t.Fatalf("rollout whose lock was taken over: %v; want it stopped, naming the new holder", err)
	}
	up, cordoned := nodes()
	t.Logf("stopped: %v; %d of 4 nodes upgraded, cordoned: %v", err, up, cordoned)
	if up == 0 || up == 4 || res == nil || !res.Stopped {
		t.Errorf("%d of 4 nodes upgraded (result %+v); want the rollout stopped part-way", up, res)
	}

	// The thief goes; the next run finishes every node and gives back
	// every cordon.
	if err := (func() error {
		l, err := cs.CoordinationV1().Leases(journal.Namespace).Get(ctx, journal.LeaseName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		l.Spec.HolderIdentity, l.Spec.RenewTime = nil, nil
		_, err = cs.CoordinationV1().Leases(journal.Namespace).Update(ctx, l, metav1.UpdateOptions{})
		return err
	})(); err != nil {
		t.Fatal(err)
	}
	if _, err := nodesUpgrade(0, nil).Run(ctx); err != nil {
		t.Fatalf("the run after: %v", err)
	}
	if up, cordoned := nodes(); up != 4 || len(cordoned) != 0 {
		t.Errorf("after the next run: %d of 4 nodes upgraded, %v cordoned; want all upgraded, none cordoned", up, cordoned)
	}

	// Narrower kubeconfigs. One that may use the Lease in kup's namespace
	// (there now) but not create namespaces takes the lock. One that may
	// not touch the Lease runs all the same, with a warning: kup nodes
	// upgrade works on any cluster.
	read := []string{"get", "list", "watch"}
	leaseUser := sandboxtest.As(ctx, t, c, "kup-lease-only", append(sandboxtest.RolloutRules(read, read),
		rbacv1.PolicyRule{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}}))
	noLease := sandboxtest.As(ctx, t, c, "kup-no-lease", sandboxtest.RolloutRules(read, read))
	for _, tc := range []struct {
		user *rest.Config
		warn bool
	}{{leaseUser, false}, {noLease, true}} {
		a := nodesUpgrade(0, nil)
		var out bytes.Buffer
		a.Config, a.Out = tc.user, &out
		_, err := a.Run(ctx)
		warned := strings.Contains(out.String(), "warning: cannot take kup's upgrade lock")
		if err != nil || warned != tc.warn {
			t.Errorf("as %s: %v, output %q; want no error and a warning about the lock: %v", tc.user.Impersonate.UserName, err, out.String(), tc.warn)
		}
	}

	// A kup killed a moment ago: its lock has missed its renewals (it
	// renews every quarter of its TTL). The next kup waits for it to
	// expire, saying so, instead of refusing.
	leases := cs.CoordinationV1().Leases(journal.Namespace)
	l, err := leases.Get(ctx, journal.LeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	renewed := metav1.NewMicroTime(time.Now().Add(-3 * time.Second))
	l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.LeaseDurationSeconds = ptr.To("dead@elsewhere pid 3"), &renewed, ptr.To(int32(4))
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	a = nodesUpgrade(0, nil)
	var out bytes.Buffer
	a.Out = &out
	if _, err := a.Run(ctx); err != nil || !strings.Contains(out.String(), "dead@elsewhere pid 3 holds kup's upgrade lock but has not renewed it for ") || !strings.Contains(out.String(), "for it to expire") {
		t.Errorf("with the lock of a kup killed 3 s ago (TTL 4 s): %v, output %q; want kup to wait for it and run", err, out.String())
	}
}
