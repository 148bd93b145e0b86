package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// startWindowSandbox starts a v1.36.3 sandbox kup finds through
// KUP_STATE_DIR, stopped at the end as the state on disk records it (kup
// swaps its processes).
func startWindowSandbox(t *testing.T) (*sandbox.Cluster, string) {
	t.Helper()
	state := t.TempDir()
	t.Setenv("KUP_STATE_DIR", state)
	// sandboxtest stops what the state on disk records (kup moves the
	// processes), after showing the logs of a failed test.
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", Nodes: 3, Workloads: "default", StateDir: state})
	return c, state
}

// emulation is what every component reports about itself, as
// "kube-apiserver v1.37.2/1.36 kube-controller-manager …", read through a
// fresh load of the sandbox (kup, not the test, moved the processes).
func emulation(ctx context.Context, t *testing.T, state, name string) string {
	t.Helper()
	s, err := sandbox.Load(state, name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, comp := range sandbox.ControlPlaneComponents {
		e, err := s.EmulatedVersion(ctx, comp)
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		out = append(out, fmt.Sprintf("%s %s/%s", comp, e.Binary, e.Emulated))
	}
	return strings.Join(out, " ")
}

func allAt(binary, emulated string) string {
	var out []string
	for _, comp := range sandbox.ControlPlaneComponents {
		out = append(out, fmt.Sprintf("%s %s/%s", comp, binary, emulated))
	}
	return strings.Join(out, " ")
}

// windowJournal reads the rollback window's journal (cluster copy or
// local mirror, the newer).
func windowJournal(t *testing.T, c *sandbox.Cluster, state string) *journal.Journal {
	t.Helper()
	st := &journal.Store{Client: c.Client(), Cluster: c.RESTConfig().Host, LocalDir: filepath.Join(state, "journals"), Name: journal.WindowName}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := st.Load(ctx)
	if err != nil {
		t.Fatalf("reading the window journal: %v", err)
	}
	if j == nil {
		t.Fatal("no window journal recorded")
	}
	return j
}

// objectUIDs are the UIDs of the objects made during the window.
func objectUIDs(ctx context.Context, t *testing.T, c *sandbox.Cluster) map[string]types.UID {
	t.Helper()
	cs := c.Client()
	out := map[string]types.UID{}
	d, err := cs.AppsV1().Deployments("window").Get(ctx, "made-in-window", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment window/made-in-window: %v", err)
	}
	out["deployment"] = d.UID
	cm, err := cs.CoreV1().ConfigMaps("window").Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap window/settings: %v", err)
	}
	out["configmap"] = cm.UID
	sec, err := cs.CoreV1().Secrets("window").Get(ctx, "token", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Secret window/token: %v", err)
	}
	out["secret"] = sec.UID
	rs, err := cs.AppsV1().ReplicaSets("window").List(ctx, metav1.ListOptions{LabelSelector: "app=made-in-window"})
	if err != nil || len(rs.Items) != 1 {
		t.Fatalf("the Deployment's ReplicaSet: %v (%d)", err, len(rs.Items))
	}
	out["replicaset"] = rs.Items[0].UID
	return out
}

// TestRollbackSafeUpgrade is the acceptance test on the CLI:
// v1.36.3 → v1.37.2 with --rollback-safe, objects made in the window
// (a new Deployment among them), `kup rollback` back to v1.36.3 with those
// objects and their UIDs intact; a second run through both steps ends
// with /version at emulation 1.37; then `kup rollback` refuses, naming
// the newest snapshot's revision and time.
func TestRollbackSafeUpgrade(t *testing.T) {
	c, state := startWindowSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	kc := "--kubeconfig=" + c.Kubeconfig

	out, _ := kup(t, "plan", kc, "--to", "v1.37.2")
	if !strings.Contains(out, "hop 1 v1.36.3 → v1.37.2: yes") {
		t.Errorf("kup plan does not say the hop can be rollback-safe:\n%s", out)
	}

	out, code := kup(t, "controlplane", "upgrade", kc, "--to", "v1.37.2", "--rollback-safe")
	if code != exitOK {
		t.Fatalf("step one: exit %d\n%s", code, out)
	}
	if got := emulation(ctx, t, state, c.Name); got != allAt("v1.37.2", "1.36") {
		t.Fatalf("after step one: %s", got)
	}
	if j := windowJournal(t, c, state); j.Phase != "window-open" {
		t.Errorf("journal phase %q after step one, want window-open", j.Phase)
	}
	firstBackup := regexp.MustCompile(`✓ backup +(\S+) \(revision (\d+)`).FindStringSubmatch(out)
	if firstBackup == nil {
		t.Errorf("step one names no backup:\n%s", out)
	}
	out, _ = kup(t, "status", kc)
	if !regexp.MustCompile(`Rollback window v1\.36\.3 → v1\.37\.2: OPEN for \d`).MatchString(out) {
		t.Errorf("kup status shows no open window with its age:\n%s", out)
	}

	// Written by the v1.37.2 binaries emulating 1.36.
	cs := c.Client()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "window"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "made-in-window"}
	if _, err := cs.AppsV1().Deployments("window").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "made-in-window"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("window").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "window"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets("window").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "token"}, StringData: map[string]string{"t": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(ctx, t, c, 2)
	before := objectUIDs(ctx, t, c)

	out, code = kup(t, "rollback", kc)
	if code != exitOK {
		t.Fatalf("kup rollback: exit %d\n%s", code, out)
	}
	if got := emulation(ctx, t, state, c.Name); got != allAt("v1.36.3", "1.36") {
		t.Fatalf("after the rollback: %s", got)
	}
	if !regexp.MustCompile(`objects: (\d+) of (\d+) present before the rollback are there with the same UID`).MatchString(out) {
		t.Errorf("kup rollback reports no object comparison:\n%s", out)
	}
	after := objectUIDs(ctx, t, c)
	for k, uid := range before {
		if after[k] != uid {
			t.Errorf("%s made in the window: UID %s before the rollback, %s after", k, uid, after[k])
		}
	}
	sec, err := cs.CoreV1().Secrets("window").Get(ctx, "token", metav1.GetOptions{})
	if err != nil || string(sec.Data["t"]) != "s3cret" {
		t.Errorf("Secret window/token after the rollback: %v %q", err, sec.Data["t"])
	}
	// The old controllers keep the new Deployment running.
	waitAvailable(ctx, t, c, 2)
	if j := windowJournal(t, c, state); j.Phase != "window-closed" {
		t.Errorf("journal phase %q after the rollback, want window-closed", j.Phase)
	}
	if out, code := kup(t, "controlplane", "complete", kc); code != exitError || !strings.Contains(out, "was rolled back") {
		t.Errorf("complete after a rollback: exit %d, want %d saying it was rolled back\n%s", code, exitError, out)
	}

	// Second run: both steps (the soak of a second, then step two).
	out, code = kup(t, "controlplane", "upgrade", kc, "--to", "v1.37.2", "--rollback-safe", "--soak", "1s")
	if code != exitOK {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	if got := emulation(ctx, t, state, c.Name); got != allAt("v1.37.2", "1.37") {
		t.Fatalf("after both steps: %s", got)
	}
	if v := rawVersion(ctx, t, c); v["gitVersion"] != "v1.37.2" || v["emulationMajor"] != "1" || v["emulationMinor"] != "37" {
		t.Errorf("/version after both steps: %v", v)
	}
	secondBackup := regexp.MustCompile(`✓ backup +(\S+) \(revision (\d+)`).FindStringSubmatch(out)
	if secondBackup == nil {
		t.Fatalf("the second run names no backup:\n%s", out)
	}
	if after := objectUIDs(ctx, t, c); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("objects after both steps %v, want %v", after, before)
	}

	// After step two: refused, with the newest snapshot and what it loses.
	out, code = kup(t, "rollback", kc)
	if code != exitError {
		t.Errorf("kup rollback after step two: exit %d, want %d\n%s", code, exitError, out)
	}
	for _, want := range []string{
		"kup rollback refused", "step two raised the emulated version to 1.37", "Only a snapshot restore remains",
		"the newest snapshot is " + secondBackup[1] + " (etcd revision " + secondBackup[2] + ", taken ",
		"loses every write made since",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, out)
		}
	}
	if got := emulation(ctx, t, state, c.Name); got != allAt("v1.37.2", "1.37") {
		t.Errorf("a refused rollback changed the control plane: %s", got)
	}
}

func rawVersion(ctx context.Context, t *testing.T, c *sandbox.Cluster) map[string]string {
	t.Helper()
	var v map[string]string
	raw, err := c.Client().Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func waitAvailable(ctx context.Context, t *testing.T, c *sandbox.Cluster, want int32) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d, err := c.Client().AppsV1().Deployments("window").Get(ctx, "made-in-window", metav1.GetOptions{})
		if err == nil && d.Status.AvailableReplicas == want && d.Status.ObservedGeneration == d.Generation {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Deployment window/made-in-window not %d available: %v %+v", want, err, d.Status)
		}
		time.Sleep(time.Second)
	}
}

const lockTTL = 2 * time.Second

// kupKilled runs kup as a process and SIGKILLs it (the kup process only:
// the components it starts run in their own sessions) once a line of
// its output contains killAt. It returns the output and whether the kill
// landed (false: kup ended first).
func kupKilled(t *testing.T, c *sandbox.Cluster, state, killAt string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(sandboxtest.KupBinary(t), append(args, "--kubeconfig="+c.Kubeconfig, "--lock-ttl="+lockTTL.String())...)
	cmd.Env = append(os.Environ(), "KUP_STATE_DIR="+state, "NO_COLOR=1")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	killed := false
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if !killed && strings.Contains(line, killAt) {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	_ = cmd.Wait()
	// The killed kup's lock lapses after its lease.
	time.Sleep(lockTTL + time.Second)
	return out.String(), killed
}

// kupProc runs kup to its end as a process.
func kupProc(t *testing.T, c *sandbox.Cluster, state string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(sandboxtest.KupBinary(t), append(args, "--kubeconfig="+c.Kubeconfig, "--lock-ttl="+lockTTL.String())...)
	cmd.Env = append(os.Environ(), "KUP_STATE_DIR="+state, "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	return string(out), code
}

// stepStatus is the last record of a journal step.
func stepStatus(j *journal.Journal, id string) string {
	if s := j.Step(id); s != nil {
		return s.Status
	}
	return "(none)"
}

// TestRollbackSafeSurvivesKills kills kup (SIGKILL) in the middle of each
// step — step one, the rollback, step two — each time after the first
// component moved and while the second is starting (and once while it
// soaks between the steps), and checks what the
// journal records then (window opening, rolling back, completing), what
// another command may do in that state, and that running the same
// command again finishes the step from what the control plane reports.
func TestRollbackSafeSurvivesKills(t *testing.T) {
	c, state := startWindowSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	upgrade := []string{"controlplane", "upgrade", "--to", "v1.37.2", "--rollback-safe"}

	// Step one, killed while kube-controller-manager starts.
	out, killed := kupKilled(t, c, state, "starting kube-controller-manager v1.37.2", upgrade...)
	if !killed {
		t.Fatalf("kup ended before the kill point:\n%s", out)
	}
	j := windowJournal(t, c, state)
	if j.Phase != "window-opening" || stepStatus(j, "step one: kube-apiserver") != journal.StatusDone || stepStatus(j, "step one: kube-controller-manager") != journal.StatusStarted {
		t.Errorf("killed in step one: phase %q, apiserver %s, controller-manager %s; want window-opening, done, started",
			j.Phase, stepStatus(j, "step one: kube-apiserver"), stepStatus(j, "step one: kube-controller-manager"))
	}
	if out, code := kupProc(t, c, state, "controlplane", "complete"); code != exitError || !strings.Contains(out, "step one is not finished") {
		t.Errorf("complete while step one is half done: exit %d\n%s", code, out)
	}
	out, code := kupProc(t, c, state, upgrade...)
	if code != exitOK || !strings.Contains(out, "resuming") {
		t.Fatalf("step one again: exit %d (want a resume)\n%s", code, out)
	}
	if got := emulation(ctx, t, state, c.Name); got != allAt("v1.37.2", "1.36") {
		t.Fatalf("after the resumed step one: %s", got)
	}
	j = windowJournal(t, c, state)
	if j.Phase != "window-open" || j.Resumes != 1 || stepStatus(j, "step one: kube-controller-manager") != journal.StatusDone {
		t.Errorf("after the resumed step one: phase %q, resumes %d, controller-manager %s", j.Phase, j.Resumes, stepStatus(j, "step one: kube-controller-manager"))
	}
	// Asking for step one again does nothing.
	pid := apiserverPID(t, state, c.Name)
	if out, code := kupProc(t, c, state, upgrade...); code != exitOK || !strings.Contains(out, "step one is already done") {
		t.Errorf("step one a third time: exit %d\n%s", code, out)
	}
	if apiserverPID(t, state, c.Name) != pid {
		t.Error("step one a third time restarted the kube-apiserver")
	}

	// The rollback, killed while kube-controller-manager starts.
	out, killed = kupKilled(t, c, state, "starting kube-controller-manager v1.36.3", "rollback")
	if !killed {
		t.Fatalf("kup rollback ended before the kill point:\n%s", out)
	}
	j = windowJournal(t, c, state)
	if j.Phase != "window-rolling-back" || stepStatus(j, "rollback: kube-scheduler") != journal.StatusDone {
		t.Errorf("killed in the rollback: phase %q, scheduler %s; want window-rolling-back, done", j.Phase, stepStatus(j, "rollback: kube-scheduler"))
	}
	if out, code := kupProc(t, c, state, upgrade...); code != exitError || !strings.Contains(out, "rollback of this window is under way") {
		t.Errorf("upgrade while a rollback is half done: exit %d\n%s", code, out)
	}
	if out, code := kupProc(t, c, state, "rollback"); code != exitOK || !strings.Contains(out, "resuming") {
		t.Fatalf("rollback again: exit %d\n%s", code, out)
	}
	if got := emulation(ctx, t, state, c.Name); got != allAt("v1.36.3", "1.36") {
		t.Fatalf("after the resumed rollback: %s", got)
	}
	if j = windowJournal(t, c, state); j.Phase != "window-closed" {
		t.Errorf("after the resumed rollback: phase %q", j.Phase)
	}

	// A new window with a soak, kup killed while soaking: the window
	// stays open with its soak recorded.
	soak := append(slices.Clone(upgrade), "--soak", "6s")
	if out, killed := kupKilled(t, c, state, "soaking:", soak...); !killed {
		t.Fatalf("kup ended before soaking:\n%s", out)
	}
	j2 := windowJournal(t, c, state)
	var w2 struct {
		SoakUntil time.Time `json:"soakUntil"`
	}
	if err := json.Unmarshal(j2.Extra["window"], &w2); err != nil || w2.SoakUntil.IsZero() || j2.RunID == j.RunID || j2.Phase != "window-open" {
		t.Errorf("killed while soaking: run %s (before %s), phase %q, soak until %v (%v); want a new record, open, with its soak", j2.RunID, j.RunID, j2.Phase, w2.SoakUntil, err)
	}
	// The same command again: step one is done, the rest of the soak
	// passes, step two runs by itself — and kup is killed while
	// kube-controller-manager starts: the apiserver already emulates 1.37.
	out, killed = kupKilled(t, c, state, "starting kube-controller-manager v1.37.2", soak...)
	if !killed || !strings.Contains(out, "step one is already done") {
		t.Fatalf("the soak resumed (killed=%v):\n%s", killed, out)
	}
	j = windowJournal(t, c, state)
	if j.Phase != "window-completing" || stepStatus(j, "step two: kube-apiserver") != journal.StatusDone {
		t.Errorf("killed in step two: phase %q, apiserver %s; want window-completing, done", j.Phase, stepStatus(j, "step two: kube-apiserver"))
	}
	out, code = kupProc(t, c, state, "rollback")
	if code != exitError || !strings.Contains(out, "step two of the upgrade v1.36.3 → v1.37.2 began") || !strings.Contains(out, "etcd revision") {
		t.Errorf("rollback while step two is half done: exit %d, want a refusal naming the snapshot\n%s", code, out)
	}
	if out, code := kupProc(t, c, state, "controlplane", "complete"); code != exitOK || !strings.Contains(out, "resuming") {
		t.Fatalf("complete again: exit %d\n%s", code, out)
	}
	if got := emulation(ctx, t, state, c.Name); got != allAt("v1.37.2", "1.37") {
		t.Fatalf("after the resumed step two: %s", got)
	}
	if j = windowJournal(t, c, state); j.Phase != "window-closed" || j.Resumes != 1 {
		t.Errorf("after the resumed step two: phase %q, resumes %d", j.Phase, j.Resumes)
	}
}

func apiserverPID(t *testing.T, state, name string) int {
	t.Helper()
	s, err := sandbox.Load(state, name)
	if err != nil {
		t.Fatal(err)
	}
	return s.Processes[sandbox.APIServer].PID
}

// TestRollbackTrustsTheCluster: the journal says the window is open, but
// the apiserver was raised to 1.37 behind kup's back; kup rollback
// believes the apiserver and refuses, changing nothing.
func TestRollbackTrustsTheCluster(t *testing.T) {
	c, state := startWindowSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kc := "--kubeconfig=" + c.Kubeconfig
	if out, code := kup(t, "controlplane", "upgrade", kc, "--to", "v1.37.2", "--rollback-safe", "--skip-backup"); code != exitOK {
		t.Fatalf("step one: exit %d\n%s", code, out)
	}
	s, err := sandbox.Load(state, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunComponent(ctx, sandbox.APIServer, "v1.37.2", "", sandbox.UpgradeOptions{}); err != nil {
		t.Fatal(err)
	}
	out, code := kup(t, "rollback", kc)
	if code != exitError || !strings.Contains(out, "already serves a newer minor (kube-apiserver at 127.0.0.1 emulates 1.37)") || !strings.Contains(out, "knows no snapshot") {
		t.Errorf("rollback with the apiserver raised: exit %d, want %d refusing\n%s", code, exitError, out)
	}
	// Nor does kup apply roll anything while the journal records a window.
	if out, code := kup(t, "apply", kc, "--to", "v1.37.2"); code == exitOK || !strings.Contains(out, "a rollback window v1.36.3 → v1.37.2 is recorded for this cluster (window-open)") {
		t.Errorf("kup apply during a window: exit %d, want a refusal\n%s", code, out)
	}
	want := "kube-apiserver v1.37.2/1.37 kube-controller-manager v1.37.2/1.36 kube-scheduler v1.37.2/1.36"
	if got := emulation(ctx, t, state, c.Name); got != want {
		t.Errorf("a refused rollback moved components: %s, want %s", got, want)
	}
}
