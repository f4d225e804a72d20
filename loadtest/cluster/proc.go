package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procStat is what /proc/<pid>/stat says about a process.
type procStat struct {
	pid        int
	state      byte // R, S, D, T (stopped), Z (zombie), ...
	session    int
	startTicks uint64
}

// parseStat parses a stat line: "pid (comm) state ppid pgrp session ...",
// where comm may hold spaces and parentheses, so fields count from the
// last ')'. The start time is field 22.
func parseStat(pid int, b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields after the command", pid, len(f))
	}
	session, err1 := strconv.Atoi(f[3])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return procStat{pid: pid, state: f[0][0], session: session, startTicks: start}, nil
}

// alive reports whether p's recorded process still runs: its pid exists,
// was started when recorded (so it is not a reused pid) and is not a
// zombie.
func (p *proc) alive() (procStat, bool) {
	if p.PID <= 0 {
		return procStat{}, false
	}
	st, err := readStat(p.PID)
	if err != nil || st.startTicks != p.StartTicks || st.state == 'Z' || st.state == 'X' {
		return st, false
	}
	return st, true
}

// members lists the live processes of p's session (p itself, nginx's
// workers), also after p died. The kernel never hands out a pid that is
// still some live process's session id, so while anything of ours lives
// p.PID is ours; once p.PID belongs to a newer process, nothing of ours is
// left.
func (p *proc) members() []procStat {
	if p.PID <= 0 {
		return nil
	}
	if st, err := readStat(p.PID); err == nil && st.startTicks != p.StartTicks {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.session != p.PID || st.state == 'Z' || st.state == 'X' {
			continue
		}
		out = append(out, st)
	}
	return out
}

// signalGroup sends sig to every process of p's session: through the
// process group while p itself lives (its group is then surely p's), else
// to each member found.
func (p *proc) signalGroup(sig syscall.Signal) error {
	if _, ok := p.alive(); ok {
		return syscall.Kill(-p.PID, sig)
	}
	var errs []error
	for _, m := range p.members() {
		if err := syscall.Kill(m.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// launch starts p in a session of its own, its output appended to its log,
// and records its pid and start time. The process outlives the caller
// unless dieWithCaller. A goroutine reaps it, so a process that dies while
// the caller runs does not linger as a zombie.
func (p *proc) launch(dieWithCaller bool) error {
	if err := os.MkdirAll(filepath.Dir(p.Log), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== %s cluster: starting %s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(p.Argv, " "))
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Env, cmd.Dir = p.Env, p.Dir
	cmd.Stdout, cmd.Stderr = logf, logf // files: the child writes them itself, after we are gone
	cmd.SysProcAttr = sysProcAttr(dieWithCaller)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cluster: start %s: %w", p.Name, err)
	}
	st, err := readStat(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("cluster: start %s: %w", p.Name, err)
	}
	p.PID, p.StartTicks = st.pid, st.startTicks
	go func() { _ = cmd.Wait() }()
	return nil
}

// stop asks p's process to finish with its stop signal and waits up to
// timeout (less when ctx ends first) for its whole session to be gone, then
// kills what is left. A paused process is continued first, or it would
// never see the signal.
func (p *proc) stop(ctx context.Context, timeout time.Duration) error {
	if _, ok := p.alive(); ok {
		_ = syscall.Kill(p.PID, p.StopSignal)
		_ = syscall.Kill(-p.PID, syscall.SIGCONT)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if p.waitGoneCtx(ctx) {
		return nil
	}
	_ = p.signalGroup(syscall.SIGKILL)
	if p.waitGone(10 * time.Second) {
		return fmt.Errorf("cluster: %s did not stop within %s of %s and was killed", p.Name, timeout, p.StopSignal)
	}
	return fmt.Errorf("cluster: %s (pid %d) still runs after SIGKILL", p.Name, p.PID)
}

// waitGone waits up to timeout until no process of p's session is left.
func (p *proc) waitGone(timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.waitGoneCtx(ctx)
}

func (p *proc) waitGoneCtx(ctx context.Context) bool {
	for {
		if _, ok := p.alive(); !ok && len(p.members()) == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}
