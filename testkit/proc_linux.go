package testkit

import (
	"os/exec"
	"syscall"
)

// KillWithParent has the kernel kill cmd when the test binary dies, so a
// test killed by a timeout or Ctrl-C leaves no server process behind.
func KillWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
