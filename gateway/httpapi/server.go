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

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/gateway/ratelimit"
	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/platform/tracing"
)

// Sale is the use cases the routes call (*sale.Service).
type Sale interface {
	Activity(ctx context.Context, id int64) (sale.ActivityView, error)
	CachedActivity(ctx context.Context, id int64) (*order.Activity, error)
	Storefront(ctx context.Context) ([]sale.ActivityView, time.Time, error)
	IssueBuyToken(ctx context.Context, id int64, user string) (sale.BuyToken, error)
	Order(ctx context.Context, user, id string) (sale.OrderView, error)
	Pay(ctx context.Context, user, id string) (*order.Order, error)
	DemoLogin(ctx context.Context, userID string) (string, error)
	CreateActivity(ctx context.Context, req sale.NewActivity) (sale.ActivityView, error)
	Stats(ctx context.Context, id int64) (sale.Stats, error)
	JoinQueue(ctx context.Context, id int64, user string) (sale.QueueView, error)
	QueueStatus(ctx context.Context, id int64, user string) (sale.QueueView, error)
	QueueAudit(ctx context.Context, id int64) ([]inventory.QueueMember, string, error)
	// Snapshot and StockStats feed the live dashboard's sampler.
	Snapshot(ctx context.Context, id int64) (*order.Snapshot, error)
	StockStats(ctx context.Context, id int64) (inventory.Stats, bool, error)
	QueueInlet(ctx context.Context, id int64) (inventory.QueueInlet, error)
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
	// QueuePerUser limits the waiting-room routes per user, in buckets of
	// their own: polling the queue must not spend the buys.
	QueuePerUser *ratelimit.Keyed
}

// Deps are what the routes call and what serves them. Sale and Tokens are
// required; every other nil field says what it turns off.
type Deps struct {
	Sale Sale
	// Buy places the orders of the buy route: Sale itself (the
	// pipeline), or the naive synchronous mode; nil means Sale when it is
	// a sale.Placer.
	Buy    sale.Placer
	Tokens *auth.Tokens // verifies the user tokens
	Limits Limits       // a nil limiter is no limit
	// DeadLetters, when set, serves the admin dead-letter routes (list and
	// replay); nil answers them 501.
	DeadLetters DeadLetters
	// Ready reports whether the backends are reachable (GET /readyz); nil
	// is always ready. Its error's text is the 503's message, so it must
	// name the backends that are down.
	Ready func(ctx context.Context) error
	// QueueDepth is the order messages not yet written, for the live
	// dashboard; ok false when unknown. Nil shows none.
	QueueDepth func() (depth int, ok bool)
	// Static, when set, is served at / (the flash-sale page).
	Static http.FileSystem
	// Tracing, when on, gives every route but the probes a server span
	// (otelgin, tracing.go). Nil or off installs nothing.
	Tracing  *tracing.Tracing
	Logger   *slog.Logger         // default slog.Default()
	Registry *prometheus.Registry // /metrics; nil = a private registry
	Now      func() time.Time     // the clock of the activity views; default time.Now
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes          = 64 << 10
	DefaultBuyBodyTimeout        = 2 * time.Second
	DefaultDashboardInterval     = time.Second
	DefaultDashboardStreamsPerIP = 8
)

// Config holds the door's settings; every zero field selects its default.
type Config struct {
	AdminToken     auth.AdminToken
	Demo           bool     // enables POST /api/v1/auth/demo-token and the open dashboard
	TrustedProxies []string // whose X-Forwarded-For is believed; none by default
	// MaxBodyBytes bounds a request body. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// BuyBodyTimeout bounds reading a buy's body: a client that sends it a
	// byte at a time is cut off then (408), instead of holding its
	// connection for the server's ReadTimeout. Default
	// DefaultBuyBodyTimeout.
	BuyBodyTimeout time.Duration
	// DashboardInterval is how often the live dashboard samples. Default
	// DefaultDashboardInterval.
	DashboardInterval time.Duration
	// DashboardStreamsPerIP caps the live dashboard streams one client IP
	// (ClientIP, after TrustedProxies) holds at once, inside the process's
	// total of 64. Default DefaultDashboardStreamsPerIP.
	DashboardStreamsPerIP int
	// MetricsElsewhere leaves /metrics off this handler (it answers 404):
	// the process serves it on its own listener (SECKILL_METRICS_ADDR).
	MetricsElsewhere bool
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.BuyBodyTimeout <= 0 {
		c.BuyBodyTimeout = DefaultBuyBodyTimeout
	}
	if c.DashboardInterval <= 0 {
		c.DashboardInterval = DefaultDashboardInterval
	}
	if c.DashboardStreamsPerIP <= 0 {
		c.DashboardStreamsPerIP = DefaultDashboardStreamsPerIP
	}
	return c
}

// Server is the gateway's HTTP handler.
type Server struct {
	cfg     Config
	deps    Deps
	sale    Sale
	buy     sale.Placer
	engine  *gin.Engine
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	reqSeq  atomic.Uint64
	reqPfx  string
	dash    *dashboard // the live dashboard (dashboard.go)
	// bodyBufs holds *[buyBodyMax]byte scratch for reading buy bodies.
	bodyBufs sync.Pool
}

// New builds the router on deps with the settings of cfg.
func New(deps Deps, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if deps.Sale == nil || deps.Tokens == nil {
		return nil, errors.New("httpapi: Sale and Tokens are required")
	}
	if deps.Buy == nil {
		p, ok := deps.Sale.(sale.Placer)
		if !ok {
			return nil, errors.New("httpapi: Buy is required when Sale does not place orders")
		}
		deps.Buy = p
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	pfx := make([]byte, 4)
	_, _ = rand.Read(pfx)

	s := &Server{
		cfg: cfg, deps: deps, sale: deps.Sale, buy: deps.Buy, log: deps.Logger, now: deps.Now,
		metrics: NewMetrics(deps.Registry),
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
		e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(deps.Registry, promhttp.HandlerOpts{})))
	}
	e.GET("/dashboard", s.dashboardPage)

	api := e.Group("/api/v1", s.limitGlobalAndIP)
	api.POST("/auth/demo-token", s.demoToken)
	api.GET("/activities/:id", s.getActivity)
	api.GET("/activities", s.listActivities)
	api.GET("/dashboard/activities/:id/stream", s.dashboardAccess, s.dashboardStream)
	user := api.Group("", s.requireUser)
	user.GET("/activities/:id/buy-token", s.limitBuyTokenUser, s.getBuyToken)
	user.POST("/activities/:id/queue", s.limitQueueUser, s.joinQueue)
	user.GET("/activities/:id/queue", s.limitQueueUser, s.getQueue)
	user.POST("/activities/:id/orders", s.limitUser, s.postOrder)
	user.GET("/orders/:id", s.getOrder)
	user.POST("/orders/:id/pay", s.payOrder)
	admin := api.Group("/admin", s.requireAdmin)
	admin.POST("/activities", s.createActivity)
	admin.GET("/activities/:id/stats", s.stats)
	admin.GET("/activities/:id/queue", s.queueAudit)
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
	if s.deps.Static != nil && (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead) {
		c.FileFromFS(c.Request.URL.Path, s.deps.Static)
		return
	}
	s.respond(c, errNoRoute(c))
}

func errNoRoute(c *gin.Context) *apiError {
	return errNotFound("no route %s %s", c.Request.Method, c.Request.URL.Path)
}

// Context keys set by middleware.
const (
	keyUser      = "seckill.user"
	keyRequestID = "seckill.request_id"
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
	if g := s.deps.Limits.Global; g != nil {
		if ok, retry := g.Allow(); !ok {
			s.metrics.rateLimited.WithLabelValues("global").Inc()
			s.respond(c, errRateLimited("global", retry))
			return
		}
	}
	if k := s.deps.Limits.PerIP; k != nil {
		if ok, retry := k.Allow(c.ClientIP()); !ok {
			s.metrics.rateLimited.WithLabelValues("ip").Inc()
			s.respond(c, errRateLimited("per-IP", retry))
			return
		}
	}
	c.Next()
}

func (s *Server) limitUser(c *gin.Context) {
	if k := s.deps.Limits.PerUser; k != nil {
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
	uid, err := s.deps.Tokens.Verify(raw)
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
	if s.deps.Ready == nil {
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.deps.Ready(ctx); err != nil {
		// The caller reads the names of the backends down; the causes
		// (addresses, user names) go to the log.
		s.respond(c, errUnavailable(process.ReadyMessage(err), err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
