package kafka

// A partition's offsets as a consumer handles it: what was fetched, what is
// handled (in any order, by several workers), and the offset that can be
// committed (everything below it handled), so a crash redelivers only what
// was not handled.

import (
	"sync"

	kafkago "github.com/segmentio/kafka-go"
)

// partState tracks one assigned partition: which fetched records are
// settled, so only a prefix of settled records is ever committed.
type partState struct {
	topic     string
	partition int
	start     int64 // the assignment's offset: absolute, or kafka.FirstOffset

	mu        sync.Mutex
	pending   []*entry // fetched, in offset order, from the first unsettled
	next      int64    // offset to commit next; -1 when none
	committed int64    // last committed offset; -1 when unknown
	hwm       int64    // high watermark at the last fetch; -1 when none
}

type entry struct {
	offset int64
	done   bool
}

func newPartState(topic string, a kafkago.PartitionAssignment) *partState {
	p := &partState{topic: topic, partition: a.ID, start: a.Offset, next: -1, committed: -1, hwm: -1}
	if a.Offset >= 0 {
		p.committed = a.Offset
	}
	return p
}

func (p *partState) fetched(m kafkago.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hwm = m.HighWaterMark
	if p.committed < 0 {
		p.committed = m.Offset // nothing committed yet: lag counts from here
	}
}

func (p *partState) add(offset int64) *entry {
	e := &entry{offset: offset}
	p.mu.Lock()
	p.pending = append(p.pending, e)
	p.mu.Unlock()
	return e
}

// done settles e and advances the commit point past every settled record
// at the head.
func (p *partState) done(e *entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.done = true
	i := 0
	for i < len(p.pending) && p.pending[i].done {
		p.next = p.pending[i].offset + 1
		i++
	}
	p.pending = p.pending[i:]
}

// handledThrough marks every record up to offset settled (the forwarder
// settles in order).
func (p *partState) handledThrough(offset int64) {
	p.mu.Lock()
	p.next = offset + 1
	p.mu.Unlock()
}

func (p *partState) toCommit() (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next, p.next >= 0 && p.next > p.committed
}

func (p *partState) committedThrough(off int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.committed = max(p.committed, off)
}

func (p *partState) lag() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hwm < 0 || p.committed < 0 {
		return 0
	}
	return max(p.hwm-p.committed, 0)
}
