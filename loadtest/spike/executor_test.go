package spike

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestExecutorOpenModel(t *testing.T) {
	x := newExecutor(context.Background(), 100)
	start := time.Now().Add(20 * time.Millisecond)
	var mu sync.Mutex
	var order []int
	var slowDone atomic.Bool
	// A slow action does not hold back the next one (open model).
	x.at(start, func(time.Time) {
		time.Sleep(150 * time.Millisecond)
		slowDone.Store(true)
	})
	for i := 3; i >= 1; i-- {
		x.at(start.Add(time.Duration(i)*10*time.Millisecond), func(intended time.Time) {
			if slowDone.Load() {
				t.Errorf("action %d waited for the slow action", i)
			}
			if late := time.Since(intended); late < 0 || late > 100*time.Millisecond {
				t.Errorf("action %d ran %s after its time", i, late)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			if i == 3 { // a follow-up scheduled from inside an action
				x.at(time.Now().Add(5*time.Millisecond), func(time.Time) {
					mu.Lock()
					order = append(order, 4)
					mu.Unlock()
				})
			}
		})
	}
	x.wait()
	if !slowDone.Load() || len(order) != 4 || order[0] != 1 || order[1] != 2 || order[2] != 3 || order[3] != 4 {
		t.Fatalf("ran %v (slow done %v); want 1, 2, 3 on schedule, then the follow-up 4, and wait to cover all", order, slowDone.Load())
	}
}

func TestExecutorCapsInFlight(t *testing.T) {
	x := newExecutor(context.Background(), 2)
	var cur, peak atomic.Int64
	now := time.Now()
	for range 10 {
		x.at(now, func(time.Time) {
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			cur.Add(-1)
		})
	}
	x.wait()
	if peak.Load() != 2 {
		t.Fatalf("peak in flight %d, want the cap 2", peak.Load())
	}
}

func TestExecutorCancelDropsTheRest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	x := newExecutor(ctx, 10)
	var ran atomic.Int64
	for i := range 5 {
		x.at(time.Now().Add(time.Duration(i)*time.Hour), func(time.Time) { ran.Add(1) })
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	done := make(chan struct{})
	go func() { x.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return after the context ended")
	}
	if ran.Load() != 1 {
		t.Fatalf("%d actions ran; want only the one due before the cancel", ran.Load())
	}
}
