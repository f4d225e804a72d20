package batch_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/batch"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/mq/mqtest"
	"github.com/flashsale/seckill/mq/natsjs"
)

// quiet discards the logs of the backends and the decorators: the suite
// fails handlers on purpose.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestConformance runs the backends' conformance suite over the decorator
// pair on the in-memory backend and on the embedded JetStream backend (a
// real file store), in two modes: as configured by default, where a batch
// of one message goes out plain, so the suite's envelopes are those of its
// multi-message publishes; and with every message in an envelope, so every
// case (redelivery, dead letters, transient failures, concurrency, groups,
// headers, traces) runs through envelopes, with the retry bounds of a
// message split out of its envelope (mqtest.Features.SplitRetries).
func TestConformance(t *testing.T) {
	backends := []struct {
		name     string
		open     mqtest.Factory
		features mqtest.Features
	}{
		{"memory", func(t *testing.T, cfg mqtest.BackendConfig) (mq.Publisher, mq.Subscriber) {
			b := memory.New(memory.Config{Capacity: cfg.Capacity, Logger: quiet()})
			t.Cleanup(func() { _ = b.Close() })
			return b, b
		}, mqtest.Features{Bounded: true, DrainsOnClose: true}},
		{"natsjs-embedded", func(t *testing.T, cfg mqtest.BackendConfig) (mq.Publisher, mq.Subscriber) {
			b, err := natsjs.New(t.Context(), natsjs.Config{StoreDir: t.TempDir(), Capacity: cfg.Capacity, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b, b
		}, mqtest.Features{Bounded: true}},
	}
	modes := []struct {
		name  string
		cfg   batch.Config
		split bool // mqtest.Features.SplitRetries
	}{
		{"default", batch.Config{}, false},
		{"every-message-in-an-envelope", batch.EnvelopeSingles(batch.Config{}), true},
	}
	for _, be := range backends {
		for _, mode := range modes {
			features := be.features
			features.SplitRetries = mode.split
			t.Run(be.name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				mqtest.Run(t, func(t *testing.T, cfg mqtest.BackendConfig) (mq.Publisher, mq.Subscriber) {
					pub, sub := be.open(t, cfg)
					return batch.NewPublisher(pub, mode.cfg), batch.NewSubscriber(sub, pub, batch.SubscriberConfig{Logger: quiet()})
				}, features)
			})
		}
	}
}
