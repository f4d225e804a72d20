// Package httpapi is the gateway's HTTP contract (v1) on gin: the filters a
// buy passes layer by layer (body limit, auth, rate limits, activity window,
// local sold-out flag, the Redis reserve script, the queue) and the read and
// admin routes around it.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/gateway/ratelimit"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/platform/tracing"
)

// Inventory is the Redis side the gateway needs (inventory.Store).
type Inventory interface {
	Reserve(ctx context.Context, activityID int64, userID, requestID, orderID string, now time.Time) (inventory.ReserveResult, error)
	Confirm(ctx context.Context, activityID int64, orderID string) (bool, error)
	Release(ctx context.Context, activityID int64, orderID string) (inventory.ReleaseResult, error)
	Lookup(ctx context.Context, activityID int64, orderID string) (inventory.Reservation, bool, error)
	Remaining(ctx context.Context, activityID int64) (int64, bool, error)
	Stats(ctx context.Context, activityID int64) (inventory.Stats, bool, error)
}

// Store is the database side the gateway needs (order.Store).
type Store interface {
	CreateActivity(ctx context.Context, a *order.Activity) error
	GetActivity(ctx context.Context, id int64) (*order.Activity, error)
	GetOrder(ctx context.Context, id string) (*order.Order, error)
	Snapshot(ctx context.Context, activityID int64) (*order.Snapshot, error)
	// ListActivities feeds the storefront's list (GET /api/v1/activities).
	ListActivities(ctx context.Context) ([]order.Activity, error)
}

// Restorer puts an activity that Redis lost back from the database and the
// queue (order/service's Restorer); the gateway calls it when it finds an
// activity missing, and preloads each new activity with it.
type Restorer interface {
	Restore(ctx context.Context, a *order.Activity) error
}

// Payer records payments (order.Lifecycle).
type Payer interface {
	Pay(ctx context.Context, orderID, userID string) (*order.Order, error)
}

// IDGenerator makes order ids (orderid.Generator).
type IDGenerator interface {
	Next(activityID int64) string
}

// Limits are the rate limiters, applied in this order: global and per IP on
// every API route, per user on the buy route (the contested action; polling
// an order is not limited per user).
type Limits struct {
	Global  *ratelimit.Global
	PerIP   *ratelimit.Keyed
	PerUser *ratelimit.Keyed
	// BuyTokenPerUser limits GET /activities/{id}/buy-token per user, in
	// buckets of its own: fetching the pass must not spend the buys.
	BuyTokenPerUser *ratelimit.Keyed
}

// Defaults of Config (DefaultMaxBuysInFlight, with its reasoning, is in
// admission.go).
const (
	DefaultMaxBodyBytes          = 64 << 10
	DefaultSoldOutTTL            = time.Second
	DefaultPublishTimeout        = 2 * time.Second
	DefaultRedisTimeout          = time.Second
	DefaultActivityTTL           = 2 * time.Second
	DefaultDashboardInterval     = time.Second
	DefaultDashboardStreamsPerIP = 8
)

// Config wires a Server. The interfaces and Tokens are required, except
// where a field says what nil means; every zero setting selects the
// documented default.
type Config struct {
	Inventory Inventory
	Store     Store
	Publisher mq.Publisher
	Payer     Payer
	Restorer  Restorer
	IDs       IDGenerator
	Tokens    *auth.Tokens
	// BuyTokens issues the buy tokens of GET /activities/{id}/buy-token
	// (buytoken.go); RequireBuyToken makes a buy without a valid one a
	// 403 (SECKILL_BUY_TOKEN=required).
	BuyTokens       *auth.BuyTokens
	RequireBuyToken bool
	AdminToken      auth.AdminToken
	Limits          Limits
	Demo            bool // enables POST /api/v1/auth/demo-token
	// Naive, when set, switches the buy route to the naive synchronous mode
	// (SECKILL_BUY_MODE=naive, the teaching anti-pattern; see naive.go).
	Naive NaiveStore
	// DemoContacts, when set, records a made-up contact for every demo
	// login, so the notifier has an address to write to. Nil skips it.
	DemoContacts DemoContacts

	TrustedProxies []string // whose X-Forwarded-For is believed; none by default
	// MaxBodyBytes bounds a request body. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// SoldOutTTL is how long a local sold-out flag answers 410 before one
	// buy probes Redis again. Default DefaultSoldOutTTL.
	SoldOutTTL time.Duration
	// PublishTimeout bounds handing an order to the queue. Default
	// DefaultPublishTimeout.
	PublishTimeout time.Duration
	// RedisTimeout bounds one Redis call of the buy path. Default
	// DefaultRedisTimeout.
	RedisTimeout time.Duration
	// ActivityTTL is how long activity rows are cached. Default
	// DefaultActivityTTL.
	ActivityTTL time.Duration
	// DashboardInterval is how often the live dashboard samples. Default
	// DefaultDashboardInterval.
	DashboardInterval time.Duration
	// DashboardStreamsPerIP caps the live dashboard streams one client IP
	// (ClientIP, after TrustedProxies) holds at once, inside the process's
	// total of 64. Default DefaultDashboardStreamsPerIP.
	DashboardStreamsPerIP int
	// MaxBuysInFlight bounds the buys the gateway works on at once; past
	// it a buy is answered 503 BUSY with Retry-After at once, nothing
	// reserved (admission.go). Default DefaultMaxBuysInFlight. The naive
	// mode is not bounded.
	MaxBuysInFlight int
	// MetricsElsewhere leaves /metrics off this handler (it answers 404):
	// the process serves it on its own listener (SECKILL_METRICS_ADDR).
	MetricsElsewhere bool

	// DeadLetters, when set, serves the admin dead-letter routes (list and
	// replay); nil answers them 501.
	DeadLetters DeadLetters

	// Ready reports whether the backends are reachable (GET /readyz); nil
	// is always ready. Its error's text is the 503's message, so it must
	// name the backends that are down.
	Ready func(ctx context.Context) error
	// Static, when set, is served at / (the flash-sale page).
	Static http.FileSystem

	// Tracing, when on, gives every route but the probes a server span
	// (otelgin) and the buy its reserve span (tracing.go); Publisher must
	// then be wrapped with mqotel by the caller for the order message to
	// carry the buy's trace. Nil or off installs nothing.
	Tracing *tracing.Tracing

	Logger   *slog.Logger         // default slog.Default()
	Registry *prometheus.Registry // /metrics; nil = a private registry
	Now      func() time.Time     // default time.Now
}

func (c Config) withDefaults() Config {
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	def(&c.SoldOutTTL, DefaultSoldOutTTL)
	def(&c.PublishTimeout, DefaultPublishTimeout)
	def(&c.RedisTimeout, DefaultRedisTimeout)
	def(&c.ActivityTTL, DefaultActivityTTL)
	def(&c.DashboardInterval, DefaultDashboardInterval)
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.DashboardStreamsPerIP <= 0 {
		c.DashboardStreamsPerIP = DefaultDashboardStreamsPerIP
	}
	if c.MaxBuysInFlight <= 0 {
		c.MaxBuysInFlight = DefaultMaxBuysInFlight
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Server is the gateway's HTTP handler.
type Server struct {
	cfg     Config
	engine  *gin.Engine
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	soldOut soldOutFlags
	acts    activityCache // activity rows for the buy path (activities.go)
	list    activityList  // the storefront's list (activities.go)
	reqSeq  atomic.Uint64
	reqPfx  string
	dash    *dashboard   // the live dashboard (dashboard.go)
	tracer  trace.Tracer // the buy path's own spans; nil when tracing is off (tracing.go)
	// bodyBufs holds *[buyBodyMax]byte scratch for reading buy bodies.
	bodyBufs sync.Pool
}

// New builds the router.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.Inventory == nil || cfg.Store == nil || cfg.Publisher == nil || cfg.Payer == nil || cfg.Restorer == nil || cfg.IDs == nil || cfg.Tokens == nil {
		return nil, errors.New("httpapi: Inventory, Store, Publisher, Payer, Restorer, IDs and Tokens are required")
	}
	if cfg.BuyTokens == nil {
		if cfg.RequireBuyToken {
			return nil, errors.New("httpapi: RequireBuyToken needs BuyTokens")
		}
		return nil, errors.New("httpapi: BuyTokens is required: the buy-token route issues them even when buys do not require one")
	}
	pfx := make([]byte, 4)
	_, _ = rand.Read(pfx)

	s := &Server{
		cfg: cfg, log: cfg.Logger, now: cfg.Now,
		metrics: NewMetrics(cfg.Registry),
		soldOut: soldOutFlags{ttl: cfg.SoldOutTTL},
		acts:    activityCache{ttl: cfg.ActivityTTL, store: cfg.Store, now: cfg.Now},
		reqPfx:  hex.EncodeToString(pfx),
	}
	s.bodyBufs.New = func() any { return new([buyBodyMax]byte) }

	s.dash = newDashboard(s)
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	s.installTracing(e) // first: the server span covers every filter
	// gin trusts every proxy unless told otherwise; a spoofed
	// X-Forwarded-For must not pick the per-IP bucket.
	if err := e.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("httpapi: trusted proxies: %w", err)
	}
	e.Use(gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		s.respond(c, errInternal(fmt.Errorf("panic in handler: %v", rec)))
	}))
	e.Use(s.observe, s.bodyLimit)
	e.NoRoute(s.noRoute)

	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	if cfg.MetricsElsewhere {
		e.GET("/metrics", func(c *gin.Context) { // the JSON 404 of an unknown route, never a static file
			s.respond(c, errNoRoute(c))
		})
	} else {
		e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))
	}
	e.GET("/dashboard", s.dashboardPage)

	api := e.Group("/api/v1", s.limitGlobalAndIP)
	api.POST("/auth/demo-token", s.demoToken)
	api.GET("/activities/:id", s.getActivity)
	api.GET("/activities", s.listActivities)
	api.GET("/dashboard/activities/:id/stream", s.dashboardAccess, s.dashboardStream)
	user := api.Group("", s.requireUser)
	user.GET("/activities/:id/buy-token", s.limitBuyTokenUser, s.getBuyToken)
	user.POST("/activities/:id/orders", s.limitUser, s.admitBuys(), s.buyHandler())
	user.GET("/orders/:id", s.getOrder)
	user.POST("/orders/:id/pay", s.payOrder)
	admin := api.Group("/admin", s.requireAdmin)
	admin.POST("/activities", s.createActivity)
	admin.GET("/activities/:id/stats", s.stats)
	admin.GET("/dead-letters/:topic", s.listDeadLetters)
	admin.POST("/dead-letters/:topic/replay", s.replayDeadLetters)
	admin.POST("/dead-letters/:topic/discard", s.discardDeadLetters)

	s.engine = e
	return s, nil
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// noRoute serves the static pages for GET and HEAD, and a JSON 404 otherwise.
func (s *Server) noRoute(c *gin.Context) {
	if s.cfg.Static != nil && (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead) {
		c.FileFromFS(c.Request.URL.Path, s.cfg.Static)
		return
	}
	s.respond(c, errNoRoute(c))
}

func errNoRoute(c *gin.Context) *apiError {
	return errNotFound("no route %s %s", c.Request.Method, c.Request.URL.Path)
}

// ClearSoldOut drops the local sold-out flag of an activity, for when units
// come back on sale (a failed publish here, a cancelled order elsewhere).
func (s *Server) ClearSoldOut(activityID int64) { s.soldOut.clear(activityID) }

// Context keys set by middleware.
const (
	keyUser      = "seckill.user"
	keyRequestID = "seckill.request_id"
	// keyTokenRefused holds the reason a buy was refused for its buy token,
	// so the live dashboard tells it from a buy outside the sale window
	// (both 403) and counts it by reason.
	keyTokenRefused = "seckill.token_refused"
)

// observe assigns the request id and records metrics and a debug access log.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	rid := c.GetHeader("X-Request-ID")
	if rid == "" || len(rid) > 64 || !auth.ValidUserID(rid) {
		rid = s.reqPfx + "-" + strconv.FormatUint(s.reqSeq.Add(1), 36)
	}
	c.Set(keyRequestID, rid)
	c.Header("X-Request-ID", rid)
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	code := c.Writer.Status()
	s.metrics.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(code)).Inc()
	s.metrics.latency.WithLabelValues(route, c.Request.Method).Observe(time.Since(start).Seconds())
	if route == buyRoute {
		s.dash.record(c.Param("id"), code, c.GetString(keyTokenRefused))
	}
	// The access log is debug (a spike is millions of lines), except for
	// server-side failures, which an operator must be able to trace by
	// the request id the client saw.
	level := slog.LevelDebug
	if code >= http.StatusInternalServerError {
		level = slog.LevelWarn
	}
	if s.log.Enabled(c, level) {
		s.log.Log(c, level, "http", "request_id", rid, "method", c.Request.Method, "route", route, "status", code,
			"duration", time.Since(start), "user", c.GetString(keyUser))
	}
}

// bodyLimit refuses bodies over MaxBodyBytes: early when Content-Length says
// so, and through http.MaxBytesReader when the body is streamed.
func (s *Server) bodyLimit(c *gin.Context) {
	if c.Request.ContentLength > s.cfg.MaxBodyBytes {
		s.respond(c, errBodyTooLarge(s.cfg.MaxBodyBytes))
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes)
	c.Next()
}

func (s *Server) limitGlobalAndIP(c *gin.Context) {
	if g := s.cfg.Limits.Global; g != nil {
		if ok, retry := g.Allow(); !ok {
			s.metrics.rateLimited.WithLabelValues("global").Inc()
			s.respond(c, errRateLimited("global", retry))
			return
		}
	}
	if k := s.cfg.Limits.PerIP; k != nil {
		if ok, retry := k.Allow(c.ClientIP()); !ok {
			s.metrics.rateLimited.WithLabelValues("ip").Inc()
			s.respond(c, errRateLimited("per-IP", retry))
			return
		}
	}
	c.Next()
}

func (s *Server) limitUser(c *gin.Context) {
	if k := s.cfg.Limits.PerUser; k != nil {
		if ok, retry := k.Allow(c.GetString(keyUser)); !ok {
			s.metrics.rateLimited.WithLabelValues("user").Inc()
			s.respond(c, errRateLimited("per-user", retry))
			return
		}
	}
	c.Next()
}

func (s *Server) requireUser(c *gin.Context) {
	raw, err := auth.BearerToken(c.GetHeader("Authorization"))
	if err != nil {
		s.respond(c, errUnauthorized("missing bearer token: send Authorization: Bearer <user token>"))
		return
	}
	uid, err := s.cfg.Tokens.Verify(raw)
	if err != nil {
		s.respond(c, errUnauthorized("invalid user token: "+err.Error())) // says what is wrong with the token
		return
	}
	c.Set(keyUser, uid)
	c.Next()
}

func (s *Server) requireAdmin(c *gin.Context) {
	raw, err := auth.BearerToken(c.GetHeader("Authorization"))
	if err != nil || !s.cfg.AdminToken.Match(raw) {
		s.respond(c, errUnauthorized("admin routes need Authorization: Bearer <SECKILL_ADMIN_TOKEN>"))
		return
	}
	c.Next()
}

func (s *Server) readyz(c *gin.Context) {
	if s.cfg.Ready == nil {
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Ready(ctx); err != nil {
		// The caller reads the names of the backends down; the causes
		// (addresses, user names) go to the log.
		s.respond(c, errUnavailable(process.ReadyMessage(err), err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
