// Package app wires the all-in-one process: gateway, order workers, queue,
// Redis and database in one binary, each backend embedded unless configured
// otherwise. The split services of a larger deployment reuse its pieces.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/gateway/httpapi"
	"github.com/flashsale/seckill/gateway/ratelimit"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/embedded"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/orderid"
	"github.com/flashsale/seckill/static"

	"github.com/flashsale/seckill/notifier"
	"github.com/flashsale/seckill/notifier/contacts"
	"github.com/flashsale/seckill/notifier/schema"
	notifysvc "github.com/flashsale/seckill/notifier/service"
)

// Role selects what a process runs.
type Role int

const (
	// AllInOne runs the gateway and the order workers in one process: the
	// default, on the embedded queue or on Kafka.
	AllInOne Role = iota
	// GatewayOnly serves HTTP and publishes to Kafka; workers run elsewhere.
	GatewayOnly
	// WorkerOnly consumes order messages from Kafka into the database and
	// serves only /healthz, /readyz and /metrics.
	WorkerOnly
)

func (r Role) String() string {
	return [...]string{"all-in-one", "gateway", "order-worker"}[r]
}

func (r Role) serves() bool   { return r != WorkerOnly }
func (r Role) consumes() bool { return r != GatewayOnly }

// queue is what both queue backends provide.
type queue interface {
	mq.Publisher
	mq.Subscriber
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
	queue       queue
	queuePing   func(context.Context) error // nil when in-process
	depth       func() int                  // messages waiting (embedded) or consumer lag (Kafka)
	worker      *order.Worker
	life        *order.Lifecycle
	relay       *order.Relay       // nil where no order worker runs
	notifier    *notifier.Notifier // the all-in-one's mail and SMS; nil when off
	server      *httpapi.Server
	handler     http.Handler
	limits      httpapi.Limits
	http        *http.Server
	listener    net.Listener
	bgCancel    context.CancelFunc
	bg          sync.WaitGroup
	shutdownOne sync.Once
	shutdownErr error
}

// Consumer groups: the order workers, and the cancellers of unpaid orders
// (they run in the same processes).
const (
	orderGroup  = "order-workers"
	cancelGroup = "order-cancellers"
)

// sweepBatch bounds one sweeper query and its cancels.
const sweepBatch = 500

// New connects the backends, applies migrations, loads stock into Redis and
// builds the HTTP handler. Nothing listens until Start.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, role Role) (_ *App, err error) {
	if role != AllInOne && cfg.MQ != config.MQKafka {
		return nil, fmt.Errorf("SECKILL_MQ=%s: the %s service runs apart from the others and needs SECKILL_MQ=kafka (the embedded queue lives inside one process; use the all-in-one seckill binary for it)", cfg.MQ, role)
	}
	a := &App{cfg: cfg, role: role, log: log, registry: prometheus.NewRegistry()}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	defer func() {
		if err != nil {
			a.closeBackends()
		}
	}()

	if err := a.openRedis(ctx); err != nil {
		return nil, err
	}
	gdb, err := order.OpenDB(ctx, order.DBConfig{
		DSN: cfg.DBDSN, DataDir: cfg.DataDir, Logger: log,
		MaxOpenConns: cfg.DBMaxOpenConns, MaxIdleConns: cfg.DBMaxIdleConns, ConnMaxLifetime: cfg.DBConnMaxLifetime,
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
	a.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "seckill_queue_depth",
		Help: "Order messages not yet handled: waiting in the embedded queue, or the order workers' consumer lag on Kafka.",
	}, func() float64 { return float64(a.depth()) }))

	// The outbox relay runs where the order workers run (the gateway's
	// payments reach it through the table); in-process writers kick it.
	kick := func() {}
	if role.consumes() {
		a.relay = order.NewRelay(a.db, a.queue, order.RelayConfig{Logger: log, Registerer: a.registry})
		kick = a.relay.Kick
	}
	a.life = order.NewLifecycle(a.db, a.inv, order.LifecycleConfig{
		Publisher: a.queue, Changed: kick, Logger: log, Registerer: a.registry,
	})
	if role.consumes() {
		a.worker = order.NewWorker(a.db, a.inv, order.WorkerConfig{BatchSize: cfg.WorkerBatch, Logger: log, Registerer: a.registry, Committed: kick})
		err = a.queue.Subscribe(ctx, order.TopicOrders, mq.SubscribeOptions{
			Group: orderGroup, Concurrency: cfg.WorkerConcurrency, MaxAttempts: 10,
			MinBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second,
		}, a.worker.Handle)
		if err != nil {
			return nil, fmt.Errorf("subscribe order workers: %w", err)
		}
		// Cancels are few and each is its own small transaction; a modest
		// concurrency keeps a burst of deadlines from crowding the orders.
		// A cancel fails only while the database or Redis is away, and
		// one that committed but could not return its unit to Redis is
		// finished only by a redelivery (the sweeper looks at created
		// orders), so it is retried for hours rather than dead-lettered.
		err = a.queue.Subscribe(ctx, order.TopicOrderTimeouts, mq.SubscribeOptions{
			Group: cancelGroup, Concurrency: 16, MaxAttempts: 1000,
			MinBackoff: 100 * time.Millisecond, MaxBackoff: 30 * time.Second,
		}, a.life.HandleTimeout)
		if err != nil {
			return nil, fmt.Errorf("subscribe order cancellers: %w", err)
		}
	}
	// The all-in-one sends mail and SMS itself, in its own consumer group
	// on the order events (the split deployment runs seckill-notifier).
	if role == AllInOne && cfg.Notify.Enabled {
		a.notifier, err = notifysvc.Start(ctx, cfg.Notify, notifysvc.Deps{DB: gdb, Subscriber: a.queue, Registerer: a.registry, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("notifier: %w", err)
		}
	}
	if !role.serves() {
		if err := a.restoreAll(ctx); err != nil {
			return nil, err
		}
		a.handler = a.opsHandler()
		log.Info("seckill ready to start", "role", role, "config", cfg.Redacted())
		return a, nil
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
	}
	pages, err := fs.Sub(static.FS, "web")
	if err != nil {
		return nil, fmt.Errorf("static pages: %w", err)
	}
	var naive httpapi.NaiveStore // nil: the pipeline
	if cfg.BuyMode == config.BuyModeNaive {
		naive = a.db // the teaching anti-pattern (SECKILL_BUY_MODE=naive)
	}
	// Demo logins get a made-up contact, so the notifier (here or in
	// seckill-notifier) has somewhere to write.
	var demoContacts httpapi.DemoContacts
	if cfg.Demo {
		if err := schema.Migrate(ctx, gdb); err != nil {
			return nil, fmt.Errorf("database migrations: %w", err)
		}
		demoContacts = contacts.DemoRecorder{Store: contacts.NewStore(gdb)}
	}
	a.server, err = httpapi.New(httpapi.Options{
		Inventory: a.inv, Store: a.db, Publisher: a.queue, Payer: a.life, IDs: ids, Naive: naive,
		Tokens: auth.NewTokens(cfg.JWTSecret), AdminToken: auth.AdminToken(cfg.AdminToken),
		Limits: a.limits, Demo: cfg.Demo, TrustedProxies: cfg.TrustedProxies,
		MaxBodyBytes: cfg.MaxBodyBytes, SoldOutTTL: cfg.SoldOutTTL, PublishTimeout: cfg.PublishTimeout,
		Ready: a.ready, Static: http.FS(pages), Logger: log, Registry: a.registry,
		DemoContacts: demoContacts,
	})
	if err != nil {
		return nil, err
	}
	a.handler = a.server
	if err := a.restoreAll(ctx); err != nil {
		return nil, err
	}
	log.Info("seckill ready to start", "role", role, "node", node, "config", cfg.Redacted())
	return a, nil
}

// opsHandler serves what an order worker exposes: liveness, readiness and
// metrics.
func (a *App) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := a.ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "UNAVAILABLE", "message": "not ready: " + err.Error()})
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	return mux
}

// openQueue connects the configured queue backend.
func (a *App) openQueue(ctx context.Context) error {
	if a.cfg.MQ == config.MQKafka {
		return a.openKafka(ctx)
	}
	b := embedded.New(embedded.Config{Capacity: a.cfg.QueueCapacity, DrainTimeout: a.cfg.ShutdownTimeout, Logger: a.log})
	a.queue = b
	a.depth = func() int { return b.Depth(order.TopicOrders) }
	return nil
}

func (a *App) openRedis(ctx context.Context) error {
	if a.cfg.RedisURL == "" {
		emb, err := inventory.NewEmbedded()
		if err != nil {
			return err
		}
		a.rdb, a.closeRedis = emb.Client, emb.Close
		return nil
	}
	rdb, err := inventory.NewClient(a.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("redis (SECKILL_REDIS_URL): %w", err)
	}
	a.rdb, a.closeRedis = rdb, rdb.Close
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		return fmt.Errorf("redis (SECKILL_REDIS_URL) unreachable: %w", err)
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

// restoreAll makes sure every recent activity has its stock in Redis: after
// Redis lost its data (an embedded Redis restarts empty), the database is the
// truth. Workers need it too: their claims wait for the activity to be there.
func (a *App) restoreAll(ctx context.Context) error {
	acts, err := a.db.ListActivities(ctx)
	if err != nil {
		return fmt.Errorf("list activities: %w", err)
	}
	for i := range acts {
		if acts[i].EndsAt.Before(time.Now().Add(-24 * time.Hour)) {
			continue
		}
		if err := a.restore(ctx, &acts[i]); err != nil {
			return fmt.Errorf("load activity %d into redis: %w", acts[i].ID, err)
		}
	}
	return nil
}

// restore loads one activity into Redis if it is missing there.
func (a *App) restore(ctx context.Context, act *order.Activity) error {
	if _, found, err := a.inv.Remaining(ctx, act.ID); err != nil || found {
		return err
	}
	loaded, n, err := httpapi.RestoreActivity(ctx, a.db, a.inv, act)
	if loaded {
		a.log.Info("loaded activity stock into redis", "activity_id", act.ID, "remaining", act.Available, "reservations", n)
	}
	return err
}

func (a *App) ready(ctx context.Context) error {
	var errs []error
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		errs = append(errs, fmt.Errorf("redis: %w", err))
	}
	if err := a.db.Ping(ctx); err != nil {
		errs = append(errs, fmt.Errorf("database: %w", err))
	}
	if a.queuePing != nil {
		if err := a.queuePing(ctx); err != nil {
			errs = append(errs, fmt.Errorf("kafka: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Store is the database side.
func (a *App) Store() *order.Store { return a.db }

// Start listens on cfg.HTTPAddr and serves in the background; it also starts
// the housekeeping loops (reservation reaper, limiter sweeps).
func (a *App) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("SECKILL_HTTP_ADDR %s: %w", a.cfg.HTTPAddr, err)
	}
	a.listener = ln
	a.http = &http.Server{
		Handler: a.handler, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
	}
	if a.server != nil {
		// Live dashboard streams never go idle: end them when Shutdown
		// starts, or it would wait for them until its deadline.
		a.http.RegisterOnShutdown(a.server.CloseStreams)
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.bgCancel = cancel
	a.bg.Go(func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	})
	if a.role.serves() {
		a.bg.Go(func() { a.limits.PerIP.Run(bg, time.Minute) })
		a.bg.Go(func() { a.limits.PerUser.Run(bg, time.Minute) })
		a.bg.Go(func() { a.followReleases(bg) })
	}
	if a.relay != nil {
		a.bg.Go(func() { a.relay.Run(bg) })
		a.bg.Go(func() { a.life.RunSweeper(bg, a.cfg.SweepInterval, sweepBatch) })
	}
	a.bg.Go(func() { a.housekeeping(bg) })
	return nil
}

// followReleases clears this gateway's local sold-out flag of an activity
// whenever any process returns a unit of it to Redis (a cancel, a failed
// publish, a reaped reservation), so a returned unit is on sale at once on
// every gateway. It subscribes again until ctx is done if Redis is away.
func (a *App) followReleases(ctx context.Context) {
	for {
		err := a.inv.SubscribeReleases(ctx, a.server.ClearSoldOut)
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
func (a *App) Addr() string { return a.listener.Addr().String() }

// housekeeping runs every few seconds: it restores activities that Redis
// lost, and (where the gateway runs) releases reservations whose order
// message never reached the queue (a gateway died between the Lua script
// and the publish).
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
			if err := a.restore(ctx, act); err != nil {
				a.log.Warn("housekeeping: restore activity", "activity_id", act.ID, "err", err)
				continue
			}
			if !a.role.serves() {
				continue
			}
			ids, err := a.inv.ReapPending(ctx, act.ID, cutoff, 500)
			if err != nil {
				a.log.Warn("reaper", "activity_id", act.ID, "err", err)
				continue
			}
			if len(ids) > 0 {
				a.server.ClearSoldOut(act.ID)
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
		if a.http != nil {
			if err := a.http.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			}
		}
		if a.server != nil {
			a.server.CloseStreams() // waits for the dashboard's samplers, which read the backends
		}
		if a.bgCancel != nil {
			a.bgCancel()
		}
		a.bg.Wait()
		errs = append(errs, a.closeBackends())
		a.shutdownErr = errors.Join(errs...)
	})
	return a.shutdownErr
}

// closeBackends drains the queue first (its handlers write to the database
// and Redis; on Kafka, only handled offsets are committed), then closes the
// stores.
func (a *App) closeBackends() error {
	var errs []error
	if a.queue != nil {
		if err := a.queue.Close(); err != nil {
			errs = append(errs, fmt.Errorf("drain queue: %w", err))
		}
	}
	// After the queue: its handlers are done, so only the retrier stops.
	if err := a.notifier.Close(); err != nil {
		errs = append(errs, fmt.Errorf("notifier: %w", err))
	}
	if a.worker != nil {
		if err := a.worker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("order worker: %w", err))
		}
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
	if err := a.server.LoadActivity(ctx, act); err != nil {
		return nil, fmt.Errorf("seed demo: %w", err)
	}
	return act, nil
}
