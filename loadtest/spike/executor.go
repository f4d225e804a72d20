package spike

import (
	"container/heap"
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// executor runs actions at their scheduled times: the open model. An
// action leaves when its time comes, whether or not earlier ones have been
// answered, so a slow server meets a growing crowd (as in a real sale)
// instead of a polite generator that waits for it. Actions may schedule
// follow-ups (a retry after backoff, a payment).
//
// The number of actions in flight is capped (maxInFlight) so that a server
// that stops answering cannot make the generator exhaust memory or file
// descriptors; when the cap is reached, sends leave late, and since
// latency is measured from the scheduled time, the lateness is counted.
type executor struct {
	ctx      context.Context
	sem      chan struct{}
	inflight atomic.Int64

	mu    sync.Mutex
	queue actionHeap // capped actions
	free  actionHeap // actions outside the cap
	seq   uint64
	wake  chan struct{}

	pending sync.WaitGroup
	stopped chan struct{}
}

// action is called with the time it was scheduled for.
type action struct {
	at   time.Time
	seq  uint64 // FIFO among equal times
	free bool   // not subject to the in-flight cap
	fn   func(intended time.Time)
}

type actionHeap []action

func (h actionHeap) Len() int { return len(h) }
func (h actionHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h actionHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *actionHeap) Push(x any)   { *h = append(*h, x.(action)) }
func (h *actionHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = action{}
	*h = old[:len(old)-1]
	return a
}

func newExecutor(ctx context.Context, maxInFlight int) *executor {
	x := &executor{ctx: ctx, sem: make(chan struct{}, maxInFlight), wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go x.loop()
	return x
}

// at schedules fn at t. Safe to call from inside an action.
func (x *executor) at(t time.Time, fn func(intended time.Time)) { x.schedule(t, false, fn) }

// atFree schedules fn at t outside the in-flight cap: for the few actions
// of winners (payments, order reads), which a real buyer sends from their
// own connection and which must not queue behind strangers' clicks.
func (x *executor) atFree(t time.Time, fn func(intended time.Time)) { x.schedule(t, true, fn) }

func (x *executor) schedule(t time.Time, free bool, fn func(intended time.Time)) {
	x.pending.Add(1)
	x.mu.Lock()
	x.seq++
	h := &x.queue
	if free {
		h = &x.free
	}
	heap.Push(h, action{at: t, seq: x.seq, free: free, fn: fn})
	x.mu.Unlock()
	x.signal()
}

// InFlight is how many actions are running.
func (x *executor) InFlight() int64 { return x.inflight.Load() }

// wait returns once every scheduled action (and every follow-up) ran, or
// was dropped because the context ended.
func (x *executor) wait() { x.pending.Wait() }

func (x *executor) loop() {
	defer close(x.stopped)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if x.ctx.Err() != nil {
			x.dropAll()
			return
		}
		now := time.Now()
		var next time.Time // the earliest action that could run, zero if none
		x.mu.Lock()
		var run []action
		for _, h := range []*actionHeap{&x.free, &x.queue} {
		due:
			for h.Len() > 0 {
				a := (*h)[0]
				if a.at.After(now) {
					if next.IsZero() || a.at.Before(next) {
						next = a.at
					}
					break
				}
				if !a.free {
					// Capped: run only while a slot is free; otherwise
					// wait for one (a release wakes the loop).
					select {
					case x.sem <- struct{}{}:
					default:
						break due
					}
				}
				heap.Pop(h)
				run = append(run, a)
			}
		}
		x.mu.Unlock()
		for _, a := range run {
			x.inflight.Add(1)
			go func() {
				defer func() {
					if !a.free {
						<-x.sem
						x.signal()
					}
					x.inflight.Add(-1)
					x.pending.Done()
				}()
				if x.ctx.Err() == nil {
					a.fn(a.at)
				}
			}()
		}
		if len(run) > 0 {
			continue
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = time.Until(next)
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-x.wake:
			if !timer.Stop() {
				<-timer.C
			}
		case <-x.ctx.Done():
		}
	}
}

func (x *executor) signal() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// dropAll discards what is still scheduled (the run was interrupted) and
// keeps discarding what running actions schedule until they finish.
func (x *executor) dropAll() {
	go func() {
		for {
			x.mu.Lock()
			n := len(x.queue) + len(x.free)
			x.queue, x.free = nil, nil
			x.mu.Unlock()
			for range n {
				x.pending.Done()
			}
			if x.inflight.Load() == 0 {
				x.mu.Lock()
				empty := len(x.queue)+len(x.free) == 0
				x.mu.Unlock()
				if empty {
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
}
