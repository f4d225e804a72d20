//go:build !linux

package cluster

import (
	"errors"
	"syscall"
)

var errNotLinux = errors.New("cluster: runs on Linux only (processes are identified through /proc)")

func readStat(int) (procStat, error) { return procStat{}, errNotLinux }

func sysProcAttr(bool) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
