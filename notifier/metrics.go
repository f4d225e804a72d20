package notifier

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/notifier/channel"
	"github.com/flashsale/seckill/platform/metrics"
)

// Results of seckill_notifications_total.
const (
	// ResultSent: the provider accepted the notification (once per
	// notification).
	ResultSent = "sent"
	// ResultFailed: one attempt failed, transient or permanent.
	ResultFailed = "failed"
	// ResultRetried: a failed attempt was parked for another try.
	ResultRetried = "retried"
	// ResultDeadLettered: given up on: a permanent failure, or transient
	// ones for longer than the retry window.
	ResultDeadLettered = "dead_lettered"
	// ResultDuplicate: a redelivered event whose notification was already
	// claimed (sent, in flight or given up on); nothing was sent.
	ResultDuplicate = "duplicate"
	// ResultSkipped: the user has no address for the channel.
	ResultSkipped = "skipped"
)

var allResults = []string{ResultSent, ResultFailed, ResultRetried, ResultDeadLettered, ResultDuplicate, ResultSkipped}

// notifierMetrics are the notifier's Prometheus series. The names are part of the
// contract with the Grafana dashboards.
type notifierMetrics struct {
	total   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	invalid prometheus.Counter
	backlog *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*notifierMetrics, error) {
	m := &notifierMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_notifications_total",
			Help: "Notifications by channel (mail, sms) and result (sent, failed, retried, dead_lettered, duplicate, skipped).",
		}, []string{"channel", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "seckill_notification_send_seconds",
			Help:    "Duration of one send attempt to the provider (SMTP conversation, webhook call), successful or not.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"channel"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_notification_events_invalid_total",
			Help: "Order events the notifier could not decode and dropped (logged at error level).",
		}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seckill_notifications_backlog",
			Help: "Notifications not yet sent nor given up on (in flight or parked for a retry), by channel.",
		}, []string{"channel"}),
	}
	for _, ch := range []string{channel.Mail, channel.SMS} {
		for _, r := range allResults {
			m.total.WithLabelValues(ch, r)
		}
		m.seconds.WithLabelValues(ch)
		m.backlog.WithLabelValues(ch)
	}
	if reg == nil {
		return m, nil
	}
	if err := metrics.Register(reg, m.total, m.seconds, m.invalid, m.backlog); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *notifierMetrics) count(ch, result string) { m.total.WithLabelValues(ch, result).Inc() }
