package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
)

// Chaos is what a chaos run did to the system and what it saw: each fault
// with when it began and ended and how long the system took to recover,
// the buys that failed in flight, and the alerts a Prometheus raised.
type Chaos struct {
	Schedule    string `json:"schedule"`
	Description string `json:"description,omitempty"`
	// Seed is the crowd's: the schedule's offsets are fixed, so the seed
	// and the schedule replay the run.
	Seed   uint64  `json:"seed"`
	Faults []Fault `json:"faults"`
	// InFlight are the buys that failed on their way.
	InFlight InFlight `json:"in_flight"`
	// Alerts fired between the countdown and the end of the drain, in the
	// order they first fired; AlertsNote says why there are none to list
	// (no Prometheus, the query failed).
	Alerts     []Alert `json:"alerts"`
	AlertsNote string  `json:"alerts_note,omitempty"`
	Prometheus string  `json:"prometheus,omitempty"`
	// Errors of the injector (a fault that could not be injected or
	// ended) and of the heal after it.
	Errors []string `json:"errors,omitempty"`
	// Notes on the system that explain the faults' effects (the queue's
	// streams and their replicas).
	Notes []string `json:"notes,omitempty"`
}

// Fault is one fault of the schedule as it happened. Times are seconds
// after T0 (nil: it did not happen).
type Fault struct {
	Fault  string   `json:"fault"` // "kill gateway-1 at +1s for 3s"
	Kind   string   `json:"kind"`
	Target string   `json:"target"`
	Began  *float64 `json:"began_s"`
	Ended  *float64 `json:"ended_s"`
	// Ready is when a killed process was ready again; StartFailures the
	// starts before that which failed (it exited while starting), with
	// the last one's reason.
	Ready         *float64 `json:"ready_s,omitempty"`
	StartFailures int      `json:"start_failures,omitempty"`
	StartFailure  string   `json:"start_failure,omitempty"`
	// Recovery, as docs/chaos.md defines it: from Ended until 202s flow
	// again and the queue's oldest order is no older than before the
	// fault (or than QueueAgeAllowed).
	Recovered       bool     `json:"recovered"`
	RecoverySeconds *float64 `json:"recovery_s"`
	RecoveredAt     *float64 `json:"recovered_at_s,omitempty"`
	First202        *float64 `json:"first_202_s,omitempty"`
	QueueAgeBefore  float64  `json:"queue_age_before_s"`
	QueueAgeAllowed float64  `json:"queue_age_allowed_s"`
	NotRecovered    string   `json:"not_recovered,omitempty"`
	// Overlaps are the other faults (numbered from 1) on while it was;
	// OthersUntil is when the last of them ended: a recovery measured
	// before then measures them too.
	Overlaps    []int    `json:"overlaps,omitempty"`
	OthersUntil *float64 `json:"others_until_s,omitempty"`
	// Alerts are those that first fired while it was on, or before
	// AlertGrace after it had recovered.
	Alerts []string `json:"alerts,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// InFlight counts the buys that failed on their way: no answer (a
// connection refused or reset, a timeout), or the load balancer's 502 or
// 504. None is a promise; whether each reserved is unknown.
type InFlight struct {
	Total     int            `json:"total"`
	ByOutcome map[string]int `json:"by_outcome"`
	Users     int            `json:"users"`
	// LaterAccepted of those users then received a 202 (their retry, with
	// the same request_id when they send one).
	LaterAccepted int `json:"users_later_accepted"`
}

// Summary is "12 (error 9, 502 3) from 11 users, 10 of whom later got a 202".
func (f InFlight) Summary() string {
	if f.Total == 0 {
		return "none"
	}
	keys := make([]string, 0, len(f.ByOutcome))
	for k := range f.ByOutcome {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, f.ByOutcome[k])
	}
	return fmt.Sprintf("%d (%s) from %d users, %d of whom later received a 202", f.Total, strings.Join(parts, ", "), f.Users, f.LaterAccepted)
}

// Alert is one alert that fired. Times are seconds after T0.
type Alert struct {
	Alert    string  `json:"alert"` // name (severity) labels
	Name     string  `json:"name"`
	Severity string  `json:"severity"`
	First    float64 `json:"first_s"`
	Last     float64 `json:"last_s"`
	// BeforeSale: it was already firing before T0 (an earlier run's).
	BeforeSale bool `json:"before_sale,omitempty"`
	// Faults on or being recovered from when it first fired (from 1).
	Faults []int `json:"faults,omitempty"`
}

// Settle is one wait for the system to settle: the queue drained, every
// order paid or cancelled, and after faults Redis and the database agreeing
// with the orders (the reconciler's and the restore's work done).
type Settle struct {
	Phase   string   `json:"phase"`
	Settled bool     `json:"settled"`
	Waited  float64  `json:"waited_s"`
	Bound   float64  `json:"bound_s"`
	Unmet   []string `json:"unmet,omitempty"` // what had not settled at the bound
}

// Summary is "settled in 12.3s" or "NOT settled within 60s: ...".
func (s Settle) Summary() string {
	if s.Settled {
		return fmt.Sprintf("%s: settled in %.1fs", s.Phase, s.Waited)
	}
	return fmt.Sprintf("%s: NOT settled within %.0fs: %s", s.Phase, s.Bound, strings.Join(s.Unmet, "; "))
}

// optSecs formats an optional time or duration in seconds.
func optSecs(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *v)
}

// RecoveryText is "3.2s", or why there was no recovery.
func (f Fault) RecoveryText() string {
	if f.Recovered && f.RecoverySeconds != nil {
		return fmt.Sprintf("%.1fs", *f.RecoverySeconds)
	}
	if f.Ended == nil {
		return "never ended"
	}
	return "not recovered: " + f.NotRecovered
}

// OverlapText names the other faults on meanwhile: "with 3, 4 (until +24.0s)".
func (f Fault) OverlapText() string {
	if len(f.Overlaps) == 0 {
		return "alone"
	}
	parts := make([]string, len(f.Overlaps))
	for i, o := range f.Overlaps {
		parts[i] = fmt.Sprint(o)
	}
	return fmt.Sprintf("with %s (until +%ss)", strings.Join(parts, ", "), optSecs(f.OthersUntil))
}

// FaultsText lists an alert's faults: "2, 4" or "-".
func (a Alert) FaultsText() string {
	if len(a.Faults) == 0 {
		if a.BeforeSale {
			return "before the sale"
		}
		return "-"
	}
	parts := make([]string, len(a.Faults))
	for i, f := range a.Faults {
		parts[i] = fmt.Sprint(f)
	}
	return strings.Join(parts, ", ")
}

// bandColour is the colour of a kind of fault on the timeline.
func bandColour(kind string) string {
	switch kind {
	case "kill":
		return "#e03131"
	case "pause":
		return "#f08c00"
	case "down":
		return "#1971c2"
	case "latency":
		return "#0c8599"
	case "reset_peer":
		return "#6741d9"
	case "redis-restart-empty":
		return "#c2255c"
	}
	return "#868e96"
}

// bands are the faults as bands on a timeline.
func (r *Run) bands() []band {
	if r.Chaos == nil {
		return nil
	}
	var out []band
	for i, f := range r.Chaos.Faults {
		if f.Began == nil {
			continue
		}
		end := *f.Began
		if f.Ended != nil {
			end = *f.Ended
		}
		out = append(out, band{From: *f.Began, To: end, Label: fmt.Sprint(i + 1), Color: bandColour(f.Kind)})
	}
	return out
}

// ChaosAnswersChart is the buys answered per second, 202s against the
// failures, with the faults as bands.
func (r *Run) ChaosAnswersChart() template.HTML {
	count := func(keep func(string) bool) []float64 {
		return r.column(func(s Second) float64 {
			n := 0
			for k, v := range s.Answers {
				if keep(k) {
					n += v
				}
			}
			return float64(n)
		})
	}
	ss := []series{
		{"202 /s", colWritten, count(func(k string) bool { return k == "202" })},
		{"failed in flight /s", colP99, count(isInFlightOutcome)},
		{"503 from a gateway /s", colIngress, count(func(k string) bool { return strings.HasPrefix(k, "503 ") })},
		{"other answers /s", colDBTx, count(func(k string) bool {
			return k != "202" && !isInFlightOutcome(k) && !strings.HasPrefix(k, "503 ")
		})},
	}
	return lineChart(r.Name+": buys answered per second, faults as numbered bands", "per second", r.xs(), ss, false, r.bands()...)
}

// ChaosQueueChart is the queue's oldest order's age, with the faults.
func (r *Run) ChaosQueueChart() template.HTML {
	return lineChart(r.Name+": age of the oldest unwritten order (seconds), faults as numbered bands", "seconds", r.xs(),
		[]series{{"oldest order's age", colQueue, r.column(func(s Second) float64 { return sampled(s.QueueAge) })}}, false, r.bands()...)
}

// isInFlightOutcome: a buy outcome that is a failure on the way (no answer
// or the load balancer's 502/503/504 without the gateway's code).
func isInFlightOutcome(k string) bool {
	return k == "error" || k == "502" || k == "503" || k == "504"
}

const chaosBody = `{{with .Chaos}}
<h2>Chaos: schedule {{.Schedule}}, seed {{.Seed}}</h2>
{{if .Description}}<p>{{.Description}}</p>{{end}}
<table><tr><th>#</th><th class="l">fault</th><th>began</th><th>ended</th><th>ready</th><th class="l">time to recover</th><th>first 202 after</th><th>queue age before / allowed</th><th class="l">other faults</th><th class="l">alerts it raised</th></tr>
{{range $i, $f := .Faults}}<tr><td>{{inc $i}}</td><td class="l">{{$f.Fault}}{{range $f.Errors}}<br><span class="VIOLATED">{{.}}</span>{{end}}{{if $f.StartFailures}}<br><span class="muted">{{$f.StartFailures}} starts failed first: {{$f.StartFailure}}</span>{{end}}</td><td>{{secs $f.Began}}</td><td>{{secs $f.Ended}}</td><td>{{secs $f.Ready}}</td>
<td class="l {{if $f.Recovered}}ok{{else}}VIOLATED{{end}}">{{$f.RecoveryText}}</td><td>{{secs $f.First202}}</td><td>{{f1 $f.QueueAgeBefore}} / {{f1 $f.QueueAgeAllowed}} s</td><td class="l">{{$f.OverlapText}}</td><td class="l">{{join $f.Alerts ", "}}</td></tr>{{end}}
</table>
<p class="muted">Times are seconds after T0. Time to recover: from the fault's end until a buy is answered 202 again and the oldest unwritten order is no older than before the fault (or than 1 s), and stays so for 5 s (docs/chaos.md).</p>
<div class="cols"><div>{{$.ChaosAnswersChart}}</div><div>{{$.ChaosQueueChart}}</div></div>
<p>Buys that failed in flight (not promises): {{.InFlight.Summary}}</p>
{{range $.Settles}}<p class="{{if .Settled}}ok{{else}}VIOLATED{{end}}">{{.Summary}}</p>{{end}}
<h3>Alerts</h3>
{{if .Alerts}}<table><tr><th class="l">alert</th><th>first fired</th><th>last seen</th><th class="l">faults on</th></tr>
{{range .Alerts}}<tr><td class="l">{{.Alert}}</td><td>{{f1 .First}}</td><td>{{f1 .Last}}</td><td class="l">{{.FaultsText}}</td></tr>{{end}}
</table>{{else}}<p>No alert fired.{{if .AlertsNote}} {{.AlertsNote}}{{end}}</p>{{end}}
{{if .Prometheus}}<p class="muted">Prometheus: {{.Prometheus}}</p>{{end}}
{{range .Errors}}<p class="VIOLATED">{{.}}</p>{{end}}
{{range .Notes}}<p class="muted">{{.}}</p>{{end}}
{{end}}`

// writeChaosSummary writes the chaos part of the terminal summary.
func (r *Run) writeChaosSummary(w io.Writer) {
	c := r.Chaos
	if c == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("chaos: schedule %s, seed %d (times in seconds after T0)", c.Schedule, c.Seed)
	p("  #  fault                                      began  ended  ready  time to recover")
	for i, f := range c.Faults {
		p("  %-2d %-42s %5s  %5s  %5s  %s  [%s]", i+1, f.Fault, optSecs(f.Began), optSecs(f.Ended), optSecs(f.Ready), f.RecoveryText(), f.OverlapText())
		if f.StartFailures > 0 {
			p("       %d starts failed before it stayed up; the last: %s", f.StartFailures, f.StartFailure)
		}
		for _, e := range f.Errors {
			p("       error: %s", e)
		}
	}
	p("  buys failed in flight: %s", c.InFlight.Summary())
	for _, s := range r.Settles {
		p("  %s", s.Summary())
	}
	if len(c.Alerts) == 0 {
		p("  alerts: none fired. %s", c.AlertsNote)
	}
	for _, a := range c.Alerts {
		p("  alert %-60s first %+.1fs last %+.1fs faults %s", a.Alert, a.First, a.Last, a.FaultsText())
	}
	for _, e := range c.Errors {
		p("  error: %s", e)
	}
	for _, n := range c.Notes {
		p("  note: %s", n)
	}
}

// AlertGrace is how long after a fault's recovery an alert that first
// fires still counts as the fault's: a rule sees a failure one scrape and
// one evaluation later (a second each on the cluster's Prometheus), and
// its `for` (up to 10 s for the rules that fire on faults of seconds)
// delays it further.
const AlertGrace = 10.0 // seconds

// AlertFaults numbers the faults (from 1) an alert that first fired at t
// (seconds after T0) is put down to: those that had begun by then and had
// not recovered AlertGrace before it.
func AlertFaults(faults []Fault, t float64) []int {
	var out []int
	for i, f := range faults {
		if f.Began == nil || t < *f.Began {
			continue
		}
		end := math.Inf(1) // never recovered: anything after is its doing too
		if f.Recovered && f.RecoveredAt != nil {
			end = *f.RecoveredAt + AlertGrace
		}
		if t <= end {
			out = append(out, i+1)
		}
	}
	return slices.Clip(out)
}
