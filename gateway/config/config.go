// Package config reads the gateway's configuration from environment
// variables, through platform/env. A value that is present but invalid is an
// error naming the variable, so a typo stops the process at start instead of
// running with a default nobody asked for.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/gateway/httpapi"
	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq/batch"
	"github.com/flashsale/seckill/notifier/delivery"
	"github.com/flashsale/seckill/order/service"
	"github.com/flashsale/seckill/platform/env"
)

// Queue backends.
const (
	// MQEmbedded: a NATS JetStream server inside the process, its store
	// under SECKILL_DATA_DIR/queue (durable across crashes).
	MQEmbedded = service.MQEmbedded
	// MQNATS: the same backend on an external NATS cluster (SECKILL_NATS_URL).
	MQNATS  = service.MQNATS
	MQKafka = service.MQKafka
)

// Buy modes (SECKILL_BUY_MODE).
const (
	// BuyModePipeline is the design: Redis reserve, queue, batching workers.
	BuyModePipeline = "pipeline"
	// BuyModeNaive is the teaching anti-pattern: the buy request locks the
	// activity row and inserts the order inside the request. Only for the
	// load tester's side-by-side comparison; never in production.
	BuyModeNaive = "naive"
)

// Buy tokens (SECKILL_BUY_TOKEN): must a buy carry the pass that GET
// /activities/{id}/buy-token hands out from the sale's start.
const (
	BuyTokenRequired = "required"
	BuyTokenOff      = "off"
)

// DefaultRateLimiterIdle is how long a key's full bucket is kept before it
// is dropped (SECKILL_RATE_LIMITER_IDLE). Dropping a full bucket changes no
// decision (a new key starts full), so it is short: in a spike of a million
// distinct buyers only the last few seconds' keys are held, not all of them.
const DefaultRateLimiterIdle = 10 * time.Second

// DefaultBuyTokenTTL is auth's.
const DefaultBuyTokenTTL = auth.DefaultBuyTokenTTL

// Admission control of the buy route (SECKILL_MAX_BUYS_IN_FLIGHT).
const (
	// DefaultMaxBuysInFlight is sale's, with its reasoning.
	DefaultMaxBuysInFlight = sale.DefaultMaxBuysInFlight
	// MaxMaxBuysInFlight is the largest bound accepted: beyond it the
	// buys wait for one another for seconds again.
	MaxMaxBuysInFlight = 100000
)

// Coalesced Redis calls (SECKILL_REDIS_BATCH, SECKILL_REDIS_BATCH_WAIT).
const (
	// DefaultRedisBatch is the inventory coalescer's.
	DefaultRedisBatch = inventory.DefaultCoalesceMaxBatch
	// MaxRedisBatch is the largest batch accepted: one script call blocks
	// its Redis (or Cluster master) while it decides the whole batch.
	MaxRedisBatch = 1000
	// DefaultRedisBatchWait is the inventory coalescer's.
	DefaultRedisBatchWait = inventory.DefaultCoalesceMaxWait
	// MaxRedisBatchWait is the longest wait accepted: every buy may wait
	// this long before its reserve is sent.
	MaxRedisBatchWait = 10 * time.Millisecond
)

// Config is everything the all-in-one process and the split services need.
// The settings the order worker reads too (addresses, backends, timeouts,
// the order service's tuning, tracing) are service.Shared, read once
// for both by service.ReadShared; the rest are the gateway's own.
type Config struct {
	service.Shared

	JWTSecret  []byte // SECKILL_JWT_SECRET
	AdminToken string // SECKILL_ADMIN_TOKEN
	Demo       bool   // SECKILL_DEMO

	// GeneratedAdminToken is true when AdminToken was made up at start
	// (demo mode), so the process prints it once for the operator.
	GeneratedAdminToken bool

	LogFormat string // SECKILL_LOG_FORMAT: text or json

	RateGlobal       float64 // SECKILL_RATE_GLOBAL: requests/s over all API calls
	RateGlobalBurst  int     // SECKILL_RATE_GLOBAL_BURST
	RatePerIP        float64 // SECKILL_RATE_PER_IP
	RatePerIPBurst   int     // SECKILL_RATE_PER_IP_BURST
	RatePerUser      float64 // SECKILL_RATE_PER_USER
	RatePerUserBurst int     // SECKILL_RATE_PER_USER_BURST
	RateLimiterIdle  time.Duration
	TrustedProxies   []string      // SECKILL_TRUSTED_PROXIES: CIDRs or IPs whose X-Forwarded-For is believed
	MaxBodyBytes     int64         // SECKILL_MAX_BODY_BYTES
	SoldOutTTL       time.Duration // SECKILL_SOLDOUT_TTL
	BuyMode          string        // SECKILL_BUY_MODE: pipeline (default) or naive (the anti-pattern, for comparisons)
	BuyToken         string        // SECKILL_BUY_TOKEN: required (default) or off (default in demo mode)
	BuyTokenTTL      time.Duration // SECKILL_BUY_TOKEN_TTL: how long a buy token is valid
	// DashboardStreamsPerIP caps the live dashboard streams one client IP
	// holds (SECKILL_DASHBOARD_STREAMS_PER_IP), inside the process's total of 64.
	DashboardStreamsPerIP int
	// MaxBuysInFlight bounds the buys one gateway works on at once; past
	// it a buy is answered 503 BUSY with Retry-After at once
	// (SECKILL_MAX_BUYS_IN_FLIGHT, default 512).
	MaxBuysInFlight int
	// RedisBatch is the most reserves (or confirms) of one activity one
	// Redis script call serves (SECKILL_REDIS_BATCH); 1 sends each alone.
	RedisBatch int
	// RedisBatchWait is the longest the first request of a batch waits for
	// others (SECKILL_REDIS_BATCH_WAIT).
	RedisBatchWait time.Duration
	// PublishBatch is the most order messages one queue write carries
	// (SECKILL_PUBLISH_BATCH): group commit, one fsync for many buyers
	// under SECKILL_QUEUE_SYNC=always; 1 publishes each alone.
	PublishBatch int

	// The waiting room of activities with queue admission (gateway/sale's
	// waitroom.go): SECKILL_QUEUE_PREQUEUE, SECKILL_QUEUE_ACTIVE (0: the
	// units left), SECKILL_QUEUE_RATE (0: no bound),
	// SECKILL_QUEUE_POLL_BUDGET, SECKILL_QUEUE_PASS_TTL.
	QueuePrequeue   time.Duration
	QueueActive     int64
	QueueRate       float64
	QueuePollBudget float64
	QueuePassTTL    time.Duration

	// Notify is the notifier of the all-in-one process (SECKILL_SMTP_*,
	// SECKILL_SMS_*, SECKILL_MAIL_*, SECKILL_NOTIFY_*, SECKILL_NOTIFIER_ENABLED).
	Notify delivery.Config
}

// Settings describes every environment variable Load reads, with its
// default and description, in the order read: the all-in-one's and the
// gateway's part of docs/configuration.md, which is generated from it.
//
//go:generate go run ../internal/configdoc -o ../../docs/configuration.md
func Settings() []env.Setting {
	return env.Describe(func(r *env.Reader) { read(r) })
}

// Names lists every environment variable Load reads, so deploy files can be
// checked against it (an unknown name in a manifest is a typo nobody sees).
func Names() []string { return env.Names(Settings()) }

// Embedded reports whether every backend is the in-process default.
func (c Config) Embedded() bool {
	return c.RedisURL == "" && c.DBDSN == "" && c.MQ == MQEmbedded
}

// Load reads the configuration of a process that serves the HTTP API,
// through getenv (os.Getenv in main, a map in tests). Every problem is
// reported, once per variable, each naming its variable.
// (The order worker reads the same service.Shared, and its own rest:
// order/service.LoadProcessConfig.)
func Load(getenv func(string) string) (Config, error) {
	r := env.New(getenv)
	c := read(r)
	return c, r.Err()
}

// read reads every setting through r, each with its description; a new
// setting is one more read here (or in ReadShared when the order worker
// reads it too), then go generate ./gateway/config.
func read(r *env.Reader) Config {
	c := Config{
		// "seckill" is the all-in-one process; the app names the split
		// gateway "seckill-gateway".
		Shared: service.ReadShared(r, "seckill"),
		RateGlobal: r.PositiveFloat("SECKILL_RATE_GLOBAL", 20000,
			"requests per second over all API routes, per gateway"),
		RateGlobalBurst: r.PositiveInt("SECKILL_RATE_GLOBAL_BURST", 20000, "bucket of the global rate"),
		RatePerIP: r.PositiveFloat("SECKILL_RATE_PER_IP", 10000,
			"requests per second per client IP (a whole load-test machine is one IP; see SECKILL_TRUSTED_PROXIES)"),
		RatePerIPBurst: r.PositiveInt("SECKILL_RATE_PER_IP_BURST", 20000, "bucket of the per-IP rate"),
		RatePerUser: r.PositiveFloat("SECKILL_RATE_PER_USER", 2,
			"buys per second per user, on the buy route only (the buy-token route has buckets of its own with the same numbers)"),
		RatePerUserBurst: r.PositiveInt("SECKILL_RATE_PER_USER_BURST", 5, "bucket of the per-user rate"),
		RateLimiterIdle: r.Duration("SECKILL_RATE_LIMITER_IDLE", DefaultRateLimiterIdle,
			"a key's limiter is dropped once its bucket has been full this long, checked every half of it (a returning key starts full, so no decision changes): short, so a spike of distinct buyers holds only its last seconds' keys"),
		TrustedProxies: r.List("SECKILL_TRUSTED_PROXIES",
			"comma-separated IPs or CIDRs whose `X-Forwarded-For` is believed. Unset: none, the per-IP limit keys on the socket's address"),
		MaxBodyBytes: int64(r.PositiveInt("SECKILL_MAX_BODY_BYTES", httpapi.DefaultMaxBodyBytes,
			"request body limit in bytes; past it 413 BODY_TOO_LARGE")),
		SoldOutTTL: r.Duration("SECKILL_SOLDOUT_TTL", sale.DefaultSoldOutTTL,
			"how long the local sold-out flag (and holder snapshot) answers before one request checks Redis again; a release announcement clears it sooner"),
		BuyMode: r.OneOf("SECKILL_BUY_MODE", BuyModePipeline, []string{BuyModePipeline, BuyModeNaive},
			"`pipeline`, or `naive`: the teaching anti-pattern that `make spike-compare` measures (the buy locks the stock row and inserts the order inside the request; no Redis, no queue). Never `naive` in production"),
	}
	c.DashboardStreamsPerIP = r.PositiveInt("SECKILL_DASHBOARD_STREAMS_PER_IP", httpapi.DefaultDashboardStreamsPerIP,
		"live dashboard streams (SSE) one client IP may hold at once, within the process's 64; past it 503 BUSY")
	c.MaxBuysInFlight = r.PositiveInt("SECKILL_MAX_BUYS_IN_FLIGHT", DefaultMaxBuysInFlight,
		"admission control: buys one gateway works on at once, 1 to 100000; past it a buy is answered 503 BUSY with `Retry-After` at once, nothing reserved (the naive mode is not bounded)")
	if c.MaxBuysInFlight > MaxMaxBuysInFlight {
		r.Fail("SECKILL_MAX_BUYS_IN_FLIGHT", "must be at most %d (a bound that large no longer bounds the wait), got %d", MaxMaxBuysInFlight, c.MaxBuysInFlight)
	}
	c.RedisBatch = r.PositiveInt("SECKILL_REDIS_BATCH", DefaultRedisBatch,
		"most concurrent reserves (and, apart, confirms) of one activity sent to Redis in one script call, at most 1000; each buyer still gets its own answer. `1` turns coalescing off")
	if c.RedisBatch > MaxRedisBatch {
		r.Fail("SECKILL_REDIS_BATCH", "must be at most %d (one script call blocks Redis for the whole batch), got %d", MaxRedisBatch, c.RedisBatch)
	}
	c.PublishBatch = r.PositiveInt("SECKILL_PUBLISH_BATCH", batch.DefaultMaxBatch,
		"most order messages the gateway puts in one queue write (group commit: one write, and one fsync under `SECKILL_QUEUE_SYNC=always`, for many buyers; each buyer's 202 still waits for its own message to be stored). `1` publishes each alone: set it while order workers older than this setting still consume")
	c.RedisBatchWait = r.Duration("SECKILL_REDIS_BATCH_WAIT", DefaultRedisBatchWait,
		"longest the first request of a Redis batch waits for others before the batch is sent (a full batch goes at once); at most `10ms`")
	if c.RedisBatchWait > MaxRedisBatchWait {
		r.Fail("SECKILL_REDIS_BATCH_WAIT", "must be a positive duration of at most %s (e.g. 200us), got %s", MaxRedisBatchWait, c.RedisBatchWait)
	}
	for _, tp := range c.TrustedProxies {
		if net.ParseIP(tp) == nil {
			if _, _, err := net.ParseCIDR(tp); err != nil {
				r.Fail("SECKILL_TRUSTED_PROXIES", "%q is neither an IP nor a CIDR", tp)
			}
		}
	}

	c.Demo = r.DefaultText("true when every backend is embedded (only the all-in-one can be)").Bool("SECKILL_DEMO", c.Embedded(),
		"demo mode: text logs; in the all-in-one and the gateway also the demo login, a seeded demo activity, buy tokens off and generated secrets; in the notifier, mail and SMS without a server go to the log")
	c.BuyToken = r.DefaultText("required; off in demo mode").OneOf("SECKILL_BUY_TOKEN",
		map[bool]string{true: BuyTokenOff, false: BuyTokenRequired}[c.Demo], []string{BuyTokenRequired, BuyTokenOff},
		"`required`: a buy must carry a buy token from `GET /api/v1/activities/{id}/buy-token`, issued from the sale's start; `off`: no check")
	c.BuyTokenTTL = r.Duration("SECKILL_BUY_TOKEN_TTL", DefaultBuyTokenTTL, "how long a buy token is valid")
	c.LogFormat = r.DefaultText("text in demo mode, json otherwise").
		OneOf("SECKILL_LOG_FORMAT", map[bool]string{true: "text", false: "json"}[c.Demo], []string{"text", "json"}, "log line format")
	c.QueuePrequeue = r.Duration("SECKILL_QUEUE_PREQUEUE", sale.DefaultQueuePrequeue,
		"waiting room (activities with admission `queue`): how long before the start buyers may join; their order is drawn at the start")
	c.QueueActive = int64(r.DefaultText("the units left").PositiveInt("SECKILL_QUEUE_ACTIVE", 0,
		"waiting room: most admitted buyers who have neither bought nor let their pass lapse"))
	c.QueueRate = r.DefaultText("no bound").PositiveFloat("SECKILL_QUEUE_RATE", 0,
		"waiting room: most buyers admitted per second")
	c.QueuePollBudget = r.PositiveFloat("SECKILL_QUEUE_POLL_BUDGET", sale.DefaultQueuePollBudget,
		"waiting room: the polling the whole queue may cause, in requests per second; poll_after_ms grows with the queue to keep within it")
	c.QueuePassTTL = r.Duration("SECKILL_QUEUE_PASS_TTL", sale.DefaultQueuePass,
		"waiting room: how long an admitted buyer's pass (the buy token it gets) lasts")
	c.Notify = delivery.ReadConfig(r, c.Demo)

	if s := r.DefaultText("random per start in demo mode; required otherwise").Raw("SECKILL_JWT_SECRET",
		"HS256 secret of user tokens, from which the buy tokens' key is derived; 16 bytes or more, a secret (the order worker uses none, but refuses a short one)"); s != "" {
		if len(s) < 16 {
			r.Fail("SECKILL_JWT_SECRET", "must be at least 16 bytes")
		}
		c.JWTSecret = []byte(s)
	} else if c.Demo {
		c.JWTSecret = []byte(randomHex(32))
	} else {
		r.Fail("SECKILL_JWT_SECRET", "is required outside demo mode")
	}
	if s := r.DefaultText("random per start, printed, in demo mode; required otherwise").Raw("SECKILL_ADMIN_TOKEN",
		"bearer token of `/api/v1/admin`; 16 characters or more, a secret (the order worker uses none, but refuses a short one)"); s != "" {
		if len(s) < 16 {
			r.Fail("SECKILL_ADMIN_TOKEN", "must be at least 16 characters")
		}
		c.AdminToken = s
	} else if c.Demo {
		c.AdminToken = randomHex(16)
		c.GeneratedAdminToken = true
	} else {
		r.Fail("SECKILL_ADMIN_TOKEN", "is required outside demo mode")
	}
	return c
}

// Redacted returns the settings that are safe to log: no secrets, no
// passwords inside URLs.
func (c Config) Redacted() map[string]any {
	return map[string]any{
		"http_addr": c.HTTPAddr, "redis": backendName(c.RedisURL, "embedded miniredis"),
		"db": backendName(c.DBDSN, "embedded sqlite in "+c.DataDir), "mq": c.MQ,
		"kafka_brokers": strings.Join(c.KafkaBrokers, ","), "demo": c.Demo,
		"worker_concurrency": c.Service.WorkerConcurrency, "worker_batch": c.Service.WorkerBatch,
		"buy_mode": c.BuyMode, "buy_token": c.BuyToken, "metrics_addr": c.MetricsAddr,
		"tracing": c.Tracing.On(),
	}
}

func backendName(v, embedded string) string {
	if v == "" {
		return embedded
	}
	return "external"
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
