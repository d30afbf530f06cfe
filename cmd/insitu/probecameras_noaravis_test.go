//go:build !aravis || !cgo

package main

import (
	"strings"
	"testing"
)

// Without Aravis, probe --cameras says so and how to get it.
func TestProbeCamerasWithoutAravis(t *testing.T) {
	_, _, err := run(t, "probe", "--cameras")
	if err == nil || !strings.Contains(err.Error(), "probe --cameras: built without Aravis: rebuild with make build-aravis") {
		t.Fatalf("probe --cameras in the pure build: %v", err)
	}
}
