package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flashsale/seckill/mq"
)

// Headers that carry mq.Message fields through JetStream. Other headers
// are the message's own, unchanged.
const (
	hdrID        = "Mq-Id"
	hdrKey       = "Mq-Key"
	hdrDeliverAt = "Mq-Deliver-At" // unix nanoseconds
)

// Publish stores msgs on topic and returns once JetStream acknowledged each
// of them. A message with a future DeliverAt becomes a schedule in the
// delayed-message stream. Message ids deduplicate within two minutes, so a
// retried Publish of the same message stores it once.
func (b *Broker) Publish(ctx context.Context, topic string, msgs ...*mq.Message) error {
	if b.isClosed() {
		return mq.ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := b.ensureStream(ctx, topic); err != nil {
		return err
	}
	now := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var errs []error
	for _, m := range msgs {
		if m.ID == "" {
			m.ID = b.idPrefix + strconv.FormatUint(b.nextID.Add(1), 10)
		}
		nm := b.encode(topic, m, now)
		if len(msgs) == 1 {
			return b.publishErr(topic, m, b.publishSync(ctx, nm))
		}
		f, err := b.js.PublishMsgAsync(nm)
		if err != nil {
			errs = append(errs, b.publishErr(topic, m, err))
			continue
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if isFull(err) {
				err = b.publishSync(ctx, f.Msg())
			}
			errs = append(errs, b.publishErr(topic, msgs[i], err))
		case <-ctx.Done():
			return fmt.Errorf("natsjs: publish to %s: %w (some messages may have been stored)", topic, ctx.Err())
		}
	}
	return errors.Join(errs...)
}

// publishSync publishes nm and waits for its acknowledgement. A replicated
// stream removes a message its last group acknowledged a moment after the
// acknowledgement was confirmed (the ack goes through the consumer's Raft
// group, the removal through the stream's), so for that moment it still
// counts toward Capacity: a refusal as full is retried for up to ~85ms
// before it stands. The message id makes a retry store it at most once.
func (b *Broker) publishSync(ctx context.Context, nm *nats.Msg) error {
	_, err := b.js.PublishMsg(ctx, nm)
	for wait := time.Millisecond; isFull(err) && b.cfg.Replicas > 1 && wait <= 64*time.Millisecond; wait *= 4 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		_, err = b.js.PublishMsg(ctx, nm)
	}
	return err
}

// encode turns m into the NATS message to publish: to the topic's subject,
// or, when m is due later, to a schedule that fires into the delayed
// stream's due subject.
func (b *Broker) encode(topic string, m *mq.Message, now time.Time) *nats.Msg {
	h := make(nats.Header, len(m.Headers)+5)
	for k, v := range m.Headers {
		h[k] = []string{v}
	}
	h[hdrID] = []string{m.ID}
	if m.Key != "" {
		h[hdrKey] = []string{m.Key}
	}
	nm := &nats.Msg{Header: h, Data: m.Payload}
	if m.DeliverAt.After(now) {
		h[hdrDeliverAt] = []string{strconv.FormatInt(m.DeliverAt.UnixNano(), 10)}
		// A retried publish is dropped as a duplicate; the same id due at
		// another time (a rescheduled timeout) is a new message.
		h[jetstream.MsgIDHeader] = []string{"sched:" + m.ID + "@" + h[hdrDeliverAt][0]}
		// The mover holds a message that fires early, so a fractional
		// time rounded down is safe, and it never waits a second more.
		h[jetstream.ScheduleHeader] = []string{"@at " + m.DeliverAt.UTC().Truncate(time.Second).Format(time.RFC3339)}
		h[jetstream.ScheduleTargetHeader] = []string{b.dueSubject(topic)}
		nm.Subject = b.scheduleSubject(topic, subjectToken(m.ID))
		return nm
	}
	h[jetstream.MsgIDHeader] = []string{m.ID}
	nm.Subject = b.topicSubject(topic)
	return nm
}

// subjectToken makes an id usable as one subject token.
func subjectToken(id string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, id)
}

// publishErr maps JetStream's answer: a full stream is mq.ErrQueueFull,
// anything else names the topic and the server.
func (b *Broker) publishErr(topic string, m *mq.Message, err error) error {
	if err == nil {
		return nil
	}
	if isFull(err) {
		return fmt.Errorf("natsjs: topic %s holds %d unhandled messages: %w", topic, b.cfg.Capacity, mq.ErrQueueFull)
	}
	if b.isClosed() || errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("natsjs: publish %s to %s: %w", m.ID, topic, mq.ErrClosed)
	}
	return fmt.Errorf("natsjs: publish %s to %s on %s: %w", m.ID, topic, b.where(), err)
}

// isFull recognises a discard-new refusal. JetStream reports every store
// failure with one code (10077) and the store's error as the description,
// so the description is what tells a full stream apart.
func isFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == 10077 && strings.Contains(apiErr.Description, "maximum")
}
