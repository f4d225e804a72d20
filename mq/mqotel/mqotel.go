// Package mqotel traces the pipeline across its queue with OpenTelemetry.
// It decorates any mq.Publisher and mq.Subscriber (memory, natsjs, kafka:
// one implementation for all), so that a message's producer and consumer
// spans belong to one trace although the request that published it was
// answered long before the message was handled.
//
// The publisher starts one PRODUCER span per message, named
// "<topic> publish", and writes its context into Message.Headers with the
// W3C names traceparent, tracestate and baggage; every backend carries
// headers unchanged through delayed delivery, redelivery and into the
// dead-letter topic, so they arrive on the far side under the same names
// (on Kafka as the standard record headers other clients read). The
// subscriber reads them back and runs the handler inside a CONSUMER span
// named "<topic> process", a child of the producer span; the handler's
// context holds that span, so the work it does (a batch, a database
// transaction) can start children of it or link to it. A handler error sets
// the span's status to Error and its error.type attribute to "transient"
// (mq.Transient: retried without counting toward MaxAttempts) or
// "permanent". Attributes follow the OpenTelemetry messaging semantic
// conventions: messaging.system, messaging.destination.name,
// messaging.operation.type and .name, messaging.message.id,
// messaging.consumer.group.name and, for a Publish of several messages,
// messaging.batch.message_count; AttemptKey records Message.Attempt.
//
// # Wiring
//
// A service wraps its broker once, where it builds it, and hands the
// wrappers to everything that publishes or subscribes; nothing else in the
// service knows about tracing:
//
//	b, err := natsjs.New(ctx, natsCfg)
//	...
//	tcfg := mqotel.Config{TracerProvider: tp, Disabled: !tracingOn}
//	pub := mqotel.NewPublisher(b, tcfg)
//	sub := mqotel.NewSubscriber(b, tcfg)
//	defer sub.Close() // closes b: the wrappers delegate Close
//
// With tracing off (Disabled, or a trace/noop provider) NewPublisher and
// NewSubscriber return the broker itself, so the hot path costs nothing.
// Code that publishes on behalf of an earlier request (the outbox relay
// reading rows written in that request's transaction) can store the
// context with Inject when it writes the row; a handler that batches many
// messages into one unit of work links the batch's span to each of them
// with Link.
package mqotel

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/seckill/mq"
)

// ScopeName is the instrumentation scope of the spans this package starts.
const ScopeName = "github.com/flashsale/seckill/mq/mqotel"

// DefaultSystem is messaging.system for a backend that does not name
// itself (see Config.System).
const DefaultSystem = "mq"

// AttemptKey is the attribute holding Message.Attempt on consumer spans:
// the conventions have no backend-neutral attribute for it, and a trace
// with several process spans of one message is read by their attempts.
const AttemptKey = attribute.Key("seckill.mq.attempt")

// Values of error.type on a span whose handler failed: how the backend
// treats the failure.
const (
	errorTransient = "transient"
	errorPermanent = "permanent"
)

// Config configures the decorators. The zero value traces with otel's
// global TracerProvider and propagates W3C Trace Context and Baggage.
type Config struct {
	// TracerProvider creates the spans. Default otel.GetTracerProvider(),
	// which follows a provider installed later with
	// otel.SetTracerProvider. A noop.TracerProvider counts as Disabled.
	// Until a global provider is installed otel's global one still
	// costs a few allocations per message; a service with tracing off
	// sets Disabled (or passes a noop provider) to pay nothing.
	TracerProvider trace.TracerProvider
	// Propagator writes the span context into Message.Headers and reads
	// it back; publishers and subscribers of a topic must agree on it.
	// Default W3C Trace Context and Baggage (headers traceparent,
	// tracestate, baggage), not otel's global propagator, whose own
	// default propagates nothing and would silently cut every trace at
	// the queue.
	Propagator propagation.TextMapPropagator
	// System is the messaging.system attribute. Default: what the
	// wrapped backend reports with a MessagingSystem() string method
	// (memory, nats, kafka), else DefaultSystem.
	System string
	// Disabled makes NewPublisher and NewSubscriber return what they are
	// given, unwrapped: no span, no header, no cost per message.
	Disabled bool
}

func (c Config) withDefaults() Config {
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.Propagator == nil {
		c.Propagator = w3c{}
	}
	return c
}

// Following is how a service that takes a TracerProvider and a Config
// settles both: tp, or a noop provider (tracing off) when nil; and cfg
// with its TracerProvider set to that one when unset, never otel's global
// provider, so the queue is traced only when the process says so.
func Following(tp trace.TracerProvider, cfg Config) (trace.TracerProvider, Config) {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = tp
	}
	return tp, cfg
}

// off reports whether tracing is off: the decorators then step aside.
func (c Config) off() bool {
	if c.Disabled {
		return true
	}
	_, isNoop := c.TracerProvider.(noop.TracerProvider)
	return isNoop
}

// system resolves Config.System for the wrapped value.
func (c Config) system(inner any) attribute.KeyValue {
	s := c.System
	if s == "" {
		if n, ok := inner.(interface{ MessagingSystem() string }); ok {
			s = n.MessagingSystem()
		}
	}
	if s == "" {
		s = DefaultSystem
	}
	return semconv.MessagingSystemKey.String(s)
}

func (c Config) tracer() trace.Tracer {
	return c.TracerProvider.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
}

// NewPublisher returns p with every published message traced (see the
// package doc), or p itself when tracing is off (Config.Disabled or a noop
// provider).
//
// Publish writes the trace headers without ever writing into a Headers
// map it was given: it sets each message's Headers to a new map holding
// the caller's headers plus the trace context (copy on write), so one map
// shared by many messages, or kept by the caller, stays as it was. The
// Message itself is therefore modified (its Headers field), like the
// backends' own Publish may fill an empty ID; publish a copy if that
// matters.
//
// A message's producer span is a child of the span in Publish's context,
// unless the message already carries a trace context in its headers (put
// there with Inject, or by an earlier publish of the same message): then
// it continues that trace and links to the span in the context, so that a
// relay publishing a batch of outbox rows in a context of its own keeps
// each row in the trace of the request that wrote it.
func NewPublisher(p mq.Publisher, cfg Config) mq.Publisher {
	cfg = cfg.withDefaults()
	if cfg.off() {
		return p
	}
	return &publisher{
		inner:  p,
		tracer: cfg.tracer(),
		prop:   cfg.Propagator,
		system: cfg.system(p),
		kind:   trace.WithSpanKind(trace.SpanKindProducer),
	}
}

type publisher struct {
	inner  mq.Publisher
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	system attribute.KeyValue
	kind   trace.SpanStartOption // made once: making one allocates
}

// Publish starts a span per message, injects its context, publishes the
// messages in one call to the wrapped publisher and ends the spans with its
// outcome: on an error every span records it, since the publisher does not
// say which messages were accepted.
func (p *publisher) Publish(ctx context.Context, topic string, msgs ...*mq.Message) error {
	if len(msgs) == 0 {
		return p.inner.Publish(ctx, topic, msgs...)
	}
	var one [1]sent // the gateway publishes one message per call
	spans := one[:]
	if len(msgs) > 1 {
		spans = make([]sent, len(msgs))
	}
	name := topic + " publish"
	attrs := []attribute.KeyValue{
		p.system,
		semconv.MessagingDestinationName(topic),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("publish"),
		{}, // messaging.batch.message_count or messaging.message.id
		{}, // messaging.message.id
	}
	n := 4
	if len(msgs) > 1 {
		attrs[n] = semconv.MessagingBatchMessageCount(len(msgs))
		n++
	}
	pctx := ctx
	for i, m := range msgs {
		if m == nil {
			continue // the wrapped publisher reports it
		}
		a := attrs[:n]
		if m.ID != "" {
			a = append(a, semconv.MessagingMessageID(m.ID))
		}
		opts := []trace.SpanStartOption{p.kind, trace.WithAttributes(a...), nil}
		parent, link := p.parent(ctx, m)
		if link.SpanContext.IsValid() {
			opts[2] = trace.WithLinks(link)
		} else {
			opts = opts[:2]
		}
		sctx, span := p.tracer.Start(parent, name, opts...)
		p.prop.Inject(sctx, MessageCarrier(m))
		spans[i] = sent{span: span, hadID: m.ID != ""}
		if len(msgs) == 1 {
			pctx = sctx // spans the backend itself may start nest under ours
		}
	}
	err := p.inner.Publish(pctx, topic, msgs...)
	for i, s := range spans {
		if s.span == nil {
			continue
		}
		if id := msgs[i].ID; !s.hadID && id != "" {
			s.span.SetAttributes(semconv.MessagingMessageID(id)) // assigned by the backend
		}
		if err != nil {
			s.span.RecordError(err)
			s.span.SetStatus(codes.Error, err.Error())
			s.span.SetAttributes(publishErrorType(err))
		}
		s.span.End()
	}
	return err
}

// parent returns the parent of m's producer span: the trace context m
// already carries when it differs from ctx's, with a link to ctx's span,
// else ctx. A message carries one when it was given it with Inject (an
// outbox row published later by a relay on behalf of its request) or is a
// message published again, and its trace must go on through this publish.
func (p *publisher) parent(ctx context.Context, m *mq.Message) (context.Context, trace.Link) {
	if m.Headers == nil {
		return ctx, trace.Link{}
	}
	mctx := p.prop.Extract(ctx, propagation.MapCarrier(m.Headers))
	msc, csc := trace.SpanContextFromContext(mctx), trace.SpanContextFromContext(ctx)
	if !msc.IsValid() || msc.Equal(csc) {
		return ctx, trace.Link{}
	}
	return mctx, trace.Link{SpanContext: csc}
}

// sent is the producer span of one message of a Publish.
type sent struct {
	span  trace.Span
	hadID bool // the caller set the ID: it is among the start attributes
}

// publishErrorType names the failures the gateway tells apart.
func publishErrorType(err error) attribute.KeyValue {
	switch {
	case errors.Is(err, mq.ErrQueueFull):
		return semconv.ErrorTypeKey.String("queue_full")
	case errors.Is(err, mq.ErrClosed):
		return semconv.ErrorTypeKey.String("closed")
	case errors.Is(err, context.DeadlineExceeded):
		return semconv.ErrorTypeKey.String("timeout")
	case errors.Is(err, context.Canceled):
		return semconv.ErrorTypeKey.String("canceled")
	}
	return semconv.ErrorTypeOther
}

func (p *publisher) Close() error { return p.inner.Close() }

// NewSubscriber returns s with every handler call traced (see the package
// doc), or s itself when tracing is off (Config.Disabled or a noop
// provider). Handlers receive the message as the backend delivered it; the
// headers are only read.
func NewSubscriber(s mq.Subscriber, cfg Config) mq.Subscriber {
	cfg = cfg.withDefaults()
	if cfg.off() {
		return s
	}
	return &subscriber{
		inner:   s,
		tracer:  cfg.tracer(),
		prop:    cfg.Propagator,
		system:  cfg.system(s),
		kind:    trace.WithSpanKind(trace.SpanKindConsumer),
		newRoot: trace.WithNewRoot(),
	}
}

type subscriber struct {
	inner  mq.Subscriber
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	system attribute.KeyValue
	// Made once: making one allocates.
	kind, newRoot trace.SpanStartOption
}

func (s *subscriber) Subscribe(ctx context.Context, topic string, opts mq.SubscribeOptions, h mq.Handler) error {
	if h == nil {
		return s.inner.Subscribe(ctx, topic, opts, h) // which reports it
	}
	return s.inner.Subscribe(ctx, topic, opts, s.handler(topic, opts.WithDefaults().Group, h))
}

func (s *subscriber) Close() error { return s.inner.Close() }

// handler wraps h: each call runs in a consumer span whose parent is the
// context found in the message's headers. A message without one (published
// untraced, or by a foreign producer) starts a trace of its own rather than
// joining whatever span the subscription's context may hold.
func (s *subscriber) handler(topic, group string, h mq.Handler) mq.Handler {
	name := topic + " process"
	base := trace.WithAttributes(
		s.system,
		semconv.MessagingDestinationName(topic),
		semconv.MessagingConsumerGroupName(group),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
	)
	return func(ctx context.Context, m *mq.Message) (err error) {
		pctx := s.prop.Extract(ctx, propagation.MapCarrier(m.Headers))
		own := trace.WithAttributes(semconv.MessagingMessageID(m.ID), AttemptKey.Int(m.Attempt))
		var span trace.Span
		if trace.SpanContextFromContext(pctx).IsRemote() {
			ctx, span = s.tracer.Start(pctx, name, s.kind, base, own)
		} else {
			ctx, span = s.tracer.Start(pctx, name, s.kind, base, own, s.newRoot)
		}
		defer func() {
			r := recover()
			switch {
			case r != nil:
				// The backends turn a panic into a failure that counts.
				span.SetStatus(codes.Error, fmt.Sprint("handler panic: ", r))
				span.SetAttributes(semconv.ErrorTypeKey.String(errorPermanent))
			case err != nil:
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
				kind := errorPermanent
				if mq.IsTransient(err) {
					kind = errorTransient
				}
				span.SetAttributes(semconv.ErrorTypeKey.String(kind))
			}
			span.End()
			if r != nil {
				panic(r) // the backend's own recovery logs and settles it
			}
		}()
		return h(ctx, m)
	}
}
