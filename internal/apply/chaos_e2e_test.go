package apply_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { sandboxtest.Main(m) }

// kupRun is one kup process against the sandbox.
type kupRun struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	done   chan struct{}
	exit   int
	waited error
}

func startKup(t *testing.T, c *sandbox.Cluster, dir string, args ...string) *kupRun {
	t.Helper()
	bin := sandboxtest.KupBinary(t)
	r := &kupRun{done: make(chan struct{})}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Dir = filepath.Join(filepath.Dir(bin))
	stateRoot := filepath.Dir(filepath.Dir(c.Dir)) // <state>/sandboxes/<name>
	r.cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "KUP_STATE_DIR="+stateRoot, "NO_COLOR=1")
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.waited = r.cmd.Wait()
		if r.cmd.ProcessState != nil {
			r.exit = r.cmd.ProcessState.ExitCode()
		}
		close(r.done)
	}()
	return r
}

func (r *kupRun) wait(d time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(d):
		return false
	}
}

func applyArgs(dir string) []string {
	return []string{"apply", "--to", "v1.37.2", "--max-unavailable", "20%", "--delete-emptydir-data",
		"--upgrade-time", "2s", "--lock-ttl", "2s", "--report-dir", filepath.Join(dir, "report")}
}

// journalPhase reads the phase from the local journal mirror.
func journalPhase(t *testing.T, c *sandbox.Cluster) string {
	st := &journal.Store{Client: c.Client(), Cluster: c.RESTConfig().Host, LocalDir: filepath.Join(filepath.Dir(filepath.Dir(c.Dir)), "journals")}
	j, err := st.Load(context.Background())
	if err != nil || j == nil {
		return ""
	}
	return j.Phase
}

// TestApplySurvivesSIGKILL is the chaos acceptance test: the v1.35.4 →
// v1.37.2 upgrade with kup killed (SIGKILL) at 20 random points spread
// over its phases, each time started again. Every run must end at the
// target with no node left cordoned, no PDB violated (independent
// watcher), no node upgraded twice, and the journal complete.
func TestApplySurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test")
	}
	t.Parallel() // its own sandbox, state directory and kup processes
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.35.4", NodeVersion: "v1.35.4,v1.34.4", Nodes: 32, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cs := c.Client()
	rolls := countRolls(ctx, t, cs)
	w, err := rollout.Watch(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	rng := rand.New(rand.NewPCG(12, 2026))
	// Where the kills go: one in the first second (start-up, preflight,
	// backup), five while the control plane hops, fifteen while nodes
	// roll — twenty-one, of which a fast run may finish the last before it
	// lands — and one aimed at verification, which is short and may end
	// before it lands. Each waits for its phase, then a random
	// moment inside it.
	schedule := []string{""}
	for range 5 {
		schedule = append(schedule, journal.PhaseControlPlane)
	}
	for range 15 {
		schedule = append(schedule, journal.PhaseNodes)
	}
	schedule = append(schedule, journal.PhaseVerify)
	order := map[string]int{"": 0, journal.PhasePreflight: 1, journal.PhaseBackup: 2, journal.PhaseControlPlane: 3, journal.PhaseNodes: 4, journal.PhaseVerify: 5, journal.PhaseDone: 6}
	phases := map[string]int{}
	kills := 0
	for attempt := 0; ; attempt++ {
		if attempt > 300 {
			t.Fatal("too many attempts")
		}
		run := startKup(t, c, dir, applyArgs(dir)...)
		if kills < len(schedule) {
			want := schedule[kills]
			var delay time.Duration
			if want == "" {
				delay = time.Duration(50+rng.IntN(250)) * time.Millisecond
			} else {
				// Wait for the phase (or a later one), then a random moment.
				for order[journalPhase(t, c)] < order[want] && !run.wait(100*time.Millisecond) {
				}
				delay = time.Duration(rng.IntN(3500)) * time.Millisecond
				if want == journal.PhaseVerify {
					delay = time.Duration(rng.IntN(500)) * time.Millisecond
				}
			}
			if run.wait(delay) {
				if run.exit == 0 {
					t.Logf("run %d finished before its kill point (%d kills so far)", attempt, kills)
					break
				}
				if strings.Contains(run.out.String(), "another kup holds the upgrade lock") {
					time.Sleep(time.Second) // the killed kup's lease has not expired yet
					continue
				}
				t.Fatalf("run %d failed (exit %d):\n%s", attempt, run.exit, tail(run.out.String(), 40))
			}
			phase := journalPhase(t, c)
			_ = syscall.Kill(-run.cmd.Process.Pid, syscall.SIGKILL)
			run.wait(time.Minute)
			kills++
			phases[phase]++
			t.Logf("kill %d (aimed at %q) in phase %q after %s; kup had said: %s", kills, want, phase, delay, strings.ReplaceAll(tail(run.out.String(), 2), "\n", " | "))
			continue
		}
		if !run.wait(20 * time.Minute) {
			_ = syscall.Kill(-run.cmd.Process.Pid, syscall.SIGKILL)
			t.Fatalf("final run did not finish:\n%s", tail(run.out.String(), 40))
		}
		if run.exit != 0 {
			if strings.Contains(run.out.String(), "another kup holds the upgrade lock") {
				time.Sleep(time.Second)
				continue
			}
			t.Fatalf("final run failed (exit %d):\n%s", run.exit, tail(run.out.String(), 60))
		}
		t.Logf("final run:\n%s", tail(run.out.String(), 25))
		break
	}
	t.Logf("%d kills, by phase: %v", kills, phases)
	if kills < 20 {
		t.Errorf("only %d kills happened before the upgrade finished; make it longer", kills)
	}
	if len(phases) < 3 {
		t.Errorf("kills hit only phases %v; want them spread over the run", phases)
	}
	assertUpgraded(ctx, t, c, "v1.37.2")
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("PDB violations: %+v", v)
	}
	for node, n := range rolls() {
		if n != 1 {
			t.Errorf("node %s upgraded %d times, want once", node, n)
		}
	}
	assertJournalComplete(ctx, t, c)
}

// TestApplyInterruptions: a second concurrent kup apply is refused; Ctrl-C
// twice mid-wave stops resumably; the apiserver killed for 20 s mid-wave
// does not make kup fail.
func TestApplyInterruptions(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test")
	}
	t.Parallel() // its own sandbox, state directory and kup processes
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", Nodes: 12, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cs := c.Client()
	w, err := rollout.Watch(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	waitPhase := func(run *kupRun, phase string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for journalPhase(t, c) != phase {
			if run.wait(200*time.Millisecond) || time.Now().After(deadline) {
				t.Fatalf("kup never reached phase %s:\n%s", phase, tail(run.out.String(), 30))
			}
		}
	}

	// 1. A second kup is refused while the first holds the lock.
	first := startKup(t, c, dir, applyArgs(dir)...)
	waitPhase(first, journal.PhaseNodes)
	second := startKup(t, c, dir, applyArgs(dir)...)
	if !second.wait(time.Minute) {
		t.Fatal("second kup did not return")
	}
	if second.exit == 0 || !strings.Contains(second.out.String(), "another kup holds the upgrade lock") || !strings.Contains(second.out.String(), "pid") {
		t.Errorf("second kup: exit %d, output:\n%s\nwant a refusal naming the holder", second.exit, second.out.String())
	}

	// 2. Ctrl-C twice mid-wave: kup stops, resumably.
	time.Sleep(2 * time.Second)
	_ = first.cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(300 * time.Millisecond)
	_ = first.cmd.Process.Signal(syscall.SIGINT)
	if !first.wait(2 * time.Minute) {
		t.Fatalf("kup did not stop after two Ctrl-C:\n%s", tail(first.out.String(), 30))
	}
	if first.exit == 0 {
		t.Errorf("interrupted kup exited 0")
	}
	if !strings.Contains(first.out.String(), "resum") {
		t.Errorf("interrupted kup did not say how to resume:\n%s", tail(first.out.String(), 20))
	}
	if p := journalPhase(t, c); p != journal.PhaseInterrupted {
		t.Errorf("journal phase after Ctrl-C: %q, want %q", p, journal.PhaseInterrupted)
	}

	// 3. Resume; kill the apiserver for 20 s in the middle of a wave.
	time.Sleep(4 * time.Second) // lock released on a clean stop; be safe
	resume := startKup(t, c, dir, applyArgs(dir)...)
	waitPhase(resume, journal.PhaseNodes)
	time.Sleep(3 * time.Second)
	state, err := sandbox.Load(filepath.Dir(filepath.Dir(c.Dir)), c.Name)
	if err != nil {
		t.Fatal(err)
	}
	api := state.Processes[sandbox.APIServer]
	_ = syscall.Kill(api.PID, syscall.SIGKILL)
	t.Logf("killed kube-apiserver (pid %d); restarting it in 20 s", api.PID)
	time.Sleep(20 * time.Second)
	if _, err := state.EnsureRunning(ctx); err != nil {
		t.Fatal(err)
	}
	if !resume.wait(15 * time.Minute) {
		t.Fatalf("resumed kup did not finish:\n%s", tail(resume.out.String(), 40))
	}
	if resume.exit != 0 {
		t.Fatalf("resumed kup failed (exit %d) — it must ride out a 20 s apiserver outage:\n%s", resume.exit, tail(resume.out.String(), 60))
	}
	assertUpgraded(ctx, t, c, "v1.37.2")
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("PDB violations: %+v", v)
	}
	assertJournalComplete(ctx, t, c)
}

func assertUpgraded(ctx context.Context, t *testing.T, c *sandbox.Cluster, target string) {
	t.Helper()
	nodes, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.KubeletVersion != target {
			t.Errorf("node %s at kubelet %s", n.Name, n.Status.NodeInfo.KubeletVersion)
		}
		if n.Spec.Unschedulable {
			t.Errorf("node %s left cordoned", n.Name)
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == rollout.PendingTaint {
				t.Errorf("node %s keeps the pending taint", n.Name)
			}
		}
	}
	if v, err := c.ServerVersion(ctx); err != nil || v != target {
		t.Errorf("apiserver at %s (%v), want %s", v, err, target)
	}
}

// assertJournalComplete: the run is done and no step is left "started".
func assertJournalComplete(ctx context.Context, t *testing.T, c *sandbox.Cluster) {
	t.Helper()
	st := &journal.Store{Client: c.Client(), Cluster: c.RESTConfig().Host, LocalDir: filepath.Join(filepath.Dir(filepath.Dir(c.Dir)), "journals")}
	j, err := st.Load(ctx)
	if err != nil || j == nil {
		t.Fatalf("journal: %v", err)
	}
	if j.Phase != journal.PhaseDone {
		t.Errorf("journal phase %s, want done", j.Phase)
	}
	for _, s := range j.Steps {
		if s.Status == journal.StatusStarted {
			t.Errorf("journal step %q left started", s.ID)
		}
	}
	for _, id := range []string{"preflight", "backup", "verify"} {
		if !j.Done(id) {
			t.Errorf("journal has no completed %s step", id)
		}
	}
	data, _ := json.Marshal(j.Steps)
	t.Logf("journal: %d steps, %d resumes, %d bytes of steps", len(j.Steps), j.Resumes, len(data))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
