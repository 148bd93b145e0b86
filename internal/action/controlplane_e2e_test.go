package action_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/controlplane"
	"github.com/kup-project/kup/internal/journal"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestControlPlaneTwoHops is the acceptance test: a v1.35.4 sandbox with
// the default workloads goes to v1.37.2 in two hops (v1.36.3 first), an
// etcd backup is taken before the first and passes verification, and
// every object's UID survives.
func TestControlPlaneTwoHops(t *testing.T) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.35.4", Nodes: 6, Workloads: "default"})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	before := clusterUIDs(ctx, t, c)

	dir := filepath.Join(t.TempDir(), "backups")
	a := &action.ControlPlaneUpgrade{
		Config: c.RESTConfig(), ControlPlane: &sandboxprovider.ControlPlane{Cluster: c},
		To: "v1.37.2", BackupDir: dir, Progress: testLog{t},
	}
	started := time.Now()
	res, err := a.Run(ctx)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	t.Logf("two hops in %s", time.Since(started).Round(time.Second))

	var hops []string
	for _, h := range res.Hops {
		hops = append(hops, fmt.Sprintf("%s→%s %s", h.From, h.To, h.Outcome))
	}
	if got, want := strings.Join(hops, ", "), "v1.35.4→v1.36.3 done, v1.36.3→v1.37.2 done"; got != want {
		t.Errorf("hops: %s, want %s", got, want)
	}
	for _, comp := range res.Components {
		if comp.Name != "etcd" && comp.Version != "v1.37.2" {
			t.Errorf("%s at %s after the upgrade", comp.Name, comp.Version)
		}
	}
	if v, err := c.ServerVersion(ctx); err != nil || v != "v1.37.2" {
		t.Errorf("apiserver reports %q (%v), want v1.37.2", v, err)
	}

	// The backup: taken before the first hop, in the directory asked for,
	// of the cluster as it was, and good.
	m := res.Backup
	if m == nil {
		t.Fatal("no backup in the result")
	}
	if filepath.Dir(m.Path) != dir || !reflect.DeepEqual(m.KubernetesVersions, []string{"v1.35.4"}) || m.Cluster != "sandbox-test" {
		t.Errorf("backup %s for %q at %v, want in %s, cluster sandbox-test, v1.35.4", m.Path, m.Cluster, m.KubernetesVersions, dir)
	}
	if m.Created.After(started.Add(time.Second)) || m.Created.Before(started.Add(-time.Second)) {
		t.Errorf("backup created %s, the upgrade started %s: want it first", m.Created, started)
	}
	if fi, err := os.Stat(m.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, mode %v", err, fi.Mode())
	}
	st, err := backup.Verify(m.Path)
	if err != nil {
		t.Fatalf("the backup does not verify: %v", err)
	}
	if st.Revision != m.Revision || st.TotalKeys != m.TotalKeys || st.SHA256 != m.SHA256 {
		t.Errorf("Verify %+v disagrees with the manifest %+v", st, m)
	}
	objs, err := action.SnapshotObjects(m.Path)
	if err != nil {
		t.Fatal(err)
	}
	if uid := objs["/registry/namespaces/shop"].UID; uid != string(before["namespace/shop"]) {
		t.Errorf("the backup holds namespace shop with UID %q, the cluster %q", uid, before["namespace/shop"])
	}

	after := clusterUIDs(ctx, t, c)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("objects changed across the upgrade:\n%s", diffUIDs(before, after))
	}
	t.Logf("%d objects kept their UIDs", len(before))

	var out strings.Builder
	action.WriteControlPlaneResult(&out, res)
	for _, s := range []string{"✓ backup", "✓ hop 1    v1.35.4 → v1.36.3: done", "✓ hop 2    v1.36.3 → v1.37.2: done", "now: kube-apiserver v1.37.2"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}

// TestControlPlaneBrokenAPIServer injects a kube-apiserver that cannot
// start at hop two: the sandbox puts v1.36.3 back by itself, the walk
// stops with an account of where, and the cluster serves. Then one that
// starts but never becomes ready (it serves on another port) is rolled
// back at its deadline, leaving nothing running; and a clean run finishes
// the walk from where it stopped.
func TestControlPlaneBrokenAPIServer(t *testing.T) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.35.4", Nodes: 3, Workloads: "default"})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	before := clusterUIDs(ctx, t, c)
	bin := t.TempDir()

	broken := apiserverScript(t, filepath.Join(bin, "exits"), "echo 'kup test: this kube-apiserver is broken on purpose' >&2\nexit 1")
	cp := &sandboxprovider.ControlPlane{Cluster: c, Binary: only(sandbox.APIServer, "v1.37.2", broken)}
	a := &action.ControlPlaneUpgrade{Config: c.RESTConfig(), ControlPlane: cp, To: "v1.37.2", BackupDir: filepath.Join(bin, "backups"), Progress: testLog{t}}
	res, err := a.Run(ctx)
	var stop *controlplane.StopError
	if !errors.As(err, &stop) {
		t.Fatalf("want the walk to stop, got %v", err)
	}
	t.Logf("the error, as the user reads it:\n%v", err)
	var swap *sandbox.SwapError
	if !errors.As(err, &swap) || swap.RolledBackTo != "v1.36.3" || swap.Component != sandbox.APIServer || swap.Version != "v1.37.2" {
		t.Fatalf("want a rolled-back kube-apiserver swap in the error, got %#v", swap)
	}
	if stop.Hop.Index != 2 || stop.Step != controlplane.StepUpgrade || len(stop.Done) != 1 {
		t.Errorf("stopped at hop %d step %q after %d hops, want hop 2, upgrade, after 1", stop.Hop.Index, stop.Step, len(stop.Done))
	}
	for _, s := range []string{
		"stopped at hop 2 of 2 (v1.36.3 → v1.37.2)", "kube-apiserver v1.37.2 did not become ready",
		"broken on purpose", "log: " + filepath.Join(c.Dir, "logs", "kube-apiserver.log"),
		"rolled back: kube-apiserver v1.36.3 serves again",
		"running now: kube-apiserver v1.36.3, kube-controller-manager v1.36.3, kube-scheduler v1.36.3",
		"back at v1.36.3 and serving", "re-run `kup controlplane upgrade --to v1.37.2`", res.Backup.Path,
	} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q", s)
		}
	}
	assertServing(ctx, t, c, "v1.36.3")

	// A kube-apiserver that starts but never shows readiness where the
	// sandbox looks: the real v1.37.2 binary moved to another port (and
	// another etcd prefix, so it leaves the cluster's data alone).
	port := freePort(t)
	cache, err := sandbox.CacheDir()
	must(t, err)
	realBin := filepath.Join(cache, "bin", "kubernetes", "v1.37.2", sandbox.APIServer) // built by the first hop's Kubernetes(v1.37.2) call
	hangs := apiserverScript(t, filepath.Join(bin, "hangs"), fmt.Sprintf(`exec %s "$@" --secure-port=%d --etcd-prefix=/kup-test-elsewhere`, realBin, port))
	cp.Binary, cp.ReadyTimeout = only(sandbox.APIServer, "v1.37.2", hangs), 20*time.Second
	a.SkipBackup, a.BackupDir = true, ""
	_, err = a.Run(ctx)
	if !errors.As(err, &swap) || swap.RolledBackTo != "v1.36.3" || !strings.Contains(err.Error(), "within 20s: no positive evidence before the deadline (/readyz: ") {
		t.Fatalf("want the hanging apiserver rolled back at its 20s deadline, got %v", err)
	}
	t.Logf("the deadline error:\n%v", err)
	if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		conn.Close()
		t.Errorf("the apiserver that never became ready still listens on %d", port)
	}
	assertServing(ctx, t, c, "v1.36.3")

	// Fixed: the same command continues from v1.36.3.
	cp.Binary, cp.ReadyTimeout = nil, 0
	res, err = a.Run(ctx)
	if err != nil {
		t.Fatalf("re-run after the fix: %v", err)
	}
	if len(res.Hops) != 1 || res.Hops[0].From.String() != "v1.36.3" || res.Hops[0].Outcome != controlplane.OutcomeDone {
		t.Errorf("re-run hops %+v, want one from v1.36.3", res.Hops)
	}
	assertServing(ctx, t, c, "v1.37.2")
	if after := clusterUIDs(ctx, t, c); !reflect.DeepEqual(after, before) {
		t.Errorf("objects changed across the failed and finished upgrade:\n%s", diffUIDs(before, after))
	}
}

// only returns a binary override for one component at one version.
func only(component, version, path string) func(string, string) string {
	return func(c, v string) string {
		if c == component && v == version {
			return path
		}
		return ""
	}
}

// apiserverScript writes dir/kube-apiserver, a shell script with body.
// The sandbox knows its processes by executable name (/proc/PID/exe), so
// the script's interpreter is a copy of /bin/sh named kube-apiserver too:
// the process looks like a kube-apiserver from its first instant, as a
// real broken binary would, and not like a dead one until it really is.
func apiserverScript(t *testing.T, dir, body string) string {
	t.Helper()
	shell := filepath.Join(dir, "interpreter", sandbox.APIServer)
	sh, err := os.ReadFile("/bin/sh")
	must(t, err)
	must(t, os.MkdirAll(filepath.Dir(shell), 0o755))
	must(t, os.WriteFile(shell, sh, 0o755))
	path := filepath.Join(dir, sandbox.APIServer)
	must(t, os.WriteFile(path, []byte("#!"+shell+"\n"+body+"\n"), 0o755))
	return path
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// assertServing checks the sandbox answers at version and is healthy.
func assertServing(ctx context.Context, t *testing.T, c *sandbox.Cluster, version string) {
	t.Helper()
	if v, err := c.ServerVersion(ctx); err != nil || v != version {
		t.Errorf("apiserver reports %q (%v), want %s", v, err, version)
	}
	if c.Version != version {
		t.Errorf("sandbox records version %s, want %s", c.Version, version)
	}
	h, err := (&sandboxprovider.ControlPlane{Cluster: c}).Health(ctx)
	if err != nil || !h.Healthy() {
		t.Errorf("control plane not healthy: %v %+v", err, h)
	}
	if _, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("listing nodes: %v", err)
	}
}

// clusterUIDs maps "kind/namespace/name" to UID for every node,
// namespace, pod, Deployment, StatefulSet, DaemonSet and
// PodDisruptionBudget, but kup's own namespace (its upgrade lock).
func clusterUIDs(ctx context.Context, t *testing.T, c *sandbox.Cluster) map[string]types.UID {
	t.Helper()
	cs := c.Client()
	out := map[string]types.UID{}
	add := func(kind, ns, name string, uid types.UID) {
		if ns == journal.Namespace || kind == "namespace" && name == journal.Namespace {
			return // kup's own: its upgrade lock
		}
		key := kind + "/" + name
		if ns != "" {
			key = kind + "/" + ns + "/" + name
		}
		out[key] = uid
	}
	l := metav1.ListOptions{}
	nodes, err := cs.CoreV1().Nodes().List(ctx, l)
	must(t, err)
	for _, o := range nodes.Items {
		add("node", "", o.Name, o.UID)
	}
	nss, err := cs.CoreV1().Namespaces().List(ctx, l)
	must(t, err)
	for _, o := range nss.Items {
		add("namespace", "", o.Name, o.UID)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, l)
	must(t, err)
	for _, o := range pods.Items {
		add("pod", o.Namespace, o.Name, o.UID)
	}
	deps, err := cs.AppsV1().Deployments("").List(ctx, l)
	must(t, err)
	for _, o := range deps.Items {
		add("deployment", o.Namespace, o.Name, o.UID)
	}
	sts, err := cs.AppsV1().StatefulSets("").List(ctx, l)
	must(t, err)
	for _, o := range sts.Items {
		add("statefulset", o.Namespace, o.Name, o.UID)
	}
	dss, err := cs.AppsV1().DaemonSets("").List(ctx, l)
	must(t, err)
	for _, o := range dss.Items {
		add("daemonset", o.Namespace, o.Name, o.UID)
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, l)
	must(t, err)
	for _, o := range pdbs.Items {
		add("pdb", o.Namespace, o.Name, o.UID)
	}
	for _, kind := range []string{"node", "namespace/shop", "pod", "deployment", "statefulset", "daemonset", "pdb"} {
		found := false
		for k := range out {
			found = found || strings.HasPrefix(k, kind+"/") || k == kind
		}
		if !found {
			t.Fatalf("the sandbox has no %s: the test would prove nothing", kind)
		}
	}
	return out
}

func diffUIDs(before, after map[string]types.UID) string {
	var b strings.Builder
	for k, v := range before {
		if a, ok := after[k]; !ok {
			fmt.Fprintf(&b, "  gone: %s\n", k)
		} else if a != v {
			fmt.Fprintf(&b, "  new UID: %s\n", k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			fmt.Fprintf(&b, "  new: %s\n", k)
		}
	}
	return b.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testLog writes progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
