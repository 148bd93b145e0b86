package kubeadm_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kup-project/kup/internal/provider/kubeadm"
	"github.com/kup-project/kup/internal/provider/kubeadm/standin"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
	"github.com/kup-project/kup/internal/sshexec"
)

// TestKubeadmUpgradeOverSSH is the kubeadm issue's acceptance test: `kup
// apply --provider kubeadm` takes a cluster of one control-plane and six
// worker hosts — real sshd each, one of them a dnf host — from v1.36.3
// to v1.37.2 through SSH, as a non-root user with sudo, with an
// encrypted key and a bearer-token kubeconfig. The commands each host
// ran must be the kubeadm runbook step for step (golden file), no
// PodDisruptionBudget may be violated, every node must end uncordoned,
// and neither the key's passphrase nor the token — which one host even
// prints back — may appear in anything kup wrote.
func TestKubeadmUpgradeOverSSH(t *testing.T) {
	started := time.Now()
	if testing.Short() {
		t.Skip("needs a sandbox cluster and sshd; skipped with -short")
	}
	kup := sandboxtest.KupBinary(t)
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", Nodes: 7, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cs := c.Client()
	stateRoot := filepath.Dir(filepath.Dir(c.Dir))

	// kubeadm init, as far as the API sees it: a labelled control-plane
	// node with its static pods.
	cp := sandbox.NodeName(0)
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:""}}}`, kubeadm.ControlPlaneLabel)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, cp, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := standin.SetStaticPods(ctx, cs, cp, "v1.36.3", standin.EtcdTag(c.EtcdVersion)); err != nil {
		t.Fatal(err)
	}
	specs := []hostSpec{{node: cp, controlPlane: true, pm: kubeadm.Apt}}
	for i := 1; i <= 6; i++ {
		pm := kubeadm.Apt
		if i == 6 {
			pm = kubeadm.Dnf
		}
		specs = append(specs, hostSpec{node: sandbox.NodeName(i), pm: pm})
	}
	f := startFleet(t, specs, sandboxRef{kupBin: kup, stateDir: stateRoot, name: c.Name, etcd: fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdClient)}, "1.36.3")

	// The canaries: the key's passphrase and a bearer token.
	pass := "kup-canary-passphrase-" + randomHex(t)
	token := serviceAccountToken(ctx, t, cs)
	kubeconfig := tokenKubeconfig(t, c, token)
	key := f.lab.EncryptedKey(t, pass)
	// A misconfigured proxy that echoes credentials, on one host.
	f.knob(t, sandbox.NodeName(2), "echo-on-update", fmt.Sprintf("W: proxy http://kup:%s@proxy.internal:3128 said: token %s, passphrase %s", token, token, pass))

	dir := t.TempDir()
	var inv strings.Builder
	fmt.Fprintf(&inv, "defaults: {user: %s, port: %d}\nhosts:\n", f.lab.User, f.lab.Port)
	for _, n := range f.nodes() {
		fmt.Fprintf(&inv, "  %s: {address: %s}\n", n, f.host[n].Address)
	}
	invPath := filepath.Join(dir, "inventory.yaml")
	sshLog := filepath.Join(dir, "ssh-commands.jsonl")
	reportDir := filepath.Join(dir, "report")
	if err := os.WriteFile(invPath, []byte(inv.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	w, err := rollout.Watch(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, kup, "apply", "--to", "v1.37.2", "--provider", "kubeadm", "--backup-dir", filepath.Join(dir, "backups"),
		"--ssh-inventory", invPath, "--ssh-key", key, "--ssh-known-hosts", f.lab.KnownHosts(t, "known_hosts"),
		"--ssh-show-output", "--ssh-log", sshLog,
		// One worker at a time, and a short soak between waves: the node
		// lifecycle controller takes its not-ready taint off an upgraded
		// node a few seconds after the node is Ready again, and until then
		// the sandbox's zone-spread Deployment can have a pod Pending
		// (FailedScheduling), which verification rightly counts as a new
		// kind of Warning. (The rollout itself does not wait for that
		// taint to go; see the report.)
		"--max-unavailable", "1", "--soak", "5s", "--delete-emptydir-data", "--report-dir", reportDir)
	cmd.Env = append(withoutAgent(os.Environ()), "KUBECONFIG="+kubeconfig, "KUP_STATE_DIR="+stateRoot, "KUP_SSH_KEY_PASSPHRASE="+pass, "NO_COLOR=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	applyStart := time.Now()
	runErr := cmd.Run()
	applyTook := time.Since(applyStart)
	w.Stop()
	if runErr != nil {
		for _, n := range f.nodes() {
			if l := f.hookLog(n); l != "" {
				t.Logf("sandbox-hook on %s:\n%s", n, l)
			}
		}
		t.Fatalf("kup apply: %v\n%s", runErr, out.String())
	}
	t.Logf("kup apply took %s (test %s)", applyTook.Round(time.Second), time.Since(started).Round(time.Second))

	// The cluster is at the target, every node uncordoned, no budget broken.
	if v, err := c.ServerVersion(ctx); err != nil || v != "v1.37.2" {
		t.Errorf("apiserver %s (%v), want v1.37.2", v, err)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.KubeletVersion != "v1.37.2" || n.Spec.Unschedulable || n.Annotations[kubeadm.CordonedAnnotation] != "" {
			t.Errorf("node %s: kubelet %s, cordoned %v, annotation %q", n.Name, n.Status.NodeInfo.KubeletVersion, n.Spec.Unschedulable, n.Annotations[kubeadm.CordonedAnnotation])
		}
	}
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("PodDisruptionBudget violations: %+v", v)
	}
	pods, _ := cs.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "tier=control-plane"})
	for _, p := range pods.Items {
		if want := "v1.37.2"; p.Labels["component"] != "etcd" && !strings.HasSuffix(p.Spec.Containers[0].Image, ":"+want) {
			t.Errorf("static pod %s runs %s, want %s", p.Name, p.Spec.Containers[0].Image, want)
		}
	}
	var rep report.UpgradeReport
	if data, err := os.ReadFile(filepath.Join(reportDir, "upgrade-report.json")); err != nil || json.Unmarshal(data, &rep) != nil || rep.Outcome != "succeeded" || len(rep.Hops) != 1 {
		t.Errorf("report: %v, outcome %q, %d hop(s); want succeeded with one hop", err, rep.Outcome, len(rep.Hops))
	}
	// The etcd snapshot was taken before anything changed, through the
	// control-plane host's SSH connection, and kept owner-only.
	if b := rep.Backup; b == nil || !b.Verified || b.Revision == 0 {
		t.Errorf("report backup %+v, want a verified snapshot", rep.Backup)
	} else if st, err := os.Stat(b.Path); err != nil || st.Mode().Perm() != 0o600 || !strings.HasPrefix(b.Path, filepath.Join(dir, "backups")) {
		t.Errorf("snapshot %s: %v, mode %v; want 0600 under --backup-dir", b.Path, err, st)
	}

	// Each host's repository moved to v1.37 and its holds are back.
	for _, s := range specs {
		if s.pm == kubeadm.Apt {
			if got := f.etcFile(s.node, kubeadm.RepoFileApt); !strings.Contains(got, "https://pkgs.k8s.io/core:/stable:/v1.37/deb/ /") {
				t.Errorf("%s: %s is %q", s.node, kubeadm.RepoFileApt, got)
			}
			for _, p := range []string{"kubeadm", "kubelet", "kubectl"} {
				if _, held := f.state(s.node, "hold."+p); !held {
					t.Errorf("%s: %s is no longer held", s.node, p)
				}
			}
		} else if got := f.etcFile(s.node, kubeadm.RepoFileDnf); strings.Count(got, "/v1.37/rpm/") != 2 || strings.Contains(got, "v1.36") {
			t.Errorf("%s: %s is %q", s.node, kubeadm.RepoFileDnf, got)
		}
		if v, _ := f.state(s.node, "pkg.kubelet"); v != "1.37.2" {
			t.Errorf("%s: kubelet package %s", s.node, v)
		}
	}

	// The runbook, step for step, as kup ran it and as each host saw it.
	checkGolden(t, "e2e-runbook.golden", runbook(t, f, sshLog))

	// No canary anywhere kup wrote: its output, its SSH log, the report,
	// the journal (local and in-cluster), Events, and the hosts' logs.
	if !strings.Contains(out.String(), sshexec.Redacted) {
		t.Errorf("kup's output shows no %s: the host's echo of the canaries was not redacted but dropped, or not printed", sshexec.Redacted)
	}
	places := map[string]string{"kup output": out.String()}
	for _, root := range []string{dir, filepath.Join(stateRoot, "journals"), filepath.Join(stateRoot, "ssh"), f.lab.Dir} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			// The knobs are the test's own input (the echo it planted).
			if err == nil && d.Type().IsRegular() && !strings.Contains(p, "/knobs/") {
				if data, err := os.ReadFile(p); err == nil {
					places[p] = string(data)
				}
			}
			return nil
		})
	}
	evs, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	evJSON, _ := json.Marshal(evs)
	places["Events"] = string(evJSON)
	cms, err := cs.CoreV1().ConfigMaps("kup-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cmJSON, _ := json.Marshal(cms)
	places["kup-system ConfigMaps (journal)"] = string(cmJSON)
	if !strings.Contains(places["kup-system ConfigMaps (journal)"], "kup-journal") {
		t.Errorf("no journal ConfigMap found to search")
	}
	for where, text := range places {
		for name, canary := range map[string]string{"passphrase": pass, "bearer token": token} {
			if strings.Contains(text, canary) {
				t.Errorf("the %s appears in %s", name, where)
			}
		}
	}
	if t.Failed() {
		t.Logf("kup output:\n%s", out.String())
	}
}

var etcdPort = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)

// runbook renders, per host, the commands kup ran (from its SSH log) and
// the tool calls the host recorded.
func runbook(t *testing.T, f *fleet, sshLog string) string {
	t.Helper()
	file, err := os.Open(sshLog)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	ran := map[string][]string{}
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r sshexec.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("SSH log line %q: %v", sc.Text(), err)
		}
		// The sandbox etcd's port changes from run to run.
		step, command := etcdPort.ReplaceAllString(r.Step, "127.0.0.1:ETCD"), etcdPort.ReplaceAllString(r.Command, "127.0.0.1:ETCD")
		line := fmt.Sprintf("%-45s $ %s  → %d", "["+step+"]", command, r.ExitStatus)
		// How many connections the etcd client opens through the
		// tunnel is its own business: one line for a run of them.
		if prev := ran[r.Node]; strings.HasPrefix(command, "ssh -W ") && len(prev) > 0 && prev[len(prev)-1] == line {
			continue
		}
		ran[r.Node] = append(ran[r.Node], line)
	}
	var b strings.Builder
	for _, s := range f.specs {
		role := "worker"
		if s.controlPlane {
			role = "control plane"
		}
		fmt.Fprintf(&b, "# %s (%s, %s)\nkup ran:\n", s.node, role, s.pm)
		for _, l := range ran[s.node] {
			b.WriteString("  " + l + "\n")
		}
		b.WriteString("the host's tools saw:\n")
		for _, l := range f.calls(s.node) {
			b.WriteString("  " + l + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(testdata(t), name)
	if updating() {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func withoutAgent(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "SSH_AUTH_SOCK=") && !strings.HasPrefix(e, "KUBECONFIG=") {
			out = append(out, e)
		}
	}
	return out
}

// serviceAccountToken makes a cluster-admin service account and returns a
// token for it: the bearer token kup's kubeconfig carries.
func serviceAccountToken(ctx context.Context, t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	const ns, name = "kube-system", "kup-canary"
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func tokenKubeconfig(t *testing.T, c *sandbox.Cluster, token string) string {
	t.Helper()
	rc := c.RESTConfig()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubeadm"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthority: rc.CAFile}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubeadm"] = &clientcmdapi.Context{Cluster: "kubeadm", AuthInfo: "admin"}
	cfg.CurrentContext = "kubeadm"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
