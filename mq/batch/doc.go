// Package batch group-commits messages: a Publisher that packs concurrent
// publishes to one topic into one message of the wrapped backend (an
// envelope), and a Subscriber that unpacks envelopes and hands each message
// to the handler on its own, as if it had travelled alone.
//
// Why: a backend that makes each message durable before it acknowledges it
// pays that price per message. JetStream with sync_interval always (the
// setting that keeps an acknowledged message through a power loss) calls
// fsync for every message it stores, and a stream stores its messages one
// at a time, so a topic would manage a few thousand messages a second and
// every buyer of a spike would queue behind those fsyncs. One envelope of
// a hundred orders costs one write and one fsync; see
// docs/queue-durability.md for the figures.
//
// Each message inside an envelope keeps its ID, Key, Headers and Payload,
// and is handled as if it had travelled alone: its handler call sees the
// envelope's Attempt, a transient failure (mq.Transient) redelivers the
// envelope, and a message that fails for good leaves it: it is republished
// alone, due after the subscription's backoff, and from then on the
// backend retries and dead-letters it like any plain message, so one bad
// message never fails or dead-letters its neighbours. The backends'
// conformance suite (mq/mqtest) passes over the pair.
//
// # Wiring with tracing
//
// Put the tracing decorators of package mqotel outside, on both sides, so
// that the trace context travels in each message's own headers (inside the
// envelope) and each message gets its own consumer span:
//
//	b, _ := natsjs.New(ctx, natsjs.Config{StoreDir: dir, SyncAlways: true})
//	pub := mqotel.NewPublisher(batch.NewPublisher(b, batch.Config{}), tcfg)
//	sub := mqotel.NewSubscriber(batch.NewSubscriber(b, b, batch.SubscriberConfig{}), tcfg)
//
// The Subscriber republishes through the publisher it is given (the second
// argument): give it the backend itself, undecorated, so that a retry keeps
// its original trace context and producer span.
//
// # Compatibility
//
// An envelope is a message with the header HeaderBatch; any other message
// is plain and passes through the Subscriber untouched, so a topic may mix
// both: messages stored before batching was turned on, and other
// publishers (a reconciler's re-drive) that publish unbatched. A consumer
// without the Subscriber would see envelopes as opaque messages: put the
// Subscriber on every consumer of a topic before batching its publishers.
package batch

// Headers of this package. Publish refuses messages that carry one.
const (
	// HeaderBatch marks an envelope; its value is the number of messages
	// it carries, in decimal.
	HeaderBatch = "x-batch"
	// HeaderAttempts is on a message that failed inside an envelope and
	// was republished alone: the deliveries it had in envelopes, in
	// decimal. The Subscriber adds it to each later delivery's Attempt
	// (so Attempt keeps counting) and hands the message over without
	// it. It stays on the message's dead letter, if it gets one, telling
	// the operator where the message has been.
	HeaderAttempts = "x-batch-attempts"
)

// reservedHeader returns the header of this package that h carries, if any.
func reservedHeader(h map[string]string) (string, bool) {
	for _, k := range [...]string{HeaderBatch, HeaderAttempts} {
		if _, ok := h[k]; ok {
			return k, true
		}
	}
	return "", false
}
