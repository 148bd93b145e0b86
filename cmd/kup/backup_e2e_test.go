package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestBackupDeleteRestore drives the CLI as a user would: `kup backup`,
// delete a namespace, `kup restore` — refused without --yes, refused for
// a damaged snapshot, refused with the manual procedure for a cluster
// that is not a sandbox — and finally restored: the namespace and its
// objects are back with the same UIDs. Then `kup controlplane upgrade`
// finds the sandbox from the kubeconfig and takes it one hop.
func TestBackupDeleteRestore(t *testing.T) {
	state := t.TempDir()
	// kup finds the sandbox from the kubeconfig through the state directory.
	t.Setenv("KUP_STATE_DIR", state)
	// The restore restarts the control plane from another Cluster value
	// (the one kup loads); sandboxtest stops the sandbox as recorded on
	// disk, after showing the logs of a failed test.
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", Nodes: 3, Workloads: "default", StateDir: state})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kc := "--kubeconfig=" + c.Kubeconfig

	// The default path: under the state directory, named by the cluster.
	out, code := kup(t, "backup", kc)
	if code != exitOK || !strings.Contains(out, filepath.Join(state, "backups", "sandbox-test")+"/") || !strings.Contains(out, "verified: sha256 trailer, etcdutl snapshot status, trial restore") {
		t.Fatalf("kup backup: exit %d\n%s", code, out)
	}
	path := filepath.Join(t.TempDir(), "before-delete.db")
	out, code = kup(t, "backup", kc, "-o", path)
	if code != exitOK {
		t.Fatalf("kup backup -o: exit %d\n%s", code, out)
	}
	if _, code := kup(t, "backup", kc, "-o", path); code != exitError {
		t.Errorf("a second backup to the same path: exit %d, want %d (never replaced)", code, exitError)
	}

	before := shopUIDs(ctx, t, c)
	if err := c.Client().CoreV1().Namespaces().Delete(ctx, "shop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := c.Client().CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("namespace shop not gone: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}

	out, code = kup(t, "restore", path, kc)
	if code != exitUsage || !strings.Contains(out, "--yes") {
		t.Errorf("restore without --yes: exit %d, want %d and a request for --yes\n%s", code, exitUsage, out)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.db")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(damaged, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = kup(t, "restore", damaged, kc, "--yes")
	if code != exitError || !strings.Contains(out, "refusing to restore") || !strings.Contains(out, "sha256") {
		t.Errorf("restore of a bit-flipped snapshot: exit %d, want %d and a refusal\n%s", code, exitError, out)
	}
	out, code = kup(t, "restore", path, "--server=https://127.0.0.1:1", "--yes")
	if code != exitError || !strings.Contains(out, "etcdutl snapshot restore before-delete.db") || !strings.Contains(out, "kup will not guess") {
		t.Errorf("restore into a cluster that is not a sandbox: exit %d, want %d and the manual procedure\n%s", code, exitError, out)
	}
	if _, err := c.Client().CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a refused restore changed the cluster: shop is %v", err)
	}

	out, code = kup(t, "restore", path, kc, "--yes")
	if code != exitOK {
		t.Fatalf("kup restore: exit %d\n%s", code, out)
	}
	t.Logf("kup restore said:\n%s", out)
	for _, s := range []string{"✓ restored " + path, "✓ namespaces", "✓ deployments", "✓ poddisruptionbudgets"} {
		if !strings.Contains(out, s) {
			t.Errorf("restore output lacks %q", s)
		}
	}
	restored, err := sandbox.Load(state, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if after := shopUIDs(ctx, t, restored); !reflect.DeepEqual(after, before) {
		t.Errorf("after the restore shop holds\n%v\nwant\n%v", after, before)
	}

	// The restored sandbox upgrades like any other: provider detected,
	// backup in the default directory first.
	out, code = kup(t, "controlplane", "upgrade", "--to", "v1.37.2", kc)
	if code != exitOK {
		t.Fatalf("kup controlplane upgrade: exit %d\n%s", code, out)
	}
	for _, s := range []string{"✓ backup   " + filepath.Join(state, "backups", "sandbox-test") + "/", "✓ hop 1    v1.36.3 → v1.37.2: done", "now: kube-apiserver v1.37.2"} {
		if !strings.Contains(out, s) {
			t.Errorf("upgrade output lacks %q:\n%s", s, out)
		}
	}
	if v, err := restored.ServerVersion(ctx); err != nil || v != "v1.37.2" {
		t.Errorf("after kup controlplane upgrade the apiserver reports %q (%v)", v, err)
	}
}

// shopUIDs maps kind/name to UID for namespace shop and its Deployments,
// ReplicaSets, pods and PodDisruptionBudgets.
func shopUIDs(ctx context.Context, t *testing.T, c *sandbox.Cluster) map[string]types.UID {
	t.Helper()
	cs := c.Client()
	out := map[string]types.UID{}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace shop: %v", err)
	}
	out["namespace/shop"] = ns.UID
	l := metav1.ListOptions{}
	deps, err := cs.AppsV1().Deployments("shop").List(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range deps.Items {
		out["deployment/"+o.Name] = o.UID
	}
	rss, err := cs.AppsV1().ReplicaSets("shop").List(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range rss.Items {
		out["replicaset/"+o.Name] = o.UID
	}
	pods, err := cs.CoreV1().Pods("shop").List(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pods.Items {
		out["pod/"+o.Name] = o.UID
	}
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("shop").List(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pdbs.Items {
		out["pdb/"+o.Name] = o.UID
	}
	if len(deps.Items) == 0 || len(pods.Items) == 0 || len(pdbs.Items) == 0 {
		t.Fatalf("shop holds too little to prove anything: %v", out)
	}
	return out
}

// TestControlPlaneAndBackupRefusals: what kup cannot do yet is said
// plainly, with the exit code of an error (or of a usage mistake), and
// nothing is touched.
func TestControlPlaneAndBackupRefusals(t *testing.T) {
	t.Setenv("KUP_STATE_DIR", t.TempDir()) // no sandboxes: nothing is detected
	missing := filepath.Join(t.TempDir(), "nope.db")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"controlplane", "upgrade", "--to", "v1.37.2", "--server", "https://127.0.0.1:1", "--provider", "kubeadm"}, exitError, "--provider kubeadm is not supported yet; the control-plane providers kup has are: sandbox"},
		{[]string{"controlplane", "upgrade", "--to", "v1.37.2", "--server", "https://127.0.0.1:1", "--provider", "eks"}, exitError, "not supported yet"},
		{[]string{"controlplane", "upgrade", "--to", "v1.37.2", "--server", "https://127.0.0.1:1", "--provider", "nomad"}, exitUsage, `--provider "nomad": unknown`},
		{[]string{"controlplane", "upgrade", "--to", "v1.37.2", "--server", "https://127.0.0.1:1"}, exitError, "the providers kup has are sandbox"},
		{[]string{"controlplane", "upgrade", "--server", "https://127.0.0.1:1"}, exitUsage, "--to is required"},
		{[]string{"controlplane", "upgrade", "--to", "v1.37.2", "--skip-backup", "--backup-dir", "/tmp"}, exitUsage, "contradict"},
		{[]string{"backup", "--server", "https://127.0.0.1:1"}, exitUsage, "pass --etcd-endpoint"},
		{[]string{"backup", "--etcd-endpoints", "http://127.0.0.1:1", "-o", filepath.Join(t.TempDir(), "x.db")}, exitError, "connecting to etcd at http://127.0.0.1:1"},
		{[]string{"backup", "--etcd-endpoint", "http://127.0.0.1:1", "--etcd-cacert", "ca.crt"}, exitError, "plain http but TLS files were given"},
		{[]string{"restore", missing}, exitUsage, "no such file"},
		{[]string{"restore"}, exitUsage, ""},
	} {
		out, code := kup(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("kup %s: exit %d, want %d with %q; output:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.want, out)
		}
	}
}

// kup runs kup in-process like run, with the error as main prints it.
func kup(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCommand()
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		out.WriteString("Error: " + err.Error() + "\n")
	}
	return out.String(), exitCode(err)
}
