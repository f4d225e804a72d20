package spike

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/flashsale/seckill/gateway/app"
	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/order"
)

// embeddedLimits are the gateway rate limits of an in-process instance.
// Every simulated user comes from this one process, so the per-IP and the
// global limits would cap the generator itself and turn the run into a
// test of the limiter: they are lifted. The per-user limit stays at the
// product default (2/s, burst 5), so the bots meet it and the funnel
// shows it.
var embeddedLimits = map[string]string{
	"SECKILL_RATE_GLOBAL": "1000000", "SECKILL_RATE_GLOBAL_BURST": "1000000",
	"SECKILL_RATE_PER_IP": "1000000", "SECKILL_RATE_PER_IP_BURST": "1000000",
}

// instance is a gateway started in-process for one run.
type instance struct {
	app      *app.App
	base     string
	secret   string
	admin    string
	backends string
	settings []string
	cleanup  func()
}

// startEmbedded runs the all-in-one process on a loopback port with the
// given buy mode, on embedded backends unless redisURL / dbDSN name real
// ones. extra overrides any SECKILL_* variable (worker concurrency, batch
// size, limits...).
func startEmbedded(ctx context.Context, mode string, redisURL, dbDSN string, extra map[string]string, log *slog.Logger) (*instance, error) {
	dir, err := os.MkdirTemp("", "seckill-loadtest-")
	if err != nil {
		return nil, fmt.Errorf("embedded instance: temp data dir: %w", err)
	}
	inst := &instance{secret: randomHex(24), admin: randomHex(16)}
	env := map[string]string{
		"SECKILL_HTTP_ADDR":    "127.0.0.1:0",
		"SECKILL_DATA_DIR":     dir,
		"SECKILL_JWT_SECRET":   inst.secret,
		"SECKILL_ADMIN_TOKEN":  inst.admin,
		"SECKILL_DEMO":         "false",
		"SECKILL_REDIS_URL":    redisURL,
		"SECKILL_DB_DSN":       dbDSN,
		"SECKILL_REDIS_PREFIX": "loadtest-" + randomHex(4), // never collide with another run on a shared Redis
		"SECKILL_BUY_MODE":     mode,
		"SECKILL_LOG_LEVEL":    "warn",
		// The queue must hold the whole spike: 503 BUSY from a full queue
		// would measure the queue's size, not the design.
		"SECKILL_QUEUE_CAPACITY": "1000000",
	}
	for k, v := range embeddedLimits {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("embedded instance configuration: %w", err)
	}
	a, err := app.New(ctx, cfg, log, app.AllInOne)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("embedded instance: %w", err)
	}
	if err := a.Start(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_ = a.Shutdown(sctx)
		cancel()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("embedded instance: %w", err)
	}
	inst.app = a
	inst.base = "http://" + a.Addr()
	inst.backends = fmt.Sprintf("in-process gateway+workers, redis %s, database %s, queue embedded",
		orEmbedded(redisURL, "miniredis"), orEmbedded(dbDSN, "SQLite"))
	inst.settings = []string{
		fmt.Sprintf("SECKILL_BUY_MODE=%s", cfg.BuyMode),
		fmt.Sprintf("SECKILL_BUY_TOKEN=%s (buy tokens), valid %s", cfg.BuyToken, cfg.BuyTokenTTL),
		fmt.Sprintf("rate limits: global %s/s, per IP %s/s (lifted: one process sends for every user), per user %s/s burst %d (the product default)",
			short(cfg.RateGlobal), short(cfg.RatePerIP), short(cfg.RatePerUser), cfg.RatePerUserBurst),
		fmt.Sprintf("workers: concurrency %d, batch %d; queue capacity %d; sold-out flag TTL %s", cfg.Service.WorkerConcurrency, cfg.Service.WorkerBatch, cfg.QueueCapacity, cfg.SoldOutTTL),
	}
	inst.cleanup = func() {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout+5*time.Second)
		defer cancel()
		if err := a.Shutdown(sctx); err != nil {
			log.Warn("embedded instance shutdown", "err", err)
		}
		os.RemoveAll(dir)
	}
	return inst, nil
}

// store is the instance's database, for the audit's direct reads.
func (i *instance) store() *order.Store { return i.app.Store() }

func orEmbedded(v, name string) string {
	if v == "" {
		return "embedded " + name
	}
	return "external"
}

func short(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}
