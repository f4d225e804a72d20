// Package report holds the result of a load-test run and renders it: a
// terminal summary, JSON, and a self-contained HTML page whose charts are
// SVG drawn here in Go (no script, no CDN: the file works offline and can
// be mailed or archived as is).
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/audit"
	"github.com/flashsale/seckill/loadtest/measure"
	"github.com/flashsale/seckill/loadtest/scenario"
)

// Run is everything one run measured and concluded.
type Run struct {
	Name       string          `json:"name"`
	Mode       audit.Mode      `json:"mode"`
	Target     string          `json:"target"`   // "embedded" or the URL
	Backends   string          `json:"backends"` // what the gateway ran on
	Machine    Machine         `json:"machine"`
	StartedAt  time.Time       `json:"started_at"`
	ActivityID string          `json:"activity_id"`
	Scenario   scenario.Config `json:"scenario"`
	Crowd      map[string]int  `json:"crowd"`    // users by kind
	Settings   []string        `json:"settings"` // gateway settings that shape the numbers
	// Generator is how the load was offered: connections and requests in
	// flight at most, which shape the latencies as much as the gateway.
	Generator string       `json:"generator"`
	BuyToken  BuyTokenDoor `json:"buy_token"`
	// BuyAnswersByKind is the spike's buy answers by kind of user (human,
	// bot, late) and outcome: which layer turned whom away.
	BuyAnswersByKind map[string]map[string]int64 `json:"buy_answers_by_kind"`

	Latency  []measure.LatencyRow `json:"latency"`
	Lag      measure.Lag          `json:"generator_lag"`
	Timeline []Second             `json:"timeline"`
	Funnel   []Stage              `json:"funnel"`
	Probes   []Probe              `json:"probes"`
	Figures  Figures              `json:"figures"`
	Final    api.Stats            `json:"final_stats"`
	Audit    audit.Result         `json:"audit"`
	Notes    []string             `json:"notes,omitempty"`
	// Settles are the waits for the system to settle (after the spike,
	// after the resale), each with what had not settled at its bound.
	Settles []Settle `json:"settles,omitempty"`
	// Chaos is the faults injected during the spike (nil without).
	Chaos *Chaos `json:"chaos,omitempty"`
	// Admission is the activity's admission: "open" or "queue".
	Admission string `json:"admission,omitempty"`
	// Fairness is who won and what the crowd cost (nil: not computed).
	Fairness *Fairness `json:"fairness,omitempty"`
}

// Machine describes where the run happened: the figures mean little
// without it.
type Machine struct {
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	OS     string `json:"os"`
	Go     string `json:"go"`
	Shared string `json:"shared"` // what shared the CPUs with the generator
}

// ThisMachine describes the current machine.
func ThisMachine(shared string) Machine {
	return Machine{CPUs: runtime.NumCPU(), CPU: cpuModel(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), Shared: shared}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// Second is one second of the timeline, T seconds after T0.
type Second struct {
	T        int            `json:"t"`
	Buys     int            `json:"buys_sent"`  // buy requests that left (the ingress)
	Requests int            `json:"requests"`   // all requests that left
	Answers  map[string]int `json:"answers"`    // buy answers completed, by status
	P50      float64        `json:"buy_p50_ms"` // buy latency of the answers completed in it
	P99      float64        `json:"buy_p99_ms"`
	// From the gateway's /metrics, sampled at each second's edges (-1 when
	// not sampled): units reserved in Redis (naive: none), orders written to
	// the database, and the queue depth at the end of the second.
	Reserved float64 `json:"reserved"`
	Written  float64 `json:"written"`
	// DBTx is database transactions of the buy path: the workers' batches
	// (pipeline), every buy (naive: each one locks the stock row).
	DBTx       float64 `json:"db_transactions"`
	QueueDepth float64 `json:"queue_depth"`
	// QueueAge is the age of the oldest order not yet written at the end
	// of the second (seckill_queue_oldest_age_seconds; -1 when not
	// sampled or unknown).
	QueueAge float64 `json:"queue_oldest_age_s"`
}

// BuyTokenDoor is the buy-token door of a run: the gateway's setting and
// what the generator saw of it.
type BuyTokenDoor struct {
	// Setting is SECKILL_BUY_TOKEN as --buy-token gave it: "required"
	// (humans and late users fetch a token before their first buy, bots
	// do not) or "off".
	Setting string `json:"setting"`
	// UsersWithToken is the distinct users (spike and resale) that got one.
	UsersWithToken int `json:"users_with_token"`
	// AcceptedWithoutToken is the orders answered 202 to a user that never
	// got a token: 0 when the door is required and holds.
	AcceptedWithoutToken int `json:"accepted_without_token"`
}

// KindAnswers is one kind of user's buy answers, most frequent first:
// "403 BUY_TOKEN_MISSING 240, 429 RATE_LIMITED 160".
type KindAnswers struct {
	Kind    string
	Answers string
}

// AnswersByKind lists BuyAnswersByKind by kind.
func (r *Run) AnswersByKind() []KindAnswers {
	kinds := make([]string, 0, len(r.BuyAnswersByKind))
	for k := range r.BuyAnswersByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	out := make([]KindAnswers, 0, len(kinds))
	for _, k := range kinds {
		m := r.BuyAnswersByKind[k]
		outcomes := make([]string, 0, len(m))
		for o := range m {
			outcomes = append(outcomes, o)
		}
		sort.Slice(outcomes, func(i, j int) bool {
			if m[outcomes[i]] != m[outcomes[j]] {
				return m[outcomes[i]] > m[outcomes[j]]
			}
			return outcomes[i] < outcomes[j]
		})
		parts := make([]string, len(outcomes))
		for i, o := range outcomes {
			parts[i] = fmt.Sprintf("%s %d", o, m[o])
		}
		out = append(out, KindAnswers{Kind: k, Answers: strings.Join(parts, ", ")})
	}
	return out
}

// Summary is the door in one line: "required: 9,800 users got a token, 0
// orders accepted without one".
func (d BuyTokenDoor) Summary() string {
	if d.Setting != "required" {
		return d.Setting + ": buys carry no token"
	}
	return fmt.Sprintf("required: %d users got a token (bots never ask), %d orders accepted without one", d.UsersWithToken, d.AcceptedWithoutToken)
}

// Stage is one layer of the funnel.
type Stage struct {
	Name  string  `json:"name"`
	Count float64 `json:"count"`
	Note  string  `json:"note,omitempty"`
}

// Probe is one saturation measurement: closed-loop clients as fast as the
// answers come, for a fixed time, with the same generator and connections.
type Probe struct {
	Name     string  `json:"name"`
	What     string  `json:"what"`
	Clients  int     `json:"clients"`
	Requests int64   `json:"requests"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Outcomes string  `json:"outcomes"`
}

// Figures are the headline numbers of issue 6.
type Figures struct {
	SpikeBuyP50 float64 `json:"spike_buy_p50_ms"`
	SpikeBuyP99 float64 `json:"spike_buy_p99_ms"`
	// SpikeSeconds is from the first buy's scheduled send to the last
	// buy's answer, to the instant.
	SpikeSeconds float64 `json:"spike_seconds"`
	PeakIngress  float64 `json:"peak_ingress_per_s"`
	PeakDBWrite  float64 `json:"peak_db_write_per_s"`
	PeakShaving  float64 `json:"peak_shaving_ratio"` // peak ingress / peak DB write
	// PeakDBTx is the most buy-path database transactions in one second.
	PeakDBTx float64 `json:"peak_db_transactions_per_s"`
	// Probe ratios against the /healthz ceiling of the same run.
	BuyInStockVsHealthz   float64 `json:"buy_in_stock_vs_healthz"`
	SoldOutVsHealthz      float64 `json:"sold_out_vs_healthz"`
	SoldOutReqIDVsHealthz float64 `json:"sold_out_request_id_vs_healthz"`
	// PhysicalLimit is the spike's duration at the machine's ceiling.
	PhysicalLimit PhysicalLimit `json:"physical_limit"`
}

// Probe returns the probe of that name.
func (r *Run) Probe(name string) (Probe, bool) {
	for _, p := range r.Probes {
		if p.Name == name {
			return p, true
		}
	}
	return Probe{}, false
}

// ProbeRPS is the rate of the probe of that name (0 when it did not run).
func (r *Run) ProbeRPS(name string) float64 {
	p, _ := r.Probe(name)
	return p.RPS
}

// ComputeFigures fills Figures from the timeline, the latency rows and the
// probes (set them first).
func (r *Run) ComputeFigures(buyAll measure.LatencyRow, spike time.Duration) {
	f := &r.Figures
	f.SpikeBuyP50, f.SpikeBuyP99 = buyAll.P50, buyAll.P99
	f.SpikeSeconds = spike.Seconds()
	for _, s := range r.Timeline {
		f.PeakIngress = math.Max(f.PeakIngress, float64(s.Buys))
		f.PeakDBWrite = math.Max(f.PeakDBWrite, s.Written)
		f.PeakDBTx = math.Max(f.PeakDBTx, s.DBTx)
	}
	f.PeakShaving = ratio(f.PeakIngress, f.PeakDBWrite)
	if h, ok := r.Probe(ProbeHealthz); ok {
		if p, ok := r.Probe(ProbeBuyInStock); ok {
			f.BuyInStockVsHealthz = ratio(p.RPS, h.RPS)
		}
		if p, ok := r.Probe(ProbeSoldOut); ok {
			f.SoldOutVsHealthz = ratio(p.RPS, h.RPS)
		}
		if p, ok := r.Probe(ProbeSoldOutReqID); ok {
			f.SoldOutReqIDVsHealthz = ratio(p.RPS, h.RPS)
		}
	}
	f.PhysicalLimit = NewPhysicalLimit(r.Latency, r.Probes, f.SpikeSeconds, r.Scenario)
}

// Probe names.
const (
	ProbeHealthz      = "healthz"
	ProbeBuyInStock   = "buy-in-stock"
	ProbeSoldOut      = "buy-sold-out"
	ProbeSoldOutReqID = "buy-sold-out-request-id"
)

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// WriteJSON writes the run as indented JSON.
func (r *Run) WriteJSON(w io.Writer) error { return writeJSON(w, r) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// WriteFiles writes <name>.json and <name>.html into dir.
func (r *Run) WriteFiles(dir string) (jsonPath, htmlPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("report directory: %w", err)
	}
	jsonPath = filepath.Join(dir, r.Name+".json")
	htmlPath = filepath.Join(dir, r.Name+".html")
	if err := writeFile(jsonPath, r.WriteJSON); err != nil {
		return "", "", err
	}
	if err := writeFile(htmlPath, r.WriteHTML); err != nil {
		return "", "", err
	}
	return jsonPath, htmlPath, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// buyOutcomes returns the buy answers by outcome, most frequent first.
func (r *Run) buyOutcomes() []measure.LatencyRow {
	var rows []measure.LatencyRow
	for _, l := range r.Latency {
		if l.Endpoint == "buy" && l.Outcome != measure.AllOutcomes {
			rows = append(rows, l)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Count > rows[j].Count })
	return rows
}

// WriteSummary writes the terminal summary.
func (r *Run) WriteSummary(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("== %s: %s mode, %d users for %d units, target %s (%s)", r.Name, r.Mode, r.Scenario.Users, r.Scenario.Stock, r.Target, r.Backends)
	p("   machine: %d CPUs (%s), %s; %s", r.Machine.CPUs, r.Machine.CPU, r.Machine.OS, r.Machine.Shared)
	if r.Generator != "" {
		p("   generator: %s", r.Generator)
	}
	p("   buy tokens: %s", r.BuyToken.Summary())
	p("")
	p("latency from the scheduled send (ms)   count      p50      p90      p99    p99.9      max")
	for _, l := range r.Latency {
		p("  %-8s %-26s %8d %8.1f %8.1f %8.1f %8.1f %8.1f", l.Endpoint, l.Outcome, l.Count, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	p("  generator send lag: p50 %.1fms p99 %.1fms max %.1fms", r.Lag.P50, r.Lag.P99, r.Lag.Max)
	p("")
	p("funnel")
	for i, s := range r.Funnel {
		pct := ""
		if i > 0 && r.Funnel[0].Count > 0 {
			pct = fmt.Sprintf("%6.2f%%", 100*s.Count/r.Funnel[0].Count)
		}
		p("  %-34s %10.0f %8s  %s", s.Name, s.Count, pct, s.Note)
	}
	if rows := r.AnswersByKind(); len(rows) > 0 {
		p("")
		p("buy answers by kind of user")
		for _, k := range rows {
			p("  %-8s %s", k.Kind, k.Answers)
		}
	}
	if len(r.Probes) > 0 {
		p("")
		p("saturation probes (closed loop, same generator)   req/s      p50      p99")
		for _, pr := range r.Probes {
			p("  %-46s %8.0f %8.1f %8.1f   %s", pr.Name, pr.RPS, pr.P50, pr.P99, pr.Outcomes)
		}
	}
	f := r.Figures
	p("")
	p("figures")
	p("  spike answered in                   %.1fs (%s)", f.SpikeSeconds, f.PhysicalLimit.Short())
	p("  physical limit                      %s; the crowd arrives over %.1fs", f.PhysicalLimit.Breakdown(), f.PhysicalLimit.ArrivalSeconds)
	p("  buy p50 / p99 under the spike       %.1f ms / %.1f ms", f.SpikeBuyP50, f.SpikeBuyP99)
	p("  peak ingress / peak DB write        %.0f/s / %.0f/s = %.1fx shaved", f.PeakIngress, f.PeakDBWrite, f.PeakShaving)
	p("  peak DB transactions (buy path)     %.0f/s", f.PeakDBTx)
	if f.BuyInStockVsHealthz > 0 {
		p("  buy in stock vs /healthz            %.2f", f.BuyInStockVsHealthz)
		p("  sold out vs /healthz                %.2f (with request_id: %.2f)", f.SoldOutVsHealthz, f.SoldOutReqIDVsHealthz)
	}
	if r.Fairness != nil {
		r.Fairness.WriteSummary(w)
	}
	r.writeChaosSummary(w)
	if r.Chaos == nil {
		for _, s := range r.Settles {
			if !s.Settled {
				p("%s", s.Summary())
			}
		}
	}
	p("")
	p("audit (%s mode): final stats %+v", r.Mode, r.Final)
	for _, c := range r.Audit.Checks {
		p("  %s. %-52s %s", c.Label(), c.Name, c.Status)
		for _, d := range c.Details {
			p("       %s", d)
		}
	}
	for _, n := range r.Notes {
		p("note: %s", n)
	}
}
