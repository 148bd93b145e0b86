package rollout

import "time"

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
