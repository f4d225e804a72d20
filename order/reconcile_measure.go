package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/platform/metrics"
)

// What the Reconciler measures after its repairs: the drift between Redis
// and the database, its gauge, and the repairs counter.

// measure compares both sides of the activity (after the repairs), sets
// the drift gauge and logs any drift with both sides.
func (r *Reconciler) measure(ctx context.Context, a *Activity, rep *ReconcileReport) error {
	st, found, err := r.inv.Stats(ctx, a.ID)
	if err != nil || !found {
		return err
	}
	snap, err := r.store.Snapshot(ctx, a.ID)
	if err != nil {
		return err
	}
	missing, err := r.missing(ctx, a.ID)
	if err != nil {
		return err
	}
	live := snap.Created + snap.Paid
	redisGap := st.Stock - st.Remaining - st.Reserved
	dbGap := snap.Activity.Stock - snap.Activity.Available - live
	rep.Measured, rep.Redis, rep.DB, rep.Missing = true, st, *snap, int64(len(missing))
	rep.Drift = (st.Stock - snap.Activity.Stock) + rep.Missing - rep.Stale - redisGap + dbGap
	r.setDrift(a.ID, rep.Drift)
	if rep.Drift != 0 || redisGap != 0 || dbGap != 0 || rep.Missing != 0 || st.Stock != snap.Activity.Stock {
		r.log.Warn("reconciler: redis and the database disagree; reported, not repaired",
			"activity_id", a.ID, "drift", rep.Drift,
			"redis_stock", st.Stock, "redis_remaining", st.Remaining, "redis_reservations", st.Reserved,
			"db_stock", snap.Activity.Stock, "db_available", snap.Activity.Available,
			"db_created", snap.Created, "db_paid", snap.Paid, "db_cancelled", snap.Cancelled,
			"live_orders_without_reservation", rep.Missing, "sample", sample(missing),
			"cancelled_orders_still_reserved", rep.Stale, "unwritten_reservations", rep.Unwritten)
	}
	return nil
}

// missing returns the live (created or paid) orders of activity aid that
// hold no reservation. A live order's reservation goes only after its
// cancel committed, so an order found without one and still live when
// read again afterwards truly lacks it.
func (r *Reconciler) missing(ctx context.Context, aid int64) ([]string, error) {
	var out []string
	for _, state := range []string{StateCreated, StatePaid} {
		after := ""
		for {
			ids, err := r.store.orderIDsAfter(ctx, aid, state, after, r.cfg.PageSize)
			if err != nil {
				return nil, err
			}
			if len(ids) == 0 {
				break
			}
			held, err := r.inv.Held(ctx, aid, ids)
			if err != nil {
				return nil, err
			}
			if len(held) != len(ids) {
				return nil, fmt.Errorf("reservations of activity %d: %d answers for %d orders", aid, len(held), len(ids))
			}
			var absent []string
			for i, id := range ids {
				if !held[i] {
					absent = append(absent, id)
				}
			}
			if len(absent) > 0 {
				states, err := r.store.orderStates(ctx, absent)
				if err != nil {
					return nil, err
				}
				for _, id := range absent {
					if s := states[id]; s == StateCreated || s == StatePaid {
						out = append(out, id)
					}
				}
			}
			if len(ids) < r.cfg.PageSize {
				break
			}
			after = ids[len(ids)-1]
		}
	}
	return out, nil
}

// setDrift sets the gauge of activity id.
func (r *Reconciler) setDrift(id int64, drift int64) {
	if r.metrics == nil {
		return
	}
	r.mu.Lock()
	r.gauged[id] = true
	r.mu.Unlock()
	r.metrics.drift.WithLabelValues(strconv.FormatInt(id, 10)).Set(float64(drift))
}

// reconcileMetrics is nil when the reconciler has no Registerer.
type reconcileMetrics struct {
	drift   *prometheus.GaugeVec
	repairs *prometheus.CounterVec
}

func newReconcileMetrics(reg prometheus.Registerer, log *slog.Logger) *reconcileMetrics {
	m := &reconcileMetrics{
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seckill_reconcile_drift",
			Help: "Units Redis would sell beyond what the database can back (positive: oversell risk) or that neither side sells (negative: undersell), per activity, after the reconciler's repairs; 0 when Redis and the database agree.",
		}, []string{"activity_id"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_reconcile_repairs_total",
			Help: "Repairs made by the reconciler, by kind: redriven (an order message published again), released_cancelled, meta_rebuilt, activity_restored, remaining_lowered.",
		}, []string{"kind"}),
	}
	var errs [2]error
	m.drift, errs[0] = metrics.Shared(reg, m.drift)
	m.repairs, errs[1] = metrics.Shared(reg, m.repairs)
	if err := errors.Join(errs[:]...); err != nil {
		log.Warn("order worker metric not registered", "err", err)
	}
	for _, k := range []string{RepairRedriven, RepairReleasedCancelled, RepairMetaRebuilt, RepairActivityRestored, RepairRemainingLowered} {
		m.repairs.WithLabelValues(k)
	}
	return m
}

func (m *reconcileMetrics) repaired(kind string) {
	if m != nil {
		m.repairs.WithLabelValues(kind).Inc()
	}
}
