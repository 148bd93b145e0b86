package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestEmulatedVersions runs the v1.37.2 control plane emulating 1.36 on a
// v1.36.3 sandbox's etcd (KEP-4330), checks what each component reports
// about itself, and goes back to the v1.36.3 binaries on the same etcd
// with an object written in between intact.
func TestEmulatedVersions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// A GOGC of its own, to see the restarts below keep it.
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", Nodes: 1, GOGC: 250})
	for _, comp := range sandbox.ControlPlaneComponents {
		e, err := c.EmulatedVersion(ctx, comp)
		if err != nil {
			t.Fatalf("%s before: %v", comp, err)
		}
		if e.Binary != "v1.36.3" || e.Emulated != "1.36" {
			t.Errorf("%s before: %+v, want v1.36.3 emulating 1.36", comp, e)
		}
	}

	// Step one: new binaries, old minor; apiserver first.
	for _, comp := range sandbox.ControlPlaneComponents {
		if err := c.RunComponent(ctx, comp, "v1.37.2", "1.36", sandbox.UpgradeOptions{}); err != nil {
			t.Fatalf("%s to v1.37.2 emulating 1.36: %v", comp, err)
		}
	}
	for _, comp := range sandbox.ControlPlaneComponents {
		e, err := c.EmulatedVersion(ctx, comp)
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		if e.Binary != "v1.37.2" || e.Emulated != "1.36" {
			t.Errorf("%s: %+v, want v1.37.2 emulating 1.36", comp, e)
		}
	}
	if c.Version != "v1.37.2" {
		t.Errorf("sandbox version %s once every component runs v1.37.2", c.Version)
	}
	// The record on disk restarts them the same way (another kup, a heal).
	loaded, err := sandbox.Load(filepath.Dir(filepath.Dir(c.Dir)), c.Name) // <state>/sandboxes/<name>
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range sandbox.ControlPlaneComponents {
		if got := loaded.Emulated[comp]; got != "1.36" {
			t.Errorf("state on disk: %s emulates %q, want 1.36", comp, got)
		}
	}
	if loaded.GOGC != 250 {
		t.Errorf("state on disk: GOGC %d, want 250", loaded.GOGC)
	}
	// Restarted components run with the sandbox's GOGC, as the others do.
	for name, p := range c.Processes {
		if got := processGOGC(t, p.PID); got != "250" {
			t.Errorf("%s (pid %d) runs with GOGC %q, want 250", name, p.PID, got)
		}
	}
	// Asking again changes nothing: the same processes keep running.
	pid := c.Processes[sandbox.APIServer].PID
	if err := c.RunComponent(ctx, sandbox.APIServer, "v1.37.2", "1.36", sandbox.UpgradeOptions{}); err != nil {
		t.Fatal(err)
	}
	if c.Processes[sandbox.APIServer].PID != pid {
		t.Error("a component already running as asked was restarted")
	}

	cm, err := c.Client().CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "written-while-emulating"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// And back: the old binaries, reverse order, on the same etcd.
	for _, comp := range []string{sandbox.Scheduler, sandbox.ControllerManager, sandbox.APIServer} {
		if err := c.RunComponent(ctx, comp, "v1.36.3", "", sandbox.UpgradeOptions{}); err != nil {
			t.Fatalf("%s back to v1.36.3: %v", comp, err)
		}
	}
	for _, comp := range sandbox.ControlPlaneComponents {
		e, err := c.EmulatedVersion(ctx, comp)
		if err != nil {
			t.Fatalf("%s after: %v", comp, err)
		}
		if e.Binary != "v1.36.3" || e.Emulated != "1.36" {
			t.Errorf("%s after: %+v, want v1.36.3 emulating 1.36", comp, e)
		}
	}
	got, err := c.Client().CoreV1().ConfigMaps("default").Get(ctx, "written-while-emulating", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the ConfigMap written while emulating is gone after the rollback: %v", err)
	}
	if got.UID != cm.UID || got.Data["k"] != "v" {
		t.Errorf("ConfigMap after the rollback: uid %s data %v, want uid %s data k=v", got.UID, got.Data, cm.UID)
	}

	// A binary cannot emulate a minor newer than itself.
	if err := c.RunComponent(ctx, sandbox.Scheduler, "v1.36.3", "1.37", sandbox.UpgradeOptions{}); err == nil {
		t.Error("v1.36.3 emulating 1.37 was accepted")
	}
}

// processGOGC is the GOGC in a running process's environment, "" if none.
func processGOGC(t *testing.T, pid int) string {
	t.Helper()
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatalf("reading the environment of pid %d: %v", pid, err)
	}
	var gogc string
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("GOGC=")); ok {
			gogc = string(v) // os/exec passes one, the last it was given
		}
	}
	return gogc
}
