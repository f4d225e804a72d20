package report

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/audit"
	"github.com/flashsale/seckill/loadtest/measure"
	"github.com/flashsale/seckill/loadtest/scenario"
)

func sampleRun(name string, mode audit.Mode, p99, inStock float64, violated bool) *Run {
	r := &Run{
		Name: name, Mode: mode, Target: "embedded", Backends: "test", Machine: ThisMachine("test"),
		StartedAt: time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC), ActivityID: "1", Scenario: scenario.Default(),
		Crowd: map[string]int{"human": 9, "bot": 1},
		Latency: []measure.LatencyRow{
			{Endpoint: "buy", Outcome: "all", Count: 100, P50: p99 / 10, P99: p99},
			{Endpoint: "buy", Outcome: "202", Count: 10, P50: 5, P99: 9},
			{Endpoint: "buy", Outcome: "410 SOLD_OUT", Count: 90, P50: 1, P99: 2},
		},
		Timeline: []Second{
			{T: -1, Requests: 5, Answers: map[string]int{}, Reserved: 0, Written: 0, QueueDepth: 0},
			{T: 0, Buys: 900, Requests: 900, Answers: map[string]int{"202": 10, "410": 800}, P50: 3, P99: p99, Reserved: 10, Written: 4, QueueDepth: 6},
			{T: 1, Buys: 100, Requests: 100, Answers: map[string]int{"410": 90}, P50: 1, P99: 2, Reserved: 0, Written: 6, QueueDepth: 0},
			{T: 2, Answers: map[string]int{}, Reserved: -1, Written: -1, QueueDepth: -1},
		},
		Funnel: []Stage{{"buy requests", 1000, ""}, {"past the rate limits", 900, ""}, {"written to the database", 10, ""}},
		Probes: []Probe{
			{Name: ProbeHealthz, RPS: 20000, Requests: 1},
			{Name: ProbeBuyInStock, RPS: inStock, Requests: 1},
			{Name: ProbeSoldOut, RPS: 18000, Requests: 1},
			{Name: ProbeSoldOutReqID, RPS: 5000, Requests: 1},
		},
		Final: api.Stats{Stock: 10},
	}
	ev := audit.Evidence{Mode: mode, Stock: 10, Final: api.Stats{Stock: 10, OrdersCreated: 10}, UsersTried: 20}
	if violated {
		ev.Final.OrdersCreated = 11
	}
	r.Audit = audit.Run(ev)
	r.ComputeFigures(r.Latency[0], 2*time.Second)
	return r
}

func TestFigures(t *testing.T) {
	r := sampleRun("pipeline", audit.Pipeline, 40, 4000, false)
	f := r.Figures
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"peak ingress", f.PeakIngress, 900},
		{"peak DB write", f.PeakDBWrite, 6},
		{"peak shaving", f.PeakShaving, 150},
		{"buy in stock / healthz", f.BuyInStockVsHealthz, 0.2},
		{"sold out / healthz", f.SoldOutVsHealthz, 0.9},
		{"sold out with request_id / healthz", f.SoldOutReqIDVsHealthz, 0.25},
		{"spike p99", f.SpikeBuyP99, 40},
		{"spike seconds", f.SpikeSeconds, 2},
	} {
		if math.Abs(tc.got-tc.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// externalRef finds anything that would make the page load from the
// network: scripts, stylesheets, images or fonts by URL.
var externalRef = regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(\s*["']?https?:`)

func TestHTMLIsSelfContained(t *testing.T) {
	dir := t.TempDir()
	r := sampleRun("pipeline", audit.Pipeline, 40, 4000, true)
	jsonPath, htmlPath, err := r.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	if m := externalRef.FindString(html); m != "" {
		t.Errorf("the report refers to the network: %q", m)
	}
	if strings.Contains(html, "<script") {
		t.Error("the report carries a script; the charts are meant to be plain SVG")
	}
	for _, want := range []string{
		"<svg", "ingress vs database write rate", "buy latency by second", "the funnel", "buy answers by status",
		`class="l VIOLATED">VIOLATED`, "never oversold", "final stats: 11 created",
		"<polyline", "T0", "buy-in-stock",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	var back Run
	data, _ := os.ReadFile(jsonPath)
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("JSON report does not parse: %v", err)
	}
	if !reflect.DeepEqual(back.Figures, r.Figures) || len(back.Timeline) != 4 || back.Audit.OK() {
		t.Errorf("JSON round trip lost data: %+v", back.Figures)
	}
	if filepath.Base(htmlPath) != "pipeline.html" {
		t.Errorf("report file %s, want pipeline.html", htmlPath)
	}
}

func TestSummaryAndCompare(t *testing.T) {
	naive := sampleRun("naive", audit.Naive, 4000, 400, false)
	pipe := sampleRun("pipeline", audit.Pipeline, 40, 4000, false)
	c := NewCompare(naive, pipe)
	if c.ThroughputRatio != 10 || c.P99Ratio != 100 || c.SoldOutRatio != 1 || !c.OK() {
		t.Errorf("compare %+v; want throughput 10x, p99 100x, sold out 1x, ok", c)
	}
	var buf bytes.Buffer
	pipe.WriteSummary(&buf)
	c.WriteSummary(&buf)
	for _, want := range []string{"peak ingress / peak DB write        900/s / 6/s = 150.0x shaved", "1. never oversold", "pipeline/naive 10.0x", "naive/pipeline 100.0x"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
	dir := t.TempDir()
	path, err := c.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(path)
	if m := externalRef.FindString(string(page)); m != "" {
		t.Errorf("the comparison refers to the network: %q", m)
	}
	if n := strings.Count(string(page), "<svg"); n != 9 {
		t.Errorf("comparison has %d charts, want 9 (the physical limit, then four side by side)", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "compare.json")); err != nil {
		t.Error(err)
	}
}

func TestShort(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.5: "0.5", 3: "3", 35: "35", 1500: "1.5k", 25000: "25k", 2e6: "2M"} {
		if got := short(v); got != want {
			t.Errorf("short(%v) = %q, want %q", v, got, want)
		}
	}
}

// limitRun is a fixed measurement: 150,000 buys, 40,000 page views, 600
// payments and 100 order reads in a spike answered in 16s, and a /healthz
// ceiling of 20,000 req/s in the same run (healthz given as probeRPS; no
// probes when it is negative).
func limitRun(name string, mode audit.Mode, spikeSeconds int, probeRPS float64) *Run {
	r := sampleRun(name, mode, 40, 4000, false)
	r.Latency = []measure.LatencyRow{
		{Endpoint: "buy", Outcome: "all", Count: 150000, P50: 4, P99: 40},
		{Endpoint: "buy", Outcome: "410 SOLD_OUT", Count: 149000},
		{Endpoint: "buy", Outcome: "202", Count: 1000},
		{Endpoint: "order", Outcome: "all", Count: 100},
		{Endpoint: "order", Outcome: "200", Count: 100},
		{Endpoint: "page", Outcome: "all", Count: 40000},
		{Endpoint: "page", Outcome: "200", Count: 40000},
		{Endpoint: "pay", Outcome: "all", Count: 600},
		{Endpoint: "pay", Outcome: "200", Count: 600},
	}
	switch {
	case probeRPS < 0:
		r.Probes = nil
	default:
		r.Probes[0].RPS = probeRPS
	}
	r.Figures = Figures{}
	r.ComputeFigures(r.Latency[0], time.Duration(spikeSeconds)*time.Second)
	return r
}

func TestPhysicalLimit(t *testing.T) {
	l := limitRun("pipeline", audit.Pipeline, 16, 20000).Figures.PhysicalLimit
	if !l.Known() {
		t.Fatalf("limit unknown (%s), want it measured", l.Unknown)
	}
	want := map[string]int64{"buy": 150000, "page": 40000, "pay": 600, "order": 100}
	if l.Requests != 190700 || !reflect.DeepEqual(l.ByEndpoint, want) {
		t.Errorf("requests %d %v, want 190700 %v", l.Requests, l.ByEndpoint, want)
	}
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"healthz", l.Ceiling(), 20000},
		{"limit seconds", l.LimitSeconds(), 9.535},
		{"spike / limit", l.Ratio(), 16 / 9.535},
		{"crowd arrival (1s + 4s tail + 3s late window, bots 200ms early)", l.ArrivalSeconds, 8.2},
	} {
		if math.Abs(tc.got-tc.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if got, want := l.Short(), "physical limit 9.5s: 1.7x"; got != want {
		t.Errorf("Short() = %q, want %q", got, want)
	}
	if got, want := l.Breakdown(), "190700 requests (buy 150000, page 40000, pay 600, order 100) / 20000 req/s /healthz = 9.5s"; got != want {
		t.Errorf("Breakdown() = %q, want %q", got, want)
	}

	// A failed /healthz probe gives no limit either.
	if l := limitRun("pipeline", audit.Pipeline, 16, 0).Figures.PhysicalLimit; l.Known() || !strings.Contains(l.Unknown, "/healthz probe got no answer") {
		t.Errorf("with a /healthz rate of 0: %+v, want unknown", l)
	}
}

func TestPhysicalLimitInSummaryAndJSON(t *testing.T) {
	r := limitRun("pipeline", audit.Pipeline, 16, 20000)
	var buf bytes.Buffer
	r.WriteSummary(&buf)
	for _, want := range []string{
		"spike answered in                   16.0s (physical limit 9.5s: 1.7x)",
		"physical limit                      190700 requests (buy 150000, page 40000, pay 600, order 100) / 20000 req/s /healthz = 9.5s; the crowd arrives over 8.2s",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
	var doc struct {
		Figures struct {
			PhysicalLimit map[string]any `json:"physical_limit"`
		} `json:"figures"`
	}
	buf.Reset()
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	pl := doc.Figures.PhysicalLimit
	if pl["requests"] != 190700.0 || pl["healthz_rps"] != 20000.0 || math.Abs(pl["seconds"].(float64)-9.535) > 1e-9 ||
		math.Abs(pl["spike_vs_limit"].(float64)-16/9.535) > 1e-9 || pl["unknown"] != nil {
		t.Errorf("JSON figures.physical_limit = %v", pl)
	}
}

func TestPhysicalLimitUnknownWithoutProbes(t *testing.T) {
	r := limitRun("pipeline", audit.Pipeline, 16, -1)
	l := r.Figures.PhysicalLimit
	if l.Known() || l.Seconds != nil || l.SpikeVsLimit != nil || l.HealthzRPS != nil || !strings.Contains(l.Unknown, "--probe-duration 0") {
		t.Fatalf("without probes: %+v, want an unknown limit saying the probes were skipped", l)
	}
	if l.Requests != 190700 {
		t.Errorf("requests %d, want them counted anyway", l.Requests)
	}
	var buf bytes.Buffer
	r.WriteSummary(&buf)
	if want := "spike answered in                   16.0s (physical limit unknown: the saturation probes were skipped (--probe-duration 0)"; !strings.Contains(buf.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, buf.String())
	}
	buf.Reset()
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"healthz_rps": null`, `"seconds": null`, `"spike_vs_limit": null`, `"unknown": "the saturation probes were skipped`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
	buf.Reset()
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "physical limit unknown: the saturation probes were skipped") {
		t.Error("the HTML report does not say the limit is unknown")
	}
	if strings.Contains(buf.String(), "x the limit") || strings.Contains(buf.String(), "NaN") {
		t.Error("the HTML report shows a ratio without a limit")
	}

	// In a comparison, the mode without probes says unknown; the other keeps its figure.
	c := NewCompare(r, limitRun("pipeline", audit.Pipeline, 16, 20000))
	c.Naive.Name = "naive"
	buf.Reset()
	c.WriteSummary(&buf)
	for _, want := range []string{"spike / physical limit               unknown         1.7x", "(physical limit unknown: naive: the saturation probes were skipped"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("comparison summary lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestComparisonLeadsWithTheLimit: the first thing on compare.html is each
// mode's spike duration against its physical limit, and the ratio.
func TestComparisonLeadsWithTheLimit(t *testing.T) {
	c := NewCompare(limitRun("naive", audit.Naive, 111, 32952), limitRun("pipeline", audit.Pipeline, 16, 28513))
	var buf bytes.Buffer
	if err := c.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	body := page[strings.Index(page, "<body>"):]
	lead := body[strings.Index(body, "</h1>"):]
	if !strings.HasPrefix(lead, `</h1>
<h2 id="physical-limit">The spike against the machine's physical limit</h2>`) {
		t.Errorf("compare.html does not lead with the physical limit:\n%.400s", lead)
	}
	first := func(s string) int {
		i := strings.Index(page, s)
		if i < 0 {
			t.Errorf("compare.html lacks %q", s)
		}
		return i
	}
	limitTable := first("<td>111.0 s</td><td>5.8 s</td><td>19.2x</td>") // 190700 / 32952 = 5.79s
	pipeRow := first("<td>16.0 s</td><td>6.7 s</td><td>2.4x</td>")      // 190700 / 28513 = 6.69s
	chart := first("the spike against the machine&#39;s physical limit (seconds)")
	for _, later := range []string{"buy p50 under the spike", "ingress vs database write rate", "<h2>Side by side</h2>"} {
		if i := first(later); i < limitTable || i < pipeRow || i < chart {
			t.Errorf("%q comes before the physical limit", later)
		}
	}
	svg := page[strings.Index(page, "<svg"):]
	if tag := svg[:strings.Index(svg, ">")]; !strings.Contains(tag, "physical limit") {
		t.Errorf("the first chart is %s, want the physical limit", tag)
	}
}

// TestBuyTokenDoorInReport: the token fetches count towards the physical
// limit, and the summary and the page show the door and the answers by
// kind of user.
func TestBuyTokenDoorInReport(t *testing.T) {
	r := limitRun("pipeline", audit.Pipeline, 16, 20000)
	r.Latency = append(r.Latency,
		measure.LatencyRow{Endpoint: "buy-token", Outcome: "all", Count: 9000},
		measure.LatencyRow{Endpoint: "buy-token", Outcome: "200", Count: 9000})
	r.BuyToken = BuyTokenDoor{Setting: "required", UsersWithToken: 9000}
	r.BuyAnswersByKind = map[string]map[string]int64{
		"bot":   {"429 RATE_LIMITED": 160, "403 BUY_TOKEN_MISSING": 240},
		"human": {"410 SOLD_OUT": 8000, "202": 1000},
	}
	r.Figures = Figures{}
	r.ComputeFigures(r.Latency[0], 16*time.Second)
	if l := r.Figures.PhysicalLimit; l.Requests != 199700 || l.ByEndpoint["buy-token"] != 9000 {
		t.Errorf("physical limit %d requests %v; want the 9000 token fetches counted", l.Requests, l.ByEndpoint)
	}
	var sum, page bytes.Buffer
	r.WriteSummary(&sum)
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"buy tokens: required: 9000 users got a token (bots never ask), 0 orders accepted without one",
		"buy-token 9000",
		"403 BUY_TOKEN_MISSING 240, 429 RATE_LIMITED 160",
		"410 SOLD_OUT 8000, 202 1000",
	} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
		if !strings.Contains(page.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if got := (BuyTokenDoor{Setting: "off"}).Summary(); got != "off: buys carry no token" {
		t.Errorf("Summary() with tokens off = %q", got)
	}
}
