package memory

// Delayed delivery: a message due later (DeliverAt) or a redelivery after
// a backoff waits on one timer heap; a goroutine fires each when due.

import "time"

// schedule puts t in the timer heap and wakes the timer goroutine if t is
// now the earliest. Callers hold b.mu.
func (b *Broker) schedule(t timer) {
	t.seq = b.seq
	b.seq++
	b.timers.push(t)
	if b.timers[0].seq == t.seq {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// runTimers is the single timer goroutine: it sleeps until the earliest
// timer is due and moves every due timer, in due order, to its queue.
func (b *Broker) runTimers() {
	defer close(b.timerDone)
	clock := time.NewTimer(time.Hour)
	clock.Stop()
	defer clock.Stop()
	for {
		b.mu.Lock()
		now := time.Now()
		for len(b.timers) > 0 && !b.timers[0].due.After(now) {
			b.fire(b.timers.pop())
		}
		next := time.Duration(-1)
		if len(b.timers) > 0 {
			next = b.timers[0].due.Sub(now)
		}
		b.mu.Unlock()
		if next >= 0 {
			clock.Reset(next)
		} else {
			clock.Stop()
		}
		select {
		case <-clock.C:
		case <-b.wake:
		case <-b.stopTimer:
			return
		}
	}
}

// fire moves a due timer to its queue. Callers hold b.mu.
func (b *Broker) fire(t timer) {
	if t.group != nil {
		t.group.ready.push(entry{msg: t.msg, attempt: t.attempt, failures: t.failures})
		t.group.wait.Signal()
		return
	}
	b.delayed--
	b.topic(t.topic).enqueue(t.msg)
}
