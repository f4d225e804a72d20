// Package app is the seckill processes' graph: the components of a process
// (tracing, Redis, the database, the queue, the order side, the notifier,
// the sale, its reaper, the HTTP door), each registered once with how it
// starts, how it stops and what it needs, and the binaries as targets of
// it (AllInOne, GatewayOnly). The order worker and the notifier are
// targets of the same components in their own rooms
// (order/service.Run, notifier/delivery.Run).
package app

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
	"gorm.io/gorm"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/gateway/httpapi"
	"github.com/flashsale/seckill/gateway/ratelimit"
	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq/batch"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/notifier"
	"github.com/flashsale/seckill/notifier/contacts"
	"github.com/flashsale/seckill/notifier/delivery"
	"github.com/flashsale/seckill/notifier/schema"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/orderid"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/service"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/static"
)

// Target is what a process runs: a set of the graph's components.
type Target int

const (
	// AllInOne runs the gateway, the order side and the notifier in one
	// process: the default, on the embedded queue, NATS or Kafka.
	AllInOne Target = iota
	// GatewayOnly serves HTTP and publishes to NATS or Kafka; the order
	// workers run elsewhere (seckill-order-worker).
	GatewayOnly
)

func (t Target) String() string {
	return [...]string{"all-in-one", "gateway"}[t]
}

// serviceName is the target's service.name on its spans.
func (t Target) serviceName() string {
	return [...]string{"seckill", "seckill-gateway"}[t]
}

// Names of the gateway's own components (the backends', the order side's
// and the notifier's are named in their rooms).
const (
	ComponentSale     = "sale"     // the use cases and the HTTP handler on them
	ComponentReaper   = "reaper"   // the node lease and the settling of reservations left behind
	ComponentReleases = "releases" // following release announcements into the sold-out flags
	ComponentLimits   = "limits"   // the rate limiters' sweeps
)

// components are what t starts, besides what they need: the HTTP door
// (which needs the sale) and the reaper, and for the all-in-one the order
// side and the notifier.
func (a *App) components(t Target) []string {
	cs := []string{process.ComponentHTTP, ComponentReaper, ComponentReleases}
	if t == AllInOne {
		cs = append(cs, service.ComponentOrders)
		if a.cfg.Notify.Enabled {
			cs = append(cs, delivery.ComponentNotifier)
		}
	}
	return cs
}

// Options are what a process gets from its embedder rather than from its
// environment.
type Options struct {
	// TracerProvider, when set, receives the process's spans instead of
	// the exporter SECKILL_OTEL_ENDPOINT names, and turns tracing on
	// unless it is a noop provider: tests record spans in memory with it.
	// Its owner shuts it down; Shutdown only stops using it.
	TracerProvider trace.TracerProvider
}

// App is one running process.
type App struct {
	cfg    config.Config
	target Target
	log    *slog.Logger
	lc     *process.Lifecycle
	b      *service.Backends
	orders *service.Service // the order side, when the target runs it

	restorer sale.Restorer
	sale     *sale.Service
	server   *httpapi.Server
	limits   httpapi.Limits
	node     int64
	ops      *process.Listeners

	shutdownOne sync.Once
	shutdownErr error
}

// New connects the backends, applies migrations, loads stock into Redis and
// builds the HTTP handler. Nothing listens until Start.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, target Target) (*App, error) {
	return NewWithOptions(ctx, cfg, log, target, Options{})
}

// NewWithOptions is New with what the embedder provides (Options).
func NewWithOptions(ctx context.Context, cfg config.Config, log *slog.Logger, target Target, opts Options) (*App, error) {
	if target == GatewayOnly && cfg.MQ == config.MQEmbedded {
		return nil, fmt.Errorf("SECKILL_MQ=%s: the %s service runs apart from the others and needs SECKILL_MQ=nats or kafka (the embedded queue lives inside one process; use the all-in-one seckill binary for it)", cfg.MQ, target)
	}
	a := &App{cfg: cfg, target: target, log: log, lc: process.NewLifecycle(log)}
	a.lc.WaitForBackends(cfg.StartWait)
	a.register(opts)
	// Everything but the listeners and the loops that follow them: a
	// process is built, then started (Start), as the tests build it.
	var build []string
	for _, c := range a.components(target) {
		if c != process.ComponentHTTP && c != ComponentReaper && c != ComponentReleases {
			build = append(build, c)
		}
	}
	if err := a.lc.Start(ctx, max(cfg.ShutdownTimeout, time.Second), append(build, ComponentSale)...); err != nil {
		return nil, err
	}
	log.Info("seckill ready to start", "target", target, "node", a.node, "config", cfg.Redacted())
	return a, nil
}

// register adds every component of the graph; a target starts only the
// ones it needs.
func (a *App) register(opts Options) {
	cfg := a.cfg
	a.b = &service.Backends{Registry: process.NewRegistry(), Log: a.log}
	var groups map[string][]string
	if cfg.Notify.Enabled {
		// The notifier's group, so events published before it first
		// subscribes are kept.
		groups = map[string][]string{ordermsg.TopicOrderEvents: {notifier.Group}}
	}
	bcfg := cfg.Backends("seckill-"+a.target.String(), groups)
	bcfg.Tracing.ServiceName = a.target.serviceName()
	bcfg.TracerProvider = opts.TracerProvider
	bcfg.Migrations = []func(context.Context, *gorm.DB) error{order.Migrate}
	if cfg.Demo {
		// Demo logins record a made-up contact, in the notifier's table.
		bcfg.Migrations = append(bcfg.Migrations, schema.Migrate)
	}
	a.b.Register(a.lc, bcfg)
	a.orders = service.Register(a.lc, a.b, cfg.Service)
	delivery.Register(a.lc, a.b, cfg.Notify, delivery.Deps{})
	a.lc.Add(process.Component{
		Name:  ComponentSale,
		Needs: []string{service.ComponentRedis, service.ComponentDatabase, service.ComponentQueue},
		Start: a.startSale,
		// The live dashboard's samplers read the backends: they end
		// before the backends close.
		Stop: func(context.Context) error { a.server.CloseStreams(); return nil },
	})
	a.limits = newLimits(cfg)
	a.lc.Add(background(ComponentLimits, nil, func(ctx context.Context) {
		// Sweep at half the idle time (at least every second, at most
		// every minute), so a key outlives its full bucket by at most
		// 1.5 x SECKILL_RATE_LIMITER_IDLE.
		sweep := min(max(cfg.RateLimiterIdle/2, time.Second), time.Minute)
		var wg sync.WaitGroup
		wg.Go(func() { a.limits.PerIP.Run(ctx, sweep) })
		wg.Go(func() { a.limits.PerUser.Run(ctx, sweep) })
		wg.Go(func() { a.limits.BuyTokenPerUser.Run(ctx, sweep) })
		wg.Go(func() { a.limits.QueuePerUser.Run(ctx, sweep) })
		wg.Wait()
	}))
	a.lc.Add(background(ComponentReleases, []string{ComponentSale}, a.followReleases))
	a.lc.Add(background(ComponentReaper, []string{ComponentSale}, func(ctx context.Context) {
		a.sale.RunReaper(ctx, a.b.Inventory, sale.ReaperConfig{Node: a.node, ReservationTTL: cfg.ReservationTTL})
	}))
	a.ops = process.RegisterOps(a.lc, []string{ComponentSale, ComponentLimits}, func() process.OpsConfig {
		// The API serves /healthz, /readyz and (without
		// SECKILL_METRICS_ADDR) /metrics itself. Live dashboard
		// streams never go idle: end them when the shutdown starts, or
		// it would wait for them until its deadline.
		return process.OpsConfig{
			Addr: cfg.HTTPAddr, MetricsAddr: cfg.MetricsAddr, Registry: a.b.Registry,
			Handler: a.server, OnShutdown: a.server.CloseStreams,
		}
	})
}

// background is a component that runs loop until the process stops.
func background(name string, needs []string, loop func(ctx context.Context)) process.Component {
	var cancel context.CancelFunc
	var done sync.WaitGroup
	return process.Component{
		Name: name, Needs: needs,
		Start: func(ctx context.Context) error {
			var bg context.Context
			bg, cancel = context.WithCancel(context.WithoutCancel(ctx))
			done.Go(func() { loop(bg) })
			return nil
		},
		Stop: func(context.Context) error {
			cancel()
			done.Wait()
			return nil
		},
	}
}

func newLimits(cfg config.Config) httpapi.Limits {
	return httpapi.Limits{
		Global: ratelimit.NewGlobal(rate.Limit(cfg.RateGlobal), cfg.RateGlobalBurst),
		PerIP:  ratelimit.NewKeyed(ratelimit.Config{Rate: rate.Limit(cfg.RatePerIP), Burst: cfg.RatePerIPBurst, IdleTTL: cfg.RateLimiterIdle}),
		PerUser: ratelimit.NewKeyed(ratelimit.Config{
			Rate: rate.Limit(cfg.RatePerUser), Burst: cfg.RatePerUserBurst, IdleTTL: cfg.RateLimiterIdle,
		}),
		// The buy-token route has the per-user limit's numbers in buckets
		// of its own: fetching the pass must not spend the buys.
		BuyTokenPerUser: ratelimit.NewKeyed(ratelimit.Config{
			Rate: rate.Limit(cfg.RatePerUser), Burst: cfg.RatePerUserBurst, IdleTTL: cfg.RateLimiterIdle,
		}),
		// The waiting room's routes too: a page polls at its poll_after
		// (twice a second at most), which this never refuses.
		QueuePerUser: ratelimit.NewKeyed(ratelimit.Config{
			Rate: rate.Limit(max(cfg.RatePerUser, 2)), Burst: max(cfg.RatePerUserBurst, 5), IdleTTL: cfg.RateLimiterIdle,
		}),
	}
}

// startSale builds the sale on the backends and the HTTP handler on it,
// leases this process's order-id node and loads every recent activity into
// Redis.
func (a *App) startSale(ctx context.Context) error {
	cfg, b := a.cfg, a.b
	node, err := b.Inventory.LeaseNode(ctx, sale.DefaultNodeTTL)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	a.node = node
	ids, err := orderid.New(node)
	if err != nil {
		return err
	}
	// Where the order side runs here, its restorer (one restore per
	// activity at a time) and its lifecycle (whose writes kick its
	// relay) are the sale's; a gateway alone has its own, and its
	// payments reach a worker's relay through the outbox table.
	var payer sale.Payer
	if a.lc.Started(service.ComponentOrders) {
		a.restorer, payer = a.orders.Restorer, a.orders.Lifecycle()
	} else {
		a.restorer = service.NewRestorer(service.Deps{
			DB: b.DB, Inventory: b.Inventory, QueueReader: b.Queue.Reader(), Logger: a.log,
		})
		payer = order.NewLifecycle(b.DB, b.Inventory, order.LifecycleConfig{
			Publisher: mqotel.NewPublisher(b.Queue, b.Tracing.MQ()), Logger: a.log, Registerer: b.Registry,
			TracerProvider: b.Tracing.TracerProvider(),
		})
	}
	var demoContacts sale.DemoContacts
	if cfg.Demo {
		demoContacts = contacts.DemoRecorder{Store: contacts.NewStore(b.Gorm)}
	}
	var deadLetters httpapi.DeadLetters // nil on Kafka: 501
	if b.Queue.NATS != nil {
		deadLetters = natsDeadLetters{b.Queue.NATS}
	}
	tokens := auth.NewTokens(cfg.JWTSecret)
	var tracer trace.Tracer // nil: no reserve spans
	if b.Tracing.Enabled() {
		tracer = b.Tracing.TracerProvider().Tracer(sale.ScopeName)
	}
	a.sale, err = sale.New(sale.Deps{
		Inventory: inventory.NewCoalescer(b.Inventory, inventory.CoalesceConfig{MaxBatch: cfg.RedisBatch, MaxWait: cfg.RedisBatchWait}),
		Store:     b.DB, Payer: payer, Restorer: a.restorer, IDs: ids,
		// Group commit: concurrent buys' order messages go to the queue in
		// one write (batch), each carrying its buy's trace context
		// (mqotel; the queue itself when tracing is off).
		Publisher: mqotel.NewPublisher(batch.NewPublisher(b.Queue, batch.Config{MaxBatch: cfg.PublishBatch}), b.Tracing.MQ()),
		Tracer:    tracer,
		Tokens:    tokens, BuyTokens: auth.NewBuyTokens(cfg.JWTSecret, cfg.BuyTokenTTL), DemoContacts: demoContacts,
		Queue: b.Inventory, Passes: auth.NewQueuePasses(cfg.JWTSecret),
		Registerer: b.Registry, Logger: a.log,
	}, sale.Config{
		SoldOutTTL: cfg.SoldOutTTL, PublishTimeout: cfg.PublishTimeout, MaxBuysInFlight: cfg.MaxBuysInFlight,
		RequireBuyToken: cfg.BuyToken == config.BuyTokenRequired,
		QueuePrequeue:   cfg.QueuePrequeue, QueueActive: cfg.QueueActive, QueueRate: cfg.QueueRate,
		QueuePollBudget: cfg.QueuePollBudget, QueuePass: cfg.QueuePassTTL,
	})
	if err != nil {
		return err
	}
	var buy sale.Placer = a.sale
	if cfg.BuyMode == config.BuyModeNaive {
		buy = sale.NewNaive(a.sale, b.DB, b.Registry, a.log) // the teaching anti-pattern (SECKILL_BUY_MODE=naive)
	}
	pages, err := fs.Sub(static.FS, "web")
	if err != nil {
		return fmt.Errorf("static pages: %w", err)
	}
	a.server, err = httpapi.New(httpapi.Deps{
		Sale: a.sale, Buy: buy, Tokens: tokens, Limits: a.limits, DeadLetters: deadLetters,
		Ready: process.Readiness(b.Checks()...), QueueDepth: a.queueDepth, Static: http.FS(pages), Tracing: b.Tracing,
		Logger: a.log, Registry: b.Registry,
	}, httpapi.Config{
		AdminToken: auth.AdminToken(cfg.AdminToken), Demo: cfg.Demo, TrustedProxies: cfg.TrustedProxies,
		MaxBodyBytes: cfg.MaxBodyBytes, DashboardStreamsPerIP: cfg.DashboardStreamsPerIP,
		MetricsElsewhere: cfg.MetricsAddr != "", // SECKILL_METRICS_ADDR: its own listener
	})
	if err != nil {
		return err
	}
	if err := process.BackendUp(b.Registry, 2*time.Second, b.Checks); err != nil {
		return err
	}
	if a.lc.Started(service.ComponentOrders) {
		return nil // the order side restored them when it started
	}
	return a.restorer.(*service.Restorer).RestoreAll(ctx)
}

// queueDepth is the order messages not yet written, for the dashboard.
func (a *App) queueDepth() (int, bool) {
	d := a.b.Queue.Depth()
	return d, d >= 0
}

// followReleases clears this gateway's local sold-out flag of an activity
// whenever any process returns a unit of it to Redis (a cancel, a failed
// publish, a reaped reservation), so a returned unit is on sale at once on
// every gateway. It subscribes again until ctx is done if Redis is away.
func (a *App) followReleases(ctx context.Context) {
	for {
		err := a.b.Inventory.SubscribeReleases(ctx, a.sale.ClearSoldOut)
		if err == nil {
			return // the subscription lives until ctx is done
		}
		a.log.Warn("subscribe to stock releases (local sold-out flags fall back to their TTL)", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// Store is the database side.
func (a *App) Store() *order.Store { return a.b.DB }

// Start listens on SECKILL_HTTP_ADDR and serves in the background, with the
// loops that follow it (the reaper, the release follower, the limiters'
// sweeps). The rest started in New.
func (a *App) Start(ctx context.Context) error {
	return a.lc.Start(ctx, max(a.cfg.ShutdownTimeout, time.Second), a.components(a.target)...)
}

// Addr is the address the server listens on (after Start).
func (a *App) Addr() string { return a.ops.Addr() }

// MetricsAddr is the address /metrics listens on apart from Addr (after
// Start), or "" when SECKILL_METRICS_ADDR is unset and /metrics is on Addr.
func (a *App) MetricsAddr() string { return a.ops.MetricsAddr() }

// Shutdown stops every component in reverse start order under ctx's
// deadline: the listeners (the requests in flight finish), the loops, the
// sale, the notifier, the order side (the queue drained into the database
// first), the queue, the database, Redis and, last, tracing, so the spans
// of the shutdown are exported too.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdownOne.Do(func() { a.shutdownErr = a.lc.Stop(ctx) })
	return a.shutdownErr
}

// SeedDemo makes sure demo mode has something to buy: when no activity is
// upcoming or on sale, it creates one that starts shortly, so a newcomer
// sees the countdown and then the sale.
func (a *App) SeedDemo(ctx context.Context) (*order.Activity, error) {
	acts, err := a.b.DB.ListActivities(ctx)
	if err != nil {
		return nil, fmt.Errorf("seed demo: %w", err)
	}
	now := time.Now().UTC()
	for i := range acts {
		if acts[i].EndsAt.After(now) {
			return &acts[i], nil
		}
	}
	act := &order.Activity{
		Name: "Demo flash sale: noise-cancelling headphones", Stock: 100, Available: 100, PriceCents: 9900,
		StartsAt: now.Add(20 * time.Second).Truncate(time.Second), EndsAt: now.Add(2 * time.Hour).Truncate(time.Second),
		PayTimeoutSeconds: 900,
	}
	if err := a.b.DB.CreateActivity(ctx, act); err != nil {
		return nil, fmt.Errorf("seed demo: %w", err)
	}
	if err := a.restorer.Restore(ctx, act); err != nil {
		return nil, fmt.Errorf("seed demo: %w", err)
	}
	return act, nil
}
