// Package ope is off-policy evaluation: estimates of the value a target
// policy would have earned on traffic logged under another policy, from
// each logged decision's offers, the probability the logging policy
// chose each with (its propensity), the probability the target policy
// would choose it, and the reward observed.
//
// It holds three estimators, each with a 95% confidence interval and
// the effective sample size of its importance weights: inverse
// propensity scoring (IPS), self-normalised IPS (SNIPS) and doubly
// robust (DR). The package is pure: the standard library only, no I/O,
// no randomness; every function is safe for concurrent use.
//
// A decision may return several offers. The estimators then weigh each
// offer on its own (the independence, or "item-position", model of
// slate evaluation): the reward of an offer is taken not to depend on
// the other offers returned with it, and a decision's value is the sum
// of its offers' rewards. With one offer a decision this is the
// textbook estimator.
package ope
