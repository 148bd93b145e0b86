package sandbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestControllerManagerReadyMeansControllersBuilt: the sandbox calls a
// kube-controller-manager ready only once it has built its controllers.
// Before that it already serves /healthz and its metrics, but exits if
// the apiserver is away: a rollback swaps it right before the apiserver,
// and kup rollback then waited 5 minutes on a controller-manager that was
// gone (TestRollbackSafeSurvivesKills in CI).
func TestControllerManagerReadyMeansControllersBuilt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", Nodes: 1})

	// The rollback's order: the controller-manager, then at once the
	// apiserver. The controller-manager must outlive the apiserver's
	// restart each time.
	for i := range 5 {
		kcm := c.Processes[sandbox.ControllerManager]
		if err := c.SwapComponent(ctx, sandbox.ControllerManager, kcm.Binary, kcm.Version); err != nil {
			t.Fatalf("round %d: controller-manager: %v", i, err)
		}
		fresh := c.Processes[sandbox.ControllerManager]
		api := c.Processes[sandbox.APIServer]
		if err := c.SwapComponent(ctx, sandbox.APIServer, api.Binary, api.Version); err != nil {
			t.Fatalf("round %d: apiserver: %v", i, err)
		}
		if !fresh.Alive() {
			t.Fatalf("round %d: kube-controller-manager (pid %d) exited while the apiserver restarted (log %s)", i, fresh.PID, fresh.Log)
		}
		if e, err := c.EmulatedVersion(ctx, sandbox.ControllerManager); err != nil || e.Binary != kcm.Version {
			t.Errorf("round %d: kube-controller-manager reports %+v (%v), want %s", i, e, err, kcm.Version)
		}
	}
}
