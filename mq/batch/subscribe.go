package batch

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/flashsale/seckill/mq"
)

// SubscriberConfig configures a Subscriber. The zero value selects the
// defaults.
type SubscriberConfig struct {
	// Logger receives the envelopes split after a failure and the
	// handler panics. Default slog.Default().
	Logger *slog.Logger
}

func (c SubscriberConfig) withDefaults() SubscriberConfig {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Subscriber is an mq.Subscriber that unpacks the envelopes of Publisher:
// the handler is called once for each message inside, as if it had been
// delivered alone. Plain messages (no HeaderBatch) are handed over as
// delivered.
//
// The messages of an envelope are handled concurrently, so that a handler
// that batches its work (the order worker writes the messages it holds in
// one transaction) gets them together; messages of one key run one after
// another, in publish order. SubscribeOptions.Concurrency still bounds the
// handler calls of a subscription, envelopes' messages and plain ones
// together; the wrapped backend may hold up to Concurrency envelopes
// meanwhile.
//
// Each message gets its own ID, Key, Headers and Payload, and the
// envelope's Attempt. The envelope is then settled by the outcome of all
// its messages:
//
//   - every handler call returned nil: the envelope is acknowledged;
//   - some failed, all with mq.Transient errors: the envelope fails with a
//     transient error and comes back whole after the backoff (its
//     successful messages are handled again: handlers are idempotent, as
//     package mq requires);
//   - some failed for good (an error not marked mq.Transient, or a panic):
//     each failed message is republished alone to the topic, due after
//     opts.Backoff(attempt), with HeaderAttempts, and the envelope is
//     acknowledged. From then on the backend retries and dead-letters the
//     message like any other, so one bad message never holds up or
//     dead-letters its neighbours. If the republish fails, the envelope
//     fails (transiently) and comes back whole: nothing is lost.
//
// Attempt keeps counting across that move (HeaderAttempts), but the
// message's later retries are the backend's: their backoff starts again at
// MinBackoff, and the message may fail MaxAttempts more times before it is
// dead-lettered, once more in all than a plain message. (Owning those
// retries too would make them exact, but then this package would publish
// the dead letter, and natsjs drops a second message of one ID within two
// minutes: a replayed message that failed again would lose its dead
// letter. The backends' own dead-lettering has no such hole.)
//
// An envelope that cannot be decoded fails with an error wrapping
// ErrMalformed, not transient: the backend retries it MaxAttempts times and
// dead-letters it whole.
type Subscriber struct {
	inner mq.Subscriber
	pub   mq.Publisher
	log   *slog.Logger
}

// NewSubscriber returns a Subscriber over s that republishes the messages
// it splits out of envelopes through pub: the backend itself, undecorated
// (see the package doc). Close closes s.
func NewSubscriber(s mq.Subscriber, pub mq.Publisher, cfg SubscriberConfig) *Subscriber {
	cfg = cfg.withDefaults()
	return &Subscriber{inner: s, pub: pub, log: cfg.Logger}
}

// Subscribe subscribes to topic on the wrapped subscriber with opts, and
// unpacks the envelopes it delivers for h.
func (s *Subscriber) Subscribe(ctx context.Context, topic string, opts mq.SubscribeOptions, h mq.Handler) error {
	if h == nil {
		return s.inner.Subscribe(ctx, topic, opts, h) // which reports it
	}
	opts = opts.WithDefaults()
	sub := &subscription{
		s: s, topic: topic, opts: opts, h: h,
		slots: make(chan struct{}, opts.Concurrency),
	}
	return s.inner.Subscribe(ctx, topic, opts, sub.handle)
}

// Close closes the wrapped subscriber, which waits for the handlers in
// flight.
func (s *Subscriber) Close() error { return s.inner.Close() }

// MessagingSystem names the wrapped backend in telemetry (see package
// mqotel).
func (s *Subscriber) MessagingSystem() string { return messagingSystem(s.inner) }

// subscription is one Subscribe call.
type subscription struct {
	s     *Subscriber
	topic string
	opts  mq.SubscribeOptions
	h     mq.Handler
	slots chan struct{} // a token per handler call running: Concurrency
}

func (u *subscription) handle(ctx context.Context, m *mq.Message) error {
	if _, ok := m.Headers[HeaderBatch]; ok {
		return u.envelope(ctx, m)
	}
	if err := u.acquire(ctx); err != nil {
		return err
	}
	defer u.release()
	if prior, ok := takeAttempts(m.Headers); ok {
		// Republished out of an envelope: Attempt goes on counting.
		c := *m
		c.Headers = maps.Clone(m.Headers)
		delete(c.Headers, HeaderAttempts)
		c.Attempt += prior
		m = &c
	}
	return u.h(ctx, m) // a panic is the backend's to recover, as without us
}

func (u *subscription) acquire(ctx context.Context) error {
	select {
	case u.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (u *subscription) release() { <-u.slots }

// envelope handles the messages of env and returns the envelope's outcome
// (see Subscriber).
func (u *subscription) envelope(ctx context.Context, env *mq.Message) error {
	msgs, err := u.decode(env)
	if err != nil {
		return err
	}
	errs := u.runAll(ctx, msgs)
	var failed []int
	permanent := false
	for i, err := range errs {
		if err != nil {
			failed = append(failed, i)
			permanent = permanent || !mq.IsTransient(err)
		}
	}
	switch {
	case len(failed) == 0:
		return nil
	case ctx.Err() != nil:
		// The subscriber is being force-stopped: the backend gives the
		// envelope back whole, as it would a plain message.
		return fmt.Errorf("batch: envelope %s on %s: %d of %d messages unfinished: %w",
			env.ID, u.topic, len(failed), len(msgs), ctx.Err())
	case !permanent:
		return mq.Transient(fmt.Errorf("batch: envelope %s on %s: %d of %d messages failed transiently, redelivering the envelope: %w",
			env.ID, u.topic, len(failed), len(msgs), errs[failed[0]]))
	}
	return u.split(ctx, env, failed, errs)
}

// decode returns the messages of env, each with its Attempt and without
// this package's headers.
func (u *subscription) decode(env *mq.Message) ([]*mq.Message, error) {
	msgs, err := Decode(env.Payload)
	if err == nil && strconv.Itoa(len(msgs)) != env.Headers[HeaderBatch] {
		err = fmt.Errorf("%w: %d messages, header %s says %q", ErrMalformed, len(msgs), HeaderBatch, env.Headers[HeaderBatch])
	}
	if err != nil {
		return nil, fmt.Errorf("batch: envelope %s on %s: %w", env.ID, u.topic, err)
	}
	for _, m := range msgs {
		m.Attempt = env.Attempt
		if prior, ok := takeAttempts(m.Headers); ok {
			delete(m.Headers, HeaderAttempts)
			if len(m.Headers) == 0 {
				m.Headers = nil
			}
			m.Attempt += prior
		}
	}
	return msgs, nil
}

// takeAttempts reads HeaderAttempts from h. A value that is not a count is
// taken as no earlier attempts, rather than failing a message over
// bookkeeping.
func takeAttempts(h map[string]string) (int, bool) {
	v, ok := h[HeaderAttempts]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		n = 0
	}
	return n, true
}

// runAll calls the handler for every message, concurrently but in order
// within a key, and returns each call's error.
func (u *subscription) runAll(ctx context.Context, msgs []*mq.Message) []error {
	errs := make([]error, len(msgs))
	if len(msgs) == 1 {
		errs[0] = u.run(ctx, msgs[0])
		return errs
	}
	var byKey map[string][]int // messages of a key, in order; keyless ones run alone
	var wg sync.WaitGroup
	for i, m := range msgs {
		if m.Key == "" {
			wg.Go(func() { errs[i] = u.run(ctx, m) })
			continue
		}
		if byKey == nil {
			byKey = make(map[string][]int)
		}
		byKey[m.Key] = append(byKey[m.Key], i)
	}
	for _, idx := range byKey {
		wg.Go(func() {
			for _, i := range idx {
				errs[i] = u.run(ctx, msgs[i])
			}
		})
	}
	wg.Wait()
	return errs
}

// run calls the handler for one message of an envelope, in a handler slot,
// turning a panic into a failure as the backends do: the panic must not
// take down the process from a goroutine of ours.
func (u *subscription) run(ctx context.Context, m *mq.Message) (err error) {
	if err := u.acquire(ctx); err != nil {
		return err
	}
	defer u.release()
	defer func() {
		if r := recover(); r != nil {
			u.s.log.Error("batch: handler panicked", "topic", u.topic, "id", m.ID, "attempt", m.Attempt,
				"panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return u.h(ctx, m)
}

// split republishes the failed messages of env alone, each due after its
// backoff and marked with the attempts it had, so that the envelope can be
// acknowledged. It reads them from the envelope again: a handler may have
// changed the Message it was given.
func (u *subscription) split(ctx context.Context, env *mq.Message, failed []int, errs []error) error {
	msgs, err := u.decode(env)
	if err != nil {
		return err // cannot happen: it decoded a moment ago
	}
	now := time.Now()
	again := make([]*mq.Message, len(failed))
	for j, i := range failed {
		m := msgs[i]
		h := make(map[string]string, len(m.Headers)+1)
		maps.Copy(h, m.Headers)
		h[HeaderAttempts] = strconv.Itoa(m.Attempt)
		again[j] = &mq.Message{
			ID: m.ID, Key: m.Key, Headers: h, Payload: m.Payload,
			DeliverAt: now.Add(u.opts.Backoff(max(m.Attempt, 1))),
		}
	}
	if err := u.s.pub.Publish(ctx, u.topic, again...); err != nil {
		return mq.Transient(fmt.Errorf("batch: envelope %s on %s: republishing its %d failed messages alone: %w",
			env.ID, u.topic, len(failed), err))
	}
	var first error
	for _, i := range failed {
		if !mq.IsTransient(errs[i]) {
			first = errs[i]
			break
		}
	}
	u.s.log.Warn("batch: messages failed inside an envelope; republished them alone for their retries",
		"topic", u.topic, "envelope", env.ID, "failed", len(failed), "messages", len(msgs), "attempt", env.Attempt,
		"err", first)
	return nil
}

var (
	_ mq.Subscriber = (*Subscriber)(nil)
	_ mq.Publisher  = (*Publisher)(nil)
)
