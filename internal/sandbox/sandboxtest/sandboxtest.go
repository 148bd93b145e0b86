// Package sandboxtest starts sandbox clusters for tests: in a temporary
// state directory, with processes that die with the test binary, stopped
// at the end of the test. Binaries come from the shared cache, so a
// version is built once per machine, not once per test.
package sandboxtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kup-project/kup/internal/sandbox"
)

// Start starts a sandbox for t and stops it when t ends. Build and start
// progress goes to stderr, so a cold cache shows what is being built.
func Start(t testing.TB, opts sandbox.Options) *sandbox.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a sandbox cluster; skipped with -short")
	}
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.Name == "" {
		opts.Name = "test"
	}
	opts.DieWithParent = true
	if opts.Progress == nil {
		opts.Progress = prefixWriter{t.Name()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, err := sandbox.Start(ctx, opts)
	if err != nil {
		t.Fatalf("starting sandbox: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			// The sandbox directory goes with the cleanup: keep the story.
			for _, p := range c.Processes {
				t.Logf("last lines of %s's log (%s):\n%s", p.Name, p.Log, tail(p.Log, 15))
			}
		}
		// Another process (a kup under test) may have swapped binaries:
		// stop what the state on disk says runs, not what c remembers.
		target := c
		if fresh, err := sandbox.Load(opts.StateDir, opts.Name); err == nil {
			target = fresh
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, s := range []*sandbox.Cluster{target, c} {
			if s.Running() || anyAlive(s) {
				if err := s.StopContext(ctx); err != nil {
					t.Errorf("stopping sandbox: %v", err)
				}
			}
		}
	})
	return c
}

// prefixWriter writes progress lines to stderr with the test's name, so
// they show up even when go test buffers a package's output.
type prefixWriter struct{ name string }

func (w prefixWriter) Write(p []byte) (int, error) {
	fmt.Fprintf(os.Stderr, "[%s %s] %s", time.Now().Format("15:04:05"), w.name, p)
	return len(p), nil
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func anyAlive(c *sandbox.Cluster) bool {
	for _, p := range c.Processes {
		if p.Alive() {
			return true
		}
	}
	return false
}
