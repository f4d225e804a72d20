package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/batch"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/notifier"
	"github.com/flashsale/seckill/notifier/channel"
	"github.com/flashsale/seckill/notifier/contacts"
	"github.com/flashsale/seckill/notifier/ledger"
	"github.com/flashsale/seckill/notifier/mail"
	"github.com/flashsale/seckill/notifier/render"
	"github.com/flashsale/seckill/notifier/schema"
	"github.com/flashsale/seckill/notifier/sms"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/service"
	"github.com/flashsale/seckill/platform/process"
)

// Deps are what the hosting process provides.
type Deps struct {
	// DB is the shared database (sqldb.Open). Start applies the
	// notifier's migrations to it.
	DB *gorm.DB
	// Subscriber delivers ordermsg.TopicOrderEvents.
	Subscriber mq.Subscriber
	// Contacts replaces the contacts table (a user service); nil uses it.
	Contacts contacts.Source
	// Registerer receives the metrics; nil keeps them unexported.
	Registerer prometheus.Registerer
	Logger     *slog.Logger

	// Mailer and Texter replace the configured channels (tests); nil
	// builds them from the configuration.
	Mailer channel.Mailer
	Texter channel.Texter
	// Tune adjusts the notifier's options after they are built from the
	// configuration (tests shorten the poll interval).
	Tune func(*notifier.Options)

	// TracerProvider traces the sends ("notify mail", "notify sms") and
	// the SMS webhook's requests. Nil: a noop provider, tracing off.
	TracerProvider trace.TracerProvider
	// MQ traces the subscription: Start wraps Subscriber with mqotel's
	// subscriber, so each event is handled in a consumer span that
	// continues the order's trace and the sends are its children. Pass
	// Subscriber unwrapped. The zero value follows TracerProvider (off
	// when it is); platform/tracing's MQ() gives the process's own.
	MQ mqotel.Config
}

func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.TracerProvider, d.MQ = mqotel.Following(d.TracerProvider, d.MQ)
	return d
}

// Channels builds the senders cfg asks for; nil means the channel is off.
// tp, unless nil or noop, traces the SMS webhook's requests.
func Channels(cfg Config, log *slog.Logger, tp trace.TracerProvider) (channel.Mailer, channel.Texter, error) {
	var m channel.Mailer
	var t channel.Texter
	switch {
	case cfg.SMTP != nil:
		s, err := mail.NewSMTP(*cfg.SMTP)
		if err != nil {
			return nil, nil, fmt.Errorf("SECKILL_SMTP_URL: %w", err)
		}
		m = s
	case cfg.LogMail:
		m = mail.NewLog(log)
	}
	switch {
	case cfg.SMS != nil:
		wcfg := *cfg.SMS
		wcfg.TracerProvider = tp
		w, err := sms.NewWebhook(wcfg)
		if err != nil {
			return nil, nil, fmt.Errorf("SECKILL_SMS_WEBHOOK_URL: %w", err)
		}
		t = w
	case cfg.LogSMS:
		t = sms.NewLog(log)
	}
	return m, t, nil
}

// ComponentNotifier names the notifier in a process's lifecycle.
const ComponentNotifier = "notifier"

// Register adds the notifier to lc, on the database and the queue of b.
// deps gives what Start takes besides them (tests replace the channels);
// its DB, Subscriber, Registerer, Logger, TracerProvider and MQ come from
// b. Stopping closes the retrier; the events in hand finish when the
// queue closes after it.
func Register(lc *process.Lifecycle, b *service.Backends, cfg Config, deps Deps) {
	var n *notifier.Notifier
	lc.Add(process.Component{
		Name: ComponentNotifier, Needs: []string{service.ComponentDatabase, service.ComponentQueue},
		Start: func(ctx context.Context) (err error) {
			// The order events come in the relay's envelopes (mq/batch):
			// each is handled as its own message.
			sub := batch.NewSubscriber(b.Queue, b.Queue, batch.SubscriberConfig{Logger: b.Log})
			deps.DB, deps.Subscriber, deps.Registerer, deps.Logger = b.Gorm, sub, b.Registry, b.Log
			deps.TracerProvider, deps.MQ = b.Tracing.TracerProvider(), b.Tracing.MQ() // Start wraps the subscriber
			n, err = Start(ctx, cfg, deps)
			return err
		},
		Stop: func(context.Context) error { return n.Close() },
	})
}

// Start migrates the notifier's tables, starts the retrier and subscribes
// the notifier to the order events in its own consumer group. It returns a
// nil Notifier (and no error) when cfg turns every channel off. Shut down by
// closing the subscriber first (its handlers finish), then the Notifier.
func Start(ctx context.Context, cfg Config, deps Deps) (*notifier.Notifier, error) {
	deps = deps.withDefaults()
	log := deps.Logger
	mailer, texter, err := Channels(cfg, log, deps.TracerProvider)
	if err != nil {
		return nil, err
	}
	if deps.Mailer != nil {
		mailer = deps.Mailer
	}
	if deps.Texter != nil {
		texter = deps.Texter
	}
	if mailer == nil && texter == nil {
		log.Info("notifier off: no mail or SMS channel configured (SECKILL_SMTP_URL, SECKILL_SMS_WEBHOOK_URL)")
		return nil, nil
	}
	if err := schema.Migrate(ctx, deps.DB); err != nil {
		return nil, err
	}
	ropts := render.Options{Location: cfg.Location}
	if cfg.TemplateDir != "" {
		ropts.Dir = os.DirFS(cfg.TemplateDir)
	}
	r, err := render.New(ropts)
	if err != nil {
		return nil, fmt.Errorf("SECKILL_NOTIFY_TEMPLATE_DIR: %w", err)
	}
	src := deps.Contacts
	if src == nil {
		src = contacts.NewStore(deps.DB)
	}
	opts := notifier.Options{
		Ledger: ledger.New(deps.DB, nil), Contacts: src, Renderer: r, Mailer: mailer, Texter: texter,
		MailLimit:   notifier.Limit{Rate: cfg.MailRate, Burst: cfg.MailBurst},
		SMSLimit:    notifier.Limit{Rate: cfg.SMSRate, Burst: cfg.SMSBurst},
		Concurrency: cfg.Concurrency, SendTimeout: cfg.SendTimeout,
		RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, RetryFor: cfg.RetryFor, Retention: cfg.Retention,
		Registerer: deps.Registerer, Logger: log, TracerProvider: deps.TracerProvider,
	}
	if deps.Tune != nil {
		deps.Tune(&opts)
	}
	n, err := notifier.New(opts)
	if err != nil {
		return nil, err
	}
	n.Start(ctx)
	// Not closed here: the process closes its queue.
	sub := mqotel.NewSubscriber(deps.Subscriber, deps.MQ)
	if err := sub.Subscribe(ctx, ordermsg.TopicOrderEvents, notifier.SubscribeOptions(cfg.Concurrency), n.Handle); err != nil {
		_ = n.Close()
		return nil, fmt.Errorf("notifier: subscribe to %s: %w", ordermsg.TopicOrderEvents, err)
	}
	log.Info("notifier running", "group", notifier.Group, "topic", ordermsg.TopicOrderEvents, "delivery", cfg.Redacted())
	return n, nil
}
