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
	"golang.org/x/sync/singleflight"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/gateway/ratelimit"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
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
}

// Options wire a Server. Every field without a documented default is required.
type Options struct {
	Inventory  Inventory
	Store      Store
	Publisher  mq.Publisher
	Payer      Payer
	Restorer   Restorer
	IDs        IDGenerator
	Tokens     *auth.Tokens
	AdminToken auth.AdminToken
	Limits     Limits
	Demo       bool // enables POST /api/v1/auth/demo-token
	// Naive, when set, switches the buy route to the naive synchronous mode
	// (SECKILL_BUY_MODE=naive, the teaching anti-pattern; see naive.go).
	Naive NaiveStore
	// DemoContacts, when set, records a made-up contact for every demo
	// login, so the notifier has an address to write to. Nil skips it.
	DemoContacts DemoContacts

	TrustedProxies []string      // whose X-Forwarded-For is believed; none by default
	MaxBodyBytes   int64         // default 64 KiB
	SoldOutTTL     time.Duration // default 1s
	PublishTimeout time.Duration // default 2s
	RedisTimeout   time.Duration // bound on one Redis call of the buy path; default 1s
	ActivityTTL    time.Duration // how long activity rows are cached; default 2s
	// DashboardInterval is how often the live dashboard samples; default 1s.
	DashboardInterval time.Duration
	// DashboardStreamsPerIP caps the live dashboard streams one client IP
	// (ClientIP, after TrustedProxies) holds at once, inside the process's
	// total of 64; default 8.
	DashboardStreamsPerIP int
	// MaxBuysInFlight bounds the buys the gateway works on at once; past
	// it a buy is answered 503 BUSY with Retry-After at once, nothing
	// reserved (admission.go). Default DefaultMaxBuysInFlight (512). The
	// naive mode is not bounded.
	MaxBuysInFlight int
	// MetricsElsewhere leaves /metrics off this handler (it answers 404):
	// the process serves it on its own listener (SECKILL_METRICS_ADDR).
	MetricsElsewhere bool

	// DeadLetters, when set, serves the admin dead-letter routes (list and
	// replay); nil answers them 501.
	DeadLetters DeadLetters

	// Ready reports whether the backends are reachable (GET /readyz).
	Ready func(ctx context.Context) error
	// Static, when set, is served at / (the flash-sale page).
	Static http.FileSystem

	Logger   *slog.Logger
	Registry *prometheus.Registry // /metrics; nil = a private registry
	Now      func() time.Time
}

// Server is the gateway's HTTP handler.
type Server struct {
	opts    Options
	engine  *gin.Engine
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	soldOut soldOutFlags
	acts    activityCache
	reqSeq  atomic.Uint64
	reqPfx  string
	dash    *dashboard // the live dashboard (dashboard.go)
}

// New builds the router.
func New(opts Options) (*Server, error) {
	if opts.Inventory == nil || opts.Store == nil || opts.Publisher == nil || opts.Payer == nil || opts.Restorer == nil || opts.IDs == nil || opts.Tokens == nil {
		return nil, errors.New("httpapi: Inventory, Store, Publisher, Payer, Restorer, IDs and Tokens are required")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 64 << 10
	}
	if opts.SoldOutTTL <= 0 {
		opts.SoldOutTTL = time.Second
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = 2 * time.Second
	}
	if opts.RedisTimeout <= 0 {
		opts.RedisTimeout = time.Second
	}
	if opts.ActivityTTL <= 0 {
		opts.ActivityTTL = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	pfx := make([]byte, 4)
	_, _ = rand.Read(pfx)
	s := &Server{
		opts: opts, log: opts.Logger, now: opts.Now,
		metrics: NewMetrics(opts.Registry),
		soldOut: soldOutFlags{ttl: opts.SoldOutTTL},
		acts:    activityCache{ttl: opts.ActivityTTL, store: opts.Store, now: opts.Now},
		reqPfx:  hex.EncodeToString(pfx),
	}
	s.dash = newDashboard(s, opts.DashboardInterval)
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	// gin trusts every proxy unless told otherwise; a spoofed
	// X-Forwarded-For must not pick the per-IP bucket.
	if err := e.SetTrustedProxies(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("httpapi: trusted proxies: %w", err)
	}
	e.Use(gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		s.log.Error("panic in handler", "route", c.FullPath(), "panic", rec)
		abort(c, http.StatusInternalServerError, codeInternal, "internal error")
	}))
	e.Use(s.observe, s.bodyLimit)
	e.NoRoute(s.noRoute)

	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	if opts.MetricsElsewhere {
		e.GET("/metrics", func(c *gin.Context) { // the JSON 404 of an unknown route, never a static file
			abort(c, http.StatusNotFound, codeNotFound, "no route "+c.Request.Method+" "+c.Request.URL.Path)
		})
	} else {
		e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{})))
	}
	e.GET("/dashboard", s.dashboardPage)

	api := e.Group("/api/v1", s.limitGlobalAndIP)
	api.POST("/auth/demo-token", s.demoToken)
	api.GET("/activities/:id", s.getActivity)
	api.GET("/activities", s.listActivities)
	api.GET("/dashboard/activities/:id/stream", s.dashboardAccess, s.dashboardStream)
	user := api.Group("", s.requireUser)
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
	if s.opts.Static != nil && (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead) {
		c.FileFromFS(c.Request.URL.Path, s.opts.Static)
		return
	}
	abort(c, http.StatusNotFound, codeNotFound, "no route "+c.Request.Method+" "+c.Request.URL.Path)
}

// ClearSoldOut drops the local sold-out flag of an activity, for when units
// come back on sale (a failed publish here, a cancelled order elsewhere).
func (s *Server) ClearSoldOut(activityID int64) { s.soldOut.clear(activityID) }

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
	if route == buyRoute {
		s.dash.record(c.Param("id"), code)
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
	if c.Request.ContentLength > s.opts.MaxBodyBytes {
		abort(c, http.StatusRequestEntityTooLarge, codeBodyTooLarge, fmt.Sprintf("request body is larger than %d bytes", s.opts.MaxBodyBytes))
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.opts.MaxBodyBytes)
	c.Next()
}

func (s *Server) limitGlobalAndIP(c *gin.Context) {
	if g := s.opts.Limits.Global; g != nil {
		if ok, retry := g.Allow(); !ok {
			s.metrics.rateLimited.WithLabelValues("global").Inc()
			rateLimited(c, "global", retry)
			return
		}
	}
	if k := s.opts.Limits.PerIP; k != nil {
		if ok, retry := k.Allow(c.ClientIP()); !ok {
			s.metrics.rateLimited.WithLabelValues("ip").Inc()
			rateLimited(c, "per-IP", retry)
			return
		}
	}
	c.Next()
}

func (s *Server) limitUser(c *gin.Context) {
	if k := s.opts.Limits.PerUser; k != nil {
		if ok, retry := k.Allow(c.GetString(keyUser)); !ok {
			s.metrics.rateLimited.WithLabelValues("user").Inc()
			rateLimited(c, "per-user", retry)
			return
		}
	}
	c.Next()
}

func (s *Server) requireUser(c *gin.Context) {
	raw, err := auth.BearerToken(c.GetHeader("Authorization"))
	if err != nil {
		abort(c, http.StatusUnauthorized, codeUnauthorized, "missing bearer token: send Authorization: Bearer <user token>")
		return
	}
	uid, err := s.opts.Tokens.Verify(raw)
	if err != nil {
		abort(c, http.StatusUnauthorized, codeUnauthorized, "invalid user token: "+err.Error())
		return
	}
	c.Set(keyUser, uid)
	c.Next()
}

func (s *Server) requireAdmin(c *gin.Context) {
	raw, err := auth.BearerToken(c.GetHeader("Authorization"))
	if err != nil || !s.opts.AdminToken.Match(raw) {
		abort(c, http.StatusUnauthorized, codeUnauthorized, "admin routes need Authorization: Bearer <SECKILL_ADMIN_TOKEN>")
		return
	}
	c.Next()
}

func (s *Server) readyz(c *gin.Context) {
	if s.opts.Ready == nil {
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.opts.Ready(ctx); err != nil {
		abort(c, http.StatusServiceUnavailable, codeUnavailable, "not ready: "+err.Error())
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// activityCache keeps activity rows for a short while: the buy path must not
// read the database, and an activity's window and price do not change.
type activityCache struct {
	ttl   time.Duration
	store Store
	now   func() time.Time
	mu    sync.RWMutex
	m     map[int64]cachedActivity
	// loads coalesces the refreshes of one activity: when an entry expires
	// under a spike, one query goes to the database, not one per request.
	loads singleflight.Group
}

type cachedActivity struct {
	a       order.Activity
	fetched time.Time
}

func (ac *activityCache) get(ctx context.Context, id int64) (*order.Activity, error) {
	now := ac.now()
	ac.mu.RLock()
	e, ok := ac.m[id]
	ac.mu.RUnlock()
	if ok && now.Sub(e.fetched) < ac.ttl {
		a := e.a
		return &a, nil
	}
	v, err, _ := ac.loads.Do(strconv.FormatInt(id, 10), func() (any, error) {
		// Shared by every waiting request: not tied to the first one's
		// context, but bounded.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		a, err := ac.store.GetActivity(lctx, id)
		if err != nil {
			// Stale if error: while the database is away the last row
			// read keeps the sale open (Redis decides every unit, and
			// the queue holds the orders until the database is back);
			// it is tried again after another TTL.
			if ok && !errors.Is(err, order.ErrNotFound) {
				ac.mu.Lock()
				ac.m[id] = cachedActivity{a: e.a, fetched: now}
				ac.mu.Unlock()
				return e.a, nil
			}
			return nil, err
		}
		ac.mu.Lock()
		if ac.m == nil {
			ac.m = make(map[int64]cachedActivity)
		}
		ac.m[id] = cachedActivity{a: *a, fetched: now}
		ac.mu.Unlock()
		return *a, nil
	})
	if err != nil {
		return nil, err
	}
	a := v.(order.Activity)
	return &a, nil
}
