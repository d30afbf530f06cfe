package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
)

var (
	profileMu   sync.Mutex
	profileFile *os.File
)

// startProfile writes a CPU profile of the command to path until
// stopProfile. Read it with `go tool pprof -top bin/insitu FILE`.
func startProfile(path string) error {
	profileMu.Lock()
	defer profileMu.Unlock()
	if profileFile != nil {
		return fmt.Errorf("--cpuprofile %s: a profile is already being written", path)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpuprofile %s: %w", path, err)
	}
	profileFile = f
	return nil
}

// stopProfile ends the profile started by startProfile, if any; it runs
// on every way out of the command, errors and interruptions included.
func stopProfile() error {
	profileMu.Lock()
	defer profileMu.Unlock()
	if profileFile == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := profileFile.Close()
	profileFile = nil
	return err
}
