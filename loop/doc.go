// Package loop holds the optimizers that drive a black box: online GradPIE,
// offline descent and the baselines. Its subpackage study measures
// how good a surrogate's gradient is before any optimization is run.
package loop
