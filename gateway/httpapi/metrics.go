package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/platform/metrics"
)

// Metrics are the gateway's Prometheus series.
type Metrics struct {
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	rateLimited    *prometheus.CounterVec
	reserve        *prometheus.CounterVec
	soldOutLocal   prometheus.Counter
	publishLatency prometheus.Histogram
	publishFailed  *prometheus.CounterVec
	// buyTokensIssued and buyTokenRefused count the buy-token layer
	// (buytoken.go): tokens handed out, and buys refused at the door by
	// reason (missing, invalid, expired, wrong_user, wrong_activity).
	buyTokensIssued prometheus.Counter
	buyTokenRefused *prometheus.CounterVec
}

// NewMetrics registers the gateway's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_http_requests_total", Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "seckill_http_request_duration_seconds", Help: "HTTP request latency by route template and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_rate_limited_total", Help: "Requests rejected with 429, by limiter (global, ip, user, buy_token_user).",
		}, []string{"limiter"}),
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
	}
	metrics.MustRegister(reg, m.requests, m.latency, m.rateLimited, m.reserve, m.soldOutLocal, m.publishLatency, m.publishFailed, m.buyTokensIssued, m.buyTokenRefused)
	// Export every known label value from the start at 0, so a dashboard
	// shows "0 rate-limited" rather than "no data", and rate() sees the
	// first increment.
	for _, l := range []string{"global", "ip", "user", "buy_token_user"} {
		m.rateLimited.WithLabelValues(l)
	}
	for _, r := range []string{"full", "error"} {
		m.publishFailed.WithLabelValues(r)
	}
	for _, r := range buyTokenRefusals {
		m.buyTokenRefused.WithLabelValues(r.reason)
	}
	return m
}
