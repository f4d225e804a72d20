// Package notifier tells buyers about their orders by mail and SMS without
// ever slowing an order down. It consumes the order-events topic in its own
// consumer group, so the order workers never wait for it, and it keeps its
// work in its own table, so a slow or dead provider never holds a queue.
//
// # Delivery discipline
//
// For each event and each channel (mail, SMS) the notifier inserts a row in
// the notifications table (package ledger) before sending anything. The
// UNIQUE (event_id, channel) key is the dedupe: the outbox relay's
// redeliveries, a second replica and a restart all find the row and send
// nothing. Channels are independent rows, so mail failing never re-sends the
// SMS.
//
// The inserting handler then makes the first attempt itself, after the
// channel's rate limit (x/time/rate, per process). A transient failure
// (timeout, refused connection, SMTP 4xx, HTTP 5xx/429) parks the row with
// exponential backoff and jitter and acknowledges the queue message: the
// retrier, a loop in every notifier process, claims due rows and tries again
// until the row is RetryFor old, then dead-letters it. A permanent failure
// (SMTP 5xx, provider 4xx, a template that cannot render) is dead-lettered at
// once, with the reason in last_error. Because the work lives in the database,
// an SMTP outage of hours costs rows, not queue capacity, and the mail goes
// out when the server is back, from whichever replica is alive.
//
// # The crash window
//
// A row is owned through a lease (due_at_ms) and every state change is a
// compare-and-swap on its version. A process that dies after inserting or
// claiming a row leaves it pending; after the lease (3 x SendTimeout) any
// replica retries it. Exactly-once delivery to an SMTP server or an SMS
// provider is impossible: a process that dies after the provider accepted a
// message but before the row is marked sent (one UPDATE) sends it again after
// the lease. The resend carries the same Message-ID, and the same
// Idempotency-Key for SMS providers that honour one. Everything else is
// at-most-once per (event, channel).
package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/time/rate"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/notifier/channel"
	"github.com/flashsale/seckill/notifier/contacts"
	"github.com/flashsale/seckill/notifier/ledger"
	"github.com/flashsale/seckill/notifier/render"
	"github.com/flashsale/seckill/order/ordermsg"
)

// Group is the consumer group of the notifier on ordermsg.TopicOrderEvents.
const Group = "notifier"

// ScopeName is the instrumentation scope of the notifier's spans.
const ScopeName = "github.com/flashsale/seckill/notifier"

// Attributes of the spans "notify mail" and "notify sms".
const (
	ChannelKey   = attribute.Key("seckill.notify.channel")
	EventTypeKey = attribute.Key("seckill.order.event.type")
	EventIDKey   = attribute.Key("seckill.order.event.id")
	OrderIDKey   = attribute.Key("seckill.order.id")
	AttemptKey   = attribute.Key("seckill.notify.attempt")
	OutcomeKey   = attribute.Key("seckill.notify.outcome")
)

// Outcomes of one attempt, the OutcomeKey attribute.
const (
	OutcomeSent         = "sent"
	OutcomeRetry        = "retry"         // failed, parked for the retrier
	OutcomeDeadLettered = "dead_lettered" // refused, or retried for too long
	OutcomeReleased     = "released"      // not attempted (rate limit, stopping): back to the retrier
)

// Limit is a per-channel send rate.
type Limit struct {
	Rate  float64 // sends per second
	Burst int
}

// Defaults of Options.
const (
	DefaultSendTimeout  = 10 * time.Second
	DefaultRetryMin     = time.Second
	DefaultRetryMax     = 5 * time.Minute
	DefaultRetryFor     = 24 * time.Hour
	DefaultConcurrency  = 8
	DefaultPollInterval = time.Second
	DefaultRetention    = 30 * 24 * time.Hour
)

// Default rate limits: well inside what common transactional mail and SMS
// accounts allow per sending process.
var (
	DefaultMailLimit = Limit{Rate: 10, Burst: 20}
	DefaultSMSLimit  = Limit{Rate: 5, Burst: 10}
)

// Options wire a Notifier. Ledger, Contacts and Renderer are required; a nil
// Mailer or Texter turns that channel off.
type Options struct {
	Ledger   *ledger.Ledger
	Contacts contacts.Source
	Renderer *render.Renderer
	Mailer   channel.Mailer
	Texter   channel.Texter

	MailLimit Limit // default DefaultMailLimit
	SMSLimit  Limit // default DefaultSMSLimit
	// Concurrency is how many parked notifications the retrier sends at
	// once. Default DefaultConcurrency.
	Concurrency int
	// SendTimeout bounds one attempt, and the wait for the rate limit
	// before it. Default DefaultSendTimeout.
	SendTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts: RetryMin
	// doubled per failed attempt, capped at RetryMax, then jittered.
	RetryMin, RetryMax time.Duration
	// RetryFor is how long transient failures are retried, counted from
	// the first attempt; then the notification is dead-lettered.
	RetryFor time.Duration
	// PollInterval is how often the retrier looks for due notifications.
	PollInterval time.Duration
	// Retention is how long sent rows are kept: the dedupe memory. Default
	// DefaultRetention.
	Retention time.Duration

	Registerer prometheus.Registerer // nil: metrics are kept but not exported
	Logger     *slog.Logger
	// Jitter returns a number in [0, 1); nil uses math/rand/v2.
	Jitter func() float64
	// TracerProvider traces each attempt with a span "notify mail" or
	// "notify sms" around the send, a child of the event's consumer span
	// when Handle runs under mqotel's subscriber (so in the order's
	// trace); the retrier's later attempts start traces of their own.
	// Default (nil) a noop provider: tracing off.
	TracerProvider trace.TracerProvider
}

func (o *Options) withDefaults() error {
	if o.Ledger == nil || o.Contacts == nil || o.Renderer == nil {
		return errors.New("notifier: Ledger, Contacts and Renderer are required")
	}
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	def(&o.SendTimeout, DefaultSendTimeout)
	def(&o.RetryMin, DefaultRetryMin)
	def(&o.RetryMax, DefaultRetryMax)
	def(&o.RetryFor, DefaultRetryFor)
	def(&o.PollInterval, DefaultPollInterval)
	def(&o.Retention, DefaultRetention)
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MailLimit.Rate <= 0 || o.MailLimit.Burst <= 0 {
		o.MailLimit = DefaultMailLimit
	}
	if o.SMSLimit.Rate <= 0 || o.SMSLimit.Burst <= 0 {
		o.SMSLimit = DefaultSMSLimit
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.TracerProvider == nil {
		o.TracerProvider = noop.NewTracerProvider()
	}
	return nil
}

// sender is one channel as the notifier drives it.
type sender struct {
	name    string
	span    string // "notify <name>"
	limiter *rate.Limiter
	address func(contacts.Contact) string
	send    func(ctx context.Context, e ordermsg.Event, to string) error
}

// Notifier consumes order events and delivers notifications. Handle is the
// mq.Handler; Start runs the retrier until Close.
type Notifier struct {
	opts     Options
	log      *slog.Logger
	ledger   *ledger.Ledger
	metrics  *notifierMetrics
	tracer   trace.Tracer // nil: tracing off
	senders  []*sender
	byName   map[string]*sender
	lease    time.Duration
	stop     context.CancelFunc
	done     sync.WaitGroup
	startOne sync.Once
	stopOne  sync.Once
}

// New builds a Notifier; nothing runs until Start (the retrier) and the
// caller subscribing Handle.
func New(opts Options) (*Notifier, error) {
	if err := opts.withDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("notifier: register metrics: %w", err)
	}
	n := &Notifier{
		opts: opts, log: opts.Logger, ledger: opts.Ledger, metrics: m, byName: map[string]*sender{},
		// The lease covers the rate-limit wait, the send and the
		// outcome's write, each bounded by SendTimeout.
		lease: 3 * opts.SendTimeout,
	}
	if _, off := opts.TracerProvider.(noop.TracerProvider); !off {
		n.tracer = opts.TracerProvider.Tracer(ScopeName)
	}
	r := opts.Renderer
	if opts.Mailer != nil {
		n.add(&sender{
			name: channel.Mail, limiter: rate.NewLimiter(rate.Limit(opts.MailLimit.Rate), opts.MailLimit.Burst),
			address: func(c contacts.Contact) string { return c.Email },
			send: func(ctx context.Context, e ordermsg.Event, to string) error {
				msg, err := r.Mail(e, to)
				if err != nil {
					return channel.Permanent(err)
				}
				return opts.Mailer.SendMail(ctx, msg)
			},
		})
	}
	if opts.Texter != nil {
		n.add(&sender{
			name: channel.SMS, limiter: rate.NewLimiter(rate.Limit(opts.SMSLimit.Rate), opts.SMSLimit.Burst),
			address: func(c contacts.Contact) string { return c.Phone },
			send: func(ctx context.Context, e ordermsg.Event, to string) error {
				msg, err := r.SMS(e, to)
				if err != nil {
					return channel.Permanent(err)
				}
				return opts.Texter.SendSMS(ctx, msg)
			},
		})
	}
	return n, nil
}

func (n *Notifier) add(s *sender) {
	s.span = "notify " + s.name
	n.senders = append(n.senders, s)
	n.byName[s.name] = s
}

// SubscribeOptions are the options to subscribe Handle with: the notifier's
// own group, so order workers and other consumers never wait for it. The
// queue's retries only cover failures to reach the database (the ledger),
// which Handle marks mq.Transient, so a database outage is waited out at
// MaxBackoff and never dead-letters events; channel failures are retried
// by the notifier itself.
func SubscribeOptions(concurrency int) mq.SubscribeOptions {
	return mq.SubscribeOptions{
		Group: Group, Concurrency: max(concurrency, 1), MaxAttempts: 20,
		MinBackoff: 200 * time.Millisecond, MaxBackoff: 30 * time.Second,
	}
}

// maxIDLen is the width of the ledger's id columns.
const maxIDLen = 64

// Handle processes one order event. It returns an error only when the
// database could not record the work (the queue then redelivers, and the
// dedupe makes that safe); channel failures are parked, never returned.
//
// Every error it returns is mq.Transient: it can only come from the
// contacts lookup or the ledger insert, that is from the database being
// away (or the subscription stopping), which a redelivery outlasts. What
// would fail for good never gets here: an unreadable event is dropped, a
// mail server that is down is an outage the retrier waits out, and an
// address the provider refuses is dead-lettered in the ledger.
func (n *Notifier) Handle(ctx context.Context, msg *mq.Message) error {
	return mq.Transient(n.handle(ctx, msg))
}

func (n *Notifier) handle(ctx context.Context, msg *mq.Message) error {
	ev, err := ordermsg.DecodeEvent(msg.Payload)
	if err == nil && (len(ev.ID) > maxIDLen || len(ev.OrderID) > maxIDLen || len(ev.UserID) > maxIDLen) {
		err = fmt.Errorf("order event %s: event_id, order_id or user_id longer than %d bytes", ev.ID, maxIDLen)
	}
	if err != nil {
		// Retrying cannot repair a payload: drop it loudly.
		n.metrics.invalid.Inc()
		n.log.ErrorContext(ctx, "notifier: dropping an order event it cannot read", "message_id", msg.ID, "err", err)
		return nil
	}
	c, found, err := n.opts.Contacts.Lookup(ctx, ev.UserID)
	if err != nil {
		return fmt.Errorf("notifier: event %s: %w", ev.ID, err)
	}
	errs := make([]error, len(n.senders))
	var wg sync.WaitGroup
	for i, s := range n.senders {
		to := ""
		if found {
			to = s.address(c)
		}
		if to == "" {
			n.metrics.count(s.name, ResultSkipped)
			n.log.DebugContext(ctx, "notifier: no address", "channel", s.name, "user_id", ev.UserID, "event_id", ev.ID)
			continue
		}
		wg.Go(func() { errs[i] = n.deliverNew(ctx, s, ev, msg.Payload, to) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deliverNew claims (event, channel) and makes the first attempt.
func (n *Notifier) deliverNew(ctx context.Context, s *sender, ev ordermsg.Event, payload []byte, to string) error {
	e := &ledger.Entry{
		EventID: ev.ID, Channel: s.name, EventType: ev.Type, OrderID: ev.OrderID, UserID: ev.UserID,
		Recipient: to, Payload: payload,
	}
	inserted, existing, err := n.ledger.Insert(ctx, e, n.lease)
	if err != nil {
		return err
	}
	if !inserted {
		n.metrics.count(s.name, ResultDuplicate)
		n.log.DebugContext(ctx, "notifier: duplicate event", "channel", s.name, "event_id", ev.ID, "status", existing.Status)
		return nil
	}
	n.attempt(ctx, s, e, ev)
	return nil
}

// attempt sends a notification the caller owns (inserted or claimed) and
// records the outcome, in a span of its own when tracing is on.
func (n *Notifier) attempt(ctx context.Context, s *sender, e *ledger.Entry, ev ordermsg.Event) {
	if n.tracer == nil {
		n.try(ctx, s, e, ev)
		return
	}
	ctx, span := n.tracer.Start(ctx, s.span, trace.WithAttributes(
		ChannelKey.String(s.name), EventTypeKey.String(ev.Type), EventIDKey.String(e.EventID),
		OrderIDKey.String(e.OrderID), AttemptKey.Int(e.Attempts+1)))
	outcome, err := n.try(ctx, s, e, ev)
	span.SetAttributes(OutcomeKey.String(outcome))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// try is one attempt: the rate limit, the send, the outcome recorded in the
// ledger. It returns the outcome and the send's error.
func (n *Notifier) try(ctx context.Context, s *sender, e *ledger.Entry, ev ordermsg.Event) (outcome string, sendErr error) {
	log := n.log.With("channel", s.name, "event_id", e.EventID, "order_id", e.OrderID, "attempt", e.Attempts+1)
	// Record outcomes even while stopping: the send happened either way.
	rec, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.SendTimeout)
	defer cancel()

	wait, cancelWait := context.WithTimeout(ctx, n.opts.SendTimeout)
	err := s.limiter.Wait(wait)
	cancelWait()
	if err != nil {
		// Stopping, or the channel's rate is spoken for longer than a
		// lease allows: hand the row to the retrier without counting an
		// attempt.
		if _, rerr := n.ledger.Release(rec, e, time.Now().Add(n.opts.PollInterval)); rerr != nil {
			log.WarnContext(ctx, "notifier: release after rate-limit wait", "err", rerr)
		}
		return OutcomeReleased, nil
	}

	start := time.Now()
	sendCtx, cancelSend := context.WithTimeout(ctx, n.opts.SendTimeout)
	err = s.send(sendCtx, ev, e.Recipient)
	cancelSend()
	n.metrics.seconds.WithLabelValues(s.name).Observe(time.Since(start).Seconds())

	var ok bool
	var dberr error
	switch {
	case err == nil:
		outcome = OutcomeSent
		n.metrics.count(s.name, ResultSent)
		ok, dberr = n.ledger.MarkSent(rec, e)
		log.DebugContext(ctx, "notifier: sent")
	case ctx.Err() != nil:
		// The process is stopping; the attempt was cut short, not failed.
		outcome = OutcomeReleased
		ok, dberr = n.ledger.Release(rec, e, time.Now())
	case channel.IsPermanent(err):
		outcome = OutcomeDeadLettered
		n.metrics.count(s.name, ResultFailed)
		n.metrics.count(s.name, ResultDeadLettered)
		ok, dberr = n.ledger.MarkDeadLettered(rec, e, err.Error())
		log.WarnContext(ctx, "notifier: dead-lettered, the provider refused it", "err", err)
	default:
		n.metrics.count(s.name, ResultFailed)
		next := time.Now().Add(n.backoff(e.Attempts + 1))
		if next.Sub(e.CreatedAt) > n.opts.RetryFor {
			outcome = OutcomeDeadLettered
			n.metrics.count(s.name, ResultDeadLettered)
			reason := fmt.Sprintf("gave up after %d attempts over %s: %v", e.Attempts+1, time.Since(e.CreatedAt).Round(time.Second), err)
			ok, dberr = n.ledger.MarkDeadLettered(rec, e, reason)
			log.WarnContext(ctx, "notifier: dead-lettered, retries exhausted", "err", err)
			break
		}
		outcome = OutcomeRetry
		n.metrics.count(s.name, ResultRetried)
		ok, dberr = n.ledger.Reschedule(rec, e, next, err.Error())
		log.InfoContext(ctx, "notifier: attempt failed, will retry", "retry_at", next.UTC(), "err", err)
	}
	switch {
	case dberr != nil:
		// The lease runs out and the row is retried: at worst a resend.
		log.ErrorContext(ctx, "notifier: could not record the outcome", "err", dberr)
	case !ok:
		log.WarnContext(ctx, "notifier: lost the row's lease during the attempt; another replica owns it now")
	}
	return outcome, err
}
