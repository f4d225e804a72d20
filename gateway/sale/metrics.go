package sale

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/platform/metrics"
)

// saleMetrics are the sale's Prometheus series.
type saleMetrics struct {
	reserve        *prometheus.CounterVec
	soldOutLocal   prometheus.Counter
	publishLatency prometheus.Histogram
	publishFailed  *prometheus.CounterVec
	// buyTokensIssued and buyTokenRefused count the buy-token layer:
	// tokens handed out, and buys refused at the door by reason.
	buyTokensIssued prometheus.Counter
	buyTokenRefused *prometheus.CounterVec
	// inFlight and refused are the bound on buys in flight (inflight.go).
	inFlight prometheus.Gauge
	refused  prometheus.Counter
	// orphans and reaped count what the reaper settled (reaper.go).
	orphans *prometheus.CounterVec
	reaped  prometheus.Counter
	// The waiting rooms (waitroom.go): polls by how they were answered,
	// and each activity's inlet as this gateway last read it.
	queuePolls                                             *prometheus.CounterVec
	queueWaiting, queueAdmitted, queueActive, queueSkipped *prometheus.GaugeVec
}

// newMetrics makes the series and registers them on reg (nil: unexported).
func newMetrics(reg prometheus.Registerer) *saleMetrics {
	m := &saleMetrics{
		reserve: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_reserve_total", Help: "Redis reserve script outcomes.",
		}, []string{"outcome"}),
		soldOutLocal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_soldout_local_total", Help: "Buys answered 410 from the local sold-out flag, without Redis.",
		}),
		publishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "seckill_publish_duration_seconds", Help: "Time to get an order message accepted by the queue.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 2},
		}),
		publishFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_publish_failures_total", Help: "Order messages the queue refused, by reason (full, error).",
		}, []string{"reason"}),
		buyTokensIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_buy_tokens_issued_total", Help: "Buy tokens issued (GET /api/v1/activities/{id}/buy-token).",
		}),
		buyTokenRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_buy_token_refused_total", Help: "Buys refused 403 at the door for their buy token, by reason (missing, invalid, expired, wrong_user, wrong_activity).",
		}, []string{"reason"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seckill_buys_in_flight", Help: "Buys admitted and not yet answered (bounded by SECKILL_MAX_BUYS_IN_FLIGHT).",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_admission_refused_total", Help: "Buys refused 503 BUSY at once because SECKILL_MAX_BUYS_IN_FLIGHT buys were in flight.",
		}),
		orphans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_orphan_reservations_total", Help: "Pending reservations of dead gateways settled at once, by how (published: the order went to the queue; released: the queue refused and the unit went back on sale).",
		}, []string{"how"}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_reaped_reservations_total", Help: "Pending reservations released after SECKILL_RESERVATION_TIMEOUT without a confirmed publish.",
		}),
		queuePolls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_queue_polls_total", Help: "Waiting-room requests by how they were answered: join (a join, from Redis), memory (this gateway's memory: before poll_after, behind the inlet's head, sold out), redis (a place read from Redis).",
		}, []string{"answer"}),
		queueWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seckill_queue_waiting", Help: "People in an activity's waiting room not yet admitted, as this gateway last read its inlet.",
		}, []string{"activity_id"}),
		queueAdmitted: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seckill_queue_admitted", Help: "People an activity's waiting room admitted so far (passed-over places included).",
		}, []string{"activity_id"}),
		queueActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seckill_queue_active", Help: "Admitted people who hold a pass and have not bought yet (bounded by SECKILL_QUEUE_ACTIVE or the units left).",
		}, []string{"activity_id"}),
		queueSkipped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seckill_queue_skipped", Help: "Admitted people whose pass lapsed unused: their places were passed over and the inlet moved on.",
		}, []string{"activity_id"}),
	}
	if reg != nil {
		metrics.MustRegister(reg, m.reserve, m.soldOutLocal, m.publishLatency, m.publishFailed,
			m.buyTokensIssued, m.buyTokenRefused, m.inFlight, m.refused, m.orphans, m.reaped,
			m.queuePolls, m.queueWaiting, m.queueAdmitted, m.queueActive, m.queueSkipped)
	}
	// Every known label value from the start at 0, so a dashboard shows
	// "0 failures" rather than "no data", and rate() sees the first one.
	for _, r := range []string{"full", "error"} {
		m.publishFailed.WithLabelValues(r)
	}
	for _, a := range []string{"join", "memory", "redis"} {
		m.queuePolls.WithLabelValues(a)
	}
	for _, h := range []string{"published", "released"} {
		m.orphans.WithLabelValues(h)
	}
	for _, r := range tokenRefusals {
		m.buyTokenRefused.WithLabelValues(r.answer.Reason)
	}
	return m
}

// observeInlet exports activity id's inlet as last read.
func (m *saleMetrics) observeInlet(id int64, in inventory.QueueInlet) {
	l := strconv.FormatInt(id, 10)
	m.queueWaiting.WithLabelValues(l).Set(float64(max(in.Total-in.Head, 0)))
	m.queueAdmitted.WithLabelValues(l).Set(float64(in.Head))
	m.queueActive.WithLabelValues(l).Set(float64(in.Active))
	m.queueSkipped.WithLabelValues(l).Set(float64(in.Skipped))
}
