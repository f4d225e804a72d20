// Package measure records what the load generator saw: HdrHistogram
// latencies per endpoint and outcome, and a per-second timeline of requests
// sent and answers by status.
//
// Latency is measured from the moment a request was scheduled to leave,
// not from when it actually left: when the generator or the connection
// pool falls behind, that wait is part of what a user would have felt
// (no coordinated omission). How far behind the sends ran is reported
// separately (Lag), as a check on the generator itself.
package measure

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: 1µs to 5 minutes, 3 significant digits.
const (
	minMicros = 1
	maxMicros = int64(5 * time.Minute / time.Microsecond)
	sigFigs   = 3
)

// AllOutcomes is the Outcome of a row that merges every outcome of an endpoint.
const AllOutcomes = "all"

// Recorder collects samples. Safe for concurrent use.
type Recorder struct {
	origin time.Time
	// timed is the endpoint whose per-second latency is kept (the buy).
	timed string

	mu      sync.Mutex
	hists   map[[2]string]*hdr.Histogram // endpoint, outcome
	secs    map[int]*second
	lagMax  time.Duration
	lagHist *hdr.Histogram
	first   time.Time
	last    time.Time
	// timedFrom and timedTo are the timed endpoint's first scheduled send
	// and last answer: its span to the instant, not to whole seconds.
	timedFrom time.Time
	timedTo   time.Time
}

type second struct {
	sent    map[string]int
	answers map[string]int // "endpoint status"
	lat     *hdr.Histogram // of the timed endpoint, by completion second
}

// New returns a Recorder whose timeline counts seconds from origin (T0,
// the start of the sale; earlier seconds are negative). timed names the
// endpoint whose latency is also kept per second.
func New(origin time.Time, timed string) *Recorder {
	return &Recorder{
		origin: origin, timed: timed,
		hists:   map[[2]string]*hdr.Histogram{},
		secs:    map[int]*second{},
		lagHist: newHist(),
	}
}

func newHist() *hdr.Histogram { return hdr.New(minMicros, maxMicros, sigFigs) }

// Origin is T0.
func (r *Recorder) Origin() time.Time { return r.origin }

// SecondOf is the timeline index of t.
func (r *Recorder) SecondOf(t time.Time) int {
	return int(math.Floor(t.Sub(r.origin).Seconds()))
}

// Record adds one exchange: endpoint ("buy", "page", "pay", ...), its
// outcome label ("202", "429 RATE_LIMITED", "error"), its HTTP status (0
// for none), when it was scheduled to leave, when it left and when the
// answer was complete.
func (r *Recorder) Record(endpoint, outcome string, status int, intended, sent, done time.Time) {
	lat := done.Sub(intended)
	lag := max(sent.Sub(intended), 0)
	us := clamp(lat.Microseconds())
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range [][2]string{{endpoint, outcome}, {endpoint, AllOutcomes}} {
		h := r.hists[k]
		if h == nil {
			h = newHist()
			r.hists[k] = h
		}
		_ = h.RecordValue(us)
	}
	_ = r.lagHist.RecordValue(clamp(lag.Microseconds()))
	r.lagMax = max(r.lagMax, lag)
	r.sec(r.SecondOf(sent)).sent[endpoint]++
	d := r.sec(r.SecondOf(done))
	d.answers[endpoint+" "+statusLabel(status)]++
	if endpoint == r.timed {
		_ = d.lat.RecordValue(us)
		if r.timedFrom.IsZero() || intended.Before(r.timedFrom) {
			r.timedFrom = intended
		}
		if done.After(r.timedTo) {
			r.timedTo = done
		}
	}
	if r.first.IsZero() || sent.Before(r.first) {
		r.first = sent
	}
	if done.After(r.last) {
		r.last = done
	}
}

func (r *Recorder) sec(i int) *second {
	s := r.secs[i]
	if s == nil {
		s = &second{sent: map[string]int{}, answers: map[string]int{}, lat: newHist()}
		r.secs[i] = s
	}
	return s
}

func clamp(us int64) int64 { return min(max(us, minMicros), maxMicros) }

func statusLabel(status int) string {
	if status == 0 {
		return "error"
	}
	return strconv.Itoa(status)
}

// LatencyRow summarises one histogram, in milliseconds.
type LatencyRow struct {
	Endpoint string  `json:"endpoint"`
	Outcome  string  `json:"outcome"`
	Count    int64   `json:"count"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	P999     float64 `json:"p999_ms"`
	Max      float64 `json:"max_ms"`
}

func row(endpoint, outcome string, h *hdr.Histogram) LatencyRow {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return LatencyRow{
		Endpoint: endpoint, Outcome: outcome, Count: h.TotalCount(),
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()),
	}
}

// Latencies returns a row per endpoint and outcome, plus an "all" row per
// endpoint, ordered by endpoint, "all" first, then by outcome.
func (r *Recorder) Latencies() []LatencyRow {
	r.mu.Lock()
	defer r.mu.Unlock()
	rows := make([]LatencyRow, 0, len(r.hists))
	for k, h := range r.hists {
		rows = append(rows, row(k[0], k[1], h))
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Endpoint != b.Endpoint {
			return a.Endpoint < b.Endpoint
		}
		if (a.Outcome == AllOutcomes) != (b.Outcome == AllOutcomes) {
			return a.Outcome == AllOutcomes
		}
		return a.Outcome < b.Outcome
	})
	return rows
}

// Latency returns the row of one endpoint and outcome (Count 0 if none).
func (r *Recorder) Latency(endpoint, outcome string) LatencyRow {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h := r.hists[[2]string{endpoint, outcome}]; h != nil {
		return row(endpoint, outcome, h)
	}
	return LatencyRow{Endpoint: endpoint, Outcome: outcome}
}

// Count is how many exchanges of endpoint had an outcome starting with
// prefix ("" counts all, "429" counts every 429).
func (r *Recorder) Count(endpoint, prefix string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for k, h := range r.hists {
		if k[0] == endpoint && k[1] != AllOutcomes && strings.HasPrefix(k[1], prefix) {
			n += h.TotalCount()
		}
	}
	return n
}

// Second is one second of the timeline.
type Second struct {
	T       int            `json:"t"`       // seconds since T0 (the second [T, T+1))
	Sent    map[string]int `json:"sent"`    // requests that left in this second, by endpoint
	Answers map[string]int `json:"answers"` // answers completed in it, by "endpoint status"
	// P50 and P99 are the timed endpoint's latencies (ms) of the answers
	// completed in this second.
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

// Seconds returns the timeline from the first to the last second that saw
// anything, without gaps.
func (r *Recorder) Seconds() []Second {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.secs) == 0 {
		return nil
	}
	lo, hi := math.MaxInt, math.MinInt
	for i := range r.secs {
		lo, hi = min(lo, i), max(hi, i)
	}
	out := make([]Second, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		s := Second{T: i, Sent: map[string]int{}, Answers: map[string]int{}}
		if x := r.secs[i]; x != nil {
			for k, v := range x.sent {
				s.Sent[k] = v
			}
			for k, v := range x.answers {
				s.Answers[k] = v
			}
			if x.lat.TotalCount() > 0 {
				s.P50 = float64(x.lat.ValueAtQuantile(50)) / 1000
				s.P99 = float64(x.lat.ValueAtQuantile(99)) / 1000
			}
		}
		out = append(out, s)
	}
	return out
}

// Lag is how late the sends left compared with their schedule: the
// generator's own health (large values mean the machine could not offer
// the planned load; latencies still count the wait).
type Lag struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Lag returns the send lag.
func (r *Recorder) Lag() Lag {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Lag{
		P50: float64(r.lagHist.ValueAtQuantile(50)) / 1000,
		P99: float64(r.lagHist.ValueAtQuantile(99)) / 1000,
		Max: float64(r.lagMax.Microseconds()) / 1000,
	}
}

// TimedSpan is the timed endpoint's span: from its first scheduled send
// to its last answer (0 before any). The timeline's whole seconds would
// round a 9.2 s spike up to 10.
func (r *Recorder) TimedSpan() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.timedTo.Sub(r.timedFrom)
}

// Span is the time from the first send to the last answer.
func (r *Recorder) Span() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last.Sub(r.first)
}
