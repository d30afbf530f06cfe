// Package safety will hold the guard every query passes through: finite and
// bounded inputs, slew and rate limits, a query budget, a watchdog, output
// checks and interlocks, and SafeState on every exit path (issue 3).
package safety
