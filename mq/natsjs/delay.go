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

// moverGroup is the durable consumer of fired schedules; every Broker of a
// deployment joins it, so each fired message is moved once.
const moverGroup = "mq-delay-mover"

// moverConcurrency: moving is one publish per message.
const moverConcurrency = 32

// startMover consumes fired schedules (the delayed stream's due subjects):
// a message not yet due is held with a delayed nak until its DeliverAt;
// a due one is published to its topic (deduplicated by its id, so a mover
// that crashes after the publish does not deliver it twice) and then
// removed from the delayed stream.
func (b *Broker) startMover(ctx context.Context) error {
	stream, err := retryCreate(ctx, func(ctx context.Context) (jetstream.Stream, error) { return b.js.Stream(ctx, b.delayedStream()) })
	if err != nil {
		return fmt.Errorf("natsjs: delayed-message stream on %s: %w", b.where(), err)
	}
	cons, err := b.consumer(ctx, b.delayedStream(), b.cfg.Prefix+".due.>", moverGroup, moverConcurrency)
	if err != nil {
		return fmt.Errorf("natsjs: delayed-message mover on %s: %w", b.where(), err)
	}
	s := b.newSubscription("(delayed)", mq.SubscribeOptions{Group: moverGroup, Concurrency: moverConcurrency}.WithDefaults())
	s.h = func(ctx context.Context, jm jetstream.Msg) { b.move(ctx, stream, jm) }
	if err := s.start(cons); err != nil {
		return fmt.Errorf("natsjs: delayed-message mover on %s: %w", b.where(), err)
	}
	b.mover = s
	return nil
}

func (b *Broker) move(ctx context.Context, stream jetstream.Stream, jm jetstream.Msg) {
	meta, err := jm.Metadata()
	if err != nil {
		b.log.Error("natsjs: fired schedule without metadata, leaving it to redelivery", "err", err)
		return
	}
	topic, ok := strings.CutPrefix(jm.Subject(), b.cfg.Prefix+".due.")
	if !ok {
		_ = jm.Term()
		return
	}
	m := decode(jm, 1)
	if wait := time.Until(m.DeliverAt); wait > 0 {
		_ = jm.NakWithDelay(wait) // fired early: hold it, never hand it over early
		return
	}
	if err := b.ensureStream(ctx, topic); err != nil {
		b.log.Warn("natsjs: move delayed message", "topic", topic, "id", m.ID, "err", err)
		_ = jm.NakWithDelay(time.Second)
		return
	}
	due := m.DeliverAt.UnixNano()
	m.DeliverAt = time.Time{}
	nm := b.encode(topic, m, time.Now())
	// A second move of the same message (the mover died before its ack)
	// is dropped by the topic's duplicate window.
	nm.Header[jetstream.MsgIDHeader] = []string{"due:" + m.ID + "@" + strconv.FormatInt(due, 10)}
	if _, err := b.js.PublishMsg(ctx, nm); err != nil {
		if !errors.Is(err, nats.ErrConnectionClosed) {
			b.log.Warn("natsjs: move delayed message to its topic, retrying", "topic", topic, "id", m.ID, "err", b.publishErr(topic, m, err))
		}
		_ = jm.NakWithDelay(time.Second)
		return
	}
	if err := jm.DoubleAck(ctx); err != nil {
		return // redelivered, and the duplicate window drops the second publish
	}
	// Limits retention keeps acknowledged messages; the fired copy is done.
	if err := stream.DeleteMsg(ctx, meta.Sequence.Stream); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		b.log.Debug("natsjs: delete moved message", "seq", meta.Sequence.Stream, "err", err)
	}
}
