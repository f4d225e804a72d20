package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
)

// Colours of the charts.
const (
	colIngress  = "#d9480f"
	colWritten  = "#2b8a3e"
	colReserved = "#1c7ed6"
	colQueue    = "#7048e8"
	colDBTx     = "#868e96"
	colP50      = "#1c7ed6"
	colP99      = "#e03131"
	colBar      = "#495057"
	colFunnel   = "#1c7ed6"
	colSpike    = "#d9480f"
	colLimit    = "#2b8a3e"
	colArrival  = "#adb5bd"
)

func (r *Run) xs() []int {
	x := make([]int, len(r.Timeline))
	for i, s := range r.Timeline {
		x[i] = s.T
	}
	return x
}

func (r *Run) column(f func(Second) float64) []float64 {
	y := make([]float64, len(r.Timeline))
	for i, s := range r.Timeline {
		y[i] = f(s)
	}
	return y
}

func sampled(v float64) float64 {
	if v < 0 {
		return math.NaN()
	}
	return v
}

// ShavedPeakChart is ingress against the database's write rate.
func (r *Run) ShavedPeakChart() template.HTML {
	ss := []series{
		{"buy requests sent /s", colIngress, r.column(func(s Second) float64 { return float64(s.Buys) })},
		{"orders written to DB /s", colWritten, r.column(func(s Second) float64 { return sampled(s.Written) })},
		{"DB transactions /s", colDBTx, r.column(func(s Second) float64 { return sampled(s.DBTx) })},
	}
	if r.Mode != "naive" {
		ss = append(ss, series{"reserved in Redis /s", colReserved, r.column(func(s Second) float64 { return sampled(s.Reserved) })})
	}
	return lineChart(fmt.Sprintf("%s: ingress vs database write rate (the shaved peak)", r.Name), "per second", r.xs(), ss, false, r.bands()...)
}

// QueueChart is the queue depth over time.
func (r *Run) QueueChart() template.HTML {
	return lineChart(r.Name+": queue depth (orders accepted, not yet in the database)", "messages", r.xs(),
		[]series{{"queue depth", colQueue, r.column(func(s Second) float64 { return sampled(s.QueueDepth) })}}, false, r.bands()...)
}

// LatencyChart is the buy latency per second, log scale.
func (r *Run) LatencyChart() template.HTML {
	zeroGap := func(v float64) float64 {
		if v <= 0 {
			return math.NaN()
		}
		return v
	}
	return lineChart(r.Name+": buy latency by second of completion (log scale)", "ms", r.xs(), []series{
		{"p50", colP50, r.column(func(s Second) float64 { return zeroGap(s.P50) })},
		{"p99", colP99, r.column(func(s Second) float64 { return zeroGap(s.P99) })},
	}, true, r.bands()...)
}

// FunnelChart draws the funnel, each stage as a share of the requests.
func (r *Run) FunnelChart() template.HTML {
	var bars []bar
	for _, s := range r.Funnel {
		note := ""
		if len(r.Funnel) > 0 && r.Funnel[0].Count > 0 {
			note = fmt.Sprintf("(%.2f%%)", 100*s.Count/r.Funnel[0].Count)
		}
		bars = append(bars, bar{Label: s.Name, Value: s.Count, Note: note})
	}
	return barChart(r.Name+": the funnel, layer by layer", bars, colFunnel)
}

// StatusChart draws the buy answers by outcome.
func (r *Run) StatusChart() template.HTML {
	var bars []bar
	for _, l := range r.buyOutcomes() {
		bars = append(bars, bar{Label: l.Outcome, Value: float64(l.Count)})
	}
	return barChart(r.Name+": buy answers by status", bars, colBar)
}

// limitBars are a run's spike duration and its physical limit; prefix
// names the run in a comparison.
func limitBars(r *Run, prefix string) []bar {
	f := r.Figures
	l := f.PhysicalLimit
	spike := bar{Label: prefix + "spike answered in", Value: f.SpikeSeconds, Note: "s", Color: colSpike}
	limit := bar{Label: prefix + "physical limit", Value: math.NaN(), Note: "unknown: no /healthz ceiling in this run", Color: colLimit}
	if l.Known() {
		spike.Note = fmt.Sprintf("s = %.1fx the limit", l.Ratio())
		limit.Value, limit.Note = l.LimitSeconds(), fmt.Sprintf("s at %.0f req/s", l.Ceiling())
	}
	return []bar{spike, limit}
}

func arrivalBar(r *Run) bar {
	return bar{Label: "the crowd arrives over", Value: r.Figures.PhysicalLimit.ArrivalSeconds, Note: "s (the scenario's schedule)", Color: colArrival}
}

// LimitChart is the spike's duration against its physical limit.
func (r *Run) LimitChart() template.HTML {
	return barChart(r.Name+": spike duration vs physical limit (seconds)", append(limitBars(r, ""), arrivalBar(r)), colBar)
}

// Answers lists the statuses seen in the timeline, for the table.
func (r *Run) Answers() []string {
	seen := map[string]bool{}
	for _, s := range r.Timeline {
		for k := range s.Answers {
			seen[k] = true
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var funcs = template.FuncMap{
	"f1":  func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"f2":  func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"f0":  func(v float64) string { return fmt.Sprintf("%.0f", v) },
	"opt": func(v float64) string { return optional(v) },
	"opt1": func(v float64) string {
		if v < 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", v)
	},
	"pct": func(a, b float64) string {
		if b <= 0 {
			return ""
		}
		return fmt.Sprintf("%.2f%%", 100*a/b)
	},
	"join": strings.Join,
	"idx":  func(m map[string]int, k string) int { return m[k] },
	"inc":  func(i int) int { return i + 1 },
	"secs": optSecs,
	"pct1": func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) },
}

func optional(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

const style = `<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1500px;padding:0 16px;color:#212529}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #dee2e6}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #dee2e6;padding:3px 8px;text-align:right}
th{background:#f1f3f5}td.l,th.l{text-align:left}
.chart{width:100%;max-width:760px;background:#fff;border:1px solid #dee2e6;margin:6px 0}
.chart .title{font-weight:600;font-size:13px}.chart .tick{font-size:11px;fill:#495057}
.chart .grid{stroke:#e9ecef}.chart .t0{stroke:#868e96;stroke-dasharray:4 3}
.ok{color:#2b8a3e}.VIOLATED{color:#c92a2a;font-weight:700}.skip{color:#868e96}
.cols{display:flex;flex-wrap:wrap;gap:16px}.cols>div{flex:1 1 700px}
.muted{color:#868e96}
</style>`

const runBody = `
<p>{{.Mode}} mode &middot; {{.Scenario.Users}} users for {{.Scenario.Stock}} units &middot; target {{.Target}} ({{.Backends}}) &middot;
started {{.StartedAt.Format "2006-01-02 15:04:05 MST"}} &middot; activity {{.ActivityID}}</p>
<p class="muted">machine: {{.Machine.CPUs}} CPUs ({{.Machine.CPU}}), {{.Machine.OS}}, {{.Machine.Go}}; {{.Machine.Shared}}</p>
<p>buy tokens: {{.BuyToken.Summary}}{{if .Admission}} &middot; admission: {{.Admission}}{{end}}</p>

<h2>Figures</h2>
<table>
<tr><th class="l">buy latency under the spike (p50 / p99)</th><td>{{f1 .Figures.SpikeBuyP50}} ms / {{f1 .Figures.SpikeBuyP99}} ms</td></tr>
<tr><th class="l">spike answered in (first buy scheduled to last buy answered)</th><td>{{f1 .Figures.SpikeSeconds}} s ({{.Figures.PhysicalLimit.Short}})</td></tr>
<tr><th class="l">physical limit (every request of the spike / the /healthz ceiling of this run)</th><td>{{.Figures.PhysicalLimit.Breakdown}}</td></tr>
<tr><th class="l">the crowd arrives over (the scenario's schedule)</th><td>{{f1 .Figures.PhysicalLimit.ArrivalSeconds}} s</td></tr>
<tr><th class="l">peak ingress / peak database write rate</th><td>{{f0 .Figures.PeakIngress}}/s / {{f0 .Figures.PeakDBWrite}}/s = {{f1 .Figures.PeakShaving}}x</td></tr>
<tr><th class="l">peak database transactions of the buy path</th><td>{{f0 .Figures.PeakDBTx}}/s</td></tr>
{{if .Probes}}<tr><th class="l">buy while stock lasts vs /healthz ceiling</th><td>{{f2 .Figures.BuyInStockVsHealthz}}</td></tr>
<tr><th class="l">sold-out phase vs /healthz ceiling (without / with request_id)</th><td>{{f2 .Figures.SoldOutVsHealthz}} / {{f2 .Figures.SoldOutReqIDVsHealthz}}</td></tr>{{end}}
<tr><th class="l">generator send lag (p50 / p99 / max)</th><td>{{f1 .Lag.P50}} / {{f1 .Lag.P99}} / {{f1 .Lag.Max}} ms</td></tr>
</table>
{{.LimitChart}}
{{template "chaos" .}}
{{with .Fairness}}{{template "fairness" .}}{{end}}
<h2>Audit</h2>
<table><tr><th>#</th><th class="l">invariant</th><th class="l">verdict</th><th class="l">details</th></tr>
{{range .Audit.Checks}}<tr><td>{{.Label}}</td><td class="l">{{.Name}}</td>
<td class="l {{if eq .Status "ok"}}ok{{else if eq .Status "VIOLATED"}}VIOLATED{{else}}skip{{end}}">{{.Status}}</td>
<td class="l">{{join .Details "; "}}</td></tr>{{end}}
</table>
<p class="muted">final stats: stock {{.Final.Stock}}, remaining {{.Final.Remaining}}, reserved {{.Final.Reserved}}, queued {{.Final.Queued}},
created {{.Final.OrdersCreated}}, paid {{.Final.OrdersPaid}}, cancelled {{.Final.OrdersCancelled}}, db_available {{.Final.DBAvailable}}</p>

<h2>Charts</h2>
<div class="cols"><div>{{.ShavedPeakChart}}</div><div>{{.LatencyChart}}</div><div>{{.FunnelChart}}</div><div>{{.StatusChart}}</div><div>{{.QueueChart}}</div></div>

<h2>Funnel</h2>
<table><tr><th class="l">stage</th><th>count</th><th>of requests</th><th class="l">how it is counted</th></tr>
{{$first := 0.0}}{{range $i, $s := .Funnel}}{{if eq $i 0}}{{$first = $s.Count}}{{end}}<tr><td class="l">{{$s.Name}}</td><td>{{f0 $s.Count}}</td><td>{{pct $s.Count $first}}</td><td class="l">{{$s.Note}}</td></tr>{{end}}
</table>
{{with .AnswersByKind}}<h3>Buy answers by kind of user</h3>
<table><tr><th class="l">kind</th><th class="l">answers</th></tr>
{{range .}}<tr><td class="l">{{.Kind}}</td><td class="l">{{.Answers}}</td></tr>{{end}}
</table>{{end}}

<h2>Latency (ms, from the scheduled send)</h2>
<table><tr><th class="l">endpoint</th><th class="l">outcome</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>
{{range .Latency}}<tr><td class="l">{{.Endpoint}}</td><td class="l">{{.Outcome}}</td><td>{{.Count}}</td><td>{{f1 .P50}}</td><td>{{f1 .P90}}</td><td>{{f1 .P99}}</td><td>{{f1 .P999}}</td><td>{{f1 .Max}}</td></tr>{{end}}
</table>

{{if .Probes}}<h2>Saturation probes (closed loop, same generator, same run)</h2>
<table><tr><th class="l">probe</th><th class="l">what</th><th>clients</th><th>requests</th><th>seconds</th><th>req/s</th><th>p50</th><th>p99</th><th class="l">answers</th></tr>
{{range .Probes}}<tr><td class="l">{{.Name}}</td><td class="l">{{.What}}</td><td>{{.Clients}}</td><td>{{.Requests}}</td><td>{{f1 .Seconds}}</td><td>{{f0 .RPS}}</td><td>{{f1 .P50}}</td><td>{{f1 .P99}}</td><td class="l">{{.Outcomes}}</td></tr>{{end}}
</table>{{end}}

<h2>Timeline (per second since T0)</h2>
{{$answers := .Answers}}
<table><tr><th>t</th><th>requests sent</th><th>buys sent</th>{{range $answers}}<th>{{.}}</th>{{end}}<th>buy p50</th><th>buy p99</th><th>reserved</th><th>written</th><th>DB tx</th><th>queue</th><th>oldest (s)</th></tr>
{{range .Timeline}}{{$s := .}}<tr><td>{{.T}}</td><td>{{.Requests}}</td><td>{{.Buys}}</td>{{range $answers}}<td>{{idx $s.Answers .}}</td>{{end}}<td>{{f1 .P50}}</td><td>{{f1 .P99}}</td><td>{{opt .Reserved}}</td><td>{{opt .Written}}</td><td>{{opt .DBTx}}</td><td>{{opt .QueueDepth}}</td><td>{{opt1 .QueueAge}}</td></tr>{{end}}
</table>

<h2>Scenario and settings</h2>
<table>
<tr><th class="l">crowd</th><td class="l">{{range $k, $v := .Crowd}}{{$k}} {{$v}} &nbsp; {{end}}</td></tr>
<tr><th class="l">countdown / first-second share / tail</th><td class="l">{{.Scenario.Countdown}} / {{.Scenario.FirstSecondShare}} / {{.Scenario.Tail}}</td></tr>
<tr><th class="l">double clicks / retries / backoff</th><td class="l">{{.Scenario.DoubleClickShare}} / {{.Scenario.Retries}} / {{.Scenario.RetryBackoff}}</td></tr>
<tr><th class="l">bots: share / rate / duration</th><td class="l">{{.Scenario.BotShare}} / {{.Scenario.BotRate}}/s / {{.Scenario.BotDuration}}</td></tr>
<tr><th class="l">late users: share / window</th><td class="l">{{.Scenario.LateShare}} / {{.Scenario.LateWindow}}</td></tr>
<tr><th class="l">pay: prompt share / at-deadline share / timeout</th><td class="l">{{.Scenario.PayShare}} / {{.Scenario.RaceShare}} / {{.Scenario.PayTimeout}}</td></tr>
<tr><th class="l">seed</th><td class="l">{{.Scenario.Seed}}</td></tr>
{{if .Generator}}<tr><th class="l">generator</th><td class="l">{{.Generator}}</td></tr>{{end}}
{{range .Settings}}<tr><th class="l">gateway</th><td class="l">{{.}}</td></tr>{{end}}
</table>
{{range .Notes}}<p class="muted">note: {{.}}</p>{{end}}
`

var runTmpl = template.Must(template.New("run").Funcs(funcs).Parse(
	`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>seckill load test: {{.Name}}</title>` + style +
		`</head><body><h1>seckill load test: {{.Name}}</h1>{{template "body" .}}` +
		`<p class="muted">How to read every number and chart: docs/loadtest.md. Generated by the seckill load tester; self-contained, works offline.</p></body></html>`))

func init() {
	template.Must(runTmpl.New("body").Parse(runBody))
	template.Must(runTmpl.New("chaos").Parse(chaosBody))
	template.Must(runTmpl.New("fairness").Parse(fairnessBody))
}

// WriteHTML writes the self-contained HTML report of one run.
func (r *Run) WriteHTML(w io.Writer) error {
	if err := runTmpl.Execute(w, r); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}
