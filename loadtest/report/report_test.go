package report

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
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
	if back.Figures != r.Figures || len(back.Timeline) != 4 || back.Audit.OK() {
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
	if n := strings.Count(string(page), "<svg"); n != 8 {
		t.Errorf("comparison has %d charts, want 8 (four side by side)", n)
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
