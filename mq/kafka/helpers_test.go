package kafka_test

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flashsale/seckill/mq/kafka"
)

// waitTimeout bounds every wait for an event; a slow machine makes the
// tests slower, never red.
const waitTimeout = 20 * time.Second

// newCluster starts an in-process Kafka cluster (the real wire protocol)
// for one test. Its group session floor is lowered so tests can shorten
// the consumer-group timings.
func newCluster(t testing.TB) []string {
	t.Helper()
	return newKfake(t).ListenAddrs()
}

func newKfake(t testing.TB) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// testConfig shortens the consumer-group timings (a rebalance takes a
// heartbeat instead of seconds) and keeps the partition counts small, so
// each test starts few readers.
func testConfig(brokers []string) kafka.Config {
	return kafka.Config{
		Brokers:           brokers,
		ClientID:          "mq-test",
		Partitions:        3,
		AuxPartitions:     1,
		DelayLevels:       []time.Duration{250 * time.Millisecond, time.Second},
		HeartbeatInterval: 100 * time.Millisecond,
		SessionTimeout:    5 * time.Second,
		RebalanceTimeout:  5 * time.Second,
		JoinGroupBackoff:  100 * time.Millisecond,
		FetchMaxWait:      200 * time.Millisecond,
		CloseTimeout:      5 * time.Second,
		Logger:            testLogger(),
	}
}

// testLogger discards unless SECKILL_TEST_KAFKA_LOG names a level (debug,
// info, warn, error); the output then goes to stderr.
func testLogger() *slog.Logger {
	var level slog.Level
	v := os.Getenv("SECKILL_TEST_KAFKA_LOG")
	if v == "" || level.UnmarshalText([]byte(strings.ToUpper(v))) != nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func newBroker(t testing.TB, cfg kafka.Config) *kafka.Broker {
	t.Helper()
	b, err := kafka.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// waitUntil polls cond until it holds, failing after waitTimeout with what
// did not happen.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
