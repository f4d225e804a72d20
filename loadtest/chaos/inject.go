package chaos

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Target is what the faults act on: the cluster in a box (ClusterTarget),
// or a fake in tests.
type Target interface {
	// Kill sends SIGKILL to the process and returns once it is gone.
	Kill(name string) error
	// Start starts the process again as before and returns once it is
	// ready.
	Start(ctx context.Context, name string) error
	// Pause stops the process with SIGSTOP; Resume continues it.
	Pause(name string) error
	Resume(name string) error
	// RestartRedisEmpty kills Redis and starts it with no data, and
	// returns once it answers.
	RestartRedisEmpty(ctx context.Context) error
	// DisableProxy closes every connection through the proxy and refuses
	// new ones; EnableProxy lets them through again.
	DisableProxy(proxy string) error
	EnableProxy(proxy string) error
	// AddToxic adds a toxic to the proxy; RemoveToxic removes it by name.
	AddToxic(proxy string, t Toxic) error
	RemoveToxic(proxy, name string) error
}

// Toxic is a toxiproxy toxic.
type Toxic struct {
	Name       string
	Type       string // latency, reset_peer
	Stream     string // downstream or upstream
	Attributes map[string]any
}

// Clock tells the time and waits for it: the wall clock in a run, a fake
// one in tests, so that when each fault acts is checked without sleeping.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t, or with ctx's error when ctx ends first.
	SleepUntil(ctx context.Context, t time.Time) error
}

// WallClock is the real time.
type WallClock struct{}

// Now is time.Now.
func (WallClock) Now() time.Time { return time.Now() }

// SleepUntil waits until t or ctx ends.
func (WallClock) SleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Event is what became of one fault of the schedule.
type Event struct {
	// Index is the fault's place in the schedule, from 0.
	Index int
	Fault Fault
	// Began is when the fault was injected: when its action was sent
	// (the kill, the SIGSTOP, the proxy disabled, the toxic added).
	Began time.Time
	// Ended is when the fault's end began: the killed process started
	// again, the paused one continued, the proxy enabled, the toxic
	// removed; for redis-restart-empty, when Redis answered again, empty.
	// Zero when it never ended (the run was interrupted before).
	Ended time.Time
	// Ready is, for a kill, when the restarted process was ready again
	// (its readiness probe passed); zero otherwise.
	Ready time.Time
	// StartFailures counts, for a kill, the starts that failed before one
	// held (the process exited while starting: a backend it needs was
	// still down); StartFailure is the last one's error.
	StartFailures int
	StartFailure  string
	// Errors of the injection and of the end, if any.
	Errors []string
}

// liftTimeout bounds ending a fault, on a context of its own: the
// processes must come back whatever interrupted the run, and a killed
// process is tried again until it starts.
const liftTimeout = 3 * time.Minute

// RestartDelay is the pause between two starts of a killed process whose
// start failed (it exited while starting, as a gateway does while the
// database is unreachable).
const RestartDelay = time.Second

// Run plays schedule s against target, offsets counted from t0 on clock,
// and returns once every fault has been injected and ended, each with its
// Event (in schedule order). Each fault waits for its own times, so a
// process that is slow to start again delays no other fault. When ctx ends
// first, the faults not yet injected are dropped and those in effect are
// ended at once (a killed process started, a paused one continued, a
// proxy enabled): a run never leaves the cluster broken behind it.
func Run(ctx context.Context, s Schedule, target Target, clock Clock, t0 time.Time) []Event {
	events := make([]Event, len(s.Faults))
	var mu sync.Mutex // events
	var wg sync.WaitGroup
	for i, f := range s.Faults {
		events[i] = Event{Index: i, Fault: f}
		wg.Go(func() {
			record := func(update func(*Event)) {
				mu.Lock()
				update(&events[i])
				mu.Unlock()
			}
			fail := func(what string, err error) {
				if err != nil {
					record(func(e *Event) { e.Errors = append(e.Errors, what+": "+err.Error()) })
				}
			}
			if clock.SleepUntil(ctx, t0.Add(f.Start())) != nil {
				return // interrupted before it began: nothing to undo
			}
			began := clock.Now()
			record(func(e *Event) { e.Began = began })
			fail("inject", inject(ctx, target, i, f))
			if f.Kind == RedisRestartEmpty {
				ended := clock.Now()
				record(func(e *Event) { e.Ended = ended })
				return
			}
			// Ended early by ctx or not, the fault is lifted, and on a
			// context of its own: ctx may be why it ends now.
			_ = clock.SleepUntil(ctx, t0.Add(f.End()))
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), liftTimeout)
			defer cancel()
			ended := clock.Now()
			record(func(e *Event) { e.Ended = ended })
			if f.Kind != Kill {
				fail("end", lift(lctx, target, i, f))
				return
			}
			// A killed process is started again as a supervisor would
			// (systemd's Restart=always, a Kubernetes restart): until it
			// stays up, RestartDelay apart.
			for {
				err := target.Start(lctx, f.Process)
				if err == nil {
					ready := clock.Now()
					record(func(e *Event) { e.Ready = ready })
					return
				}
				record(func(e *Event) { e.StartFailures, e.StartFailure = e.StartFailures+1, err.Error() })
				if clock.SleepUntil(lctx, clock.Now().Add(RestartDelay)) != nil {
					fail("end", fmt.Errorf("%s did not start within %s: %w", f.Process, liftTimeout, err))
					return
				}
			}
		})
	}
	wg.Wait()
	return events
}

// toxicName is the toxic of the i-th fault: unique, so that two toxics on
// one proxy in a schedule never collide.
func toxicName(i int, f Fault) string { return "chaos-" + strconv.Itoa(i+1) + "-" + string(f.Kind) }

func stream(f Fault) string {
	if f.Stream == "" {
		return Downstream
	}
	return f.Stream
}

func inject(ctx context.Context, t Target, i int, f Fault) error {
	switch f.Kind {
	case Kill:
		return t.Kill(f.Process)
	case Pause:
		return t.Pause(f.Process)
	case Down:
		return t.DisableProxy(f.Proxy)
	case Latency:
		return t.AddToxic(f.Proxy, Toxic{Name: toxicName(i, f), Type: "latency", Stream: stream(f),
			Attributes: map[string]any{"latency": f.Latency.D().Milliseconds(), "jitter": 0}})
	case ResetPeer:
		return t.AddToxic(f.Proxy, Toxic{Name: toxicName(i, f), Type: "reset_peer", Stream: stream(f),
			Attributes: map[string]any{"timeout": 0}})
	case RedisRestartEmpty:
		return t.RestartRedisEmpty(ctx)
	}
	return fmt.Errorf("unknown kind %q", f.Kind)
}

// lift ends every fault but a kill (Run starts a killed process again).
func lift(_ context.Context, t Target, i int, f Fault) error {
	switch f.Kind {
	case Pause:
		return t.Resume(f.Process)
	case Down:
		return t.EnableProxy(f.Proxy)
	case Latency, ResetPeer:
		return t.RemoveToxic(f.Proxy, toxicName(i, f))
	}
	return nil
}

// Overlap is, for event i, the other faults in effect at some time
// between its beginning and until (its recovery, or the end of the run
// when it did not recover), and when the last of them ended: a recovery
// measured while another fault is on measures that one too.
func Overlap(events []Event, i int, until time.Time) (others []int, othersUntil time.Time) {
	e := events[i]
	if e.Began.IsZero() {
		return nil, time.Time{}
	}
	end := latest(e.Began, e.Ended, until)
	for j, o := range events {
		if j == i || o.Began.IsZero() {
			continue
		}
		oEnd := o.Ended
		if oEnd.IsZero() {
			oEnd = o.Began
		}
		// o was on at some point in [e.Began, end].
		if !o.Began.After(end) && !oEnd.Before(e.Began) {
			others = append(others, j)
			if oEnd.After(othersUntil) {
				othersUntil = oEnd
			}
		}
	}
	sort.Ints(others)
	return others, othersUntil
}

// Errors returns the events' errors, each naming its fault.
func Errors(events []Event) error {
	var errs []error
	for _, e := range events {
		for _, msg := range e.Errors {
			errs = append(errs, fmt.Errorf("fault %d (%s): %s", e.Index+1, e.Fault, msg))
		}
	}
	return errors.Join(errs...)
}

// latest is the latest of ts.
func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}
