// Package mq is the narrow messaging contract of the pipeline: a Publisher, a
// Subscriber and the Message they carry. Backends (natsjs: NATS JetStream,
// embedded or a cluster, the durable default; kafka; memory: in-process and
// lost on a crash, for tests) live in sub-packages and all pass the shared
// conformance suite in mqtest, so the gateway and the workers never know
// which one they run on.
//
// Delivery is at-least-once: a handler that returns nil acknowledges the
// message; a handler error makes the backend redeliver it after a backoff, and
// after MaxAttempts failures the message is moved to the topic's dead-letter
// topic (DeadLetterTopic). An error marked Transient (a dependency that is
// down) is retried with capped backoff for as long as it lasts and never
// counts toward MaxAttempts, so an outage is waited out instead of
// dead-lettering every message it touches. Handlers must be idempotent.
package mq

import (
	"context"
	"errors"
	"time"
)

// Errors every backend reports the same way, so callers can use errors.Is.
var (
	// ErrQueueFull means the backend refused the message because it is at
	// capacity. The gateway turns it into 503 BUSY after releasing the
	// reservation; nothing was enqueued.
	ErrQueueFull = errors.New("mq: queue full")
	// ErrClosed means the publisher or subscriber was closed.
	ErrClosed = errors.New("mq: closed")
)

// ErrTransient marks a handler error as a passing condition of a dependency:
// a database or Redis that is unreachable, a deadlock victim, a timeout. Wrap
// errors with Transient and test them with IsTransient.
var ErrTransient = errors.New("mq: transient failure")

// transientError wraps an error so that errors.Is(err, ErrTransient) holds
// while the message and the chain of the original stay intact.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() []error {
	return []error{e.err, ErrTransient}
}

// Transient marks err as transient: the backend redelivers the message after
// its backoff (capped at MaxBackoff) however often it fails that way, and the
// failure does not count toward MaxAttempts. Transient(nil) is nil.
func Transient(err error) error {
	if err == nil || errors.Is(err, ErrTransient) {
		return err
	}
	return transientError{err}
}

// IsTransient reports whether err was marked with Transient.
func IsTransient(err error) bool { return errors.Is(err, ErrTransient) }

// Header names set by backends on delivered or dead-lettered messages.
const (
	// HeaderDeadLetterReason carries the last handler error of a message
	// that was moved to the dead-letter topic.
	HeaderDeadLetterReason = "x-dead-letter-reason"
	// HeaderDeadLetterAttempts carries how many deliveries were tried.
	HeaderDeadLetterAttempts = "x-dead-letter-attempts"
	// HeaderOriginalTopic names the topic a dead-lettered message came from.
	HeaderOriginalTopic = "x-original-topic"
)

// DeadLetterTopic is the topic where messages of topic go after MaxAttempts.
func DeadLetterTopic(topic string) string { return topic + ".dlq" }

// Message is one unit of work. Publishers fill ID (optional: backends assign
// one when empty), Key, Headers, Payload and DeliverAt; backends fill Attempt
// on delivery.
type Message struct {
	// ID identifies the message across redeliveries.
	ID string
	// Key selects the partition on partitioned backends; messages with the
	// same key are delivered in publish order when they are not delayed.
	Key string
	// Headers are opaque string pairs carried with the message.
	Headers map[string]string
	// Payload is the body, opaque to the backend.
	Payload []byte
	// DeliverAt delays delivery until that instant; the zero value (or a
	// time in the past) means now. A backend never delivers early.
	DeliverAt time.Time
	// Attempt is 1 on first delivery and grows with each redelivery
	// (transient failures included).
	Attempt int
}

// Publisher sends messages to a topic.
type Publisher interface {
	// Publish returns nil only once every message is accepted durably by
	// the backend (for Kafka: acknowledged by the brokers). On error none
	// or some of msgs may have been accepted; callers that need
	// all-or-nothing publish one message at a time.
	Publish(ctx context.Context, topic string, msgs ...*Message) error
	// Close stops intake; later Publish calls return ErrClosed.
	Close() error
}

// Handler processes one message. Returning nil acknowledges it; an error
// schedules a redelivery. The context is cancelled when the subscriber is
// force-stopped.
type Handler func(ctx context.Context, msg *Message) error

// SubscribeOptions tune one subscription. The zero value of each field
// selects its documented default.
type SubscribeOptions struct {
	// Group names the consumer group. Each group receives every message of
	// the topic once; members of a group share the messages. Default
	// "default".
	Group string
	// Concurrency is how many handler calls may run at once for this
	// subscription. Default 1.
	Concurrency int
	// MaxAttempts is how many failed deliveries a message gets before it
	// is dead-lettered; failures marked Transient do not count. Default 5.
	MaxAttempts int
	// MinBackoff is the delay before the first redelivery; each further
	// redelivery doubles it up to MaxBackoff. Defaults 100ms and 10s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// WithDefaults returns o with zero fields replaced by their defaults.
func (o SubscribeOptions) WithDefaults() SubscribeOptions {
	if o.Group == "" {
		o.Group = "default"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	return o
}

// Backoff returns the delay before redelivering a message that has failed
// attempt times (attempt >= 1): MinBackoff doubled per failure, capped at
// MaxBackoff, which is also the pace of the retries through an outage.
func (o SubscribeOptions) Backoff(attempt int) time.Duration {
	d := o.MinBackoff
	for i := 1; i < attempt && d < o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, o.MaxBackoff)
}

// Subscriber delivers a topic's messages to handlers.
type Subscriber interface {
	// Subscribe starts delivering messages of topic to h in the
	// background and returns once the subscription is registered:
	// messages published after it returns are delivered to it.
	Subscribe(ctx context.Context, topic string, opts SubscribeOptions, h Handler) error
	// Close stops fetching new messages and waits for the handlers in
	// flight. The memory backend also drains its queues (it would lose
	// them); durable backends leave unhandled messages stored for the
	// next consumer. See each backend for the bounds.
	Close() error
}
