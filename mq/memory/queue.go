package memory

import (
	"time"

	"github.com/flashsale/seckill/mq"
)

// entry is one message waiting in a group's ready queue. The message is an
// immutable snapshot shared by every group and every redelivery; handlers get
// a fresh copy (see deliverable).
type entry struct {
	msg     *mq.Message
	attempt int // deliveries so far + 1: the Attempt of the next delivery
	// failures counts the failed deliveries that were not marked
	// mq.Transient: what MaxAttempts bounds.
	failures int
}

// shrinkAbove is the buffer size above which an emptied ring gives its
// memory back: a flash sale spikes to tens of thousands of queued messages
// for a few seconds, then idles for hours.
const shrinkAbove = 1024

// ring is a FIFO of entries on a power-of-two circular buffer. Unlike a
// slice used as a queue (q = q[1:]) it reuses its memory, so a steady stream
// of publishes allocates nothing for the queue itself.
type ring struct {
	buf  []entry
	head int
	n    int
}

func (r *ring) len() int { return r.n }

func (r *ring) push(e entry) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = e
	r.n++
}

// pop removes and returns the oldest entry; the ring must not be empty.
func (r *ring) pop() entry {
	e := r.buf[r.head]
	r.buf[r.head] = entry{} // let the message be collected once handled
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	if r.n == 0 {
		r.head = 0
		if len(r.buf) > shrinkAbove {
			r.buf = nil
		}
	}
	return e
}

func (r *ring) grow() {
	buf := make([]entry, max(16, 2*len(r.buf)))
	for i := range r.n {
		buf[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = buf, 0
}

// timer is a message waiting in the broker's timer heap: either a
// future-dated publish (group == nil: fanned out to topic when due, as if
// published then) or a retry of one group's message (group != nil).
type timer struct {
	due      time.Time
	seq      uint64 // insertion order: equal due times leave in publish order
	msg      *mq.Message
	attempt  int
	failures int // of the retry; see entry
	group    *group
	topic    string
}

// timerHeap is a binary min-heap ordered by (due, seq). It is written out
// rather than built on container/heap so that pushing a timer does not box
// it into an interface (one allocation per message).
type timerHeap []timer

func (h timerHeap) less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	h.up(len(*h) - 1)
}

// pop removes and returns the earliest timer; the heap must not be empty.
func (h *timerHeap) pop() timer {
	old := *h
	n := len(old) - 1
	old[0], old[n] = old[n], old[0]
	t := old[n]
	old[n] = timer{}
	*h = old[:n]
	h.down(0)
	return t
}

// init restores the heap order after arbitrary edits.
func (h timerHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (h timerHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			c = r
		}
		if !h.less(c, i) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
