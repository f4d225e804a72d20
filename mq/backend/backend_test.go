package backend_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/backend"
)

// The embedded default opens a JetStream server on its store and answers
// its ping; the groups asked for are declared, so a message published
// before its group subscribes is kept.
func TestOpenEmbedded(t *testing.T) {
	ctx := context.Background()
	q, err := backend.Open(ctx, backend.Config{
		Backend: backend.Embedded, StoreDir: t.TempDir(), CloseTimeout: 5 * time.Second,
		Groups: map[string][]string{"orders": {"workers"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	if q.NATS == nil || q.Kafka != nil {
		t.Fatalf("embedded: NATS %v, Kafka %v", q.NATS, q.Kafka)
	}
	if err := q.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(ctx, "orders", &mq.Message{ID: "m1", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	if err := q.Subscribe(ctx, "orders", mq.SubscribeOptions{Group: "workers"}, func(_ context.Context, m *mq.Message) error {
		got <- m.ID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		if id != "m1" {
			t.Fatalf("delivered %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the message published before its group subscribed was lost")
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(ctx, "orders", &mq.Message{Payload: []byte("y")}); !errors.Is(err, mq.ErrClosed) {
		t.Fatalf("publish after close: %v, want mq.ErrClosed", err)
	}
}

// Kafka: the topics asked for are created at open (on franz-go's kfake, the
// Kafka wire protocol in-process).
func TestOpenKafkaCreatesTopics(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()
	q, err := backend.Open(ctx, backend.Config{
		Backend: backend.Kafka, KafkaBrokers: c.ListenAddrs(), KafkaPartitions: 2, KafkaReplication: 1,
		KafkaSessionTimeout: 6 * time.Second, ClientID: "backend-test", CloseTimeout: 5 * time.Second,
		Topics: []string{"orders"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	if q.Kafka == nil || q.NATS != nil {
		t.Fatalf("kafka: NATS %v, Kafka %v", q.NATS, q.Kafka)
	}
	if err := q.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(ctx, "orders", &mq.Message{Key: "u", Payload: []byte("x")}); err != nil {
		t.Fatalf("publish to the created topic: %v", err)
	}
}

// A bad setting is refused, naming the variable to look at.
func TestOpenNamesTheSetting(t *testing.T) {
	for _, tc := range []struct {
		cfg  backend.Config
		want string
	}{
		{backend.Config{Backend: "rabbit"}, "SECKILL_MQ"},
		{backend.Config{Backend: backend.NATS, NATSURL: "nats://127.0.0.1:1", CloseTimeout: time.Second}, "SECKILL_NATS_URL"},
	} {
		_, err := backend.Open(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v): %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}
