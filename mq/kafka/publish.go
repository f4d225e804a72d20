package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/flashsale/seckill/mq"
)

// envelope is a message as the backend moves it between topics: the mq
// fields plus the attempt the next delivery represents and the failures
// that count toward MaxAttempts (those not marked mq.Transient) so far.
type envelope struct {
	id        string
	key       string
	headers   map[string]string
	payload   []byte
	deliverAt time.Time
	attempt   int
	failures  int
}

// Publish sends msgs to topic and returns nil only once the brokers
// acknowledged every record (all in-sync replicas). A message with a
// DeliverAt at least the smallest delay level away goes to a delay-level
// topic first (see the package doc). On error some records may have been
// written; the error wraps kafka-go's (kafka.WriteErrors says which). After
// Close it returns an error wrapping mq.ErrClosed. The topic is created on
// first use unless Config.SkipTopicCreation is set.
func (b *Broker) Publish(ctx context.Context, topic string, msgs ...*mq.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka: publish %q: %w", topic, err)
	}
	if !b.beginPublish() {
		return fmt.Errorf("kafka: publish %q: %w", topic, mq.ErrClosed)
	}
	defer b.publishes.Done()
	if err := validTopic(topic); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := b.ensure(ctx, b.topicSpecs(topic)...); err != nil {
		return fmt.Errorf("kafka: publish %q: %w", topic, err)
	}
	now := time.Now()
	recs := make([]kafkago.Message, 0, len(msgs))
	for i, m := range msgs {
		if m == nil {
			return fmt.Errorf("kafka: publish %q: message %d is nil", topic, i)
		}
		id := m.ID
		if id == "" {
			id = b.idPrefix + strconv.FormatUint(b.nextID.Add(1), 36)
		}
		recs = append(recs, b.route(topic, envelope{
			id: id, key: m.Key, headers: m.Headers, payload: m.Payload, deliverAt: m.DeliverAt, attempt: 1,
		}, now))
	}
	if err := b.writer.WriteMessages(ctx, recs...); err != nil {
		return fmt.Errorf("kafka: publish %d messages to %q: %w", len(recs), topic, err)
	}
	return nil
}

// topicSpecs are the topics EnsureTopics(topic) creates.
func (b *Broker) topicSpecs(topic string) []kafkago.TopicConfig {
	specs := []kafkago.TopicConfig{
		b.topicSpec(topic, b.cfg.Partitions),
		b.topicSpec(mq.DeadLetterTopic(topic), b.cfg.AuxPartitions),
	}
	for _, l := range b.levels {
		specs = append(specs, b.topicSpec(l.topic, b.cfg.AuxPartitions))
	}
	return specs
}

// route encodes e for its next hop towards target: the largest delay level
// that does not overshoot DeliverAt, or target itself when less than the
// smallest level remains.
func (b *Broker) route(target string, e envelope, now time.Time) kafkago.Message {
	if !e.deliverAt.IsZero() {
		if l, ok := b.levelFor(e.deliverAt.Sub(now)); ok {
			return encode(l.topic, target, e, now)
		}
	}
	return encode(target, "", e, now)
}

// write publishes recs for the backend itself (retries, dead letters,
// forwards), also while Close waits for handlers, retrying until it
// succeeds or ctx ends, so a short broker outage delays rather than loses.
func (b *Broker) write(ctx context.Context, what string, recs ...kafkago.Message) error {
	backoff := 50 * time.Millisecond
	for {
		err := b.writer.WriteMessages(ctx, recs...)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kafka: %s: %w", what, errors.Join(ctx.Err(), err))
		}
		b.log.Warn("mq: write failed, retrying", "what", what, "backoff", backoff, "error", err.Error())
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: %s: %w", what, errors.Join(ctx.Err(), err))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

var reserved = map[string]bool{
	HeaderMessageID: true, HeaderAttempt: true, HeaderFailures: true, HeaderDeliverAt: true, HeaderDelayTarget: true,
}

// encode builds the record of e on topic; delayTarget is set on delay-level
// records only.
func encode(topic, delayTarget string, e envelope, now time.Time) kafkago.Message {
	hs := make([]kafkago.Header, 0, len(e.headers)+5)
	for _, k := range slices.Sorted(maps.Keys(e.headers)) {
		if !reserved[k] {
			hs = append(hs, kafkago.Header{Key: k, Value: []byte(e.headers[k])})
		}
	}
	hs = append(hs,
		kafkago.Header{Key: HeaderMessageID, Value: []byte(e.id)},
		kafkago.Header{Key: HeaderAttempt, Value: []byte(strconv.Itoa(e.attempt))},
		kafkago.Header{Key: HeaderFailures, Value: []byte(strconv.Itoa(e.failures))},
	)
	if !e.deliverAt.IsZero() {
		hs = append(hs, kafkago.Header{Key: HeaderDeliverAt, Value: []byte(e.deliverAt.UTC().Format(time.RFC3339Nano))})
	}
	if delayTarget != "" {
		hs = append(hs, kafkago.Header{Key: HeaderDelayTarget, Value: []byte(delayTarget)})
	}
	var key []byte
	if e.key != "" { // no key: the balancer spreads the records
		key = []byte(e.key)
	}
	return kafkago.Message{Topic: topic, Key: key, Value: e.payload, Headers: hs, Time: now}
}

// decode reads a record back. Records from other producers lack the
// backend's headers: they get attempt 1, no failures and an ID made of their
// position. A record without a valid x-failures (written before the header
// existed, when every failure counted) counts attempt - 1 failures. It
// returns the x-delay-target header separately.
func decode(r kafkago.Message) (e envelope, delayTarget string, err error) {
	e.key = string(r.Key)
	e.payload = r.Value
	e.attempt = 1
	e.failures = -1 // not read yet
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderMessageID:
			e.id = v
		case HeaderAttempt:
			n, perr := strconv.Atoi(v)
			if perr != nil || n < 1 {
				err = errors.Join(err, fmt.Errorf("header %s: %q is not a positive integer", HeaderAttempt, v))
				continue
			}
			e.attempt = n
		case HeaderFailures:
			n, perr := strconv.Atoi(v)
			if perr != nil || n < 0 {
				err = errors.Join(err, fmt.Errorf("header %s: %q is not a non-negative integer", HeaderFailures, v))
				continue
			}
			e.failures = n
		case HeaderDeliverAt:
			t, perr := time.Parse(time.RFC3339Nano, v)
			if perr != nil {
				err = errors.Join(err, fmt.Errorf("header %s: %w", HeaderDeliverAt, perr))
				continue
			}
			e.deliverAt = t
		case HeaderDelayTarget:
			delayTarget = v
		default:
			if e.headers == nil {
				e.headers = make(map[string]string, len(r.Headers))
			}
			e.headers[h.Key] = v
		}
	}
	if e.failures < 0 {
		e.failures = e.attempt - 1
	}
	if e.id == "" {
		e.id = r.Topic + "-" + strconv.Itoa(r.Partition) + "-" + strconv.FormatInt(r.Offset, 10)
	}
	return e, delayTarget, err
}
