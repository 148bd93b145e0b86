package rollout

// SetWakeOnBudgets turns the budget informer of continuous admission on
// or off, for the benchmark's comparison.
func SetWakeOnBudgets(on bool) { wakeOnBudgetGrowth = on }
