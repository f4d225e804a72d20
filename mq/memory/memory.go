// Package memory is an in-memory mq backend: every queue lives in this
// process's memory, so a crash or kill loses everything queued (messages
// ready, in flight, awaiting a retry or future-dated), and Close drops the
// future-dated messages not yet due. Use it for unit tests and in places
// where losing messages is acceptable (the order lifecycle tolerates a loss:
// its sweeper settles orders whose messages never arrived). It is not the
// durable default: that
// is the NATS JetStream backend, package mq/natsjs; the Kafka backend
// (mq/kafka) also keeps messages across restarts.
//
// Every (topic, group) pair has a bounded FIFO holding the messages that are
// ready, in flight or waiting for a retry. Publish refuses with
// mq.ErrQueueFull instead of growing without bound, which is what lets the
// gateway answer 503 BUSY and release the reservation rather than run the
// process out of memory during a spike. Future-dated messages and retries
// wait in one timer heap served by a single goroutine, so neither publishing
// nor failing costs a goroutine or a timer per message.
//
// A handler error marked mq.Transient is redelivered after its backoff for as
// long as it fails that way; only the other failures count toward
// MaxAttempts. The counts live in memory too, like the messages.
package memory

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/seckill/mq"
)

// Defaults of Config, chosen so that a broker built from a zero Config is
// safe in production: large enough for a 100k-per-second spike, small enough
// to bound memory (100000 small order messages are a few tens of MB).
const (
	DefaultCapacity        = 100_000
	DefaultDelayedCapacity = 1_000_000
	DefaultDrainTimeout    = 30 * time.Second
)

// Config tunes a Broker. The zero value (or any non-positive field) selects
// the documented default.
type Config struct {
	// Capacity bounds each topic-group queue: the messages that are ready,
	// in flight or waiting for a retry. A Publish that would exceed it for
	// any subscribed group fails with mq.ErrQueueFull. Messages published
	// before anyone subscribes are held under the same bound. Default
	// DefaultCapacity.
	Capacity int
	// DelayedCapacity bounds the future-dated messages (DeliverAt after
	// now) not yet due, over all topics. The delayed pay-deadline cancels
	// of a sale live here, one per order. Default DefaultDelayedCapacity.
	DelayedCapacity int
	// DrainTimeout bounds how long Close waits for queued messages to be
	// handled before it cancels the handler contexts. Default
	// DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Logger receives dead-letter and shutdown reports. Default
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Capacity <= 0 {
		c.Capacity = DefaultCapacity
	}
	if c.DelayedCapacity <= 0 {
		c.DelayedCapacity = DefaultDelayedCapacity
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Broker is an in-process message broker; it implements both mq.Publisher
// and mq.Subscriber, and one Close serves both roles. Create it with New and
// always Close it: Close stops its timer goroutine and drains its queues.
//
// All state sits behind one mutex. Publish holds it for a few slice writes,
// so the lock is cheap compared with the handlers it feeds.
type Broker struct {
	cfg      Config
	log      *slog.Logger
	idPrefix string
	nextID   atomic.Uint64

	mu      sync.Mutex
	topics  map[string]*topic
	timers  timerHeap
	seq     uint64 // next timer.seq
	delayed int    // future-dated publishes in timers; retries excluded
	closing bool   // Close has begun: no more Publish or Subscribe
	stopped bool   // workers must exit without taking more messages
	cancels []context.CancelFunc

	wake      chan struct{} // cap 1: the earliest timer changed
	settled   chan struct{} // cap 1: a message was settled while closing
	stopTimer chan struct{} // closed to stop the timer goroutine
	timerDone chan struct{} // closed when the timer goroutine returned
	workers   sync.WaitGroup
	closeDone chan struct{} // closed when Close has finished
	closeErr  error
}

// topic is the set of groups subscribed to one topic name.
type topic struct {
	name   string
	groups []*group
	// held keeps messages published while no group exists, so that the
	// first subscriber (often started a moment after the gateway) or an
	// operator reading a dead-letter topic gets them.
	held *group
}

// group is one consumer group of a topic: a queue shared by the workers of
// every Subscribe call with that group name.
type group struct {
	name  string
	topic string
	ready ring
	// count is what Capacity bounds and Depth reports: ready + in flight +
	// awaiting a retry.
	count int
	wait  sync.Cond // on Broker.mu: ready became non-empty, or stop
}

// subscription is one Subscribe call: opts.Concurrency workers feeding h.
type subscription struct {
	group *group
	opts  mq.SubscribeOptions
	h     mq.Handler
	ctx   context.Context
}

// New returns a running broker configured by cfg (see Config for defaults).
func New(cfg Config) *Broker {
	cfg = cfg.withDefaults()
	var p [6]byte
	_, _ = rand.Read(p[:]) // crypto/rand.Read never fails (Go 1.24+)
	b := &Broker{
		cfg:       cfg,
		log:       cfg.Logger,
		idPrefix:  hex.EncodeToString(p[:]) + "-",
		topics:    make(map[string]*topic),
		wake:      make(chan struct{}, 1),
		settled:   make(chan struct{}, 1),
		stopTimer: make(chan struct{}),
		timerDone: make(chan struct{}),
		closeDone: make(chan struct{}),
	}
	go b.runTimers()
	return b
}

// Publish accepts msgs for topic. It copies each message, so the caller may
// reuse msgs afterwards; a message without ID gets a unique one (the
// caller's Message is not modified).
//
// A message due now is queued for every group subscribed to topic (or held
// for the first group when there is none yet); a message with a future
// DeliverAt waits in the timer heap and is fanned out when due, to the
// groups subscribed then.
//
// Publish is all-or-nothing, stronger than mq.Publisher requires: if any
// group lacks room for all msgs due now (Capacity), or the timer heap lacks
// room for all future-dated msgs (DelayedCapacity), it returns an error
// wrapping mq.ErrQueueFull and accepts none. After Close it returns an error
// wrapping mq.ErrClosed.
func (b *Broker) Publish(ctx context.Context, topicName string, msgs ...*mq.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: publish %q: %w", topicName, err)
	}
	if topicName == "" {
		return errors.New("memory: publish: empty topic name")
	}
	// Copy outside the lock; a single message (the gateway's case) needs
	// no slice allocation.
	var one [1]*mq.Message
	snaps := one[:0]
	if len(msgs) > 1 {
		snaps = make([]*mq.Message, 0, len(msgs))
	}
	var now time.Time // read only for dated messages: the clock is not free
	later := 0
	for i, m := range msgs {
		if m == nil {
			return fmt.Errorf("memory: publish %q: message %d is nil", topicName, i)
		}
		s := b.snapshot(m)
		if !s.DeliverAt.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			if s.DeliverAt.After(now) {
				later++
			}
		}
		snaps = append(snaps, s)
	}
	if len(snaps) == 0 {
		return nil
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return fmt.Errorf("memory: publish %q: %w", topicName, mq.ErrClosed)
	}
	if later > 0 && b.delayed+later > b.cfg.DelayedCapacity {
		return fmt.Errorf("memory: publish %q: %d future-dated messages already wait (DelayedCapacity %d): %w",
			topicName, b.delayed, b.cfg.DelayedCapacity, mq.ErrQueueFull)
	}
	var t *topic
	if due := len(snaps) - later; due > 0 {
		t = b.topic(topicName)
		if err := t.admit(due, b.cfg.Capacity); err != nil {
			return fmt.Errorf("memory: publish %q: %w", topicName, err)
		}
	}
	for _, s := range snaps {
		if !s.DeliverAt.IsZero() && s.DeliverAt.After(now) { // same now as counted
			b.delayed++
			b.schedule(timer{due: s.DeliverAt, msg: s, attempt: 1, topic: topicName})
			continue
		}
		t.enqueue(s)
	}
	return nil
}

// snapshot returns the broker's private, immutable copy of m.
func (b *Broker) snapshot(m *mq.Message) *mq.Message {
	s := &mq.Message{
		ID:        m.ID,
		Key:       m.Key,
		Headers:   maps.Clone(m.Headers),
		Payload:   bytes.Clone(m.Payload),
		DeliverAt: m.DeliverAt,
	}
	if s.ID == "" {
		s.ID = b.idPrefix + strconv.FormatUint(b.nextID.Add(1), 36)
	}
	return s
}

// deliverable returns the handler's own copy of e, so that a handler that
// keeps or edits its message affects neither other groups nor redeliveries.
func deliverable(e entry) *mq.Message {
	m := *e.msg
	m.Headers = maps.Clone(e.msg.Headers)
	m.Payload = bytes.Clone(e.msg.Payload)
	m.Attempt = e.attempt
	return &m
}

// topic returns the topic named name, creating it. Callers hold b.mu.
func (b *Broker) topic(name string) *topic {
	t := b.topics[name]
	if t == nil {
		t = &topic{name: name}
		b.topics[name] = t
	}
	return t
}

func (b *Broker) newGroup(name, topic string) *group {
	g := &group{name: name, topic: topic}
	g.wait.L = &b.mu
	return g
}

// admit reports an error wrapping mq.ErrQueueFull unless every queue a
// message due now goes to (every group, or the held queue while there is
// none) has room for n more messages. Callers hold b.mu.
func (t *topic) admit(n, capacity int) error {
	full := func(name string, count int) error {
		return fmt.Errorf("group %s holds %d of %d messages: %w", name, count, capacity, mq.ErrQueueFull)
	}
	if len(t.groups) == 0 {
		held := 0
		if t.held != nil {
			held = t.held.count
		}
		if held+n > capacity {
			return full("(no subscriber yet)", held)
		}
		return nil
	}
	for _, g := range t.groups {
		if g.count+n > capacity {
			return full(strconv.Quote(g.name), g.count)
		}
	}
	return nil
}

// enqueue appends s to every target queue, ignoring Capacity: callers have
// either admitted it or accepted it earlier (a future-dated message that
// became due must not be lost). Callers hold b.mu.
func (t *topic) enqueue(s *mq.Message) {
	if len(t.groups) == 0 {
		if t.held == nil {
			t.held = &group{topic: t.name} // never waited on: no workers
		}
		t.held.ready.push(entry{msg: s, attempt: 1})
		t.held.count++
		return
	}
	for _, g := range t.groups {
		g.ready.push(entry{msg: s, attempt: 1})
		g.count++
		g.wait.Signal()
	}
}

// join returns the group name of t, creating it. The first group ever
// created adopts the held messages. Callers hold b.mu.
func (b *Broker) join(t *topic, name string) *group {
	for _, g := range t.groups {
		if g.name == name {
			return g
		}
	}
	g := t.held
	if g == nil {
		g = b.newGroup(name, t.name)
	}
	g.name = name
	g.wait.L = &b.mu
	t.held = nil
	t.groups = append(t.groups, g)
	return g
}

// Close stops intake (Publish and Subscribe then fail with mq.ErrClosed),
// drops the future-dated messages not yet due (logging how many), and waits
// until every subscribed group has handled or dead-lettered what is ready,
// in flight or awaiting a retry — retries are not hurried, their backoff is
// honoured. After DrainTimeout it stops waiting and cancels the handler
// contexts. It returns once every handler has returned. A message that keeps
// failing with mq.Transient errors (a dependency still down) is retried until
// then: an outage holds Close up to DrainTimeout, which then reports the
// message unhandled.
//
// Messages held for topics nobody subscribed to (including unread dead
// letters) are discarded with a warning. Close returns an error only when
// the drain timed out with messages unhandled. It is idempotent: later calls
// wait for the first and return its result. A handler must not call Close
// (Close waits for the handlers to return).
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		<-b.closeDone
		return b.closeErr
	}
	b.closing = true
	// Hand over what is already due, then drop what is not.
	for len(b.timers) > 0 && !b.timers[0].due.After(time.Now()) {
		b.fire(b.timers.pop())
	}
	dropped := b.delayed
	if dropped > 0 {
		kept := b.timers[:0]
		for _, t := range b.timers {
			if t.group != nil {
				kept = append(kept, t)
			}
		}
		clear(b.timers[len(kept):])
		b.timers = kept
		b.timers.init()
		b.delayed = 0
	}
	b.mu.Unlock()
	if dropped > 0 {
		b.log.Warn("mq: close dropped future-dated messages that were not yet due (the memory backend keeps them in memory)",
			"count", dropped)
	}

	b.drain()

	b.mu.Lock()
	b.stopped = true
	for _, t := range b.topics {
		for _, g := range t.groups {
			g.wait.Broadcast()
		}
	}
	cancels := b.cancels
	b.cancels = nil
	b.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
	b.workers.Wait()
	close(b.stopTimer)
	<-b.timerDone

	b.mu.Lock()
	unhandled, unread := 0, 0
	for _, t := range b.topics {
		for _, g := range t.groups {
			unhandled += g.count
		}
		if t.held != nil {
			unread += t.held.count
		}
	}
	b.mu.Unlock()
	if unread > 0 {
		b.log.Warn("mq: close discarded messages of topics nobody subscribed to", "count", unread)
	}
	if unhandled > 0 {
		b.closeErr = fmt.Errorf("memory: close: drain timed out after %s with %d messages unhandled",
			b.cfg.DrainTimeout, unhandled)
		b.log.Error("mq: close gave up draining", "drain_timeout", b.cfg.DrainTimeout, "unhandled", unhandled)
	}
	close(b.closeDone)
	return b.closeErr
}

// drain waits until every subscribed group is empty, or DrainTimeout.
func (b *Broker) drain() {
	deadline := time.NewTimer(b.cfg.DrainTimeout)
	defer deadline.Stop()
	for !b.drained() {
		select {
		case <-b.settled:
		case <-deadline.C:
			return
		}
	}
}

func (b *Broker) drained() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range b.topics {
		for _, g := range t.groups {
			if g.count > 0 {
				return false
			}
		}
	}
	return true
}

// Depth returns the messages of topic that are ready, in flight or awaiting
// a retry, summed over its groups (plus those held for a first
// subscriber). Future-dated messages are not included; see Delayed.
func (b *Broker) Depth(topicName string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[topicName]
	if t == nil {
		return 0
	}
	n := 0
	for _, g := range t.groups {
		n += g.count
	}
	if t.held != nil {
		n += t.held.count
	}
	return n
}

// Delayed returns how many future-dated messages wait for their DeliverAt,
// over all topics (what DelayedCapacity bounds).
func (b *Broker) Delayed() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.delayed
}

// MessagingSystem names the backend in telemetry: the messaging.system
// attribute of the spans package mqotel starts around it.
func (b *Broker) MessagingSystem() string { return "memory" }

var (
	_ mq.Publisher  = (*Broker)(nil)
	_ mq.Subscriber = (*Broker)(nil)
)
