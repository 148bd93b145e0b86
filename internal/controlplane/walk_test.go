package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/version"
)

// refused is what a client sees while an apiserver restarts.
var refused = &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}

// fakeControlPlane is a provider whose failures are injected, as helm's
// failing fake client: it records what was asked, in order, in a log
// shared with the backup callback.
type fakeControlPlane struct {
	mu       sync.Mutex
	versions map[string]string // component → version
	log      *[]string
	// upgrade, if set, replaces the default behaviour (every component
	// to the version) for one call.
	upgrade func(f *fakeControlPlane, version string) error
	// down makes the next n reads fail as if the apiserver restarted.
	down int
	// problems is what Health reports beside the versions.
	problems []string
}

func newFake(v string, log *[]string) *fakeControlPlane {
	return &fakeControlPlane{versions: map[string]string{"kube-apiserver": v, "kube-controller-manager": v, "kube-scheduler": v}, log: log}
}

func (f *fakeControlPlane) Name() string { return "fake" }
func (f *fakeControlPlane) Capabilities() provider.Capabilities {
	return provider.Capabilities{Installable: func(v string) bool { return served[v] }}
}

func (f *fakeControlPlane) components() []provider.Component {
	var out []provider.Component
	for _, n := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		out = append(out, provider.Component{Name: n, Instance: "cp-0", Version: f.versions[n]})
	}
	return append(out, provider.Component{Name: "etcd", Instance: "cp-0", Version: "v3.6.16"})
}

func (f *fakeControlPlane) Components(ctx context.Context) ([]provider.Component, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down > 0 {
		f.down--
		return nil, refused
	}
	return f.components(), nil
}

func (f *fakeControlPlane) Upgrade(ctx context.Context, v string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	*f.log = append(*f.log, "upgrade "+v)
	// Every swap restarts the apiserver: the next reads are refused.
	f.down = 2
	if f.upgrade != nil {
		return f.upgrade(f, v)
	}
	for k := range f.versions {
		f.versions[k] = v
	}
	return nil
}

func (f *fakeControlPlane) Health(ctx context.Context) (*provider.Health, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down > 0 {
		f.down--
		return &provider.Health{Problems: []string{"kube-apiserver is not ready: connection refused"}}, nil
	}
	return &provider.Health{Components: f.components(), Problems: f.problems}, nil
}

// nodeClient is a fake API with nodes at kubelet versions; its first
// `flaky` node LISTs are refused.
func nodeClient(flaky int, versions ...string) *fake.Clientset {
	var objs []runtime.Object
	for i, v := range versions {
		objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", i)}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: v}}})
	}
	c := fake.NewClientset(objs...)
	var mu sync.Mutex
	c.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if flaky > 0 {
			flaky--
			if flaky%2 == 0 {
				return true, nil, refused
			}
			return true, nil, apierrors.NewServiceUnavailable("the apiserver is starting")
		}
		return false, nil, nil
	})
	return c
}

func init() { gatePoll = 10 * time.Millisecond }

// fastRetry keeps the tests quick; the policy is the same.
var fastRetry = wait.Backoff{Duration: time.Millisecond, Factor: 1.5, Steps: 8}

func walker(f *fakeControlPlane, client *fake.Clientset, target string, log *[]string, backupErr error) *Walker {
	return &Walker{
		ControlPlane: f, Client: client,
		Backup: func(ctx context.Context) (*backup.Manifest, error) {
			*log = append(*log, "backup")
			if backupErr != nil {
				return nil, backupErr
			}
			return &backup.Manifest{Path: "/backups/sandbox/before.db", Revision: 42, TotalKeys: 7, Verified: []string{"trial restore"}}, nil
		},
		Options: Options{Target: version.MustParse(target), Retry: fastRetry, GateTimeout: 2 * time.Second, PreflightTimeout: time.Second},
	}
}

func TestWalkTwoHops(t *testing.T) {
	var log []string
	f := newFake("v1.35.4", &log)
	f.down = 3 // the first reads find the apiserver restarting
	w := walker(f, nodeClient(4, "v1.35.4", "v1.35.4", "v1.34.4"), "v1.37.2", &log, nil)
	var events []Event
	w.Options.Progress = func(e Event) { events = append(events, e) }
	res, err := w.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := strings.Join(log, ", "), "backup, upgrade v1.36.3, upgrade v1.37.2"; got != want {
		t.Errorf("calls %q, want %q (backup first, one minor per hop)", got, want)
	}
	if res.Backup == nil || res.Backup.Path != "/backups/sandbox/before.db" || res.BackupSkipped {
		t.Errorf("backup in result: %+v skipped=%v", res.Backup, res.BackupSkipped)
	}
	if len(res.Hops) != 2 || res.Hops[0].Outcome != OutcomeDone || res.Hops[1].Outcome != OutcomeDone {
		t.Errorf("hops %+v, want two done", res.Hops)
	}
	if describe(res.Components) != "kube-apiserver v1.37.2, kube-controller-manager v1.37.2, kube-scheduler v1.37.2, etcd v3.6.16" {
		t.Errorf("components at the end: %s", describe(res.Components))
	}
	var steps []string
	for _, e := range events {
		if e.Step == StepGate || e.Step == StepUpgrade {
			steps = append(steps, fmt.Sprintf("%d/%d %s", e.Hop, e.Of, e.Step))
		}
	}
	if got, want := strings.Join(steps, ", "), "1/2 upgrade, 1/2 health gate, 2/2 upgrade, 2/2 health gate"; got != want {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestWalkStops(t *testing.T) {
	brokenAtHop2 := func(f *fakeControlPlane, v string) error {
		if v != "v1.37.2" {
			for k := range f.versions {
				f.versions[k] = v
			}
			return nil
		}
		// The provider rolled the apiserver back itself.
		return errors.New("kube-apiserver v1.37.2 did not become ready within 1m30s: exited (log: /x/kube-apiserver.log); rolled back: kube-apiserver v1.36.3 serves again")
	}
	halfDone := func(f *fakeControlPlane, v string) error {
		f.versions["kube-apiserver"] = v
		return errors.New("kube-controller-manager v1.36.3 did not become ready")
	}
	for _, tc := range []struct {
		name      string
		from      string
		upgrade   func(*fakeControlPlane, string) error
		problems  []string // Health problems from the start
		sick      string   // a Health problem that appears after the first upgrade
		backupErr error
		kubelets  []string
		calls     string
		step      string
		hop       int
		want      []string
	}{
		{
			name: "broken apiserver at hop 2, rolled back by the provider", from: "v1.35.4", upgrade: brokenAtHop2,
			calls: "backup, upgrade v1.36.3, upgrade v1.37.2", step: StepUpgrade, hop: 2,
			want: []string{
				"stopped at hop 2 of 2 (v1.36.3 → v1.37.2), at the upgrade: kube-apiserver v1.37.2 did not become ready",
				"completed: hop 1 to v1.36.3",
				"running now: kube-apiserver v1.36.3, kube-controller-manager v1.36.3, kube-scheduler v1.36.3",
				"back at v1.36.3 and serving", "re-run `kup controlplane upgrade --to v1.37.2`: it resumes from v1.36.3",
				"backup taken before the first hop is /backups/sandbox/before.db",
			},
		},
		{
			name: "hop left half done", from: "v1.36.3", upgrade: halfDone,
			calls: "backup, upgrade v1.37.2", step: StepUpgrade, hop: 1,
			want: []string{"running now: kube-apiserver v1.37.2, kube-controller-manager v1.36.3", "Hop 1 is half done", "finishes hop 1"},
		},
		{
			name: "health gate fails after hop 1", from: "v1.35.4", sick: "kube-system pod coredns-1: phase Pending",
			calls: "backup, upgrade v1.36.3", step: StepGate, hop: 1,
			want: []string{"not healthy at v1.36.3 within 2s: kube-system pod coredns-1: phase Pending", "hop 2 was not started"},
		},
		{
			name: "backup fails: nothing moves", from: "v1.35.4", backupErr: errors.New("etcd at http://127.0.0.1:1 refused"),
			calls: "backup", step: StepBackup,
			want: []string{"stopped before the first hop, at the backup: etcd at http://127.0.0.1:1 refused; nothing was changed"},
		},
		{
			name: "sick before anything moves: no backup, no hop", from: "v1.35.4", problems: []string{"etcd at 127.0.0.1:2379: health \"false\""},
			step: StepPreflight,
			want: []string{"at the preflight: the control plane was not healthy within 1s", "nothing was changed"},
		},
		{
			name: "a kubelet that would fall outside the skew policy: refused before anything", from: "v1.35.4", kubelets: []string{"v1.32.12"},
			step: StepRead,
			want: []string{"cannot go from v1.35.4 to v1.36.3 before node(s) node-0 (kubelet v1.32.12 → v1.35.4) are rolled", "run `kup nodes upgrade --to v1.35.4` first; nothing was changed"},
		},
		{
			name: "a kube-system pod stuck before the upgrade fails the preflight", from: "v1.35.4", problems: []string{"kube-system pod coredns-1: container coredns not ready (CrashLoopBackOff)"},
			step: StepPreflight,
			want: []string{"CrashLoopBackOff", "make the control plane healthy first"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log []string
			f := newFake(tc.from, &log)
			f.upgrade, f.problems = tc.upgrade, tc.problems
			if tc.sick != "" {
				f.upgrade = func(f *fakeControlPlane, v string) error {
					for k := range f.versions {
						f.versions[k] = v
					}
					f.problems = []string{tc.sick}
					return nil
				}
			}
			kl := tc.kubelets
			if kl == nil {
				kl = []string{tc.from}
			}
			w := walker(f, nodeClient(0, kl...), "v1.37.2", &log, tc.backupErr)
			res, err := w.Run(context.Background())
			var se *StopError
			if !errors.As(err, &se) {
				t.Fatalf("want a *StopError, got %v", err)
			}
			if se.Step != tc.step || se.Hop.Index != tc.hop {
				t.Errorf("stopped at hop %d step %q, want hop %d step %q", se.Hop.Index, se.Step, tc.hop, tc.step)
			}
			if got := strings.Join(log, ", "); got != tc.calls {
				t.Errorf("calls %q, want %q", got, tc.calls)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
			if res == nil {
				t.Fatal("no result with the error")
			}
			if tc.hop > 0 && res.Hops[tc.hop-1].Outcome != OutcomeFailed {
				t.Errorf("hop %d outcome %q, want failed", tc.hop, res.Hops[tc.hop-1].Outcome)
			}
			for _, h := range res.Hops[max(tc.hop, 0):] {
				if h.Outcome != OutcomeNotStarted {
					t.Errorf("hop %d after the stop: outcome %q", h.Index, h.Outcome)
				}
			}
		})
	}
}

func TestWalkResumesAndIdles(t *testing.T) {
	t.Run("re-run after a half-done hop finishes it and goes on", func(t *testing.T) {
		var log []string
		f := newFake("v1.35.4", &log)
		f.versions["kube-apiserver"] = "v1.36.3"
		res, err := walker(f, nodeClient(0, "v1.35.4"), "v1.37.2", &log, nil).Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(log, ", "), "backup, upgrade v1.36.3, upgrade v1.37.2"; got != want {
			t.Errorf("calls %q, want %q", got, want)
		}
		if !res.Hops[0].Finish || res.Hops[1].Finish {
			t.Errorf("hops %+v: want the first to finish the interrupted hop", res.Hops)
		}
	})
	t.Run("already at the target: nothing is touched, not even a backup", func(t *testing.T) {
		var log []string
		res, err := walker(newFake("v1.37.2", &log), nodeClient(0, "v1.37.2"), "v1.37.2", &log, nil).Run(context.Background())
		if err != nil || len(log) != 0 || len(res.Hops) != 0 {
			t.Errorf("err %v, calls %v, hops %v: want nothing done", err, log, res.Hops)
		}
	})
	t.Run("no backup callback and no --skip-backup is refused", func(t *testing.T) {
		var log []string
		w := walker(newFake("v1.36.3", &log), nodeClient(0, "v1.36.3"), "v1.37.2", &log, nil)
		w.Backup = nil
		if _, err := w.Run(context.Background()); err == nil || len(log) != 0 {
			t.Errorf("err %v, calls %v: want a refusal before anything", err, log)
		}
		w.Options.SkipBackup = true
		res, err := w.Run(context.Background())
		if err != nil || !res.BackupSkipped || strings.Join(log, ",") != "upgrade v1.37.2" {
			t.Errorf("with SkipBackup: err %v, skipped %v, calls %v", err, res.BackupSkipped, log)
		}
	})
}

func TestTransient(t *testing.T) {
	gr := schema.GroupResource{Resource: "nodes"}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{fmt.Errorf("listing nodes: %w", refused), true},
		{apierrors.NewServiceUnavailable("starting"), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewInternalError(errors.New("etcd not ready")), true},
		{apierrors.NewTimeoutError("timeout", 1), true},
		{errors.New("http2: client connection lost"), true},
		{fmt.Errorf("reading the response: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "read", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, true},
		{apierrors.NewForbidden(gr, "x", errors.New("no")), false},
		{apierrors.NewNotFound(gr, "x"), false},
		{errors.New("x509: certificate signed by unknown authority"), false},
		{nil, false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestRetryTransient(t *testing.T) {
	calls := 0
	err := retryTransient(context.Background(), fastRetry, func(context.Context) error {
		calls++
		if calls < 3 {
			return refused
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("transient then fine: err %v after %d calls, want nil after 3", err, calls)
	}
	calls = 0
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "", errors.New("no"))
	err = retryTransient(context.Background(), fastRetry, func(context.Context) error { calls++; return forbidden })
	if !apierrors.IsForbidden(err) || calls != 1 {
		t.Errorf("an answer is not retried: err %v after %d calls", err, calls)
	}
	calls = 0
	err = retryTransient(context.Background(), fastRetry, func(context.Context) error { calls++; return refused })
	if !errors.Is(err, syscall.ECONNREFUSED) || calls != fastRetry.Steps {
		t.Errorf("spent backoff: err %v after %d calls, want the last error after %d", err, calls, fastRetry.Steps)
	}
}
