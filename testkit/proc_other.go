//go:build !linux

package testkit

import "os/exec"

// KillWithParent does nothing outside Linux: t.Cleanup still stops the
// servers, but a test binary killed from outside leaves them running.
func KillWithParent(*exec.Cmd) {}
