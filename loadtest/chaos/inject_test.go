package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// fakeClock stands still until the test sets it; SleepUntil blocks until
// then.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	changed chan struct{} // closed and replaced at each Set
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t, changed: make(chan struct{})} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	for {
		c.mu.Lock()
		now, changed := c.now, c.changed
		c.mu.Unlock()
		if !now.Before(t) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// call is one action on the fake cluster, with the fake time it happened.
type call struct {
	what string
	at   time.Time
}

// fakeTarget records every action with the clock's time, and can fail
// some.
type fakeTarget struct {
	clock *fakeClock
	calls chan call
	fail  map[string]error
}

func (f *fakeTarget) do(what string) error {
	f.calls <- call{what, f.clock.Now()}
	return f.fail[what]
}

func (f *fakeTarget) Kill(n string) error                     { return f.do("kill " + n) }
func (f *fakeTarget) Start(_ context.Context, n string) error { return f.do("start " + n) }
func (f *fakeTarget) Pause(n string) error                    { return f.do("pause " + n) }
func (f *fakeTarget) Resume(n string) error                   { return f.do("resume " + n) }
func (f *fakeTarget) RestartRedisEmpty(context.Context) error { return f.do("restart-redis-empty") }
func (f *fakeTarget) DisableProxy(p string) error             { return f.do("disable " + p) }
func (f *fakeTarget) EnableProxy(p string) error              { return f.do("enable " + p) }
func (f *fakeTarget) RemoveToxic(p, name string) error        { return f.do("remove " + p + " " + name) }
func (f *fakeTarget) AddToxic(p string, x Toxic) error {
	return f.do(fmt.Sprintf("add %s %s %s %s %v", p, x.Name, x.Type, x.Stream, x.Attributes))
}

var t0 = time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)

// runFake starts Run on a fake clock at T0 minus a second.
func runFake(ctx context.Context, s Schedule, fail map[string]error) (*fakeClock, *fakeTarget, <-chan []Event) {
	clock := newFakeClock(t0.Add(-time.Second))
	target := &fakeTarget{clock: clock, calls: make(chan call, 100), fail: fail}
	done := make(chan []Event, 1)
	go func() { done <- Run(ctx, s, target, clock, t0) }()
	return clock, target, done
}

// The injector acts at each fault's offsets from T0 on the clock, and
// nothing acts early: time moves only when the test moves it, to each
// instant the schedule names, and every action there is received before
// it moves on.
func TestRunActsAtTheOffsets(t *testing.T) {
	s, err := Load("default")
	if err != nil {
		t.Fatal(err)
	}
	s.Faults = append(s.Faults,
		Fault{At: Duration(25 * time.Second), Kind: ResetPeer, Proxy: "nats-1", For: Duration(time.Second), Stream: Upstream},
		Fault{At: Duration(30 * time.Second), Kind: RedisRestartEmpty})
	if err := s.Validate(fullTopology()); err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	want := map[time.Duration][]string{
		1 * time.Second:  {"kill gateway-1"},
		2 * time.Second:  {"kill worker-1"},
		3 * time.Second:  {"kill nats-2"},
		4 * time.Second:  {"start gateway-1", "disable mariadb"},
		5 * time.Second:  {"start worker-1"},
		6 * time.Second:  {"pause worker-2"},
		8 * time.Second:  {"add redis chaos-6-latency latency downstream map[jitter:0 latency:50]"},
		13 * time.Second: {"remove redis chaos-6-latency"},
		15 * time.Second: {"start nats-2"},
		16 * time.Second: {"resume worker-2"},
		24 * time.Second: {"enable mariadb"},
		25 * time.Second: {"add nats-1 chaos-7-reset_peer reset_peer upstream map[timeout:0]"},
		26 * time.Second: {"remove nats-1 chaos-7-reset_peer"},
		30 * time.Second: {"restart-redis-empty"},
	}
	instants := make([]time.Duration, 0, len(want))
	for d := range want {
		instants = append(instants, d)
	}
	slices.Sort(instants)

	clock, target, done := runFake(context.Background(), s, nil)
	for _, d := range instants {
		clock.Set(at(d))
		var got []string
		for range want[d] {
			c := <-target.calls
			if !c.at.Equal(at(d)) {
				t.Errorf("%s happened at T0%+v, want T0+%s", c.what, c.at.Sub(t0), d)
			}
			got = append(got, c.what)
		}
		sort.Strings(got)
		exp := slices.Sorted(slices.Values(want[d]))
		if !slices.Equal(got, exp) {
			t.Errorf("at T0+%s: %q, want %q", d, got, exp)
		}
	}
	events := <-done
	if len(target.calls) != 0 {
		t.Errorf("%d actions more than the schedule's, the first %+v", len(target.calls), <-target.calls)
	}
	for _, e := range events {
		f := e.Fault
		if !e.Began.Equal(at(f.Start())) || !e.Ended.Equal(at(f.End())) || len(e.Errors) > 0 {
			t.Errorf("fault %d (%s): began T0%+v, ended T0%+v, errors %v", e.Index+1, f, e.Began.Sub(t0), e.Ended.Sub(t0), e.Errors)
		}
		if (f.Kind == Kill) != !e.Ready.IsZero() {
			t.Errorf("fault %d (%s): ready %v", e.Index+1, f, e.Ready)
		}
	}
	if err := Errors(events); err != nil {
		t.Errorf("Errors = %v", err)
	}
}

// A run interrupted mid-fault ends what it injected at once, and injects
// nothing more.
func TestRunInterruptedHealsWhatItBroke(t *testing.T) {
	s := Schedule{Name: "t", Faults: []Fault{
		{At: Duration(time.Second), Kind: Pause, Process: "worker-1", For: Duration(10 * time.Second)},
		{At: Duration(2 * time.Second), Kind: Down, Proxy: "mariadb", For: Duration(10 * time.Second)},
		{At: Duration(20 * time.Second), Kind: Kill, Process: "gateway-2", For: Duration(time.Second)},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	clock, target, done := runFake(ctx, s, nil)
	clock.Set(t0.Add(time.Second))
	if c := <-target.calls; c.what != "pause worker-1" {
		t.Fatalf("first action %q", c.what)
	}
	clock.Set(t0.Add(2 * time.Second))
	if c := <-target.calls; c.what != "disable mariadb" {
		t.Fatalf("second action %q", c.what)
	}
	cancel()
	events := <-done
	var healed []string
	for len(target.calls) > 0 {
		c := <-target.calls
		healed = append(healed, c.what)
		if !c.at.Equal(t0.Add(2 * time.Second)) {
			t.Errorf("%s at T0%+v, want at once (T0+2s)", c.what, c.at.Sub(t0))
		}
	}
	sort.Strings(healed)
	if !slices.Equal(healed, []string{"enable mariadb", "resume worker-1"}) {
		t.Errorf("after the interruption: %q, want the pause and the proxy ended and nothing else", healed)
	}
	if !events[2].Began.IsZero() {
		t.Errorf("the kill planned after the interruption began at %v", events[2].Began)
	}
	if !events[0].Ended.Equal(t0.Add(2*time.Second)) || !events[1].Ended.Equal(t0.Add(2*time.Second)) {
		t.Errorf("ended at %v and %v, want T0+2s", events[0].Ended, events[1].Ended)
	}
}

// A failed action is recorded against its fault, and the fault is still
// ended (a pause that failed is resumed anyway: harmless, and safe when
// the signal did land).
func TestRunRecordsFailures(t *testing.T) {
	s := Schedule{Name: "t", Faults: []Fault{{At: 0, Kind: Pause, Process: "worker-1", For: Duration(time.Second)}}}
	clock, target, done := runFake(context.Background(), s, map[string]error{"pause worker-1": errors.New("not running")})
	clock.Set(t0)
	<-target.calls
	clock.Set(t0.Add(time.Second))
	if c := <-target.calls; c.what != "resume worker-1" {
		t.Fatalf("%q, want the resume", c.what)
	}
	events := <-done
	err := Errors(events)
	if err == nil || err.Error() != "fault 1 (pause worker-1 at +0s for 1s): inject: not running" {
		t.Errorf("Errors = %v", err)
	}
}

func TestOverlap(t *testing.T) {
	s := func(d time.Duration) time.Time { return t0.Add(d) }
	events := []Event{
		{Began: s(1 * time.Second), Ended: s(4 * time.Second)},
		{Began: s(3 * time.Second), Ended: s(15 * time.Second)},
		{Began: s(20 * time.Second), Ended: s(21 * time.Second)},
		{Began: s(4 * time.Second), Ended: s(4 * time.Second)}, // instant, at the first's end
		{}, // never began
	}
	for _, tc := range []struct {
		event     int
		recovered time.Duration // 0: measured until its end
		others    []int
		until     time.Duration
	}{
		{0, 0, []int{1, 3}, 15 * time.Second},
		{1, 0, []int{0, 3}, 4 * time.Second},
		{2, 0, nil, 0},
		{3, 0, []int{0, 1}, 15 * time.Second},
		{4, 0, nil, 0},
		// The first recovered only at 20s: the third began meanwhile.
		{0, 20 * time.Second, []int{1, 2, 3}, 21 * time.Second},
	} {
		var rec time.Time
		if tc.recovered > 0 {
			rec = s(tc.recovered)
		}
		others, until := Overlap(events, tc.event, rec)
		var u time.Duration
		if !until.IsZero() {
			u = until.Sub(t0)
		}
		if !slices.Equal(others, tc.others) || u != tc.until {
			t.Errorf("Overlap(%d, recovered T0+%s) = %v until T0+%s, want %v until T0+%s", tc.event, tc.recovered, others, u, tc.others, tc.until)
		}
	}
}
