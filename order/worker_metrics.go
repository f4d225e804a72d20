package order

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/platform/metrics"
)

// workerMetrics is nil when the worker has no Registerer; its methods then
// do nothing.
type workerMetrics struct {
	batchSize    prometheus.Histogram
	writeSeconds prometheus.Histogram
	writtenTotal *prometheus.CounterVec
}

func newWorkerMetrics(reg prometheus.Registerer, log *slog.Logger) *workerMetrics {
	m := &workerMetrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seckill_order_batch_size",
			Help:    "Order messages written per database transaction.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seckill_order_db_write_seconds",
			Help:    "Time to write one batch of orders (lookup, claims, transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		writtenTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_orders_written_total",
			Help: "Order messages handled by the worker, by result.",
		}, []string{"result"}),
	}
	// Shared: the workers of one process count into one series.
	var errs [3]error
	m.batchSize, errs[0] = metrics.Shared(reg, m.batchSize)
	m.writeSeconds, errs[1] = metrics.Shared(reg, m.writeSeconds)
	m.writtenTotal, errs[2] = metrics.Shared(reg, m.writtenTotal)
	if err := errors.Join(errs[:]...); err != nil {
		log.Warn("order worker metric not registered", "err", err)
	}
	for _, r := range []string{resultCreated, resultDuplicate, resultUnreserved, resultFailed} {
		m.writtenTotal.WithLabelValues(r)
	}
	return m
}

func (m *workerMetrics) observeBatch(n int, d time.Duration) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(n))
	m.writeSeconds.Observe(d.Seconds())
}

func (m *workerMetrics) written(result string, n int) {
	if m == nil {
		return
	}
	m.writtenTotal.WithLabelValues(result).Add(float64(n))
}
