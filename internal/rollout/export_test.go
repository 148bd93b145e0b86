package rollout

// SetWakeOnBudgets turns the budget informer of continuous admission on
// or off, for the benchmark's comparison.
func SetWakeOnBudgets(on bool) { wakeOnBudgetGrowth = on }

// SetDrainFromCache turns drains' reads of the live cache on or off, for
// the benchmark's comparison.
func SetDrainFromCache(on bool) { drainFromCache = on }
