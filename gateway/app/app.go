// Package app wires the gateway process: the HTTP API, its limits, the
// reaper of unpublished reservations and the backends, each embedded unless
// configured otherwise. The all-in-one process also starts the order side
// (order/service) and the notifier (notifier/service) in it; the split
// order workers run order/cmd/seckill-order-worker.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/gateway/httpapi"
	"github.com/flashsale/seckill/gateway/ratelimit"
	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/orderid"
	"github.com/flashsale/seckill/order/ordermsg"
	orderservice "github.com/flashsale/seckill/order/service"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/platform/tracing"
	"github.com/flashsale/seckill/static"

	"github.com/flashsale/seckill/notifier"
	"github.com/flashsale/seckill/notifier/contacts"
	"github.com/flashsale/seckill/notifier/schema"
	notifysvc "github.com/flashsale/seckill/notifier/service"
)

// Role selects what a process runs.
type Role int

const (
	// AllInOne runs the gateway and the order side in one process: the
	// default, on the embedded queue, NATS or Kafka.
	AllInOne Role = iota
	// GatewayOnly serves HTTP and publishes to NATS or Kafka; the order
	// workers run elsewhere (seckill-order-worker).
	GatewayOnly
)

func (r Role) String() string {
	return [...]string{"all-in-one", "gateway"}[r]
}

// consumes reports whether the role runs the order side (order/service).
func (r Role) consumes() bool { return r == AllInOne }

// serviceName is the role's service.name on its spans.
func (r Role) serviceName() string {
	return [...]string{"seckill", "seckill-gateway"}[r]
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
	cfg      config.Config
	role     Role
	log      *slog.Logger
	registry *prometheus.Registry

	rdb         redis.UniversalClient
	closeRedis  func() error
	db          *order.Store
	closeDB     func() error
	inv         *inventory.Store
	queue       *orderservice.OpenedQueue
	restorer    *orderservice.Restorer // puts activities Redis lost back
	orders      *orderservice.Service  // the order side; nil where it runs elsewhere
	payer       sale.Payer
	sale        *sale.Service
	notifier    *notifier.Notifier // the all-in-one's mail and SMS; nil when off
	server      *httpapi.Server
	handler     http.Handler
	limits      httpapi.Limits
	ops         *process.Ops // the API on SECKILL_HTTP_ADDR, /metrics on SECKILL_METRICS_ADDR when set
	tracing     *tracing.Tracing
	bgCancel    context.CancelFunc
	bg          sync.WaitGroup
	shutdownOne sync.Once
	shutdownErr error
}

// New connects the backends, applies migrations, loads stock into Redis and
// builds the HTTP handler. Nothing listens until Start.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, role Role) (*App, error) {
	return NewWithOptions(ctx, cfg, log, role, Options{})
}

// NewWithOptions is New with what the embedder provides (Options).
func NewWithOptions(ctx context.Context, cfg config.Config, log *slog.Logger, role Role, opts Options) (_ *App, err error) {
	if role == GatewayOnly && cfg.MQ == config.MQEmbedded {
		return nil, fmt.Errorf("SECKILL_MQ=%s: the %s service runs apart from the others and needs SECKILL_MQ=nats or kafka (the embedded queue lives inside one process; use the all-in-one seckill binary for it)", cfg.MQ, role)
	}
	a := &App{cfg: cfg, role: role, log: log, registry: process.NewRegistry()}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.Background(), max(cfg.ShutdownTimeout, time.Second))
			defer cancel()
			a.closeBackends(cctx)
		}
	}()

	if err := a.startTracing(ctx, opts); err != nil {
		return nil, err
	}
	if err := a.openRedis(ctx); err != nil {
		return nil, err
	}
	gdb, err := sqldb.Open(ctx, sqldb.Config{
		DSN: cfg.DBDSN, DataDir: cfg.DataDir, Logger: log,
		MaxOpenConns: cfg.DBMaxOpenConns, MaxIdleConns: cfg.DBMaxIdleConns, ConnMaxLifetime: cfg.DBConnMaxLifetime,
		// gorm's tracing plugin, for statements under a traced span (the
		// order side's batches and cancels here, a buy's naive insert).
		TracerProvider: a.tracing.TracerProvider(),
	})
	if err != nil {
		return nil, fmt.Errorf("database (SECKILL_DB_DSN): %w", err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("database (SECKILL_DB_DSN): %w", err)
	}
	a.closeDB = sqlDB.Close
	if err := order.Migrate(ctx, gdb); err != nil {
		return nil, fmt.Errorf("database migrations: %w", err)
	}
	a.db = order.NewStore(gdb)
	a.inv = inventory.New(a.rdb, inventory.Options{Prefix: cfg.RedisPrefix})

	if err := a.openQueue(ctx); err != nil {
		return nil, err
	}
	a.queue.RegisterMetrics(a.registry)

	a.restorer = orderservice.NewRestorer(a.serviceDeps())
	if role.consumes() {
		a.orders, err = orderservice.Start(ctx, cfg.Service, a.serviceDeps())
		if err != nil {
			return nil, err
		}
		a.restorer, a.payer = a.orders.Restorer, a.orders.Lifecycle()
	} else {
		// Payments write the outbox; the relay of an order worker
		// publishes them from the table.
		a.payer = order.NewLifecycle(a.db, a.inv, order.LifecycleConfig{
			Publisher: mqotel.NewPublisher(a.queue, a.tracing.MQ()), Logger: log, Registerer: a.registry,
			TracerProvider: a.tracing.TracerProvider(),
		})
	}
	// The all-in-one sends mail and SMS itself, in its own consumer group
	// on the order events (the split deployment runs seckill-notifier).
	if role == AllInOne && cfg.Notify.Enabled {
		a.notifier, err = notifysvc.Start(ctx, cfg.Notify, notifysvc.Deps{
			DB: gdb, Subscriber: a.queue, Registerer: a.registry, Logger: log,
			TracerProvider: a.tracing.TracerProvider(), MQ: a.tracing.MQ(), // Start wraps the subscriber
		})
		if err != nil {
			return nil, fmt.Errorf("notifier: %w", err)
		}
	}

	node, err := leaseNode(ctx, a.rdb, cfg.RedisPrefix)
	if err != nil {
		return nil, err
	}
	ids, err := orderid.New(node)
	if err != nil {
		return nil, err
	}
	a.limits = httpapi.Limits{
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
	}
	pages, err := fs.Sub(static.FS, "web")
	if err != nil {
		return nil, fmt.Errorf("static pages: %w", err)
	}
	// Demo logins get a made-up contact, so the notifier (here or in
	// seckill-notifier) has somewhere to write.
	var demoContacts sale.DemoContacts
	if cfg.Demo {
		if err := schema.Migrate(ctx, gdb); err != nil {
			return nil, fmt.Errorf("database migrations: %w", err)
		}
		demoContacts = contacts.DemoRecorder{Store: contacts.NewStore(gdb)}
	}
	var deadLetters httpapi.DeadLetters // nil on Kafka: 501
	if a.queue.NATS != nil {
		deadLetters = natsDeadLetters{a.queue.NATS}
	}
	tokens := auth.NewTokens(cfg.JWTSecret)
	var tracer trace.Tracer // nil: no reserve spans
	if a.tracing.Enabled() {
		tracer = a.tracing.TracerProvider().Tracer(sale.ScopeName)
	}
	a.sale, err = sale.New(sale.Deps{
		Inventory: inventory.NewCoalescer(a.inv, inventory.CoalesceConfig{MaxBatch: cfg.RedisBatch, MaxWait: cfg.RedisBatchWait}),
		Store:     a.db, Payer: a.payer, Restorer: a.restorer, IDs: ids,
		// The order message carries the buy's trace context (the queue
		// itself when tracing is off).
		Publisher: mqotel.NewPublisher(a.queue, a.tracing.MQ()), Tracer: tracer,
		Tokens: tokens, BuyTokens: auth.NewBuyTokens(cfg.JWTSecret, cfg.BuyTokenTTL), DemoContacts: demoContacts,
		Registerer: a.registry, Logger: log,
	}, sale.Config{
		SoldOutTTL: cfg.SoldOutTTL, PublishTimeout: cfg.PublishTimeout, MaxBuysInFlight: cfg.MaxBuysInFlight,
		RequireBuyToken: cfg.BuyToken == config.BuyTokenRequired,
	})
	if err != nil {
		return nil, err
	}
	var buy sale.Placer = a.sale
	if cfg.BuyMode == config.BuyModeNaive {
		buy = sale.NewNaive(a.sale, a.db, a.registry, log) // the teaching anti-pattern (SECKILL_BUY_MODE=naive)
	}
	a.server, err = httpapi.New(httpapi.Deps{
		Sale: a.sale, Buy: buy, Tokens: tokens, Limits: a.limits, DeadLetters: deadLetters,
		Ready: a.ready, QueueDepth: a.queueDepth, Static: http.FS(pages), Tracing: a.tracing,
		Logger: log, Registry: a.registry,
	}, httpapi.Config{
		AdminToken: auth.AdminToken(cfg.AdminToken), Demo: cfg.Demo, TrustedProxies: cfg.TrustedProxies,
		MaxBodyBytes: cfg.MaxBodyBytes, DashboardStreamsPerIP: cfg.DashboardStreamsPerIP,
		MetricsElsewhere: cfg.MetricsAddr != "", // SECKILL_METRICS_ADDR: its own listener (Start)
	})
	if err != nil {
		return nil, err
	}
	a.handler = a.server
	if err := a.restorer.RestoreAll(ctx); err != nil {
		return nil, err
	}
	log.Info("seckill ready to start", "role", role, "node", node, "config", cfg.Redacted())
	return a, nil
}

// openQueue connects the configured queue backend (order/service's
// OpenQueue). On NATS the order workers' and cancellers' groups are
// declared, so a gateway that starts before any worker keeps its accepted
// orders, and the all-in-one's notifier group too.
func (a *App) openQueue(ctx context.Context) error {
	var groups map[string][]string
	if a.role == AllInOne && a.cfg.Notify.Enabled {
		groups = map[string][]string{ordermsg.TopicOrderEvents: {notifier.Group}}
	}
	q, err := orderservice.OpenQueue(ctx, orderservice.QueueConfig{
		Backend: a.cfg.MQ, StoreDir: filepath.Join(a.cfg.DataDir, "queue"), NATSURL: a.cfg.NATSURL,
		Capacity: a.cfg.QueueCapacity, Groups: groups,
		KafkaBrokers: a.cfg.KafkaBrokers, KafkaPartitions: a.cfg.KafkaPartitions, KafkaReplication: a.cfg.KafkaReplication,
		KafkaSessionTimeout: a.cfg.KafkaSessionTimeout, ClientID: "seckill-" + a.role.String(),
		CloseTimeout: a.cfg.ShutdownTimeout, Logger: a.log,
	})
	if err != nil {
		return err
	}
	a.queue = q
	return nil
}

// serviceDeps are the backends the order side runs on.
func (a *App) serviceDeps() orderservice.Deps {
	return orderservice.Deps{
		DB: a.db, Inventory: a.inv, Queue: a.queue, QueueReader: a.queue.Reader(),
		Registerer: a.registry, Logger: a.log,
		// Start wraps the queue itself (mqotel): the order workers'
		// consumer spans continue the buys' traces.
		TracerProvider: a.tracing.TracerProvider(), MQ: a.tracing.MQ(),
	}
}

// startTracing starts the process's tracing: the embedder's provider
// (Options.TracerProvider) or the exporter cfg.Tracing names, off when
// neither is set. Shutdown flushes it last.
func (a *App) startTracing(ctx context.Context, opts Options) error {
	if opts.TracerProvider != nil {
		a.tracing = tracing.Provided(opts.TracerProvider)
		return nil
	}
	tcfg := a.cfg.Tracing
	tcfg.ServiceName = a.role.serviceName()
	t, err := tracing.Start(ctx, tcfg)
	if err != nil {
		return fmt.Errorf("tracing (SECKILL_OTEL_ENDPOINT): %w", err)
	}
	a.tracing = t
	return nil
}

func (a *App) openRedis(ctx context.Context) error {
	if a.cfg.RedisURL == "" {
		emb, err := inventory.NewEmbedded()
		if err != nil {
			return err
		}
		a.rdb, a.closeRedis = emb.Client, emb.Close
		return a.traceRedis()
	}
	rdb, err := inventory.NewClient(a.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("redis (SECKILL_REDIS_URL): %w", err)
	}
	a.rdb, a.closeRedis = rdb, rdb.Close
	if err := a.traceRedis(); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		return fmt.Errorf("redis (SECKILL_REDIS_URL) unreachable: %w", err)
	}
	return nil
}

// traceRedis adds go-redis's tracing hook to the client when tracing is
// on: a span per command or pipeline, under the span of the request or
// batch that sent it, and none for the background loops' commands
// (ChildrenOnly).
func (a *App) traceRedis() error {
	if !a.tracing.Enabled() {
		return nil
	}
	// Without the statement: a reserve script's arguments are users and
	// request ids, dozens per coalesced call.
	if err := redisotel.InstrumentTracing(a.rdb, redisotel.WithTracerProvider(a.tracing.ChildrenOnly()),
		redisotel.WithDBStatement(false)); err != nil {
		return fmt.Errorf("redis tracing: %w", err)
	}
	return nil
}

// leaseNode takes a node number for order ids from a Redis counter, so two
// gateways sharing a Redis never mint the same id. 1024 live instances is
// the ceiling of the id layout.
func leaseNode(ctx context.Context, rdb redis.UniversalClient, prefix string) (int64, error) {
	n, err := rdb.Incr(ctx, prefix+":node-seq").Result()
	if err != nil {
		return 0, fmt.Errorf("redis: lease an order-id node number: %w", err)
	}
	return (n - 1) % (orderid.MaxNode + 1), nil
}

func (a *App) ready(ctx context.Context) error {
	return process.Readiness(
		process.Check{Name: "redis", Ping: func(ctx context.Context) error { return a.rdb.Ping(ctx).Err() }},
		process.Check{Name: "database", Ping: a.db.Ping},
		process.Check{Name: "queue", Ping: a.queue.Ping},
	)(ctx)
}

// queueDepth is the order messages not yet written, for the dashboard.
func (a *App) queueDepth() (int, bool) {
	d := a.queue.Depth()
	return d, d >= 0
}

// Store is the database side.
func (a *App) Store() *order.Store { return a.db }

// Start listens on cfg.HTTPAddr and serves in the background; it also starts
// the housekeeping loops (reservation reaper, limiter sweeps). The order
// side, where it runs, started in New.
func (a *App) Start(ctx context.Context) error {
	// The API serves /healthz, /readyz and (without SECKILL_METRICS_ADDR)
	// /metrics itself. Live dashboard streams never go idle: end them when
	// Shutdown starts, or it would wait for them until its deadline.
	ops, err := process.ServeOps(process.OpsConfig{
		Addr: a.cfg.HTTPAddr, MetricsAddr: a.cfg.MetricsAddr, Registry: a.registry,
		Handler: a.handler, OnShutdown: a.server.CloseStreams,
	})
	if err != nil {
		return err
	}
	a.ops = ops
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.bgCancel = cancel
	// Sweep at half the idle time (at least every minute, at most every
	// second), so a key outlives its full bucket by at most 1.5 x
	// SECKILL_RATE_LIMITER_IDLE.
	sweep := min(max(a.cfg.RateLimiterIdle/2, time.Second), time.Minute)
	a.bg.Go(func() { a.limits.PerIP.Run(bg, sweep) })
	a.bg.Go(func() { a.limits.PerUser.Run(bg, sweep) })
	a.bg.Go(func() { a.limits.BuyTokenPerUser.Run(bg, sweep) })
	a.bg.Go(func() { a.followReleases(bg) })
	a.bg.Go(func() { a.housekeeping(bg) })
	return nil
}

// followReleases clears this gateway's local sold-out flag of an activity
// whenever any process returns a unit of it to Redis (a cancel, a failed
// publish, a reaped reservation), so a returned unit is on sale at once on
// every gateway. It subscribes again until ctx is done if Redis is away.
func (a *App) followReleases(ctx context.Context) {
	for {
		err := a.inv.SubscribeReleases(ctx, a.sale.ClearSoldOut)
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

// Addr is the address the server listens on (after Start).
func (a *App) Addr() string { return a.ops.Addr() }

// MetricsAddr is the address /metrics listens on apart from Addr (after
// Start), or "" when SECKILL_METRICS_ADDR is unset and /metrics is on Addr.
func (a *App) MetricsAddr() string { return a.ops.MetricsAddr() }

// housekeeping runs every few seconds: it releases reservations whose order
// message never reached the queue (a gateway died between the Lua script
// and the publish). Activities Redis lost are restored by the order side
// (order/service) and, when a request finds one missing, by the gateway.
func (a *App) housekeeping(ctx context.Context) {
	t := time.NewTicker(max(a.cfg.ReservationTTL/3, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		acts, err := a.db.ListActivities(ctx)
		if err != nil {
			a.log.Warn("housekeeping: list activities", "err", err)
			continue
		}
		cutoff := time.Now().Add(-a.cfg.ReservationTTL)
		for i := range acts {
			act := &acts[i]
			if act.EndsAt.Before(cutoff.Add(-time.Hour)) {
				continue
			}
			ids, err := a.inv.ReapPending(ctx, act.ID, cutoff, 500)
			if err != nil {
				a.log.Warn("reaper", "activity_id", act.ID, "err", err)
				continue
			}
			if len(ids) > 0 {
				a.sale.ClearSoldOut(act.ID)
				a.log.Warn("reaper released unpublished reservations", "activity_id", act.ID, "count", len(ids))
			}
		}
	}
}

// Shutdown stops accepting requests, finishes the ones in flight, drains
// the queue into the database and closes the backends.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdownOne.Do(func() {
		var errs []error
		if a.ops != nil {
			if err := a.ops.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if a.server != nil {
			a.server.CloseStreams() // waits for the dashboard's samplers, which read the backends
		}
		if a.bgCancel != nil {
			a.bgCancel()
		}
		a.bg.Wait()
		errs = append(errs, a.closeBackends(ctx))
		a.shutdownErr = errors.Join(errs...)
	})
	return a.shutdownErr
}

// closeBackends drains the queue first (its handlers write to the database
// and Redis; on Kafka, only handled offsets are committed), then closes the
// stores.
func (a *App) closeBackends(ctx context.Context) error {
	var errs []error
	// The order workers write what waits in the queue first (on NATS; the
	// queue is durable, so nothing is lost if this times out), and the
	// relay, sweeper and reconciler stop.
	a.orders.Drain()
	if a.queue != nil {
		if err := a.queue.Close(); err != nil {
			errs = append(errs, fmt.Errorf("drain queue: %w", err))
		}
	}
	// After the queue: its handlers are done, so only the retrier stops.
	if err := a.notifier.Close(); err != nil {
		errs = append(errs, fmt.Errorf("notifier: %w", err))
	}
	if err := a.orders.Close(); err != nil {
		errs = append(errs, err)
	}
	if a.closeDB != nil {
		if err := a.closeDB(); err != nil {
			errs = append(errs, fmt.Errorf("close database: %w", err))
		}
	}
	if a.closeRedis != nil {
		if err := a.closeRedis(); err != nil {
			errs = append(errs, fmt.Errorf("close redis: %w", err))
		}
	}
	// Last, so the spans of the drain above are exported too, within
	// what is left of Shutdown's deadline (spans are not worth a longer
	// stop).
	if err := a.tracing.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SeedDemo makes sure demo mode has something to buy: when no activity is
// upcoming or on sale, it creates one that starts shortly, so a newcomer
// sees the countdown and then the sale.
func (a *App) SeedDemo(ctx context.Context) (*order.Activity, error) {
	acts, err := a.db.ListActivities(ctx)
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
	if err := a.db.CreateActivity(ctx, act); err != nil {
		return nil, fmt.Errorf("seed demo: %w", err)
	}
	if err := a.restorer.Restore(ctx, act); err != nil {
		return nil, fmt.Errorf("seed demo: %w", err)
	}
	return act, nil
}
