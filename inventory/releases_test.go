package inventory

import (
	"context"
	"testing"
	"time"
)

// TestSubscribeReleases: a release and a reap are announced once each to
// every subscriber of the same prefix; a no-op release is not announced.
func TestSubscribeReleases(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		got := make(chan int64, 10)
		if err := e.s.SubscribeReleases(ctx, func(id int64) { got <- id }); err != nil {
			t.Fatal(err)
		}
		id := e.load(t, 3)
		now := t0.Add(time.Minute)
		e.mustReserve(t, id, "u1", "", "o1", now)
		e.mustReserve(t, id, "u2", "", "o2", now)

		if r, err := e.s.Release(ctx, id, "o1"); err != nil || r != Released {
			t.Fatalf("Release = %v, %v", r, err)
		}
		expectRelease(t, got, id)
		if r, _ := e.s.Release(ctx, id, "o1"); r == Released {
			t.Fatal("second Release released")
		}
		if ids, err := e.s.ReapPending(ctx, id, now.Add(time.Second), 10); err != nil || len(ids) != 1 {
			t.Fatalf("ReapPending = %v, %v", ids, err)
		}
		expectRelease(t, got, id)
		select {
		case extra := <-got:
			t.Errorf("announcement %d for a release that returned nothing", extra)
		case <-time.After(100 * time.Millisecond):
		}
	})
}

func expectRelease(t *testing.T, got <-chan int64, want int64) {
	t.Helper()
	select {
	case id := <-got:
		if id != want {
			t.Errorf("announced activity %d, want %d", id, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no announcement for activity %d within 5s", want)
	}
}
