package sale

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedLister answers Holders with users once its gate opens.
type gatedLister struct {
	gate  chan struct{}
	users map[string]string
	mu    sync.Mutex
	calls int
}

func (g *gatedLister) Holders(context.Context, int64, int) (map[string]string, bool, error) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	<-g.gate
	return g.users, true, nil
}

func (g *gatedLister) count() int { g.mu.Lock(); defer g.mu.Unlock(); return g.calls }

func waitFetchDone(t *testing.T, f *soldOutFlags, id int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); f.state(id).fetching.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("the holder fetch never finished")
		}
		time.Sleep(time.Millisecond)
	}
}

// A snapshot whose read was in flight when the flag was cleared (a release
// announced meanwhile: the holders may have changed) is never used, even
// once the flag is set again; the next sold-out answer reads a fresh one.
// Concurrent refreshes read once.
func TestHolderSnapshotFetchedAcrossAClearIsNeverUsed(t *testing.T) {
	const id = 7
	f := &soldOutFlags{ttl: time.Hour}
	now := time.Now()
	hl := &gatedLister{gate: make(chan struct{}), users: map[string]string{"holder": "o1"}}
	f.set(id, now)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			f.refreshHolders(id, f.generation(id), now, false, hl, time.Second, time.Now, func(err error) { t.Error(err) })
		})
	}
	wg.Wait()
	f.clear(id)
	f.set(id, now) // sold out again before the stale read returns
	close(hl.gate)
	waitFetchDone(t, f, id)
	if n := hl.count(); n != 1 {
		t.Fatalf("%d concurrent refreshes read the holders %d times, want once", 8, n)
	}
	if f.shouldRejectNonHolder(id, "late-buyer", time.Now()) {
		t.Fatal("a snapshot read across a clear answered a buy")
	}

	f.refreshHolders(id, f.generation(id), time.Now(), false, hl, time.Second, time.Now, func(err error) { t.Error(err) })
	waitFetchDone(t, f, id)
	if !f.shouldRejectNonHolder(id, "late-buyer", time.Now()) {
		t.Fatal("a fresh snapshot does not answer a non-holder")
	}
	if f.shouldRejectNonHolder(id, "holder", time.Now()) {
		t.Fatal("a holder was answered from the snapshot; only Redis may answer it")
	}
	// A SoldOut answer without a request_id refreshes a snapshot already
	// held, but never starts the first one.
	f.clear(id)
	f.set(id, time.Now())
	f.refreshHolders(id, f.generation(id), time.Now(), true, hl, time.Second, time.Now, func(err error) { t.Error(err) })
	waitFetchDone(t, f, id)
	if n := hl.count(); n != 2 {
		t.Fatalf("holders read %d times, want 2: no snapshot for a sale nobody asked with a request_id", n)
	}
}

// The snapshot answers for ttl after its read, not longer, whatever extends
// the flag: a release whose announcement was lost costs a holder's retry at
// most ttl of 410s.
func TestHolderSnapshotExpiresAfterTTL(t *testing.T) {
	const id = 8
	f := &soldOutFlags{ttl: time.Hour}
	clock := time.Now()
	hl := &gatedLister{gate: make(chan struct{}), users: map[string]string{}}
	close(hl.gate)
	f.set(id, clock)
	f.refreshHolders(id, f.generation(id), clock, false, hl, time.Second, func() time.Time { return clock }, func(err error) { t.Error(err) })
	waitFetchDone(t, f, id)
	if !f.shouldRejectNonHolder(id, "u", clock.Add(time.Hour-time.Millisecond)) {
		t.Fatal("snapshot not used within its ttl")
	}
	f.set(id, clock.Add(30*time.Minute)) // the flag holds on, the snapshot does not
	if f.shouldRejectNonHolder(id, "u", clock.Add(time.Hour)) {
		t.Fatal("snapshot used past its ttl")
	}
}

// When the flag expires under a crowd of request_id buys, exactly one of
// them probes Redis, as for buys without a request_id; the others keep the
// local answer while the snapshot is young enough.
func TestNonHolderBuysSendOneProbeWhenTheFlagExpires(t *testing.T) {
	const id = 9
	f := &soldOutFlags{ttl: time.Second}
	clock := time.Now()
	hl := &gatedLister{gate: make(chan struct{}), users: map[string]string{"holder": "o1"}}
	close(hl.gate)
	f.set(id, clock.Add(-500*time.Millisecond)) // the flag expires at clock+500ms
	f.refreshHolders(id, f.generation(id), clock, false, hl, time.Second, func() time.Time { return clock }, func(err error) { t.Error(err) })
	waitFetchDone(t, f, id) // the snapshot answers until clock+1s

	at := clock.Add(600 * time.Millisecond)
	var probes atomic.Int32
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			if !f.shouldRejectNonHolder(id, fmt.Sprint("late-", i), at) {
				probes.Add(1)
			}
		})
	}
	wg.Wait()
	if n := probes.Load(); n != 1 {
		t.Fatalf("%d of 32 non-holders went to Redis when the flag expired, want exactly one probe", n)
	}
	if f.shouldRejectNonHolder(id, "holder", at) {
		t.Fatal("a holder was answered from memory")
	}
	if f.shouldRejectNonHolder(id, "late", clock.Add(time.Second)) {
		t.Fatal("an expired snapshot answered a buy")
	}
}

// A snapshot is due for its next read once half its ttl old, not before,
// and not while a read runs.
func TestHolderSnapshotAgesAtHalfItsTTL(t *testing.T) {
	const id = 10
	f := &soldOutFlags{ttl: 10 * time.Second}
	clock := time.Now()
	hl := &gatedLister{gate: make(chan struct{}), users: map[string]string{}}
	if f.holdersAging(id, clock) {
		t.Fatal("aging without any snapshot")
	}
	f.set(id, clock)
	f.refreshHolders(id, f.generation(id), clock, false, hl, time.Second, func() time.Time { return clock }, func(err error) { t.Error(err) })
	if f.holdersAging(id, clock.Add(time.Hour)) {
		t.Fatal("aging while the first read runs")
	}
	close(hl.gate)
	waitFetchDone(t, f, id)
	for _, c := range []struct {
		after time.Duration
		want  bool
	}{{0, false}, {5*time.Second - time.Nanosecond, false}, {5 * time.Second, true}, {9 * time.Second, true}} {
		if got := f.holdersAging(id, clock.Add(c.after)); got != c.want {
			t.Errorf("aging %s after the read = %v, want %v", c.after, got, c.want)
		}
	}
	f.clear(id)
	if f.holdersAging(id, clock.Add(6*time.Second)) {
		t.Fatal("a cleared snapshot is aging")
	}
}

// set sets id's flag as a SoldOut answer does when no clear interleaves.
func (f *soldOutFlags) set(id int64, now time.Time) { f.setSince(id, now, f.generation(id)) }
