package report

import (
	"fmt"
	"html/template"
	"io"
)

// AdmissionCompare is the same spike (same seed, same crowd) against an
// activity with open admission and one with a waiting room (queue): who
// wins, and what each costs the system.
type AdmissionCompare struct {
	Open  *Run `json:"open"`
	Queue *Run `json:"queue"`
}

// NewAdmissionCompare pairs the runs; both must carry a fairness section.
func NewAdmissionCompare(open, queue *Run) (*AdmissionCompare, error) {
	if open == nil || queue == nil || open.Fairness == nil || queue.Fairness == nil {
		return nil, fmt.Errorf("admission comparison: both runs need a fairness section")
	}
	return &AdmissionCompare{Open: open, Queue: queue}, nil
}

// Runs are the two runs, open first.
func (c *AdmissionCompare) Runs() []*Run { return []*Run{c.Open, c.Queue} }

// OK reports whether both audits passed.
func (c *AdmissionCompare) OK() bool { return c.Open.Audit.OK() && c.Queue.Audit.OK() }

// QueuePeakNoHigher reports whether the queue's busiest second is no
// busier than open's (an issue 20 target).
func (c *AdmissionCompare) QueuePeakNoHigher() bool {
	return c.Queue.Fairness.PeakRequests <= c.Open.Fairness.PeakRequests
}

// WriteSummary writes the side-by-side terminal summary.
func (c *AdmissionCompare) WriteSummary(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	o, q := c.Open.Fairness, c.Queue.Fairness
	p("")
	p("== open vs queue admission: the same spike (%d users, %d units, seed %d)", c.Queue.Scenario.Users, c.Queue.Scenario.Stock, c.Queue.Scenario.Seed)
	p("                                              open          queue")
	p("  pre-start arrivals: chi-square p     %12s %14s   flat is fair (p > 0.01)", o.PText(), q.PText())
	p("  bots' share of units (accounts)      %11.1f%% %13.1f%%   (%.1f%% of the accounts)", 100*o.BotUnitShare(), 100*q.BotUnitShare(), 100*q.BotAccountShare())
	p("  arrival to final answer p50 (s)      %12.2f %14.2f", o.ArrivalToFinalP50, q.ArrivalToFinalP50)
	p("  arrival to final answer p99 (s)      %12.2f %14.2f", o.ArrivalToFinalP99, q.ArrivalToFinalP99)
	p("  queue polls peak / mean (/s)         %12s %14s   budget %.0f/s", "-", fmt.Sprintf("%.0f / %.0f", q.PollPeak, q.PollMean), q.PollBudget)
	p("  Redis reserves per unit sold         %12s %14s", perUnit(o, o.ReserveCalls), perUnit(q, q.ReserveCalls))
	p("  Redis waiting-room calls per unit    %12s %14s", perUnit(o, o.QueueRedisCalls), perUnit(q, q.QueueRedisCalls))
	p("  last sale to sold out heard (s)      %12s %14s   target < 2 s", optSeconds(o.SoldOutLatency), optSeconds(q.SoldOutLatency))
	p("  gateway peak request rate (/s)       %12.0f %14.0f   queue no higher: %v", o.PeakRequests, q.PeakRequests, c.QueuePeakNoHigher())
	p("  audit                                %12s %14s", verdict(c.Open), verdict(c.Queue))
}

// perUnit is calls per unit sold, short ("-" unknown).
func perUnit(f *Fairness, calls *float64) string {
	if calls == nil || f.Units == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", *calls/float64(f.Units))
}

func optSeconds(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *v)
}

const admissionBody = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>seckill: open vs queue admission</title>` + style + `</head><body>
<h1>The same spike, open admission vs the waiting room</h1>
<p>{{.Queue.Scenario.Users}} users for {{.Queue.Scenario.Stock}} units, seed {{.Queue.Scenario.Seed}}, target {{.Queue.Target}} ({{.Queue.Backends}}).
Machine: {{.Queue.Machine.CPUs}} CPUs ({{.Queue.Machine.CPU}}); {{.Queue.Machine.Shared}}. The two runs ran one after the other on this machine.</p>
<table>
<tr><th class="l"></th><th>open</th><th>queue</th><th class="l">target (issue 20)</th></tr>
<tr><td class="l">pre-start arrivals: chi-square p against flat</td><td>{{.Open.Fairness.PText}}</td><td>{{.Queue.Fairness.PText}}</td><td class="l">queue: p &gt; 0.01</td></tr>
<tr><td class="l">bots' share of the units</td><td>{{pct1 .Open.Fairness.BotUnitShare}}</td><td>{{pct1 .Queue.Fairness.BotUnitShare}}</td><td class="l">no more than their {{pct1 .Queue.Fairness.BotAccountShare}} of the accounts</td></tr>
<tr><td class="l">arrival to final answer p50 / p99</td><td>{{f2 .Open.Fairness.ArrivalToFinalP50}} / {{f2 .Open.Fairness.ArrivalToFinalP99}} s</td><td>{{f2 .Queue.Fairness.ArrivalToFinalP50}} / {{f2 .Queue.Fairness.ArrivalToFinalP99}} s</td><td></td></tr>
<tr><td class="l">queue polling</td><td>{{.Open.Fairness.PollText}}</td><td>{{.Queue.Fairness.PollText}}</td><td class="l">within SECKILL_QUEUE_POLL_BUDGET</td></tr>
<tr><td class="l">Redis reserve calls per unit sold</td><td>{{.Open.Fairness.PerUnit .Open.Fairness.ReserveCalls}}</td><td>{{.Queue.Fairness.PerUnit .Queue.Fairness.ReserveCalls}}</td><td class="l">queue: about 1 plus retries</td></tr>
<tr><td class="l">Redis waiting-room calls per unit sold</td><td>{{.Open.Fairness.PerUnit .Open.Fairness.QueueRedisCalls}}</td><td>{{.Queue.Fairness.PerUnit .Queue.Fairness.QueueRedisCalls}}</td><td></td></tr>
<tr><td class="l">last unit sold to the last waiting person told sold out</td><td>{{.Open.Fairness.SoldOutText}}</td><td>{{.Queue.Fairness.SoldOutText}}</td><td class="l">&lt; 2 s</td></tr>
<tr><td class="l">gateway peak request rate</td><td>{{f0 .Open.Fairness.PeakRequests}}/s</td><td>{{f0 .Queue.Fairness.PeakRequests}}/s</td><td class="l">queue no higher than open{{if .QueuePeakNoHigher}} (met){{else}} (<span class="VIOLATED">not met</span>){{end}}</td></tr>
<tr><td class="l">audit</td><td>{{if .Open.Audit.OK}}<span class="ok">ok</span>{{else}}<span class="VIOLATED">VIOLATED</span>{{end}}</td><td>{{if .Queue.Audit.OK}}<span class="ok">ok</span>{{else}}<span class="VIOLATED">VIOLATED</span>{{end}}</td><td></td></tr>
</table>
<div class="cols"><div>{{template "fairness" .Open.Fairness}}</div><div>{{template "fairness" .Queue.Fairness}}</div></div>
<h2>Side by side</h2>
<div class="cols"><div>{{.Open.ShavedPeakChart}}</div><div>{{.Queue.ShavedPeakChart}}</div></div>
<div class="cols"><div>{{.Open.LatencyChart}}</div><div>{{.Queue.LatencyChart}}</div></div>
<div class="cols"><div>{{.Open.StatusChart}}</div><div>{{.Queue.StatusChart}}</div></div>
<p>The full reports: <a href="{{.Open.Name}}.html">{{.Open.Name}}.html</a> and <a href="{{.Queue.Name}}.html">{{.Queue.Name}}.html</a>; how to read them: docs/loadtest.md, "Fairness and the waiting room".</p>
</body></html>`

var admissionTmpl = func() *template.Template {
	t := template.Must(template.New("admission").Funcs(funcs).Parse(admissionBody))
	template.Must(t.New("fairness").Parse(fairnessBody))
	return t
}()

// WriteHTML writes the side-by-side page.
func (c *AdmissionCompare) WriteHTML(w io.Writer) error {
	if err := admissionTmpl.Execute(w, c); err != nil {
		return fmt.Errorf("render admission comparison: %w", err)
	}
	return nil
}

// WriteFiles writes admission.json and admission.html into dir (the runs
// write their own files).
func (c *AdmissionCompare) WriteFiles(dir string) (string, error) {
	return writePage(dir, "admission", c, c.WriteHTML)
}
