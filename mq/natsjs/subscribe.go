package natsjs

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flashsale/seckill/mq"
)

// maxTracked bounds the transient-failure counts a subscription keeps.
const maxTracked = 100_000

// subscription is one Subscribe call: a reader that fetches from the
// group's durable consumer and up to Concurrency handlers.
type subscription struct {
	b      *Broker
	topic  string
	opts   mq.SubscribeOptions
	h      func(ctx context.Context, m jetstream.Msg)
	iter   jetstream.MessagesContext
	ctx    context.Context // the handlers'; cancelled at the drain deadline
	cancel context.CancelFunc
	quit   chan struct{} // closed to stop the reader
	sem    chan struct{}
	reader sync.WaitGroup
	wg     sync.WaitGroup

	mu        sync.Mutex
	transient map[uint64]int // stream sequence -> transient failures seen
}

// Subscribe creates (or joins) the durable consumer opts.Group on topic and
// starts delivering to h. Messages stored before the group first existed
// and not yet removed are delivered too.
func (b *Broker) Subscribe(ctx context.Context, topic string, opts mq.SubscribeOptions, h mq.Handler) error {
	if b.isClosed() {
		return mq.ErrClosed
	}
	opts = opts.WithDefaults()
	if err := b.ensureStream(ctx, topic); err != nil {
		return err
	}
	cons, err := b.consumer(ctx, b.topicStream(topic), b.topicSubject(topic), opts.Group, opts.Concurrency)
	if err != nil {
		return fmt.Errorf("natsjs: group %s on topic %s: %w", opts.Group, topic, err)
	}
	s := b.newSubscription(topic, opts)
	s.h = func(hctx context.Context, m jetstream.Msg) { s.handle(hctx, m, h) }
	if err := s.start(cons); err != nil {
		return fmt.Errorf("natsjs: group %s on topic %s: %w", opts.Group, topic, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.stop(time.Now())
		return mq.ErrClosed
	}
	b.subs = append(b.subs, s)
	b.mu.Unlock()
	return nil
}

// consumer creates or updates a durable pull consumer. MaxAckPending bounds
// the messages a group holds unsettled (in handlers, fetched, or waiting
// for a redelivery): during an outage it fills with waiting messages and
// the server stops handing out more, which pauses consumption.
func (b *Broker) consumer(ctx context.Context, stream, subject, group string, concurrency int) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       encodeName(group),
		Description:   "seckill mq group " + group,
		FilterSubject: subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: max(4*concurrency, 256),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      b.cfg.Replicas,
	}
	return retryCreate(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return b.js.CreateOrUpdateConsumer(ctx, stream, cfg)
	})
}

func (b *Broker) newSubscription(topic string, opts mq.SubscribeOptions) *subscription {
	ctx, cancel := context.WithCancel(context.Background())
	return &subscription{
		b: b, topic: topic, opts: opts, ctx: ctx, cancel: cancel, quit: make(chan struct{}),
		sem:       make(chan struct{}, opts.Concurrency),
		transient: make(map[uint64]int),
	}
}

// start runs the reader: it takes a handler slot before each fetch, so no
// more than Concurrency messages are in handlers at once, and a fetched
// message is handed to a handler at once.
func (s *subscription) start(cons jetstream.Consumer) error {
	iter, err := cons.Messages(jetstream.PullMaxMessages(s.opts.Concurrency), jetstream.PullExpiry(2*time.Second))
	if err != nil {
		return err
	}
	s.iter = iter
	s.reader.Go(func() {
		for {
			select {
			case s.sem <- struct{}{}:
			case <-s.quit:
				return
			}
			m, err := iter.Next()
			if err != nil {
				<-s.sem
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				s.b.log.Warn("natsjs: fetch", "topic", s.topic, "group", s.opts.Group, "err", err)
				select {
				case <-s.quit:
					return
				case <-time.After(250 * time.Millisecond):
				}
				continue
			}
			s.wg.Go(func() {
				defer func() { <-s.sem }()
				s.h(s.ctx, m)
			})
		}
	})
	return nil
}

// stop ends fetching, gives back what was fetched and not handled, and
// waits for the handlers until deadline, then cancels their contexts.
func (s *subscription) stop(deadline time.Time) {
	s.iter.Drain()
	close(s.quit) // the reader stops taking slots; handlers keep running
	s.reader.Wait()
	for {
		m, err := s.iter.Next()
		if err != nil {
			break
		}
		_ = m.Nak() // to the next consumer at once, not after AckWait
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		s.b.log.Warn("natsjs: handlers still running at the drain deadline; cancelling them, their messages will be redelivered",
			"topic", s.topic, "group", s.opts.Group)
		s.cancel()
		<-done
	}
	s.cancel()
}

// handle runs the handler for one message and settles it: ack on success,
// a delayed nak on failure, the dead-letter topic after MaxAttempts
// failures that were not transient.
func (s *subscription) handle(ctx context.Context, jm jetstream.Msg, h mq.Handler) {
	meta, err := jm.Metadata()
	if err != nil {
		s.b.log.Error("natsjs: message without metadata, leaving it to redelivery", "topic", s.topic, "err", err)
		return
	}
	seq := meta.Sequence.Stream
	m := decode(jm, int(meta.NumDelivered))

	stopBeat := s.heartbeat(jm)
	err = s.call(ctx, h, m)
	stopBeat()

	if err == nil {
		s.forget(seq)
		if aerr := jm.DoubleAck(context.WithoutCancel(ctx)); aerr != nil && !errors.Is(aerr, nats.ErrConnectionClosed) {
			s.b.log.Warn("natsjs: ack (the message will be redelivered)", "topic", s.topic, "id", m.ID, "err", aerr)
		}
		return
	}
	if s.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		_ = jm.Nak() // force-stopped: the next consumer takes it at once
		return
	}
	failures := s.failed(seq, m.Attempt, mq.IsTransient(err))
	if !mq.IsTransient(err) && failures >= s.opts.MaxAttempts {
		s.deadLetter(jm, m, seq, err)
		return
	}
	backoff := s.opts.Backoff(max(m.Attempt, 1))
	s.b.log.Debug("natsjs: handler failed, redelivering", "topic", s.topic, "id", m.ID, "attempt", m.Attempt,
		"transient", mq.IsTransient(err), "backoff", backoff, "err", err)
	_ = jm.NakWithDelay(backoff)
}

// call runs h, turning a panic into an error so the message is retried.
func (s *subscription) call(ctx context.Context, h mq.Handler, m *mq.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.b.log.Error("natsjs: handler panicked", "topic", s.topic, "id", m.ID, "attempt", m.Attempt,
				"panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return h(ctx, m)
}

// heartbeat tells the server, while a handler runs, that its message is
// still being worked on, so a slow handler does not see it redelivered to
// another consumer.
func (s *subscription) heartbeat(jm jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	t := time.NewTicker(s.b.cfg.AckWait / 3)
	go func() {
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = jm.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// failed records the failure of delivery attempt of the message at seq and
// returns how many of its failures count toward MaxAttempts: every
// delivery so far but the transient failures this subscription saw.
func (s *subscription) failed(seq uint64, attempt int, transient bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if transient {
		if len(s.transient) >= maxTracked {
			// Entries of messages settled by another process are never
			// forgotten here; drop them all rather than grow without end
			// (a message then counts earlier transient failures).
			clear(s.transient)
		}
		s.transient[seq]++
	}
	return attempt - s.transient[seq]
}

func (s *subscription) forget(seq uint64) {
	s.mu.Lock()
	delete(s.transient, seq)
	s.mu.Unlock()
}

// deadLetter publishes the message to the dead-letter topic and acks it;
// if the dead-letter topic refuses, the message is retried later instead.
func (s *subscription) deadLetter(jm jetstream.Msg, m *mq.Message, seq uint64, cause error) {
	dlq := mq.DeadLetterTopic(s.topic)
	d := &mq.Message{ID: m.ID, Key: m.Key, Payload: m.Payload, Headers: make(map[string]string, len(m.Headers)+3)}
	for k, v := range m.Headers {
		d.Headers[k] = v
	}
	d.Headers[mq.HeaderDeadLetterReason] = cause.Error()
	d.Headers[mq.HeaderDeadLetterAttempts] = strconv.Itoa(m.Attempt)
	d.Headers[mq.HeaderOriginalTopic] = s.topic
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.b.ensureStream(ctx, dlq); err != nil {
		s.b.log.Error("natsjs: dead-letter topic unavailable, retrying the message later", "topic", s.topic, "id", m.ID, "err", err)
		_ = jm.NakWithDelay(s.opts.MaxBackoff)
		return
	}
	nm := s.b.encode(dlq, d, time.Now())
	// Deduplicated by the stored message it comes from, not by its id: a
	// replayed message that fails again is a new dead letter, while a
	// second dead-lettering of one delivery (the ack below was lost) is not.
	nm.Header[jetstream.MsgIDHeader] = []string{"dlq:" + strconv.FormatUint(seq, 10) + ":" + m.ID}
	if _, err := s.b.js.PublishMsg(ctx, nm); err != nil {
		err = s.b.publishErr(dlq, d, err)
		s.b.log.Error("natsjs: dead-letter publish failed, retrying the message later", "topic", s.topic, "id", m.ID, "err", err)
		_ = jm.NakWithDelay(s.opts.MaxBackoff)
		return
	}
	s.forget(seq)
	_ = jm.DoubleAck(ctx)
	s.b.log.Error("natsjs: message dead-lettered", "topic", s.topic, "id", m.ID, "attempts", m.Attempt,
		"reason", cause.Error(), "dead_letter_topic", dlq)
}

// decode rebuilds the mq.Message from a delivered JetStream message.
func decode(jm jetstream.Msg, attempt int) *mq.Message {
	m := decodeRaw(jm.Headers(), jm.Data())
	m.Attempt = attempt
	return m
}

// decodeRaw rebuilds an mq.Message from stored headers and data: the
// backend's own headers become fields, JetStream's are dropped, the rest
// are the message's headers.
func decodeRaw(hdr nats.Header, data []byte) *mq.Message {
	m := &mq.Message{Payload: data}
	for k, vs := range hdr {
		if len(vs) == 0 {
			continue
		}
		switch k {
		case hdrID:
			m.ID = vs[0]
		case hdrKey:
			m.Key = vs[0]
		case hdrDeliverAt:
			if ns, err := strconv.ParseInt(vs[0], 10, 64); err == nil {
				m.DeliverAt = time.Unix(0, ns)
			}
		case jetstream.MsgIDHeader, "Nats-Scheduler", "Nats-Schedule-Next":
		default:
			if m.Headers == nil {
				m.Headers = make(map[string]string, len(hdr))
			}
			m.Headers[k] = vs[0]
		}
	}
	return m
}
