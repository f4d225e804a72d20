package report

import (
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Compare is the teaching comparison: the same spike (same seed, same
// crowd) against the naive synchronous mode and against the pipeline.
type Compare struct {
	Naive    *Run `json:"naive"`
	Pipeline *Run `json:"pipeline"`
	// ThroughputRatio is pipeline / naive buys per second while stock
	// lasts (the buy-in-stock probe); SoldOutRatio the same in the sold-out
	// phase (the buy-sold-out probe).
	ThroughputRatio float64 `json:"throughput_ratio"`
	SoldOutRatio    float64 `json:"sold_out_ratio"`
	// P99Ratio is naive / pipeline buy p99 under the spike; P50Ratio the
	// same for the median; SpikeRatio naive / pipeline seconds to answer
	// every buy of the spike.
	P99Ratio   float64 `json:"p99_ratio"`
	P50Ratio   float64 `json:"p50_ratio"`
	SpikeRatio float64 `json:"spike_seconds_ratio"`
	// DBTxRatio is naive / pipeline peak database transactions per second:
	// how much of the storm reached the database.
	DBTxRatio float64 `json:"db_transactions_ratio"`
}

// NewCompare computes the ratios of two runs.
func NewCompare(naive, pipeline *Run) *Compare {
	c := &Compare{Naive: naive, Pipeline: pipeline}
	if n, ok := naive.Probe(ProbeBuyInStock); ok {
		if p, ok := pipeline.Probe(ProbeBuyInStock); ok {
			c.ThroughputRatio = ratio(p.RPS, n.RPS)
		}
	}
	if n, ok := naive.Probe(ProbeSoldOut); ok {
		if p, ok := pipeline.Probe(ProbeSoldOut); ok {
			c.SoldOutRatio = ratio(p.RPS, n.RPS)
		}
	}
	c.P99Ratio = ratio(naive.Figures.SpikeBuyP99, pipeline.Figures.SpikeBuyP99)
	c.P50Ratio = ratio(naive.Figures.SpikeBuyP50, pipeline.Figures.SpikeBuyP50)
	c.SpikeRatio = ratio(naive.Figures.SpikeSeconds, pipeline.Figures.SpikeSeconds)
	c.DBTxRatio = ratio(naive.Figures.PeakDBTx, pipeline.Figures.PeakDBTx)
	return c
}

// Runs are the two runs, naive first.
func (c *Compare) Runs() []*Run { return []*Run{c.Naive, c.Pipeline} }

// OK reports whether both audits passed.
func (c *Compare) OK() bool { return c.Naive.Audit.OK() && c.Pipeline.Audit.OK() }

// WriteSummary writes the side-by-side terminal summary.
func (c *Compare) WriteSummary(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	n, q := c.Naive, c.Pipeline
	probe := func(r *Run, name string) float64 { return r.ProbeRPS(name) }
	p("")
	p("== naive vs pipeline: the same spike (%d users, %d units, seed %d, buy tokens %s)", q.Scenario.Users, q.Scenario.Stock, q.Scenario.Seed, q.BuyToken.Setting)
	p("                                          naive     pipeline")
	p("  spike answered in (s)             %10.1f %12.1f   naive/pipeline %.1fx", n.Figures.SpikeSeconds, q.Figures.SpikeSeconds, c.SpikeRatio)
	p("  physical limit (s)                %10s %12s   every request / the /healthz ceiling, same run", trimUnit(n.Figures.PhysicalLimit.SecondsText()), trimUnit(q.Figures.PhysicalLimit.SecondsText()))
	p("  spike / physical limit            %10s %12s   1.0x = at the machine's ceiling", n.Figures.PhysicalLimit.RatioText(), q.Figures.PhysicalLimit.RatioText())
	if why := c.limitUnknown(); why != "" {
		p("  (physical limit unknown: %s)", why)
	}
	p("  buy p50 under the spike (ms)      %10.1f %12.1f   naive/pipeline %.1fx", n.Figures.SpikeBuyP50, q.Figures.SpikeBuyP50, c.P50Ratio)
	p("  buy p99 under the spike (ms)      %10.1f %12.1f   naive/pipeline %.1fx", n.Figures.SpikeBuyP99, q.Figures.SpikeBuyP99, c.P99Ratio)
	p("  buys/s while stock lasts (probe)  %10.0f %12.0f   pipeline/naive %.1fx", probe(n, ProbeBuyInStock), probe(q, ProbeBuyInStock), c.ThroughputRatio)
	p("  buys/s sold out (probe)           %10.0f %12.0f   pipeline/naive %.1fx", probe(n, ProbeSoldOut), probe(q, ProbeSoldOut), c.SoldOutRatio)
	p("  peak ingress (/s)                 %10.0f %12.0f", n.Figures.PeakIngress, q.Figures.PeakIngress)
	p("  peak database writes (/s)         %10.0f %12.0f", n.Figures.PeakDBWrite, q.Figures.PeakDBWrite)
	p("  peak DB transactions (/s)         %10.0f %12.0f   naive/pipeline %.1fx", n.Figures.PeakDBTx, q.Figures.PeakDBTx, c.DBTxRatio)
	p("  audit                             %10s %12s", verdict(n), verdict(q))
}

func trimUnit(s string) string { return strings.TrimSuffix(s, " s") }

// limitUnknown says why a run's physical limit is unknown ("" when both are
// known).
func (c *Compare) limitUnknown() string {
	var why []string
	for _, r := range []*Run{c.Naive, c.Pipeline} {
		if l := r.Figures.PhysicalLimit; !l.Known() {
			why = append(why, r.Name+": "+l.Unknown)
		}
	}
	return strings.Join(why, "; ")
}

// LimitChart is each mode's spike duration against its physical limit.
func (c *Compare) LimitChart() template.HTML {
	bars := append(limitBars(c.Naive, c.Naive.Name+": "), limitBars(c.Pipeline, c.Pipeline.Name+": ")...)
	return barChart("the spike against the machine's physical limit (seconds)", append(bars, arrivalBar(c.Pipeline)), colBar)
}

func verdict(r *Run) string {
	if r.Audit.OK() {
		return "ok"
	}
	return "VIOLATED"
}

const compareBody = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>seckill: naive vs pipeline</title>` + style + `</head><body>
<h1>The same spike, naive vs pipeline</h1>
<h2 id="physical-limit">The spike against the machine's physical limit</h2>
<table>
<tr><th class="l"></th><th>spike answered in</th><th>physical limit</th><th>spike / physical limit</th><th class="l">physical limit from</th></tr>
{{range .Runs}}<tr><td class="l">{{.Name}}</td><td>{{f1 .Figures.SpikeSeconds}} s</td><td>{{.Figures.PhysicalLimit.SecondsText}}</td><td>{{.Figures.PhysicalLimit.RatioText}}</td><td class="l">{{if .Figures.PhysicalLimit.Known}}{{.Figures.PhysicalLimit.Breakdown}}{{else}}{{.Figures.PhysicalLimit.Unknown}}{{end}}</td></tr>
{{end}}</table>
{{.LimitChart}}
<p class="muted">Physical limit: every request the spike sent (buys with bots, double clicks and retries, buy-token fetches, page views, order reads, payments) divided by the
<code>/healthz</code> ceiling measured in the same run, so how long the spike would take if every answer cost what the cheapest one costs on this machine.
1.0x is the ceiling; the ratio is how far above it each design answered. The crowd itself arrives over {{f1 .Pipeline.Figures.PhysicalLimit.ArrivalSeconds}} s, so no run can be shorter than that.</p>

<h2>Naive vs pipeline</h2>
<p>{{.Pipeline.Scenario.Users}} users for {{.Pipeline.Scenario.Stock}} units, seed {{.Pipeline.Scenario.Seed}}, buy tokens {{.Pipeline.BuyToken.Setting}} in both, target {{.Pipeline.Target}} ({{.Pipeline.Backends}}).
Machine: {{.Pipeline.Machine.CPUs}} CPUs ({{.Pipeline.Machine.CPU}}); {{.Pipeline.Machine.Shared}}. Ratios come from these two runs, one after the other on this machine.</p>
<table>
<tr><th class="l"></th><th>naive</th><th>pipeline</th><th>ratio</th></tr>
<tr><td class="l">buy p50 under the spike</td><td>{{f1 .Naive.Figures.SpikeBuyP50}} ms</td><td>{{f1 .Pipeline.Figures.SpikeBuyP50}} ms</td><td>{{f1 .P50Ratio}}x</td></tr>
<tr><td class="l">buy p99 under the spike</td><td>{{f1 .Naive.Figures.SpikeBuyP99}} ms</td><td>{{f1 .Pipeline.Figures.SpikeBuyP99}} ms</td><td>{{f1 .P99Ratio}}x</td></tr>
<tr><td class="l">spike answered in</td><td>{{f1 .Naive.Figures.SpikeSeconds}} s</td><td>{{f1 .Pipeline.Figures.SpikeSeconds}} s</td><td>{{f1 .SpikeRatio}}x</td></tr>
<tr><td class="l">buys/s while stock lasts (probe)</td><td>{{f0 (.Naive.ProbeRPS "buy-in-stock")}}</td><td>{{f0 (.Pipeline.ProbeRPS "buy-in-stock")}}</td><td>{{f1 .ThroughputRatio}}x</td></tr>
<tr><td class="l">buys/s in the sold-out phase (probe)</td><td>{{f0 (.Naive.ProbeRPS "buy-sold-out")}}</td><td>{{f0 (.Pipeline.ProbeRPS "buy-sold-out")}}</td><td>{{f1 .SoldOutRatio}}x</td></tr>
<tr><td class="l">peak ingress / peak database writes</td><td>{{f0 .Naive.Figures.PeakIngress}} / {{f0 .Naive.Figures.PeakDBWrite}}</td><td>{{f0 .Pipeline.Figures.PeakIngress}} / {{f0 .Pipeline.Figures.PeakDBWrite}}</td><td></td></tr>
<tr><td class="l">peak database transactions of the buy path</td><td>{{f0 .Naive.Figures.PeakDBTx}}/s</td><td>{{f0 .Pipeline.Figures.PeakDBTx}}/s</td><td>{{f1 .DBTxRatio}}x</td></tr>
<tr><td class="l">audit</td><td>{{if .Naive.Audit.OK}}<span class="ok">ok</span>{{else}}<span class="VIOLATED">VIOLATED</span>{{end}}</td><td>{{if .Pipeline.Audit.OK}}<span class="ok">ok</span>{{else}}<span class="VIOLATED">VIOLATED</span>{{end}}</td><td></td></tr>
</table>
<h2>Side by side</h2>
<div class="cols"><div>{{.Naive.ShavedPeakChart}}</div><div>{{.Pipeline.ShavedPeakChart}}</div></div>
<div class="cols"><div>{{.Naive.LatencyChart}}</div><div>{{.Pipeline.LatencyChart}}</div></div>
<div class="cols"><div>{{.Naive.FunnelChart}}</div><div>{{.Pipeline.FunnelChart}}</div></div>
<div class="cols"><div>{{.Naive.StatusChart}}</div><div>{{.Pipeline.StatusChart}}</div></div>
<p>The full reports: <a href="naive.html">naive.html</a> and <a href="pipeline.html">pipeline.html</a>; the lesson that walks through them: docs/lesson-peak-shaving.md.</p>
</body></html>`

var compareTmpl = template.Must(template.New("compare").Funcs(funcs).Parse(compareBody))

// WriteHTML writes the side-by-side page.
func (c *Compare) WriteHTML(w io.Writer) error {
	if err := compareTmpl.Execute(w, c); err != nil {
		return fmt.Errorf("render comparison: %w", err)
	}
	return nil
}

// WriteFiles writes compare.json and compare.html into dir (the runs write
// their own files).
func (c *Compare) WriteFiles(dir string) (string, error) {
	return writePage(dir, "compare", c, c.WriteHTML)
}

// writePage writes name.json (v) and name.html (html) into dir and
// returns the HTML file's path.
func writePage(dir, name string, v any, html func(io.Writer) error) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("report directory: %w", err)
	}
	if err := writeFile(filepath.Join(dir, name+".json"), func(w io.Writer) error { return writeJSON(w, v) }); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".html")
	return path, writeFile(path, html)
}
