// Package mqtest is the conformance suite every mq backend passes, so the
// gateway and the workers can rely on one behaviour whichever backend they
// run on. A backend's test calls Run with a Factory that builds a fresh
// backend per case and the Features it has.
//
// The suite asserts only what the mq contract promises: delivery with
// intact fields, redelivery with backoff, dead-lettering, delayed delivery
// never early, capacity (for bounded backends), drain on Close, bounded
// concurrency, consumer-group fan-out, headers intact on every path a
// message takes, and a trace that crosses the backend through the mqotel
// decorators. Time is only ever measured as a lower bound (nothing arrives
// too early); waits are bounded by WaitTimeout and fail naming what did not
// arrive, so a slow machine makes the suite slower, never red.
package mqtest

import (
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
)

// WaitTimeout bounds every wait of the suite for an event.
const WaitTimeout = 10 * time.Second

// BackendConfig is what a case asks of the backend it builds.
type BackendConfig struct {
	// Capacity is the bound a bounded backend must enforce per topic and
	// group on unhandled messages (ready, in flight or awaiting a retry).
	// Zero means the backend's default; unbounded backends ignore it.
	Capacity int
}

// Factory builds a fresh backend for one case. Publisher and Subscriber may
// be the same value. The factory should close them in t.Cleanup; the suite
// closes them too, so Close must be idempotent. Topics are named by the
// suite (unique per case, [a-zA-Z0-9._-] only); a backend that needs topics
// created must create them on first use.
type Factory func(t *testing.T, cfg BackendConfig) (mq.Publisher, mq.Subscriber)

// Features declares the optional behaviours of a backend; the cases that
// depend on one are skipped (or weakened, as documented) when it is false.
type Features struct {
	// Bounded: Publish fails with an error wrapping mq.ErrQueueFull once a
	// topic-group holds BackendConfig.Capacity unhandled messages.
	Bounded bool
	// DrainsOnClose: Close returns only after every message accepted
	// before it has been handled. Backends that leave unhandled messages
	// to the next consumer (Kafka commits only handled offsets) leave it
	// false; the suite then only checks that no handler runs after Close.
	DrainsOnClose bool
	// SplitRetries: the decorator pair of package mq/batch with every
	// message sent in an envelope. A message that fails for good inside
	// its envelope is republished alone, due after its backoff, and from
	// then on retried by the backend as a new message: its Attempt goes
	// on counting, but the move costs it a step of the backoff ladder
	// (the redelivery after failed attempt a >= 2 waits at least
	// Backoff(a-1), not Backoff(a)) and one delivery more before it is
	// dead-lettered (MaxAttempts + 1, of which the dead letter's
	// attempts header counts the MaxAttempts since the move). The
	// redelivery, dead-letter and header cases check those bounds when
	// it is set; every other expectation stands. No backend sets it.
	SplitRetries bool
}

// Run runs the conformance cases as parallel subtests of t.
//
// Every case subscribes before it publishes and expects the messages
// published after Subscribe returned; a backend whose groups join
// asynchronously must start new groups at the earliest offset.
func Run(t *testing.T, newBackend Factory, f Features) {
	cases := []struct {
		name string
		run  func(*testing.T, Factory, Features)
	}{
		{"Delivery", testDelivery},
		{"RedeliveryWithBackoff", testRedelivery},
		{"DeadLetterAfterMaxAttempts", testDeadLetter},
		{"TransientFailuresNeverDeadLetter", testTransient},
		{"DelayedNeverEarly", testDelayed},
		{"QueueFull", testQueueFull},
		{"CloseDrains", testCloseDrains},
		{"Concurrency", testConcurrency},
		{"ConsumerGroups", testGroups},
		{"HeadersOnEveryPath", testHeaders},
		{"TracePropagation", testTracePropagation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newBackend, f)
		})
	}
}
