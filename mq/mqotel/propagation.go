package mqotel

import (
	"context"
	"maps"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/mq"
)

// Carrier adapts a Message's Headers to propagation.TextMapCarrier, for a
// propagator other than the default (see Inject). It never writes into the
// map the Message held when the Carrier was made: the first Set replaces
// Message.Headers with a copy (a new map when it was nil) and writes
// there, so a map shared by several messages, or kept by the caller, is
// left as it was.
type Carrier struct {
	msg   *mq.Message
	owned bool // msg.Headers is our copy
}

// MessageCarrier returns the Carrier of m's headers.
func MessageCarrier(m *mq.Message) *Carrier { return &Carrier{msg: m} }

// Get returns the header key, or "" when it is absent.
func (c *Carrier) Get(key string) string { return c.msg.Headers[key] }

// Set sets the header key on the message's own copy of its headers.
func (c *Carrier) Set(key, value string) {
	if !c.owned {
		h := make(map[string]string, len(c.msg.Headers)+3) // room for the W3C fields
		maps.Copy(h, c.msg.Headers)
		c.msg.Headers = h
		c.owned = true
	}
	c.msg.Headers[key] = value
}

// Keys returns the header names, sorted.
func (c *Carrier) Keys() []string { return slices.Sorted(maps.Keys(c.msg.Headers)) }

var _ propagation.TextMapCarrier = (*Carrier)(nil)

// Inject writes the trace context of ctx (its span and baggage) into m's
// headers with the default propagator, W3C Trace Context and Baggage, as
// the publisher does; it copies the headers first, like Carrier. Use it to
// carry a request's context to a message published later on its behalf,
// for example by storing the headers with an outbox row. It writes nothing
// when ctx holds neither a valid span context nor baggage.
func Inject(ctx context.Context, m *mq.Message) {
	w3c{}.Inject(ctx, MessageCarrier(m))
}

// Extract returns ctx with the trace context found in m's headers (a
// remote span context and baggage) read with the default propagator, or
// ctx unchanged when m carries none.
func Extract(ctx context.Context, m *mq.Message) context.Context {
	return w3c{}.Extract(ctx, propagation.MapCarrier(m.Headers))
}

// Link returns a link to the producer span of m, for a span that works on
// many messages at once (the order worker's batch and its transaction)
// and so cannot be the child of each: start it with
// trace.WithLinks(Link(m1), Link(m2), ...) and every order's trace leads to
// it. The link carries m's messaging.message.id. For a message without
// trace context it is the zero Link, which SDKs drop.
func Link(m *mq.Message) trace.Link {
	sc := trace.SpanContextFromContext(Extract(context.Background(), m))
	if !sc.IsValid() {
		return trace.Link{}
	}
	return trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{semconv.MessagingMessageID(m.ID)}}
}

// w3c is the default propagator: W3C Trace Context then W3C Baggage, what
// propagation.NewCompositeTextMapPropagator(TraceContext{}, Baggage{})
// does, as a value without state, so the package needs no variable for it.
type w3c struct{}

func (w3c) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	propagation.TraceContext{}.Inject(ctx, c)
	propagation.Baggage{}.Inject(ctx, c)
}

func (w3c) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	ctx = propagation.TraceContext{}.Extract(ctx, c)
	return propagation.Baggage{}.Extract(ctx, c)
}

func (w3c) Fields() []string { return []string{"traceparent", "tracestate", "baggage"} }
