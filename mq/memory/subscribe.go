package memory

// Delivery: a subscription's workers take messages of its group, call the
// handler, and settle each answer (ack, redeliver after a backoff, or move
// to the dead-letter topic).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/flashsale/seckill/mq"
)

// Subscribe starts opts.Concurrency workers that deliver messages of topic
// to h, competing with the other subscriptions of opts.Group. It returns
// once they are registered: every message published afterwards reaches the
// group, and the first group of a topic also receives the messages held
// before it.
//
// ctx only governs the registration: the subscription lasts until Close, so
// that cancelling a service's root context on SIGTERM does not strand the
// queued messages Close is about to drain. Handlers receive a context that
// carries ctx's values and is cancelled when Close gives up draining.
//
// A handler that panics is treated as one that returned an error (the panic
// and its stack are logged), so one bad message cannot kill the process.
func (b *Broker) Subscribe(ctx context.Context, topicName string, opts mq.SubscribeOptions, h mq.Handler) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: subscribe %q: %w", topicName, err)
	}
	if topicName == "" {
		return errors.New("memory: subscribe: empty topic name")
	}
	if h == nil {
		return fmt.Errorf("memory: subscribe %q: nil handler", topicName)
	}
	opts = opts.WithDefaults()
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		cancel()
		return fmt.Errorf("memory: subscribe %q: %w", topicName, mq.ErrClosed)
	}
	s := &subscription{group: b.join(b.topic(topicName), opts.Group), opts: opts, h: h, ctx: hctx}
	b.cancels = append(b.cancels, cancel)
	for range opts.Concurrency {
		b.workers.Go(func() { b.work(s) })
	}
	return nil
}

// work is one worker of s: it takes the oldest ready message of the group,
// handles it and settles the outcome, until the broker stops.
func (b *Broker) work(s *subscription) {
	g := s.group
	for {
		b.mu.Lock()
		for g.ready.len() == 0 && !b.stopped {
			g.wait.Wait()
		}
		if b.stopped {
			b.mu.Unlock()
			return
		}
		e := g.ready.pop()
		b.mu.Unlock()

		err := b.handle(s, deliverable(e))

		b.mu.Lock()
		report := b.settle(s, e, err)
		closing := b.closing
		b.mu.Unlock()
		if report != nil {
			report()
		}
		if closing {
			select {
			case b.settled <- struct{}{}:
			default:
			}
		}
	}
}

// handle calls the handler, turning a panic into an error.
func (b *Broker) handle(s *subscription, m *mq.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("memory: handler panic: %v", r)
			b.log.Error("mq: handler panicked", "topic", s.group.topic, "group", s.group.name,
				"id", m.ID, "attempt", m.Attempt, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	return s.h(s.ctx, m)
}

// settle applies the outcome of handling e: acknowledge, schedule a retry or
// dead-letter. A failure marked mq.Transient is always retried and leaves
// e.failures as it is; any other failure counts, and the one that brings
// the count to MaxAttempts dead-letters the message. It returns the logging
// to do once b.mu is released, if any. Callers hold b.mu.
func (b *Broker) settle(s *subscription, e entry, err error) func() {
	g := s.group
	if err == nil {
		g.count--
		return nil
	}
	if b.stopped {
		// Force-stopped mid-handler: the message stays counted as
		// unhandled, and Close reports it.
		return nil
	}
	transient := mq.IsTransient(err)
	failures := e.failures
	if !transient {
		failures++
		if failures >= s.opts.MaxAttempts {
			g.count--
			return b.deadLetter(g, e, err)
		}
	}
	// The retry keeps its place in count (Capacity, Depth) while it waits;
	// the backoff starts when the handler has returned. It grows with every
	// delivery, transient ones included, up to MaxBackoff: the pace of the
	// retries through an outage.
	b.schedule(timer{
		due:      time.Now().Add(s.opts.Backoff(e.attempt)),
		msg:      e.msg,
		attempt:  e.attempt + 1,
		failures: failures,
		group:    g,
	})
	if b.log.Enabled(context.Background(), slog.LevelDebug) {
		return func() {
			b.log.Debug("mq: handler failed, will redeliver", "topic", g.topic, "group", g.name,
				"id", e.msg.ID, "attempt", e.attempt, "transient", transient, "failures", failures,
				"error", err.Error())
		}
	}
	return nil
}

// deadLetter publishes e's message to the dead-letter topic of its topic,
// with the original key, headers and payload plus the dead-letter headers.
// Like any topic it is held for a later reader when nobody subscribes, under
// the same Capacity; a dead letter that does not fit is dropped and logged.
// Callers hold b.mu; the returned func logs.
func (b *Broker) deadLetter(g *group, e entry, cause error) func() {
	dlq := mq.DeadLetterTopic(g.topic)
	m := *e.msg
	m.Headers = make(map[string]string, len(e.msg.Headers)+3)
	maps.Copy(m.Headers, e.msg.Headers)
	m.Headers[mq.HeaderDeadLetterReason] = cause.Error()
	m.Headers[mq.HeaderDeadLetterAttempts] = strconv.Itoa(e.attempt)
	m.Headers[mq.HeaderOriginalTopic] = g.topic
	m.DeliverAt = time.Time{}
	m.Attempt = 0

	attrs := []any{"topic", g.topic, "group", g.name, "id", m.ID, "key", m.Key,
		"attempts", e.attempt, "reason", cause.Error(), "dead_letter_topic", dlq}
	t := b.topic(dlq)
	if err := t.admit(1, b.cfg.Capacity); err != nil {
		return func() {
			b.log.Error("mq: message dead-lettered but the dead-letter queue is full; message dropped",
				append(attrs, "error", err.Error())...)
		}
	}
	t.enqueue(&m)
	return func() { b.log.Error("mq: message dead-lettered", attrs...) }
}
