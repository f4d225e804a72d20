package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/platform/metrics"
)

// Metrics are the door's Prometheus series (the sale's own are in
// gateway/sale).
type Metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
}

// NewMetrics registers the door's series on reg.
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
			Name: "seckill_rate_limited_total", Help: "Requests rejected with 429, by limiter (global, ip, user, buy_token_user, queue_user).",
		}, []string{"limiter"}),
	}
	metrics.MustRegister(reg, m.requests, m.latency, m.rateLimited)
	// Export every known label value from the start at 0, so a dashboard
	// shows "0 rate-limited" rather than "no data", and rate() sees the
	// first increment.
	for _, l := range []string{"global", "ip", "user", "buy_token_user", "queue_user"} {
		m.rateLimited.WithLabelValues(l)
	}
	return m
}
