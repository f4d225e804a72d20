package service

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/backend"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/platform/tracing"
)

// Names of the backend components (Backends.Register).
const (
	ComponentTracing  = "tracing"
	ComponentRedis    = "redis"
	ComponentDatabase = "database"
	ComponentQueue    = "queue"
)

// BackendConfig is how a process reaches its backends.
type BackendConfig struct {
	// Tracing is where spans go; off when its endpoint is empty.
	Tracing tracing.Config
	// TracerProvider, when set, receives the spans instead (tests record
	// them in memory), and turns tracing on unless it is a noop provider.
	// Its owner shuts it down.
	TracerProvider trace.TracerProvider
	// RedisURL is SECKILL_REDIS_URL; empty runs an embedded miniredis
	// (the all-in-one only). RedisPrefix is SECKILL_REDIS_PREFIX.
	RedisURL, RedisPrefix string
	// DB is the database (SECKILL_DB_DSN; empty: SQLite under the data
	// directory). Its Logger and TracerProvider are filled in.
	DB sqldb.Config
	// Migrations run once the database is open, in order: each process
	// migrates the tables it uses.
	Migrations []func(context.Context, *gorm.DB) error
	// Queue is the queue backend (SECKILL_MQ and the rest).
	Queue backend.Config
}

// Backends are the connections a process of the pipeline opens, each a
// component of its lifecycle (Register): tracing, Redis, the database and
// the queue. A field is set once its component started.
type Backends struct {
	Tracing *tracing.Tracing
	Redis   redis.UniversalClient
	// Inventory is the stock in Redis, on Redis.
	Inventory *inventory.Store
	Gorm      *gorm.DB
	DB        *order.Store
	Queue     *Queue

	Registry *prometheus.Registry
	Log      *slog.Logger
}

// Register adds the backends' components to lc, each started only when a
// target needs it (the notifier needs no Redis). Everything needs tracing,
// so its spans are flushed last.
func (b *Backends) Register(lc *process.Lifecycle, cfg BackendConfig) {
	var closeRedis func() error
	lc.Add(process.Component{
		Name: ComponentTracing,
		Start: func(ctx context.Context) error {
			if cfg.TracerProvider != nil {
				b.Tracing = tracing.Provided(cfg.TracerProvider)
				return nil
			}
			t, err := tracing.Start(ctx, cfg.Tracing)
			if err != nil {
				return fmt.Errorf("tracing (%s): %w", tracing.EndpointVar, err)
			}
			b.Tracing = t
			return nil
		},
		Stop: func(ctx context.Context) error { return b.Tracing.Shutdown(ctx) },
	})
	lc.Add(process.Component{
		Name: ComponentRedis, Needs: []string{ComponentTracing},
		Start: func(ctx context.Context) (err error) {
			b.Redis, closeRedis, err = openRedis(ctx, cfg.RedisURL, b.Tracing)
			if err != nil {
				return unreachable(err)
			}
			b.Inventory = inventory.New(b.Redis, inventory.Options{Prefix: cfg.RedisPrefix})
			return nil
		},
		Stop: func(context.Context) error {
			if err := closeRedis(); err != nil {
				return fmt.Errorf("close redis: %w", err)
			}
			return nil
		},
	})
	lc.Add(process.Component{
		Name: ComponentDatabase, Needs: []string{ComponentTracing},
		Start: func(ctx context.Context) error {
			dcfg := cfg.DB
			dcfg.Logger = b.Log
			// gorm's tracing plugin, for statements under a traced span
			// (the order side's batches and cancels, a naive insert).
			dcfg.TracerProvider = b.Tracing.TracerProvider()
			gdb, err := sqldb.Open(ctx, dcfg)
			if err != nil {
				return unreachable(fmt.Errorf("database (SECKILL_DB_DSN): %w", err))
			}
			b.Gorm = gdb
			for _, m := range cfg.Migrations {
				if err := m(ctx, gdb); err != nil {
					return errors.Join(fmt.Errorf("database migrations: %w", err), closeGorm(gdb))
				}
			}
			b.DB = order.NewStore(gdb)
			return nil
		},
		Stop: func(context.Context) error { return closeGorm(b.Gorm) },
	})
	lc.Add(process.Component{
		Name: ComponentQueue, Needs: []string{ComponentTracing},
		Start: func(ctx context.Context) error {
			qcfg := cfg.Queue
			qcfg.Logger = b.Log
			q, err := OpenQueue(ctx, qcfg)
			if err != nil {
				return unreachable(err)
			}
			b.Queue = q
			if b.Registry != nil {
				q.RegisterMetrics(b.Registry)
			}
			return nil
		},
		// Idempotent: the order side closes the queue first when it
		// drains (Service.Stop).
		Stop: func(context.Context) error { return b.Queue.Close() },
	})
}

// unreachable marks err process.ErrUnreachable when the backend did not
// answer (refused, reset, timed out: a restart, or not up yet), so that the
// start waits for it (SECKILL_START_WAIT); an answer (a wrong password, an
// unknown database) fails the start at once.
func unreachable(err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, mq.ErrTransient):
		return process.Unreachable(err)
	}
	return err
}

func closeGorm(gdb *gorm.DB) error {
	sqlDB, err := gdb.DB()
	if err == nil {
		err = sqlDB.Close()
	}
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// openRedis connects SECKILL_REDIS_URL, or starts the embedded miniredis
// when it is empty, with go-redis's tracing hook when tracing is on: a
// span per command under the span of the request or batch that sent it,
// none for the background loops' commands (ChildrenOnly), and no
// statement (a reserve script's arguments are users and request ids).
func openRedis(ctx context.Context, url string, t *tracing.Tracing) (redis.UniversalClient, func() error, error) {
	var rdb redis.UniversalClient
	var closeFn func() error
	if url == "" {
		emb, err := inventory.NewEmbedded()
		if err != nil {
			return nil, nil, err
		}
		rdb, closeFn = emb.Client, emb.Close
	} else {
		c, err := inventory.NewClient(url)
		if err != nil {
			return nil, nil, fmt.Errorf("redis (SECKILL_REDIS_URL): %w", err)
		}
		rdb, closeFn = c, c.Close
	}
	if t.Enabled() {
		if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(t.ChildrenOnly()),
			redisotel.WithDBStatement(false)); err != nil {
			_ = closeFn()
			return nil, nil, fmt.Errorf("redis tracing: %w", err)
		}
	}
	if url != "" {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := rdb.Ping(pctx).Err(); err != nil {
			_ = closeFn()
			return nil, nil, fmt.Errorf("redis (SECKILL_REDIS_URL) unreachable: %w", err)
		}
	}
	return rdb, closeFn, nil
}

// Checks are the readiness checks of the backends that started: the names
// /readyz reports when one is down.
func (b *Backends) Checks() []process.Check {
	var cs []process.Check
	if b.Redis != nil {
		cs = append(cs, process.Check{Name: "redis", Ping: func(ctx context.Context) error { return b.Redis.Ping(ctx).Err() }})
	}
	if b.DB != nil {
		cs = append(cs, process.Check{Name: "database", Ping: b.DB.Ping})
	}
	if b.Queue != nil {
		cs = append(cs, process.Check{Name: "queue", Ping: b.Queue.Ping})
	}
	return cs
}
