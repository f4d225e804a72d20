package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// A Component is one part of a process (tracing, Redis, the database, the
// queue, the order side, the notifier, the reaper, HTTP): how it starts,
// how it stops, and which components must be running before it starts.
// Start and Stop may be nil.
type Component struct {
	Name  string
	Needs []string
	Start func(ctx context.Context) error
	// Stop undoes Start. It runs in reverse start order, after every
	// component that needs it has stopped, under a context whose deadline
	// is shared by the whole shutdown (SECKILL_SHUTDOWN_TIMEOUT): a slow
	// stage leaves less for the ones after it, never more in all.
	Stop func(ctx context.Context) error
}

// Lifecycle is a process's components: registered once each, started for
// a target (the components it names and everything they need, each once,
// dependencies first), stopped in reverse order. The seckill binaries are
// targets of one set of components (the all-in-one, the gateway, the order
// worker, the notifier), not branches through one wiring. It is loki's
// module manager and fx's lifecycle hooks, cut to what this project uses.
type Lifecycle struct {
	log       *slog.Logger
	comps     map[string]Component
	started   []Component // in start order
	startWait time.Duration
}

// ErrUnreachable marks a start error that waiting may cure: a backend that
// does not answer yet (a database restarting, a NATS node coming up), as
// opposed to one that answered no (a wrong password, a DSN that does not
// parse). Start retries a component failing so, within the start wait
// (WaitForBackends), instead of failing the process at once: a process
// restarted during an outage would otherwise exit again and again, and a
// supervisor that backs off (Kubernetes, for minutes) brings it back long
// after its backend did.
var ErrUnreachable = errors.New("unreachable")

// Unreachable marks err as ErrUnreachable.
func Unreachable(err error) error {
	if err == nil || errors.Is(err, ErrUnreachable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// WaitForBackends makes Start retry, for up to d, a component whose start
// failed with ErrUnreachable (SECKILL_START_WAIT); 0, the default, fails
// at once.
func (l *Lifecycle) WaitForBackends(d time.Duration) { l.startWait = max(d, 0) }

// DefaultStartWait is how long a starting process waits for a backend
// that does not answer (SECKILL_START_WAIT): long enough to ride out a
// database or Redis restart, short enough that a wrong address fails a
// deployment within a minute.
const DefaultStartWait = time.Minute

// Descriptions of the settings of this package's lifecycle, which every
// seckill process reads, in the same words everywhere.
const (
	ShutdownTimeoutHelp = "how long a graceful shutdown may take in all: finishing requests, draining the queue and closing the backends share it; a second SIGINT or SIGTERM exits at once, losing nothing accepted"
	StartWaitHelp       = "how long a starting process waits for a backend that does not answer (the database, Redis, NATS: restarting, or not up yet), retrying, before it gives up and exits; one that answers no (a wrong password) fails at once. 0: no wait"
)

// Backoff of the retries of an unreachable component's start.
const (
	startRetryMin = 250 * time.Millisecond
	startRetryMax = 2 * time.Second
	// startWaitLog is how often a component still waited for is logged.
	startWaitLog = 10 * time.Second
)

// NewLifecycle returns an empty Lifecycle logging its stages to log (nil
// discards them).
func NewLifecycle(log *slog.Logger) *Lifecycle {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lifecycle{log: log, comps: map[string]Component{}}
}

// Add registers c. A name registered twice is a programming error: it
// panics, as the first test that builds the process finds.
func (l *Lifecycle) Add(c Component) {
	if c.Name == "" {
		panic("process: a component needs a name")
	}
	if _, dup := l.comps[c.Name]; dup {
		panic(fmt.Sprintf("process: component %q registered twice", c.Name))
	}
	l.comps[c.Name] = c
}

// Has reports whether a component named name is registered.
func (l *Lifecycle) Has(name string) bool {
	_, ok := l.comps[name]
	return ok
}

// Order returns the components target starts, in start order: each after
// everything it needs; among the ready ones, in the order target names
// them, then by name, so a start is the same every time. An unknown name
// or a cycle is an error naming it.
func (l *Lifecycle) Order(target ...string) ([]string, error) {
	var order []string
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		c, ok := l.comps[name]
		if !ok {
			if len(path) == 0 {
				return fmt.Errorf("process: unknown component %q", name)
			}
			return fmt.Errorf("process: component %q needs %q, which is not registered", path[len(path)-1], name)
		}
		switch state[name] {
		case 1:
			return fmt.Errorf("process: components need each other in a cycle: %v -> %s", path, name)
		case 2:
			return nil
		}
		state[name] = 1
		needs := slices.Clone(c.Needs)
		slices.Sort(needs)
		for _, n := range needs {
			if err := visit(n, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, t := range target {
		if err := visit(t, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Started reports whether the component named name has started.
func (l *Lifecycle) Started(name string) bool {
	for _, c := range l.started {
		if c.Name == name {
			return true
		}
	}
	return false
}

// Start starts target's components in Order, but those already started
// (a process may start in steps: its backends, then its listeners). If one
// fails, every started component is stopped (in reverse, within
// stopTimeout) and the error names the component that failed.
func (l *Lifecycle) Start(ctx context.Context, stopTimeout time.Duration, target ...string) error {
	order, err := l.Order(target...)
	if err != nil {
		return err
	}
	for _, name := range order {
		if l.Started(name) {
			continue
		}
		c := l.comps[name]
		if c.Start != nil {
			if err := l.startOne(ctx, c); err != nil {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
				defer cancel()
				// The start's error is the one to see; the stops' are
				// logged.
				if serr := l.Stop(sctx); serr != nil {
					l.log.Warn("stopping after a failed start", "err", serr)
				}
				return fmt.Errorf("start %s: %w", name, err)
			}
		}
		l.started = append(l.started, c)
		l.log.Debug("component started", "component", name)
	}
	return nil
}

// startOne starts c, retrying while it fails with ErrUnreachable within
// the start wait.
func (l *Lifecycle) startOne(ctx context.Context, c Component) error {
	giveUp := time.Now().Add(l.startWait)
	backoff := startRetryMin
	var logged time.Time
	for attempt := 1; ; attempt++ {
		err := c.Start(ctx)
		if err == nil || !errors.Is(err, ErrUnreachable) {
			return err
		}
		if time.Now().Add(backoff).After(giveUp) {
			if attempt > 1 {
				return fmt.Errorf("%w (gave up after %d attempts in %s, SECKILL_START_WAIT)", err, attempt, l.startWait)
			}
			return err
		}
		if time.Since(logged) >= startWaitLog {
			l.log.Warn("waiting for a backend before starting", "component", c.Name, "attempt", attempt,
				"gives_up_in", time.Until(giveUp).Round(time.Second), "err", err)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (stopped waiting: %w)", err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, startRetryMax)
	}
}

// Stop stops the started components in reverse start order, each under
// ctx (one deadline for all), and returns their errors joined, each
// naming its component. Every component is stopped even when one fails or
// the deadline passed: a stop that cannot finish in time still releases
// what it holds. Stop is safe to call again; it stops nothing twice.
func (l *Lifecycle) Stop(ctx context.Context) error {
	var errs []error
	for i := len(l.started) - 1; i >= 0; i-- {
		c := l.started[i]
		if c.Stop == nil {
			continue
		}
		start := time.Now()
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.Name, err))
		}
		l.log.Debug("component stopped", "component", c.Name, "took", time.Since(start))
	}
	l.started = nil
	return errors.Join(errs...)
}
