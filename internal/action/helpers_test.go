package action_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// kupCommand is the kup binary run on sandbox c, with c's state
// directory and its kubeconfig.
func kupCommand(t *testing.T, c *sandbox.Cluster, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(sandboxtest.KupBinary(t), append(args, "--kubeconfig", c.Kubeconfig)...)
	cmd.Env = append(os.Environ(), "KUP_STATE_DIR="+filepath.Dir(filepath.Dir(c.Dir)), "NO_COLOR=1") // <state>/sandboxes/<name>
	return cmd
}

func asResultError(err error, target **action.ResultError) bool { return errors.As(err, target) }

func restConfigFor(host string) *rest.Config {
	return &rest.Config{Host: host, Timeout: 5 * time.Second, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}
