package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
)

// The Reconciler heals what slips through the pipeline's own safety nets
// (the reaper, the sweeper, the worker's idempotence, the restore at
// start) by comparing Redis with the database, activity by activity:
//
//   - A reservation queued or claimed for longer than Age whose order is not
//     in the database lost its order message (a queue that lost data, a
//     message dead-lettered and dropped): the message is published again.
//     The worker is idempotent by order id, so a duplicate is harmless.
//   - A reservation whose order the database holds as cancelled lost its
//     release (the process died between the cancel's commit and the Redis
//     step, and nothing redelivered it): the unit is released.
//   - An activity whose meta key is gone while its reservations survived
//     gets meta back with remaining = stock - reservations; an activity
//     Redis lost entirely is restored through the ActivityRestorer; and
//     remaining + reservations above stock (meta rebuilt from the database
//     while reservations it did not know survived) is lowered to stock.
//   - Everything else is measured and reported, never repaired: the drift
//     gauge, and a log line with both sides. A repair only ever takes units
//     off sale or returns a unit whose order the database cancelled; it
//     never puts a unit on sale on a guess.
//
// Every step is idempotent and every Redis change is one script, so any
// number of reconcilers may run at once (one per worker process).

// Defaults of ReconcilerConfig.
const (
	DefaultReconcileInterval = 30 * time.Second
	DefaultReconcileAge      = 5 * time.Minute
	// DefaultReconcileHorizon: activities that ended longer ago are left
	// alone (as the restore at start leaves them).
	DefaultReconcileHorizon = 24 * time.Hour
	// DefaultReconcilePageSize bounds one HSCAN page, one HMGET and one
	// IN (...) list of the database.
	DefaultReconcilePageSize = 1000
	// DefaultReconcileMaxRedrives: an order re-driven this many times
	// and still not written is left to an operator (its messages are on
	// the dead-letter topic with the reason) rather than re-driven forever.
	DefaultReconcileMaxRedrives = 3
	// DefaultReconcileRedriveLimit bounds the re-drives of one activity
	// in one pass, so a queue that lost a whole sale is refilled at a pace
	// that leaves it room for new orders.
	DefaultReconcileRedriveLimit = 1000
	// DefaultReconcileMetaSettle: meta must have been missing this long,
	// while reservations exist, before it is rebuilt. A Load in progress
	// (the restore of a lost activity) writes reservations before meta;
	// it is done well within this.
	DefaultReconcileMetaSettle = 2 * time.Second
)

// Kinds of repair, the kind label of seckill_reconcile_repairs_total.
const (
	RepairRedriven          = "redriven"           // an order message published again
	RepairReleasedCancelled = "released_cancelled" // a cancelled order's unit returned to Redis
	RepairMetaRebuilt       = "meta_rebuilt"       // a lost meta key written again from the reservations
	RepairActivityRestored  = "activity_restored"  // an activity Redis lost restored from the database and the queue
	RepairRemainingLowered  = "remaining_lowered"  // remaining lowered to stock - reservations
)

// HeaderRedriven marks an order message the reconciler published again.
const HeaderRedriven = "x-redriven-by"

// ReconcileInventory is the Redis side the Reconciler reads and repairs,
// in inventory's own terms; *inventory.Store satisfies it. Each method is
// one Redis command or one script.
type ReconcileInventory interface {
	// Stats reads stock, remaining and the reservations in one step;
	// false when the activity's meta is missing.
	Stats(ctx context.Context, activityID int64) (inventory.Stats, bool, error)
	// Reservations reads one page of an activity's reservations (start
	// at cursor 0, follow Next until 0); one may come twice.
	Reservations(ctx context.Context, activityID int64, cursor uint64, count int64) (inventory.ReservationPage, error)
	// Held reports which orders hold a reservation.
	Held(ctx context.Context, activityID int64, orderIDs []string) ([]bool, error)
	// RepairMeta writes a missing meta with remaining = stock -
	// reservations, at most maxRemaining, when other keys survived.
	RepairMeta(ctx context.Context, a inventory.Activity, maxRemaining int64) (inventory.MetaRepair, error)
	// LowerRemaining lowers remaining to stock - reservations when it is
	// above, and returns the units taken off sale.
	LowerRemaining(ctx context.Context, activityID int64) (int64, bool, error)
	// MarkRedrive records, for every process at once, that orderID's
	// message is published again now, if it is still queued or claimed,
	// reserved before reservedBefore, not re-driven in the last gap and
	// re-driven fewer than maxTimes.
	MarkRedrive(ctx context.Context, activityID int64, orderID string, reservedBefore, now time.Time, gap time.Duration, maxTimes int) (inventory.RedriveDecision, error)
	// UnmarkRedrive takes back the last MarkRedrive of orderID (its
	// publish failed), so it counts neither as a re-drive nor for the gap.
	UnmarkRedrive(ctx context.Context, activityID int64, orderID string) error
	// ReleaseCancelled returns the unit of a cancelled order (Releaser).
	Releaser
}

// ActivityRestorer loads an activity that Redis lost entirely from the
// database and the order messages still in the queue (the order service's
// Restorer). It does nothing when the activity is there.
type ActivityRestorer interface {
	Restore(ctx context.Context, a *Activity) error
}

// OrderPublisher publishes re-driven order messages (mq.Publisher does).
type OrderPublisher interface {
	Publish(ctx context.Context, topic string, msgs ...*mq.Message) error
}

// ReconcilerConfig tunes a Reconciler. Zero values select the defaults.
type ReconcilerConfig struct {
	// Interval between passes of Run. Default DefaultReconcileInterval.
	Interval time.Duration
	// Age: a queued or claimed reservation older than this whose order
	// is not in the database is re-driven. Keep it well above the time a
	// message normally takes to be written. Default DefaultReconcileAge.
	Age time.Duration
	// Horizon: activities that ended longer ago are skipped. Default
	// DefaultReconcileHorizon.
	Horizon time.Duration
	// PageSize of scans and lookups. Default DefaultReconcilePageSize.
	PageSize int
	// MaxRedrives per order. Default DefaultReconcileMaxRedrives.
	MaxRedrives int
	// RedriveLimit per activity and pass. Default DefaultReconcileRedriveLimit.
	RedriveLimit int
	// MetaSettle: how long meta must be missing, with reservations
	// present, before it is rebuilt. Default DefaultReconcileMetaSettle.
	MetaSettle time.Duration
	// Restorer restores an activity Redis lost entirely; nil: such an
	// activity is only reported.
	Restorer ActivityRestorer
	// Backlog says which order messages may still wait in the queue: the
	// publish time of the oldest one the order workers have not settled,
	// and whether any waits (oldest zero with waiting true: some wait,
	// age unknown). A reservation is re-driven only when it is older than
	// Age before that oldest message too, so a backlog (a long database
	// outage) is never published a second time; with an unknown age
	// nothing is re-driven until the backlog is gone. Nil: the queue is
	// assumed to hold nothing older than Age.
	Backlog func(ctx context.Context) (oldest time.Time, waiting bool, err error)
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
	// Logger; nil uses slog.Default().
	Logger *slog.Logger
	// Registerer receives the reconciler's metrics; nil means no metrics.
	Registerer prometheus.Registerer
}

func (c ReconcilerConfig) withDefaults() ReconcilerConfig {
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	defInt := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	def(&c.Interval, DefaultReconcileInterval)
	def(&c.Age, DefaultReconcileAge)
	def(&c.Horizon, DefaultReconcileHorizon)
	def(&c.MetaSettle, DefaultReconcileMetaSettle)
	defInt(&c.PageSize, DefaultReconcilePageSize)
	defInt(&c.MaxRedrives, DefaultReconcileMaxRedrives)
	defInt(&c.RedriveLimit, DefaultReconcileRedriveLimit)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ReconcileReport is what one pass found and did for one activity.
type ReconcileReport struct {
	ActivityID int64

	Redriven     int   // order messages published again
	Released     int   // units of cancelled orders returned to Redis
	MetaRebuilt  bool  // meta was written again from the reservations
	Restored     bool  // the activity was restored from the database
	Lowered      int64 // units taken off sale: remaining was above stock - reservations
	Stuck        int   // orders re-driven MaxRedrives times and still not written
	Malformed    int   // reservations whose value does not decode
	MetaPending  bool  // meta is missing; rebuilt once it stays so for MetaSettle
	Reservations int   // distinct reservations scanned
	Unwritten    int64 // reservations whose order is not in the database (queued, claimed or pending)

	// Measured is false when the activity could not be compared (Redis
	// does not hold it yet); the fields below are then zero.
	Measured bool
	Redis    inventory.Stats
	DB       Snapshot
	// Missing: live (created or paid) orders without a reservation.
	Missing int64
	// Stale: reservations of cancelled orders still held (their release
	// failed in this pass).
	Stale int64
	// Drift is the units Redis would sell beyond what the database can
	// back (positive: oversell risk, those buyers' orders would fail), or
	// the units neither side sells (negative: undersell); 0 when the
	// books agree. It is (Redis stock - DB stock) + Missing - Stale -
	// (Redis stock - remaining - reservations) + (DB stock - available -
	// created - paid): each term is read in one consistent step, so it
	// stays 0 in a healthy system however busy.
	Drift int64
}

// Reconciler compares Redis with the database and repairs what has a known
// cause. Create it with NewReconciler; call Run, or Once for one pass.
type Reconciler struct {
	store   *Store
	inv     ReconcileInventory
	pub     OrderPublisher
	cfg     ReconcilerConfig
	log     *slog.Logger
	metrics *reconcileMetrics

	mu          sync.Mutex
	metaMissing map[int64]time.Time // activity -> when this reconciler first saw its meta missing
	gauged      map[int64]bool      // activities with a drift gauge
}

// NewReconciler returns a Reconciler over store, inv (Redis) and pub (the
// queue of ordermsg.TopicOrders).
func NewReconciler(store *Store, inv ReconcileInventory, pub OrderPublisher, cfg ReconcilerConfig) *Reconciler {
	cfg = cfg.withDefaults()
	r := &Reconciler{
		store: store, inv: inv, pub: pub, cfg: cfg, log: cfg.Logger,
		metaMissing: make(map[int64]time.Time), gauged: make(map[int64]bool),
	}
	if cfg.Registerer != nil {
		r.metrics = newReconcileMetrics(cfg.Registerer, r.log)
	}
	return r
}

// Run reconciles every Interval until ctx is done.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("reconciler: pass incomplete, the next one retries", "err", err)
		}
	}
}

// Once reconciles every activity that has not ended more than Horizon ago,
// and returns a report per activity. One activity that fails does not stop
// the others; the error joins their failures.
func (r *Reconciler) Once(ctx context.Context) ([]ReconcileReport, error) {
	now := r.cfg.Now()
	acts, err := r.store.ListActivities(ctx)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	cutoff, redrive := r.redriveCutoff(ctx, now)
	var reports []ReconcileReport
	var errs []error
	seen := make(map[int64]bool, len(acts))
	for i := range acts {
		a := &acts[i]
		if a.Stock <= 0 || a.EndsAt.Before(now.Add(-r.cfg.Horizon)) {
			continue
		}
		seen[a.ID] = true
		rep, err := r.activity(ctx, a, now, cutoff, redrive)
		reports = append(reports, rep)
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile activity %d: %w", a.ID, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	r.forget(seen)
	return reports, errors.Join(errs...)
}

// redriveCutoff is the newest reservation time a re-drive may have, and
// whether re-drives may happen in this pass at all.
func (r *Reconciler) redriveCutoff(ctx context.Context, now time.Time) (time.Time, bool) {
	cutoff := now.Add(-r.cfg.Age)
	if r.cfg.Backlog == nil {
		return cutoff, true
	}
	oldest, waiting, err := r.cfg.Backlog(ctx)
	switch {
	case err != nil:
		r.log.Warn("reconciler: cannot tell which order messages still wait in the queue; no re-drives this pass", "err", err)
		return cutoff, false
	case !waiting:
		return cutoff, true
	case oldest.IsZero():
		r.log.Debug("reconciler: order messages wait in the queue, of unknown age; no re-drives until they are written")
		return cutoff, false
	}
	if c := oldest.Add(-r.cfg.Age); c.Before(cutoff) {
		cutoff = c
	}
	return cutoff, true
}

// activity reconciles one activity: it scans its reservations, returns the
// units of cancelled orders, repairs a lost meta (or restores the
// activity), takes off sale what reservations hold, re-drives lost order
// messages when redrive allows, then measures what is left.
func (r *Reconciler) activity(ctx context.Context, a *Activity, now, cutoff time.Time, redrive bool) (ReconcileReport, error) {
	rep := ReconcileReport{ActivityID: a.ID}
	_, found, err := r.inv.Stats(ctx, a.ID)
	if err != nil {
		return rep, err
	}
	sc, err := r.scan(ctx, a.ID, cutoff)
	if err != nil {
		return rep, err
	}
	rep.Reservations, rep.Unwritten, rep.Malformed = sc.seen, sc.unwritten, len(sc.malformed)
	if len(sc.malformed) > 0 {
		r.log.Error("reconciler: reservations that do not decode (a manual edit or a bug); left as they are",
			"activity_id", a.ID, "count", len(sc.malformed), "order_ids", sample(sc.malformed))
	}

	// A cancel whose release was lost: return the unit (idempotent, so a
	// cancel releasing at the same moment returns it once).
	for _, id := range sc.cancelled {
		released, err := r.inv.ReleaseCancelled(ctx, a.ID, id)
		if err != nil {
			rep.Stale++
			r.log.Warn("reconciler: release of a cancelled order failed; retried next pass", "activity_id", a.ID, "order_id", id, "err", err)
			continue
		}
		if released {
			rep.Released++
			r.metrics.repaired(RepairReleasedCancelled)
			r.log.Warn("reconciler released the unit of a cancelled order whose release was lost", "activity_id", a.ID, "order_id", id)
		}
	}

	if found {
		r.setMetaMissing(a.ID, time.Time{})
	} else {
		done, err := r.repairMissing(ctx, a, now, sc, &rep)
		if err != nil || !done {
			return rep, err
		}
	}

	lowered, _, err := r.inv.LowerRemaining(ctx, a.ID)
	if err != nil {
		return rep, err
	}
	if lowered > 0 {
		rep.Lowered = lowered
		r.metrics.repaired(RepairRemainingLowered)
		r.log.Warn("reconciler took units off sale: remaining + reservations exceeded stock (meta restored without some surviving reservations)",
			"activity_id", a.ID, "units", lowered)
	}

	if redrive {
		if err := r.redrive(ctx, a, now, cutoff, sc.redrive, &rep); err != nil {
			return rep, err
		}
	} else if len(sc.redrive) > 0 {
		r.log.Info("reconciler: unwritten orders left for a later pass while the queue holds older messages",
			"activity_id", a.ID, "count", len(sc.redrive))
	}

	return rep, r.measure(ctx, a, &rep)
}

// setMetaMissing records when meta of activity id was first seen missing
// (now) and returns that time; a zero now forgets it.
func (r *Reconciler) setMetaMissing(id int64, now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.IsZero() {
		delete(r.metaMissing, id)
		return now
	}
	if first, ok := r.metaMissing[id]; ok {
		return first
	}
	r.metaMissing[id] = now
	return now
}

// forget drops the state and the gauge of activities no longer reconciled.
func (r *Reconciler) forget(seen map[int64]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.metaMissing {
		if !seen[id] {
			delete(r.metaMissing, id)
		}
	}
	for id := range r.gauged {
		if !seen[id] && r.metrics != nil {
			delete(r.gauged, id)
			r.metrics.drift.DeleteLabelValues(strconv.FormatInt(id, 10))
		}
	}
}

// sample returns the first few ids, for log lines.
func sample(ids []string) []string {
	if len(ids) > 5 {
		return ids[:5]
	}
	return ids
}
