package api

import "strings"

// GlobalGauges are the gauges every seckill process reports for the whole
// system, not for itself: each gateway and worker reads the same NATS
// backlog, dead-letter topics and database outbox. Adding them across
// processes would count the one queue once per process, so a Merger takes
// their largest value instead. Every other gauge (buys in flight, say) is
// a process's own and is summed.
func GlobalGauges() []string {
	return []string{
		"seckill_queue_depth",
		"seckill_queue_oldest_age_seconds",
		"seckill_dead_letters",
		"seckill_outbox_lag_seconds",
		"seckill_outbox_pending",
		"seckill_reconcile_drift",
	}
}

// Merger reads the /metrics of several processes (the gateways and workers
// behind a load balancer) as if they were one: counters are summed,
// GlobalGauges take their largest value, other gauges are summed.
//
// A process that is killed and started again starts its counters from
// zero, and one that does not answer (paused, down) has no scrape at all.
// Summing the raw values would make the sum fall and rise again, and a
// second's growth would read negative; a Merger instead keeps each
// process's counters monotonic, as Prometheus' rate() does: a counter that
// went down was reset, and its last value is kept as an offset; a process
// without a scrape keeps the counters it had. Its gauges are left out
// until it answers again.
//
// Feed it the scrapes in the order they were taken. Not safe for
// concurrent use.
type Merger struct {
	max    map[string]bool
	last   map[string]Metrics // target -> last raw counters seen
	offset map[string]Metrics // target -> the sum of its counters' values before each reset
}

// NewMerger returns a Merger that takes the largest value of the gauges
// named in maxOf (GlobalGauges for seckill) and sums everything else.
func NewMerger(maxOf []string) *Merger {
	m := &Merger{max: map[string]bool{}, last: map[string]Metrics{}, offset: map[string]Metrics{}}
	for _, n := range maxOf {
		m.max[n] = true
	}
	return m
}

// IsCounter reports whether the series key (as ParseMetrics keys them)
// belongs to a counter, by the Prometheus naming conventions: _total,
// and a histogram's or summary's _count, _sum and _bucket.
func IsCounter(key string) bool {
	name, _, _ := strings.Cut(key, "{")
	for _, suf := range []string{"_total", "_count", "_sum", "_bucket"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// Merge adds one round of scrapes, target -> its metrics (nil when the
// scrape failed), and returns the merged view.
func (m *Merger) Merge(scrapes map[string]Metrics) Metrics {
	for target, cur := range scrapes {
		if cur == nil {
			continue
		}
		last, off := m.last[target], m.offset[target]
		if last == nil {
			last, off = Metrics{}, Metrics{}
			m.offset[target] = off
		}
		next := Metrics{}
		reset := false
		for k, v := range cur {
			if !IsCounter(k) {
				continue
			}
			if prev, ok := last[k]; ok && v < prev {
				reset = true
			}
			next[k] = v
		}
		if reset {
			// A restarted process resets every counter at once: carry all
			// of them, including series it has not reported again yet.
			for k, v := range last {
				off[k] += v
			}
		}
		// A series that vanished from a live process keeps its last value.
		for k, v := range last {
			if _, ok := next[k]; !ok && !reset {
				next[k] = v
			}
		}
		m.last[target] = next
	}

	out := Metrics{}
	for target, counters := range m.last {
		off := m.offset[target]
		for k, v := range counters {
			out[k] += v + off[k]
		}
		for k, v := range off {
			if _, ok := counters[k]; !ok {
				out[k] += v
			}
		}
	}
	for _, cur := range scrapes {
		for k, v := range cur {
			if IsCounter(k) {
				continue
			}
			name, _, _ := strings.Cut(k, "{")
			if prev, ok := out[k]; ok && m.max[name] {
				out[k] = max(prev, v)
			} else {
				out[k] = prev + v
			}
		}
	}
	return out
}
