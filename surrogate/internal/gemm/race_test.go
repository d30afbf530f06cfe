//go:build race

package gemm

// The race detector slows the reference loops tenfold; it looks for data
// races, which the smaller shapes (the goroutine split included) exercise.
const raceEnabled = true
