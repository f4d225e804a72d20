package mqotel_test

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/mq/mqotel"
)

// A service wraps its broker once, where it builds it.
func ExampleNewPublisher() {
	tracingOn := false // e.g. SECKILL_OTEL_ENDPOINT is set
	b := memory.New(memory.Config{})
	cfg := mqotel.Config{TracerProvider: otel.GetTracerProvider(), Disabled: !tracingOn}
	pub, sub := mqotel.NewPublisher(b, cfg), mqotel.NewSubscriber(b, cfg)
	defer sub.Close() // closes b

	_ = sub.Subscribe(context.Background(), "orders", mq.SubscribeOptions{}, func(ctx context.Context, m *mq.Message) error {
		// ctx holds the consumer span: children of it join the order's trace.
		return nil
	})
	_ = pub.Publish(context.Background(), "orders", &mq.Message{ID: "o-1", Payload: []byte("{}")})
}

// A worker that writes many messages in one transaction cannot be the
// child of each; its span links to all of them instead.
func ExampleLink() {
	var batch []*mq.Message // collected from several handler calls
	links := make([]trace.Link, 0, len(batch))
	for _, m := range batch {
		links = append(links, mqotel.Link(m))
	}
	ctx, span := otel.Tracer("order/worker").Start(context.Background(), "orders batch", trace.WithLinks(links...))
	defer span.End()
	_ = ctx // the transaction's spans are children of the batch
}
