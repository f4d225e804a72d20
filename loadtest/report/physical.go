package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flashsale/seckill/loadtest/measure"
	"github.com/flashsale/seckill/loadtest/scenario"
)

// PhysicalLimit is how long the spike would take if every request it sent
// cost what a GET /healthz costs through the same generator, connections
// and HTTP stack: every request the crowd sent (buys with bots, double
// clicks and retries; buy-token fetches; page views; deadline payers'
// order reads; payments) divided by the /healthz probe's rate in the same
// run. No answer can be
// cheaper than /healthz, so the spike cannot be answered faster on this
// machine: SpikeVsLimit = 1 is the machine's ceiling.
//
// Without a /healthz rate measured in the same run (--probe-duration 0)
// the limit is unknown: HealthzRPS, Seconds and SpikeVsLimit are null and
// Unknown says why.
type PhysicalLimit struct {
	Requests   int64            `json:"requests"`             // every request the spike sent
	ByEndpoint map[string]int64 `json:"requests_by_endpoint"` // the same by endpoint (buy, buy-token, page, order, pay)
	HealthzRPS *float64         `json:"healthz_rps"`          // the /healthz probe's req/s, same run
	Seconds    *float64         `json:"seconds"`              // Requests / HealthzRPS
	// SpikeVsLimit is spike answered in / Seconds (1.0: at the ceiling).
	SpikeVsLimit *float64 `json:"spike_vs_limit"`
	// ArrivalSeconds is the crowd's own schedule: the last first click is
	// planned this long after the first (1s + tail + late window; bots
	// start 200ms early). However fast the machine, the spike cannot be
	// answered sooner.
	ArrivalSeconds float64 `json:"crowd_arrival_seconds"`
	Unknown        string  `json:"unknown,omitempty"` // why there is no limit
}

// Known reports whether the limit was measured.
func (l PhysicalLimit) Known() bool {
	return l.Seconds != nil && l.SpikeVsLimit != nil && l.HealthzRPS != nil
}

// LimitSeconds is the limit (NaN when unknown).
func (l PhysicalLimit) LimitSeconds() float64 { return deref(l.Seconds) }

// Ratio is spike answered in / the limit (NaN when unknown).
func (l PhysicalLimit) Ratio() float64 { return deref(l.SpikeVsLimit) }

// Ceiling is the /healthz rate it was computed from (NaN when unknown).
func (l PhysicalLimit) Ceiling() float64 { return deref(l.HealthzRPS) }

func deref(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// Short is the limit next to a spike duration: "physical limit 5.2s:
// 1.7x", or "physical limit unknown: why".
func (l PhysicalLimit) Short() string {
	if !l.Known() {
		return "physical limit unknown: " + l.Unknown
	}
	return fmt.Sprintf("physical limit %ss: %.1fx", secs(*l.Seconds), *l.SpikeVsLimit)
}

// SecondsText is "5.2 s", or "unknown".
func (l PhysicalLimit) SecondsText() string {
	if !l.Known() {
		return "unknown"
	}
	return secs(*l.Seconds) + " s"
}

// RatioText is "1.7x", or "unknown".
func (l PhysicalLimit) RatioText() string {
	if !l.Known() {
		return "unknown"
	}
	return fmt.Sprintf("%.1fx", *l.SpikeVsLimit)
}

// Breakdown is how the limit was computed: "154321 requests (buy 120000,
// page 30000, ...) / 29600 req/s /healthz = 5.2s".
func (l PhysicalLimit) Breakdown() string {
	eps := make([]string, 0, len(l.ByEndpoint))
	for ep := range l.ByEndpoint {
		eps = append(eps, ep)
	}
	sort.Slice(eps, func(i, j int) bool {
		if l.ByEndpoint[eps[i]] != l.ByEndpoint[eps[j]] {
			return l.ByEndpoint[eps[i]] > l.ByEndpoint[eps[j]]
		}
		return eps[i] < eps[j]
	})
	parts := make([]string, len(eps))
	for i, ep := range eps {
		parts[i] = fmt.Sprintf("%s %d", ep, l.ByEndpoint[ep])
	}
	s := fmt.Sprintf("%d requests (%s)", l.Requests, strings.Join(parts, ", "))
	if !l.Known() {
		return s + " / no /healthz ceiling measured: unknown"
	}
	return s + fmt.Sprintf(" / %.0f req/s /healthz = %ss", *l.HealthzRPS, secs(*l.Seconds))
}

// secs formats seconds: one decimal, two significant digits below one
// second (a small run's limit is a fraction of a second).
func secs(v float64) string {
	if v < 1 {
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	return fmt.Sprintf("%.1f", v)
}

// NewPhysicalLimit computes the limit from the spike's latency rows (their
// per-endpoint "all" rows count every request the generator sent), the
// run's probes, the spike's duration and the scenario.
func NewPhysicalLimit(latency []measure.LatencyRow, probes []Probe, spikeSeconds float64, sc scenario.Config) PhysicalLimit {
	l := PhysicalLimit{ByEndpoint: map[string]int64{}, ArrivalSeconds: arrivalWindow(sc).Seconds()}
	for _, row := range latency {
		if row.Outcome == measure.AllOutcomes {
			l.ByEndpoint[row.Endpoint] += row.Count
			l.Requests += row.Count
		}
	}
	var healthz *Probe
	for i := range probes {
		if probes[i].Name == ProbeHealthz {
			healthz = &probes[i]
		}
	}
	switch {
	case healthz == nil:
		l.Unknown = "the saturation probes were skipped (--probe-duration 0), so no /healthz ceiling was measured in this run"
	case healthz.RPS <= 0:
		l.Unknown = "the /healthz probe got no answer that counted (" + healthz.Outcomes + ")"
	case l.Requests == 0:
		l.Unknown = "the spike sent no request"
	case spikeSeconds <= 0:
		l.Unknown = "the spike has no duration (no buy was answered)"
	default:
		rps := healthz.RPS
		secs := float64(l.Requests) / rps
		x := spikeSeconds / secs
		l.HealthzRPS, l.Seconds, l.SpikeVsLimit = &rps, &secs, &x
	}
	return l
}

// arrivalWindow is from the first planned buy to the last planned first
// click: bots start up to 200ms before T0 and fire for the bot duration;
// humans click within 1s + tail, late users within the late window after.
func arrivalWindow(c scenario.Config) time.Duration {
	start, end := time.Duration(0), time.Second+max(c.Tail, 0)
	if c.LateShare > 0 {
		end += c.LateWindow
	}
	if c.SteadyShare > 0 {
		end = max(end, c.SteadyWindow)
	}
	if c.BotShare > 0 {
		start = -200 * time.Millisecond
		end = max(end, start+c.BotDuration)
	}
	return end - start
}
