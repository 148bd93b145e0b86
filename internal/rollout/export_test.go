package rollout

import "time"

// These setters change package state every rollout in the test binary
// reads. A test that calls one must not call t.Parallel: Go runs such
// tests first, one at a time, and the parallel ones (each on its own
// sandbox) only after them.

// SetWakeOnBudgets turns the budget informer of continuous admission on
// or off, for the benchmark's comparison.
func SetWakeOnBudgets(on bool) { wakeOnBudgetGrowth = on }

// SetDrainFromCache turns drains' reads of the live cache on or off, for
// the benchmark's comparison.
func SetDrainFromCache(on bool) { drainFromCache = on }

// SetCacheSyncTimeout sets the live cache's sync deadline until the
// returned func restores it.
func SetCacheSyncTimeout(d time.Duration) (restore func()) {
	old := cacheSyncTimeout
	cacheSyncTimeout = d
	return func() { cacheSyncTimeout = old }
}
