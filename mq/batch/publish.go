package batch

// This file is one idea, the Publisher's group commit: the per-topic queue
// of waiting messages, the batches it closes, the send slots, and how each
// caller learns its envelope's fate (its cancellation rules included).
// Split, its state machine would be read across files. The delayed messages
// that Config.DelayBucket groups take no part in it: see delay.go.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/seckill/mq"
)

// Defaults of Config.
const (
	// DefaultMaxBatch is the most messages one envelope carries. An order
	// message is about 200 bytes, so a full envelope is some 30 KB: one
	// write and one fsync for 128 buyers.
	DefaultMaxBatch = 128
	// DefaultMaxWait is how long the first message of a batch waits for
	// company when it could be sent at once: none. Batches form while
	// the envelope before them is being stored (see Publisher), so an
	// idle topic adds no latency and a busy one fills its envelopes by
	// itself.
	DefaultMaxWait time.Duration = 0
	// DefaultMaxBytes bounds an envelope's payload: half of the 1 MB that
	// both NATS (max_payload) and Kafka (message.max.bytes) accept by
	// default, leaving room for headers.
	DefaultMaxBytes = 512 << 10
	// DefaultMaxInFlight is how many envelopes of one topic are being
	// stored at once. One is enough to keep the store busy: the next
	// envelope fills while the current one is written.
	DefaultMaxInFlight = 1
)

// Config bounds the envelopes of a Publisher. The zero value of each field
// selects its default.
type Config struct {
	// MaxBatch is the most messages one envelope carries; a batch that
	// reaches it is sent as soon as a send slot is free. 1 turns batching
	// off: Publish goes straight to the wrapped publisher. Default
	// DefaultMaxBatch.
	MaxBatch int
	// MaxWait is the longest the first message of a batch waits for more
	// messages when a send slot is free. Zero selects DefaultMaxWait (no
	// wait); a negative value also means no wait. A positive MaxWait
	// trades that much latency on a quiet topic for fuller envelopes.
	MaxWait time.Duration
	// MaxBytes bounds the payload of an envelope. A message whose own
	// record exceeds it is published alone, unbatched. Default
	// DefaultMaxBytes.
	MaxBytes int
	// MaxInFlight is how many envelopes of one topic may be in the
	// wrapped publisher's Publish at once. Default DefaultMaxInFlight.
	MaxInFlight int
	// DelayBucket groups the delayed messages of one Publish call
	// (DeliverAt in the future) whose times fall in the same bucket of
	// this length into one envelope due at the latest of their times:
	// never early, at most DelayBucket late. Zero (the default) publishes
	// each delayed message alone, on time to the backend's precision.
	// A relay that publishes a round of pay deadlines sets it: one stored
	// schedule, and one fsync under sync always, per second of deadlines
	// rather than per order.
	DelayBucket time.Duration

	// envelopeSingles sends a batch of one message as an envelope too,
	// so that tests can run every path of a message through envelopes.
	envelopeSingles bool
}

func (c Config) withDefaults() Config {
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxWait < 0 {
		c.MaxWait = 0
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	return c
}

// Publisher is an mq.Publisher that group-commits: concurrent Publish calls
// to one topic share one message of the wrapped publisher, an envelope, so
// that a backend that writes and syncs each message (JetStream with
// sync_interval always: one fsync per message) does it once per envelope.
// Subscribe with a Subscriber to get the messages back one by one.
//
// # When an envelope is sent
//
// Each topic has at most MaxInFlight envelopes in the wrapped Publish at
// once. A message joins the topic's open batch; the batch is sent when a
// slot is free and it is full (MaxBatch messages or MaxBytes) or its first
// message has waited MaxWait (by default not at all). So a lone message is
// sent at once (by its caller, as it is, when the topic is idle), and under
// load the messages that arrive while an envelope is being stored make up
// the next one: the envelope grows with the load and with the store's
// latency, up to MaxBatch. A batch whose callers all left but one goes out
// as that plain message, unwrapped; so does a batch of one.
//
// A Publish returns nil only once the wrapped publisher accepted every
// envelope carrying one of its messages (durably, for a durable backend):
// the answer of every caller in an envelope is the envelope's. Messages
// with a DeliverAt in the future, and messages too big for an envelope,
// are published unbatched, one wrapped message each.
//
// # Cancellation
//
// A caller whose context ends while its messages still wait for their
// envelope returns ctx.Err() and they are never sent. Once sent, a message
// may be stored whatever the caller does; a caller whose context ends
// before the answer gets an error wrapping ctx.Err() that says so, as a
// backend's own Publish does. An envelope's send is cancelled only when
// every caller with a message in it has gone.
//
// # Message fields
//
// Publish assigns an ID to each message without one (writing it into the
// Message, as the natsjs backend does) so that every message keeps its own
// ID inside an envelope; it then snapshots ID, Key, Headers and Payload, so
// the caller may reuse the Message once Publish returned. The headers
// HeaderBatch and HeaderAttempts are this package's own: a message that
// carries one is refused. A backend that drops a message published twice
// with one ID (natsjs, within two minutes) sees the envelope's own ID, not
// its messages': a retried Publish of a message sent in an envelope may
// store it twice, which at-least-once consumers absorb anyway.
//
// Messages of one key that share an envelope are handled in publish order
// (Subscriber runs them one after another). Envelopes are keyed by their
// messages' common key, or not at all when they have several, so on a
// partitioned backend messages of one key in different envelopes may take
// different partitions: use MaxBatch 1 for a topic whose consumers need
// per-key order across publishes. (The pipeline's topics do not: orders
// are one per user and activity, and every handler is idempotent.)
type Publisher struct {
	inner    mq.Publisher
	cfg      Config
	idPrefix string
	nextID   atomic.Uint64

	mu      sync.Mutex
	topics  map[string]*queue
	closed  bool
	batches sync.WaitGroup // batches created and not yet sent, lone sends in flight

	closeOnce sync.Once
	closeErr  error
}

// NewPublisher returns a Publisher sending through p. Close closes p.
func NewPublisher(p mq.Publisher, cfg Config) *Publisher {
	var idb [6]byte
	_, _ = rand.Read(idb[:]) // crypto/rand.Read never fails (Go 1.24+)
	return &Publisher{
		inner:    p,
		cfg:      cfg.withDefaults(),
		idPrefix: "b" + hex.EncodeToString(idb[:]) + "-",
		topics:   make(map[string]*queue),
	}
}

// Config returns the bounds in use, defaults filled in.
func (p *Publisher) Config() Config { return p.cfg }

// queue is one topic's batches: the open one (last) and those waiting for a
// send slot.
type queue struct {
	topic    string
	pending  []*batch // oldest first; all but the last are ready
	inflight int      // batches in the wrapped Publish
}

type batch struct {
	q       *queue
	entries []*entry
	size    int  // bytes of the records
	ready   bool // full, or its first message waited MaxWait
	timer   *time.Timer

	ctx    context.Context // the send's; cancelled once no caller waits
	cancel context.CancelFunc
	// waiting counts the callers still waiting for the send's answer,
	// plus one held by the sender while it collects them.
	waiting atomic.Int32
}

// States of an entry. waiting -> sent -> answered is the normal path; the
// caller moves waiting or sent to abandoned when its context ends, and
// whoever loses the compare-and-swap knows the other side owns the entry.
const (
	entryWaiting int32 = iota
	entrySent
	entryAbandoned
	entryAnswered
)

// entry is one message waiting for its envelope.
type entry struct {
	record []byte // the message's snapshot, encoded by appendRecord
	key    string
	batch  *batch // set under Publisher.mu before the caller waits
	state  atomic.Int32
	done   chan struct{} // closed once answered
	err    error
}

// Publish sends msgs to topic, the immediate ones in envelopes shared with
// concurrent callers (see Publisher).
func (p *Publisher) Publish(ctx context.Context, topic string, msgs ...*mq.Message) error {
	if p.cfg.MaxBatch <= 1 {
		return p.inner.Publish(ctx, topic, msgs...)
	}
	if err := p.check(topic, msgs); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("batch: publish to %s: %w (nothing was sent)", topic, err)
	}
	if len(msgs) == 1 {
		if m := msgs[0]; m.DeliverAt.IsZero() && p.claimIdle(topic) {
			// An idle topic: nothing to wait for, nobody to share with.
			if m.ID == "" {
				m.ID = p.newID()
			}
			err := p.inner.Publish(ctx, topic, m)
			p.releaseIdle(topic)
			return err
		}
	}
	var (
		now     time.Time // read only for dated messages: the clock is not free
		direct  []*mq.Message
		one     [1]*entry // the gateway publishes one message per call
		entries = one[:0]
	)
	for _, m := range msgs {
		if m.ID == "" {
			m.ID = p.newID()
		}
		if !m.DeliverAt.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			if m.DeliverAt.After(now) {
				direct = append(direct, m)
				continue
			}
		}
		size := recordSize(m)
		if size+envelopeOverhead(1) > p.cfg.MaxBytes {
			direct = append(direct, m)
			continue
		}
		entries = append(entries, &entry{
			record: appendRecord(make([]byte, 0, size), m),
			key:    m.Key,
			done:   make(chan struct{}),
		})
	}
	if err := p.enqueue(topic, entries); err != nil {
		return err
	}
	var errs []error
	if p.cfg.DelayBucket > 0 && len(direct) > 1 {
		direct = p.bucketDelayed(topic, direct)
	}
	if len(direct) > 0 {
		errs = appendErr(errs, p.inner.Publish(ctx, topic, direct...))
	}
	for i, e := range entries {
		select {
		case <-e.done:
			errs = appendErr(errs, e.err)
		case <-ctx.Done():
			return p.abandon(ctx, topic, entries[i:], i > 0 || len(direct) > 0)
		}
	}
	return errors.Join(errs...)
}

// check refuses what no envelope may carry, before anything is sent.
func (p *Publisher) check(topic string, msgs []*mq.Message) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return fmt.Errorf("batch: publish to %s: %w", topic, mq.ErrClosed)
	}
	if topic == "" {
		return errors.New("batch: publish: empty topic name")
	}
	for i, m := range msgs {
		if m == nil {
			return fmt.Errorf("batch: publish to %s: message %d of %d is nil", topic, i+1, len(msgs))
		}
		if h, ok := reservedHeader(m.Headers); ok {
			return fmt.Errorf("batch: publish to %s: message %q carries header %s, which package batch reserves", topic, m.ID, h)
		}
	}
	return nil
}

// appendErr adds err to errs unless it is nil or already there: every
// message of an envelope gets the envelope's error, which says it once.
func appendErr(errs []error, err error) []error {
	if err == nil {
		return errs
	}
	for _, e := range errs {
		if e == err {
			return errs
		}
	}
	return append(errs, err)
}

// abandon gives up waiting for entries when the caller's context ended:
// those still waiting are never sent; for those already sent nobody will
// know the answer. sentBefore says whether messages of this call were
// already sent (answered, or published unbatched).
func (p *Publisher) abandon(ctx context.Context, topic string, entries []*entry, sentBefore bool) error {
	inFlight := sentBefore
	for _, e := range entries {
		if e.state.CompareAndSwap(entryWaiting, entryAbandoned) {
			continue
		}
		if e.state.CompareAndSwap(entrySent, entryAbandoned) {
			inFlight = true
			if e.batch.waiting.Add(-1) == 0 {
				e.batch.cancel()
			}
			continue
		}
		inFlight = true // answered meanwhile
	}
	if !inFlight {
		return fmt.Errorf("batch: publish to %s: %w (nothing was sent)", topic, ctx.Err())
	}
	return fmt.Errorf("batch: publish to %s: %w (some messages may have been stored)", topic, ctx.Err())
}

func (p *Publisher) newID() string {
	return p.idPrefix + strconv.FormatUint(p.nextID.Add(1), 10)
}

// enqueue adds entries to the open batches of topic and sends what can be
// sent.
func (p *Publisher) enqueue(topic string, entries []*entry) error {
	if len(entries) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("batch: publish to %s: %w", topic, mq.ErrClosed)
	}
	q := p.topics[topic]
	if q == nil {
		q = &queue{topic: topic}
		p.topics[topic] = q
	}
	for _, e := range entries {
		var b *batch
		if n := len(q.pending); n > 0 {
			b = q.pending[n-1]
		}
		if b == nil || len(b.entries) >= p.cfg.MaxBatch ||
			b.size+len(e.record)+envelopeOverhead(len(b.entries)+1) > p.cfg.MaxBytes {
			if b != nil {
				b.ready = true
			}
			b = p.newBatch(q)
		}
		b.entries = append(b.entries, e)
		b.size += len(e.record)
		e.batch = b
		if len(b.entries) >= p.cfg.MaxBatch {
			b.ready = true
		}
	}
	p.dispatch(q)
	return nil
}

// claimIdle takes a send slot of topic for a lone message when no batch is
// waiting and no MaxWait asks messages to wait for company, so that a quiet
// topic costs what the wrapped publisher costs: the caller publishes its
// message itself, with no encoding and no handoff. Messages that arrive
// meanwhile batch up behind it as behind an envelope.
func (p *Publisher) claimIdle(topic string) bool {
	if p.cfg.MaxWait > 0 || p.cfg.envelopeSingles {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false // enqueue reports it
	}
	q := p.topics[topic]
	if q == nil {
		q = &queue{topic: topic}
		p.topics[topic] = q
	}
	if len(q.pending) > 0 || q.inflight >= p.cfg.MaxInFlight {
		return false
	}
	q.inflight++
	p.batches.Add(1) // Close waits for it like for a batch
	return true
}

// releaseIdle gives back the slot claimIdle took and sends what queued
// behind it.
func (p *Publisher) releaseIdle(topic string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.topics[topic]
	q.inflight--
	p.dispatch(q)
	p.batches.Done()
}

// newBatch opens a batch on q. Locked.
func (p *Publisher) newBatch(q *queue) *batch {
	b := &batch{q: q, entries: make([]*entry, 0, min(p.cfg.MaxBatch, 16))}
	if p.cfg.MaxWait <= 0 {
		b.ready = true
	} else {
		b.timer = time.AfterFunc(p.cfg.MaxWait, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if !b.ready {
				b.ready = true
				p.dispatch(b.q)
			}
		})
	}
	q.pending = append(q.pending, b)
	p.batches.Add(1)
	return b
}

// dispatch sends q's ready batches while it has free slots. Locked.
func (p *Publisher) dispatch(q *queue) {
	for q.inflight < p.cfg.MaxInFlight && len(q.pending) > 0 && q.pending[0].ready {
		b := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		q.inflight++
		if b.timer != nil {
			b.timer.Stop()
		}
		go p.send(b)
	}
	if len(q.pending) == 0 && q.inflight == 0 {
		delete(p.topics, q.topic) // idle: a topic costs nothing until used again
	}
}

// send publishes the entries of b still awaited, as one envelope (or one
// plain message), and answers their callers.
func (p *Publisher) send(b *batch) {
	defer p.batches.Done()
	b.ctx, b.cancel = context.WithCancel(context.Background())
	defer b.cancel()
	b.waiting.Store(1)
	live := make([]*entry, 0, len(b.entries))
	for _, e := range b.entries {
		b.waiting.Add(1)
		if e.state.CompareAndSwap(entryWaiting, entrySent) {
			live = append(live, e)
		} else {
			b.waiting.Add(-1)
		}
	}
	var err error
	if b.waiting.Add(-1) > 0 { // else every caller left: nothing to send
		err = p.publish(b.ctx, b.q.topic, live)
	}

	p.mu.Lock()
	b.q.inflight--
	p.dispatch(b.q)
	p.mu.Unlock()

	for _, e := range live {
		e.err = err
		e.state.CompareAndSwap(entrySent, entryAnswered)
		close(e.done)
	}
}

// publish sends the records of live to topic: alone as the plain message
// it encodes, or as an envelope.
func (p *Publisher) publish(ctx context.Context, topic string, live []*entry) error {
	if len(live) == 1 && !p.cfg.envelopeSingles {
		msgs, err := Decode(joinRecords([][]byte{live[0].record}))
		if err != nil {
			return fmt.Errorf("batch: publish to %s: %w", topic, err) // a bug: the record is ours
		}
		return p.inner.Publish(ctx, topic, msgs[0])
	}
	records := make([][]byte, len(live))
	key := live[0].key
	for i, e := range live {
		records[i] = e.record
		if e.key != key {
			key = ""
		}
	}
	env := &mq.Message{
		ID:      p.newID(),
		Key:     key,
		Headers: map[string]string{HeaderBatch: strconv.Itoa(len(live))},
		Payload: joinRecords(records),
	}
	if err := p.inner.Publish(ctx, topic, env); err != nil {
		return fmt.Errorf("batch: envelope %s of %d messages to %s: %w", env.ID, len(live), topic, err)
	}
	return nil
}

// Close sends the batches still open at once, waits until every envelope
// got its answer, and closes the wrapped publisher. Later Publish calls
// fail with mq.ErrClosed.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		for _, q := range p.topics {
			for _, b := range q.pending {
				b.ready = true
			}
			p.dispatch(q)
		}
		p.mu.Unlock()
		p.batches.Wait()
		p.closeErr = p.inner.Close()
	})
	return p.closeErr
}

// MessagingSystem names the wrapped backend in telemetry (see package
// mqotel), so that tracing over a Publisher reports nats, kafka or memory.
func (p *Publisher) MessagingSystem() string { return messagingSystem(p.inner) }

func messagingSystem(inner any) string {
	if n, ok := inner.(interface{ MessagingSystem() string }); ok {
		return n.MessagingSystem()
	}
	return ""
}
