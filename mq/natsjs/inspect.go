package natsjs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flashsale/seckill/mq"
)

// Backlog is what a consumer group of a topic has not settled yet.
type Backlog struct {
	// Messages not yet acknowledged by the group: waiting, in handlers,
	// or waiting for a redelivery.
	Messages int
	// Oldest is when the oldest message still stored on the topic was
	// published (zero when it holds none): the age of the backlog.
	Oldest time.Time
}

// Backlog reports the unsettled messages of group on topic.
func (b *Broker) Backlog(ctx context.Context, topic, group string) (Backlog, error) {
	if err := b.ensureStream(ctx, topic); err != nil {
		return Backlog{}, err
	}
	st, err := b.js.Stream(ctx, b.topicStream(topic))
	if err != nil {
		return Backlog{}, fmt.Errorf("natsjs: stream of %s: %w", topic, err)
	}
	var out Backlog
	si, err := st.Info(ctx)
	if err != nil {
		return Backlog{}, fmt.Errorf("natsjs: stream of %s: %w", topic, err)
	}
	if si.State.Msgs > 0 {
		out.Oldest = si.State.FirstTime
	}
	c, err := st.Consumer(ctx, encodeName(group))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		out.Messages = int(si.State.Msgs) // nobody consumes yet: all of it waits
		return out, nil
	}
	if err != nil {
		return Backlog{}, fmt.Errorf("natsjs: group %s of %s: %w", group, topic, err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return Backlog{}, fmt.Errorf("natsjs: group %s of %s: %w", group, topic, err)
	}
	out.Messages = int(ci.NumPending) + ci.NumAckPending
	return out, nil
}

// StoredMessage is a message read from a topic's stream without consuming
// it, with its stream sequence for Replay and Delete.
type StoredMessage struct {
	Seq uint64
	mq.Message
	Stored time.Time
}

// Stored reads up to limit messages stored on topic (all when limit <= 0),
// oldest first, without consuming them. On an immediate topic these are the
// messages some group has not acknowledged yet (an order topic: accepted
// orders not yet written); on a dead-letter topic, what it holds.
func (b *Broker) Stored(ctx context.Context, topic string, limit int) ([]StoredMessage, error) {
	if err := b.ensureStream(ctx, topic); err != nil {
		return nil, err
	}
	st, err := b.js.Stream(ctx, b.topicStream(topic))
	if err != nil {
		return nil, fmt.Errorf("natsjs: stream of %s: %w", topic, err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsjs: stream of %s: %w", topic, err)
	}
	var out []StoredMessage
	for seq := si.State.FirstSeq; si.State.Msgs > 0 && seq <= si.State.LastSeq; seq++ {
		if limit > 0 && len(out) >= limit {
			break
		}
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // acknowledged or deleted meanwhile
		}
		if err != nil {
			return out, fmt.Errorf("natsjs: read %s message %d: %w", topic, seq, err)
		}
		m := decodeRaw(raw.Header, raw.Data)
		out = append(out, StoredMessage{Seq: seq, Message: *m, Stored: raw.Time})
	}
	return out, nil
}

// Replay publishes the dead letters at seqs of deadLetterTopic back to the
// topic they came from, without the dead-letter headers and as attempt 1,
// then deletes them from the dead-letter topic. It returns how many it
// replayed; a sequence that is gone is skipped.
func (b *Broker) Replay(ctx context.Context, deadLetterTopic string, seqs ...uint64) (int, error) {
	if !isDeadLetterTopic(deadLetterTopic) {
		return 0, fmt.Errorf("natsjs: replay from %s: not a dead-letter topic", deadLetterTopic)
	}
	st, err := b.js.Stream(ctx, b.topicStream(deadLetterTopic))
	if err != nil {
		return 0, fmt.Errorf("natsjs: stream of %s: %w", deadLetterTopic, err)
	}
	n := 0
	for _, seq := range seqs {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("natsjs: read %s message %d: %w", deadLetterTopic, seq, err)
		}
		m := decodeRaw(raw.Header, raw.Data)
		topic := m.Headers[mq.HeaderOriginalTopic]
		if topic == "" {
			return n, fmt.Errorf("natsjs: %s message %d has no %s header", deadLetterTopic, seq, mq.HeaderOriginalTopic)
		}
		m.Headers = maps.Clone(m.Headers)
		delete(m.Headers, mq.HeaderOriginalTopic)
		delete(m.Headers, mq.HeaderDeadLetterReason)
		delete(m.Headers, mq.HeaderDeadLetterAttempts)
		if err := b.ensureStream(ctx, topic); err != nil {
			return n, err
		}
		nm := b.encode(topic, m, time.Now())
		// Its original id is within the duplicate window if it failed
		// fast: a replay is a new message as far as dedupe goes.
		nm.Header[jetstream.MsgIDHeader] = []string{fmt.Sprintf("replay:%d:%s", seq, m.ID)}
		if _, err := b.js.PublishMsg(ctx, nm); err != nil {
			return n, b.publishErr(topic, m, err)
		}
		if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return n, fmt.Errorf("natsjs: delete replayed %s message %d: %w", deadLetterTopic, seq, err)
		}
		n++
	}
	return n, nil
}

// Delete removes the messages at seqs from topic's stream (an operator
// discarding dead letters it has dealt with).
func (b *Broker) Delete(ctx context.Context, topic string, seqs ...uint64) error {
	st, err := b.js.Stream(ctx, b.topicStream(topic))
	if err != nil {
		return fmt.Errorf("natsjs: stream of %s: %w", topic, err)
	}
	for _, seq := range seqs {
		if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("natsjs: delete %s message %d: %w", topic, seq, err)
		}
	}
	return nil
}

// Len reports how many messages topic's stream holds: on a dead-letter
// topic, the dead letters waiting for an operator.
func (b *Broker) Len(ctx context.Context, topic string) (int, error) {
	if err := b.ensureStream(ctx, topic); err != nil {
		return 0, err
	}
	st, err := b.js.Stream(ctx, b.topicStream(topic))
	if err != nil {
		return 0, fmt.Errorf("natsjs: stream of %s: %w", topic, err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("natsjs: stream of %s: %w", topic, err)
	}
	return int(si.State.Msgs), nil
}
