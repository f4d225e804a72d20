package cluster

import (
	"os"
	"strconv"
	"syscall"
)

// readStat reads /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(pid, b)
}

// sysProcAttr puts a process in a session of its own (so a Ctrl-C in the
// caller's terminal, or the caller's exit, never reaches it) and, for
// tests, has the kernel kill it when the caller dies.
func sysProcAttr(dieWithCaller bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setsid: true}
	if dieWithCaller {
		a.Pdeathsig = syscall.SIGKILL
	}
	return a
}
