package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/flashsale/seckill/mq"
)

// consumer is one member of a Kafka consumer group: a subscription's
// (sub != nil) or the delay forwarders' (sub == nil).
type consumer struct {
	b     *Broker
	group string
	sub   *subscription
	cg    *kafkago.ConsumerGroup

	joined   chan struct{} // closed at the first assignment
	joinOnce sync.Once
	done     chan struct{} // closed when run returned
	lastErr  atomic.Pointer[error]

	// hctx is the handlers' context, cancelled when Close gives up
	// waiting for them.
	hctx    context.Context
	hcancel context.CancelFunc

	parts  atomic.Pointer[[]*partState] // of the current generation, for Lag
	commit chan struct{}                // cap 1: some partition has a new offset to commit

	stopOnce sync.Once
}

// subscription is what a Subscribe call asked for.
type subscription struct {
	topic string
	retry string // the group's retry topic
	opts  mq.SubscribeOptions
	h     mq.Handler
}

func (b *Broker) newConsumer(ctx context.Context, group string, topics []string, sub *subscription) (*consumer, error) {
	kl := kafkago.LoggerFunc(func(msg string, args ...any) {
		b.log.Debug("kafka-go: "+fmt.Sprintf(msg, args...), "group", group)
	})
	cg, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                group,
		Brokers:           b.cfg.Brokers,
		Dialer:            b.dialer,
		Topics:            topics,
		HeartbeatInterval: b.cfg.HeartbeatInterval,
		SessionTimeout:    b.cfg.SessionTimeout,
		RebalanceTimeout:  b.cfg.RebalanceTimeout,
		JoinGroupBackoff:  b.cfg.JoinGroupBackoff,
		// A group seen for the first time reads from the start, so that
		// nothing published while it was joining is missed.
		StartOffset: kafkago.FirstOffset,
		Timeout:     b.cfg.WriteTimeout,
		Logger:      kl,
		ErrorLogger: kl,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: consumer group %q: %w", group, err)
	}
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &consumer{
		b: b, group: group, sub: sub, cg: cg,
		joined: make(chan struct{}), done: make(chan struct{}),
		hctx: hctx, hcancel: hcancel,
		commit: make(chan struct{}, 1),
	}
	go c.run()
	return c, nil
}

// run takes each generation of the group in turn until the group closes.
func (c *consumer) run() {
	defer close(c.done)
	for {
		gen, err := c.cg.Next(context.Background())
		if errors.Is(err, kafkago.ErrGroupClosed) {
			return
		}
		if err != nil {
			c.lastErr.Store(&err)
			level := slog.LevelWarn
			if errors.Is(err, kafkago.RebalanceInProgress) {
				level = slog.LevelDebug
			}
			c.b.log.Log(context.Background(), level, "mq: consumer group", "group", c.group, "error", err.Error())
			continue
		}
		c.joinOnce.Do(func() { close(c.joined) })
		gen.Start(func(ctx context.Context) { c.runGeneration(ctx, gen) })
	}
}

// joinErr is the last error joining reported, for Subscribe's error.
func (c *consumer) joinErr() error {
	if p := c.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// stop ends the consumer: the current generation stops fetching, waits for
// its handlers (cancelling their context after timeout), commits and the
// member leaves the group.
func (c *consumer) stop(timeout time.Duration) error {
	c.stopOnce.Do(func() {
		t := time.AfterFunc(timeout, c.hcancel)
		defer t.Stop()
		_ = c.cg.Close() // ends the generation, waits for runGeneration, leaves
		<-c.done
		c.hcancel()
	})
	return nil
}

func (c *consumer) lag() int64 {
	ps := c.parts.Load()
	if ps == nil {
		return 0
	}
	var sum int64
	for _, p := range *ps {
		sum += p.lag()
	}
	return sum
}

func (c *consumer) commitSoon() {
	select {
	case c.commit <- struct{}{}:
	default:
	}
}

// runGeneration serves one generation's assignments until ctx ends (a
// rebalance or Close), then commits what was handled.
func (c *consumer) runGeneration(ctx context.Context, gen *kafkago.Generation) {
	var parts []*partState
	for topic, as := range gen.Assignments {
		for _, a := range as {
			parts = append(parts, newPartState(topic, a))
		}
	}
	c.parts.Store(&parts)
	c.b.log.Debug("mq: assigned", "group", c.group, "generation", gen.ID, "partitions", len(parts))

	var s *genSub
	if c.sub != nil {
		s = &genSub{
			queue: make(chan *item, c.b.cfg.MaxHeld),
			slots: make(chan struct{}, c.b.cfg.MaxHeld),
		}
	}
	var readers, workers sync.WaitGroup
	for _, p := range parts {
		r := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers:   c.b.cfg.Brokers,
			Topic:     p.topic,
			Partition: p.partition,
			Dialer:    c.b.dialer,
			MinBytes:  1,
			MaxBytes:  10 << 20,
			MaxWait:   c.b.cfg.FetchMaxWait,
			// Lag comes from the fetched high watermarks instead.
			ReadLagInterval: -1,
			ErrorLogger: kafkago.LoggerFunc(func(msg string, args ...any) {
				c.b.log.Debug("kafka-go reader: "+fmt.Sprintf(msg, args...), "topic", p.topic, "partition", p.partition)
			}),
		})
		if err := r.SetOffset(p.start); err != nil {
			c.b.log.Error("mq: set offset", "topic", p.topic, "partition", p.partition, "error", err.Error())
		}
		readers.Go(func() {
			defer r.Close()
			if s != nil {
				c.readPartition(ctx, s, p, r, &readers)
			} else {
				c.forwardPartition(ctx, p, r)
			}
		})
	}
	if s != nil {
		for range c.sub.opts.Concurrency {
			workers.Go(func() { c.work(ctx, s) })
		}
	}
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.commit:
				c.commitOffsets(gen, parts)
			}
		}
	}()

	<-ctx.Done()
	readers.Wait() // no more fetching; held records are dropped
	workers.Wait() // handlers in flight have returned
	<-committerDone
	c.commitOffsets(gen, parts)
	c.parts.Store(nil)
}

// commitOffsets commits each partition's handled prefix not yet committed.
func (c *consumer) commitOffsets(gen *kafkago.Generation, parts []*partState) {
	offsets := map[string]map[int]int64{}
	for _, p := range parts {
		if next, ok := p.toCommit(); ok {
			if offsets[p.topic] == nil {
				offsets[p.topic] = map[int]int64{}
			}
			offsets[p.topic][p.partition] = next
		}
	}
	if len(offsets) == 0 {
		return
	}
	if err := gen.CommitOffsets(offsets); err != nil {
		// The records stay uncommitted and are delivered again: a
		// duplicate, never a loss.
		c.b.log.Warn("mq: commit failed", "group", c.group, "generation", gen.ID, "error", err.Error())
		return
	}
	for _, p := range parts {
		if off, ok := offsets[p.topic][p.partition]; ok {
			p.committedThrough(off)
		}
	}
}

// genSub is a subscription's state for one generation: the FIFO of
// records ready for a worker, and MaxHeld slots bounding the records
// fetched and not yet settled.
type genSub struct {
	queue chan *item
	slots chan struct{}
}

// item is one fetched record on its way to a handler.
type item struct {
	p   *partState
	e   *entry
	env envelope
	rec kafkago.Message
}

// readPartition fetches one partition for a subscription: each record gets
// a place in the partition's commit order, then goes to the workers, at
// once or, when its x-deliver-at is ahead, when it is due.
func (c *consumer) readPartition(ctx context.Context, s *genSub, p *partState, r *kafkago.Reader, wg *sync.WaitGroup) {
	b := c.b
	for {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		m, err := r.FetchMessage(ctx)
		if err != nil {
			<-s.slots
			if ctx.Err() != nil {
				return
			}
			b.log.Warn("mq: fetch failed", "topic", p.topic, "partition", p.partition, "error", err.Error())
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		p.fetched(m)
		e := p.add(m.Offset)
		env, _, derr := decode(m)
		if derr != nil {
			b.log.Warn("mq: record with malformed backend headers, delivering it with defaults for those",
				"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "error", derr.Error())
		}
		it := &item{p: p, e: e, env: env, rec: m}
		if wait := time.Until(env.deliverAt); wait > 0 {
			// Held until due (the last stretch of a delay, or a retry's
			// backoff), without holding up the records behind it.
			wg.Go(func() {
				if !sleep(ctx, wait) {
					return
				}
				select {
				case s.queue <- it:
				case <-ctx.Done():
				}
			})
			continue
		}
		select {
		case s.queue <- it:
		case <-ctx.Done():
			return
		}
	}
}

// work is one of the subscription's Concurrency workers.
func (c *consumer) work(ctx context.Context, s *genSub) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-s.queue:
			if ctx.Err() != nil {
				return // the record goes to this partition's next owner
			}
			if c.settle(ctx, it, c.handle(it)) {
				it.p.done(it.e)
				c.commitSoon()
			}
			<-s.slots
		}
	}
}

// handle calls the handler with the subscriber's copy of the message,
// turning a panic into an error.
func (c *consumer) handle(it *item) (err error) {
	sub := c.sub
	msg := &mq.Message{
		ID:        it.env.id,
		Key:       it.env.key,
		Headers:   it.env.headers,
		Payload:   it.env.payload,
		DeliverAt: it.env.deliverAt,
		Attempt:   it.env.attempt,
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kafka: handler panic: %v", r)
			c.b.log.Error("mq: handler panicked", "topic", sub.topic, "group", c.group,
				"id", msg.ID, "attempt", msg.Attempt, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	return sub.h(c.hctx, msg)
}

// settle applies a handler's outcome; it reports whether the record may be
// committed. A failure is republished (retry or dead letter) first, so the
// record is committed only once its successor is acknowledged. A failure
// marked mq.Transient is always retried with the record's failure count
// unchanged; any other adds one to it, and the one that reaches
// MaxAttempts dead-letters the message. The count travels in the retry
// record (x-failures), so it survives restarts and rebalances.
func (c *consumer) settle(ctx context.Context, it *item, err error) bool {
	if err == nil {
		return true
	}
	if c.hctx.Err() != nil {
		// Force-stopped by Close: the record stays uncommitted, and the
		// group's next member delivers it again as the same attempt.
		return false
	}
	b, sub := c.b, c.sub
	// Past the generation's end, keep trying for as long as Close allows:
	// a retry that is not written leaves the record uncommitted, to be
	// delivered again.
	wctx := c.hctx
	if ctx.Err() == nil {
		var cancel context.CancelFunc
		wctx, cancel = context.WithCancel(c.hctx)
		defer cancel()
		stop := context.AfterFunc(ctx, func() {
			time.AfterFunc(b.cfg.WriteTimeout, cancel)
		})
		defer stop()
	}
	e := it.env
	transient := mq.IsTransient(err)
	failures := e.failures
	if !transient {
		failures++
	}
	if failures >= sub.opts.MaxAttempts {
		dlq := mq.DeadLetterTopic(sub.topic)
		h := make(map[string]string, len(e.headers)+3)
		for k, v := range e.headers {
			h[k] = v
		}
		h[mq.HeaderDeadLetterReason] = err.Error()
		h[mq.HeaderDeadLetterAttempts] = strconv.Itoa(e.attempt)
		h[mq.HeaderOriginalTopic] = sub.topic
		rec := encode(dlq, "", envelope{id: e.id, key: e.key, headers: h, payload: e.payload, attempt: 1}, time.Now())
		if werr := b.write(wctx, "dead-letter to "+dlq, rec); werr != nil {
			b.log.Error("mq: dead-letter failed; the message will be delivered again", "topic", sub.topic,
				"group", c.group, "id", e.id, "error", werr.Error())
			return false
		}
		b.log.Warn("mq: message dead-lettered", "topic", sub.topic, "group", c.group, "id", e.id,
			"attempts", e.attempt, "failures", failures, "dead_letter_topic", dlq, "error", err.Error())
		return true
	}
	now := time.Now()
	next := e
	next.attempt++
	next.failures = failures
	// The backoff grows with every delivery, transient ones included, up
	// to MaxBackoff: the pace of the retries through an outage.
	next.deliverAt = now.Add(sub.opts.Backoff(e.attempt))
	if werr := b.write(wctx, "retry to "+sub.retry, b.route(sub.retry, next, now)); werr != nil {
		b.log.Error("mq: scheduling a retry failed; the message will be delivered again", "topic", sub.topic,
			"group", c.group, "id", e.id, "error", werr.Error())
		return false
	}
	b.log.Debug("mq: handler failed, will redeliver", "topic", sub.topic, "group", c.group,
		"id", e.id, "attempt", e.attempt, "transient", transient, "failures", failures, "error", err.Error())
	return true
}
