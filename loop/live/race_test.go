//go:build race

package live

// raceEnabled: the race detector slows the journal (SQLite in Go) about
// tenfold, so timing tests make shorter runs.
const raceEnabled = true
