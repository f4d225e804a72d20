package sale

import (
	"github.com/prometheus/client_golang/prometheus"

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
	}
	if reg != nil {
		metrics.MustRegister(reg, m.reserve, m.soldOutLocal, m.publishLatency, m.publishFailed,
			m.buyTokensIssued, m.buyTokenRefused, m.inFlight, m.refused, m.orphans, m.reaped)
	}
	// Every known label value from the start at 0, so a dashboard shows
	// "0 failures" rather than "no data", and rate() sees the first one.
	for _, r := range []string{"full", "error"} {
		m.publishFailed.WithLabelValues(r)
	}
	for _, h := range []string{"published", "released"} {
		m.orphans.WithLabelValues(h)
	}
	for _, r := range tokenRefusals {
		m.buyTokenRefused.WithLabelValues(r.answer.Reason)
	}
	return m
}
