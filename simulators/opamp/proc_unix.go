//go:build unix

package opamp

import (
	"os/exec"
	"syscall"
)

// killGroup puts the command in its own process group and makes
// cancellation kill the whole group, so that a timed-out ngspice (or a
// wrapper script and its children) leaves no process behind.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
