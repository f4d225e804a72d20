package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// Errors of the per-process controls.
var (
	// ErrUnknownProcess: the name is none of the cluster's (Cluster.Names).
	ErrUnknownProcess = errors.New("cluster: unknown process")
	// ErrNotRunning: the process is not running (Kill, Pause, Resume).
	ErrNotRunning = errors.New("cluster: process not running")
)

func (c *Cluster) known(name string) error {
	c.mu.Lock()
	p := c.st.proc(name)
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%w %q (one of %s)", ErrUnknownProcess, name, strings.Join(c.Names(), ", "))
	}
	return nil
}

// signal sends sig to the whole session of the named running process.
func (c *Cluster) signal(name string, sig syscall.Signal) (proc, error) {
	if err := c.known(name); err != nil {
		return proc{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.st.proc(name)
	if _, ok := p.alive(); !ok {
		return proc{}, fmt.Errorf("%w: %s", ErrNotRunning, name)
	}
	if err := syscall.Kill(-p.PID, sig); err != nil {
		return proc{}, fmt.Errorf("cluster: %s %s: %w", sig, name, err)
	}
	return *p, nil
}

// Kill sends SIGKILL to the named process (and its workers, for nginx), as
// a crash would, and waits until it is gone. ErrNotRunning when it was not
// running.
func (c *Cluster) Kill(name string) error {
	p, err := c.signal(name, syscall.SIGKILL)
	if err != nil {
		return err
	}
	if !p.waitGone(10 * time.Second) {
		return fmt.Errorf("cluster: %s (pid %d) still runs 10s after SIGKILL", name, p.PID)
	}
	return nil
}

// Pause stops the named process with SIGSTOP: it holds its connections and
// answers nothing, as a process stuck in a long GC pause or on a frozen VM
// does. ErrNotRunning when it is not running.
func (c *Cluster) Pause(name string) error {
	_, err := c.signal(name, syscall.SIGSTOP)
	return err
}

// Resume continues a paused process (SIGCONT).
func (c *Cluster) Resume(name string) error {
	_, err := c.signal(name, syscall.SIGCONT)
	return err
}

// Start starts the named process again, with the same command line,
// environment and data as before, and waits until it is ready (a NATS node
// until it is current with its cluster). A running process is left alone.
func (c *Cluster) Start(ctx context.Context, name string) error {
	if err := c.known(name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.st.ReadyTimeout))
	defer cancel()
	return c.launchAndWait(ctx, name)
}

// RestartRedisEmpty kills Redis and starts it again, empty (it keeps no
// snapshot or log): the loss of every reservation, stock counter and
// sold-out mark at once, which the pipeline must repair from the database.
func (c *Cluster) RestartRedisEmpty(ctx context.Context) error {
	if err := c.Kill(Redis); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	if err := c.Start(ctx, Redis); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	n, err := redisCommand(pctx, addr(c.port(Redis, PortClient)), "DBSIZE")
	if err != nil {
		return err
	}
	if n != ":0" {
		// Something wrote already (a process reconnected through the
		// proxy): still a fresh Redis, but say what was seen.
		c.logf("redis restarted empty; it already holds %s keys", strings.TrimPrefix(n, ":"))
	}
	return nil
}
