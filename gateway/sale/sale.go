package sale

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
)

// Inventory is the Redis side the sale needs (inventory.Store, or its
// Coalescer on the buy path).
type Inventory interface {
	Reserve(ctx context.Context, activityID int64, userID, requestID, orderID string, now time.Time) (inventory.ReserveResult, error)
	Confirm(ctx context.Context, activityID int64, orderID string) (bool, error)
	Release(ctx context.Context, activityID int64, orderID string) (inventory.ReleaseResult, error)
	Lookup(ctx context.Context, activityID int64, orderID string) (inventory.Reservation, bool, error)
	Remaining(ctx context.Context, activityID int64) (int64, bool, error)
	Stats(ctx context.Context, activityID int64) (inventory.Stats, bool, error)
}

// HolderLister reads an activity's holders (inventory.Store.Holders). An
// Inventory that does not implement it gets no holder snapshots: buys
// with a request_id then always go to Redis once sold out.
type HolderLister interface {
	Holders(ctx context.Context, activityID int64, limit int) (map[string]string, bool, error)
}

// Store is the database side the sale needs (order.Store).
type Store interface {
	CreateActivity(ctx context.Context, a *order.Activity) error
	GetActivity(ctx context.Context, id int64) (*order.Activity, error)
	GetOrder(ctx context.Context, id string) (*order.Order, error)
	Snapshot(ctx context.Context, activityID int64) (*order.Snapshot, error)
	ListActivities(ctx context.Context) ([]order.Activity, error)
}

// Restorer puts an activity that Redis lost back from the database and the
// queue (order/service's Restorer, which runs one restore per activity at
// a time); the sale calls it when it finds an activity missing, and
// preloads each new activity with it.
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

// DemoContacts records the contact of a demo user at login (the notifier's
// contacts table fills it: notifier/contacts.DemoRecorder).
type DemoContacts interface {
	RecordDemoContact(ctx context.Context, userID string) error
}

// Deps are the sale's backends. Every field is required but DemoContacts,
// Tracer, Registerer, Logger and Now.
type Deps struct {
	Inventory Inventory
	Store     Store
	// Publisher receives the order messages. For the order message to
	// carry the buy's trace, wrap it with mqotel.
	Publisher mq.Publisher
	Payer     Payer
	Restorer  Restorer
	IDs       IDGenerator
	// Tokens issues the demo login's user tokens; BuyTokens issues and
	// verifies the buy tokens.
	Tokens    *auth.Tokens
	BuyTokens *auth.BuyTokens
	// Queue is the waiting rooms' Redis side and Passes the passes they
	// hand out; both are needed only for activities with queue admission.
	Queue  Queue
	Passes *auth.BuyTokens
	// DemoContacts, when set, records a made-up contact for every demo
	// login, so the notifier has an address to write to.
	DemoContacts DemoContacts
	// Tracer starts the buy's reserve span; nil starts none (tracing off,
	// at no cost).
	Tracer     trace.Tracer
	Registerer prometheus.Registerer // nil keeps the metrics unexported
	Logger     *slog.Logger          // default slog.Default()
	Now        func() time.Time      // the sale's clock; default time.Now
}

// Defaults of Config.
const (
	DefaultSoldOutTTL     = time.Second
	DefaultPublishTimeout = 2 * time.Second
	DefaultRedisTimeout   = time.Second
	DefaultActivityTTL    = 2 * time.Second
	// DefaultRestoreWait: a restore after Redis lost its data reads the
	// database and the queue once for every caller (well under a second
	// for thousands of orders); a buy that would wait longer is answered
	// 503 at once, and the restore goes on for the next ones.
	DefaultRestoreWait = 3 * time.Second
	// DefaultMaxBuysInFlight is Config.MaxBuysInFlight when unset
	// (SECKILL_MAX_BUYS_IN_FLIGHT). By Little's law the buys in flight
	// are the buy rate times the time one spends in the gateway: a 2-core
	// gateway serves some 5,000-10,000 buys/s, so 512 in flight keeps
	// Redis and the queue busy while bounding the wait inside the process
	// to about 50-100 ms before the next buy is refused. It is also the
	// load tester's default connection count: in the in-process spike
	// (generator and gateway on the same 2 cores, CPU-bound) a bound of
	// 256 refused most buys and the clients' retries tripled the
	// requests, which made the spike slower.
	DefaultMaxBuysInFlight = 512
)

// Config tunes a Service; every zero field selects its default.
type Config struct {
	// SoldOutTTL is how long a local sold-out flag answers from memory
	// before one buy probes Redis again (SECKILL_SOLDOUT_TTL).
	SoldOutTTL time.Duration
	// PublishTimeout bounds handing an order to the queue
	// (SECKILL_PUBLISH_TIMEOUT).
	PublishTimeout time.Duration
	// RedisTimeout bounds one Redis call of the buy path.
	RedisTimeout time.Duration
	// ActivityTTL is how long activity rows are cached.
	ActivityTTL time.Duration
	// RestoreWait bounds how long a buy or a page view waits for the
	// restore of an activity Redis lost: past it the answer is 503 BUSY
	// and the restore goes on. Without a bound every buyer of the spike
	// would hold a connection for the whole restore, and a load balancer
	// that times them out marks the gateways down.
	RestoreWait time.Duration
	// MaxBuysInFlight bounds the buys that reach Redis at once; past it a
	// buy is answered busy at once, nothing reserved
	// (SECKILL_MAX_BUYS_IN_FLIGHT).
	MaxBuysInFlight int
	// RequireBuyToken refuses a buy without a valid buy token
	// (SECKILL_BUY_TOKEN=required).
	RequireBuyToken bool

	// The waiting room of activities with queue admission
	// (waitroom.go). QueuePrequeue is how long before the start people
	// may join (SECKILL_QUEUE_PREQUEUE); QueueActive bounds the admitted
	// people who have not bought nor let their pass lapse, 0 meaning the
	// units left (SECKILL_QUEUE_ACTIVE); QueueRate admits at most this
	// many a second, 0 meaning no bound (SECKILL_QUEUE_RATE);
	// QueuePollBudget is the polling the whole queue may cause, in
	// requests a second (SECKILL_QUEUE_POLL_BUDGET); QueuePass is how
	// long a pass lasts (SECKILL_QUEUE_PASS_TTL).
	QueuePrequeue   time.Duration
	QueueActive     int64
	QueueRate       float64
	QueuePollBudget float64
	QueuePass       time.Duration
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
	def(&c.RestoreWait, DefaultRestoreWait)
	if c.MaxBuysInFlight <= 0 {
		c.MaxBuysInFlight = DefaultMaxBuysInFlight
	}
	def(&c.QueuePrequeue, DefaultQueuePrequeue)
	def(&c.QueuePass, DefaultQueuePass)
	if c.QueuePollBudget <= 0 {
		c.QueuePollBudget = DefaultQueuePollBudget
	}
	return c
}

// Service is the sale: one per gateway process, shared by every request.
type Service struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	now      func() time.Time
	metrics  *saleMetrics
	soldOut  soldOutFlags
	acts     activityCache
	list     activityList
	inFlight *inFlight
	rooms    rooms // the waiting rooms (waitroom.go)
}

// New builds the sale on deps.
func New(deps Deps, cfg Config) (*Service, error) {
	if deps.Inventory == nil || deps.Store == nil || deps.Publisher == nil || deps.Payer == nil ||
		deps.Restorer == nil || deps.IDs == nil || deps.Tokens == nil || deps.BuyTokens == nil {
		return nil, errors.New("sale: Inventory, Store, Publisher, Payer, Restorer, IDs, Tokens and BuyTokens are required")
	}
	cfg = cfg.withDefaults()
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if (deps.Queue == nil) != (deps.Passes == nil) {
		return nil, errors.New("sale: Queue and Passes go together (the waiting room)")
	}
	m := newMetrics(deps.Registerer)
	s := &Service{
		cfg: cfg, deps: deps, log: deps.Logger, now: deps.Now, metrics: m,
		soldOut:  soldOutFlags{ttl: cfg.SoldOutTTL},
		acts:     activityCache{ttl: cfg.ActivityTTL, store: deps.Store, now: deps.Now},
		inFlight: newInFlight(cfg.MaxBuysInFlight, m),
	}
	return s, nil
}

// ClearSoldOut drops the local sold-out flag of an activity, for when units
// come back on sale (a release announced by any process).
func (s *Service) ClearSoldOut(activityID int64) { s.soldOut.clear(activityID) }
