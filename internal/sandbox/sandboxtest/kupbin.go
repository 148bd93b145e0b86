package sandboxtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	kupOnce sync.Once
	kupBin  string
	kupErr  error
)

// KupBinary builds this module's cmd/kup once per test binary and
// returns its path, for tests that run (and kill) a real kup process. The
// directory is world-readable: hosts reached through sudo run it too.
// Use Main as the package's TestMain (or call RemoveKupBinary from it).
func KupBinary(t testing.TB) string {
	t.Helper()
	kupOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		dir, err := os.MkdirTemp("", "kup-bin-")
		if err != nil {
			kupErr = err
			return
		}
		_ = os.Chmod(dir, 0o755)
		kupBin = filepath.Join(dir, "kup")
		build := exec.Command("go", "build", "-o", kupBin, "./cmd/kup")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			kupErr = fmt.Errorf("building kup: %v\n%s", err, out)
		}
	})
	if kupErr != nil {
		t.Fatal(kupErr)
	}
	return kupBin
}

// RemoveKupBinary deletes what KupBinary built, if it built anything.
func RemoveKupBinary() {
	if kupBin != "" {
		_ = os.RemoveAll(filepath.Dir(kupBin))
	}
}

// Main is the TestMain of a package whose tests use KupBinary: it runs
// the tests, removes the binary and exits with their code.
func Main(m *testing.M) {
	code := m.Run()
	RemoveKupBinary()
	os.Exit(code)
}
