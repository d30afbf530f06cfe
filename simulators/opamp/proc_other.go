//go:build !unix

package opamp

import "os/exec"

// killGroup: without process groups, cancellation kills ngspice itself
// (exec.CommandContext's default).
func killGroup(*exec.Cmd) {}
