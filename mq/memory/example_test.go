package memory_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
)

func Example() {
	ctx := context.Background()
	broker := memory.New(memory.Config{Capacity: 1000, Logger: slog.New(slog.DiscardHandler)})

	// The order workers: at most 4 database transactions at once.
	err := broker.Subscribe(ctx, "orders", mq.SubscribeOptions{Group: "order-workers", Concurrency: 4},
		func(ctx context.Context, m *mq.Message) error {
			fmt.Printf("handled %s\n", m.Payload)
			return nil
		})
	if err != nil {
		panic(err)
	}

	// The gateway, after a successful reservation.
	if err := broker.Publish(ctx, "orders", &mq.Message{Key: "user-1", Payload: []byte("order-1")}); err != nil {
		if errors.Is(err, mq.ErrQueueFull) {
			fmt.Println("503 BUSY: release the reservation")
		}
		panic(err)
	}

	// Shutdown: Close drains what was accepted.
	if err := broker.Close(); err != nil {
		panic(err)
	}
	fmt.Println("closed; publish now fails:", errors.Is(broker.Publish(ctx, "orders", &mq.Message{}), mq.ErrClosed))
	// Output:
	// handled order-1
	// closed; publish now fails: true
}
