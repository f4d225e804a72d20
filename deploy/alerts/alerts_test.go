package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFired(t *testing.T) {
	from := time.UnixMilli(1_700_000_000_000)
	to := from.Add(time.Minute)
	const series = `{"status":"success","data":{"resultType":"matrix","result":[
		{"metric":{"__name__":"ALERTS","alertname":"SeckillOrderQueueBehind","alertstate":"firing","severity":"warning"},
		 "values":[[1700000030.5,"1"],[1700000031.5,"1"]]},
		{"metric":{"__name__":"ALERTS","alertname":"SeckillOrderDeadLetters","alertstate":"firing","severity":"critical","topic":"orders"},
		 "values":[[1700000010,"1"],[1700000011,"1"],[1700000059.999,"1"]]},
		{"metric":{"__name__":"ALERTS","alertname":"SeckillDeadLetters","alertstate":"firing","severity":"warning","topic":"order-events"},
		 "values":[[1700000030.5,"1"]]}]}}`
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		from, to time.Time
		url      string // default: the test server
		want     []Firing
		wantErr  string
	}{
		{
			name: "alerts in the order they fired", status: 200, body: series, from: from, to: to,
			want: []Firing{
				{Name: "SeckillOrderDeadLetters", Severity: "critical", Labels: map[string]string{"topic": "orders"},
					First: time.UnixMilli(1_700_000_010_000), Last: time.UnixMilli(1_700_000_059_999)},
				{Name: "SeckillDeadLetters", Severity: "warning", Labels: map[string]string{"topic": "order-events"},
					First: time.UnixMilli(1_700_000_030_500), Last: time.UnixMilli(1_700_000_030_500)},
				{Name: "SeckillOrderQueueBehind", Severity: "warning", Labels: map[string]string{},
					First: time.UnixMilli(1_700_000_030_500), Last: time.UnixMilli(1_700_000_031_500)},
			},
		},
		{name: "nothing fired", status: 200, body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`, from: from, to: to, want: []Firing{}},
		{name: "a query Prometheus refuses", status: 400, body: `{"status":"error","errorType":"bad_data","error":"1:8: parse error"}`, from: from, to: to, wantErr: "400 Bad Request: bad_data: 1:8: parse error"},
		{name: "not Prometheus", status: 502, body: `<html>bad gateway</html>`, from: from, to: to, wantErr: "502 Bad Gateway, not Prometheus' JSON"},
		{name: "an instant vector", status: 200, body: `{"status":"success","data":{"resultType":"vector","result":[]}}`, from: from, to: to, wantErr: `answered a "vector", want a matrix`},
		{name: "a timestamp that is not a number", status: 200, body: `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"alertname":"X"},"values":[["soon","1"]]}]}}`, from: from, to: to, wantErr: "sample 0 of X: the timestamp is not a number"},
		{name: "a window backwards", from: to, to: from, wantErr: "before it starts"},
		{name: "no URL", from: from, to: to, url: "localhost:9090", wantErr: `Prometheus URL "localhost:9090"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotQuery, gotTime string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1/query" {
					http.NotFound(w, r)
					return
				}
				gotQuery, gotTime = r.URL.Query().Get("query"), r.URL.Query().Get("time")
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			u := srv.URL
			if tc.url != "" {
				u = tc.url
			}
			got, err := Fired(context.Background(), Config{URL: u}, tc.from, tc.to)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := `ALERTS{alertstate="firing"}[60001ms]`; gotQuery != want {
				t.Errorf("query %q, want %q", gotQuery, want)
			}
			if gotTime != "1700000060.000" {
				t.Errorf("time %q, want the window's end, 1700000060.000", gotTime)
			}
			if !slices.EqualFunc(got, tc.want, func(a, b Firing) bool {
				return a.String() == b.String() && a.First.Equal(b.First) && a.Last.Equal(b.Last)
			}) {
				t.Errorf("got\n  %v\nwant\n  %v", got, tc.want)
			}
		})
	}
}

func TestFiringString(t *testing.T) {
	f := Firing{Name: "SeckillStockOversellRisk", Severity: "critical", Labels: map[string]string{"instance": "worker-1:8081", "activity_id": "7"}}
	if got, want := f.String(), "SeckillStockOversellRisk (critical) activity_id=7, instance=worker-1:8081"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestFiredAgainstPrometheus starts the Prometheus a chaos run starts
// (Debian's 2.42) with the repository's rules and a target that reports
// dead letters, then reads the alert back with Fired: the rules load,
// every rule evaluates without an error, the alert fires with its topic and
// its annotations render with it.
func TestFiredAgainstPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus not found: CI installs Debian's prometheus package (apt-get install prometheus)")
		}
		t.Skip("prometheus not found: apt-get install prometheus")
	}
	rules, err := filepath.Abs(filepath.Join("..", "..", RulesFile))
	if err != nil {
		t.Fatal(err)
	}

	// An order worker whose orders dead-letter topic holds two messages.
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, "# TYPE seckill_dead_letters gauge\n"+
			"seckill_dead_letters{topic=\"orders\"} 2\n"+
			"seckill_dead_letters{topic=\"order-timeouts\"} 0\n"+
			"seckill_dead_letters{topic=\"order-events\"} 0\n"+
			"# TYPE seckill_queue_oldest_age_seconds gauge\nseckill_queue_oldest_age_seconds 0\n"+
			"# TYPE seckill_queue_depth gauge\nseckill_queue_depth 0\n")
	}))
	t.Cleanup(target.Close)

	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: seckill-order-worker
    static_configs:
      - targets: [%q]
        labels: {service: order-worker}
`, rules, strings.TrimPrefix(target.URL, "http://")), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus' log:\n%s", logs.String())
		}
	})
	promURL := "http://" + addr
	start := time.Now()

	// The bound of the wait, not a measure: firing takes two evaluations
	// (one second each) after the first scrape.
	deadline := time.Now().Add(time.Minute)
	var fired []Firing
	for {
		fired, err = Fired(context.Background(), Config{URL: promURL}, start, time.Now())
		if err == nil && slices.ContainsFunc(fired, func(f Firing) bool { return f.Name == "SeckillOrderDeadLetters" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SeckillOrderDeadLetters did not fire within a minute: %v (last error %v)", fired, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	i := slices.IndexFunc(fired, func(f Firing) bool { return f.Name == "SeckillOrderDeadLetters" })
	if f := fired[i]; f.Severity != "critical" || f.Labels["topic"] != "orders" || f.First.Before(start) || f.Last.Before(f.First) {
		t.Errorf("fired %s from %s to %s, want critical with topic=orders, after %s", f, f.First, f.Last, start)
	}
	for _, f := range fired {
		if f.Name == "SeckillDeadLetters" || f.Name == "SeckillQueueUnreadable" || f.Name == "SeckillOrderQueueBehind" {
			t.Errorf("%s fired: the target reports no such thing", f)
		}
	}

	// Every rule loaded and evaluates without an error (a duplicate label
	// set, say, is an error at evaluation, not at load).
	var rules2 struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name           string    `json:"name"`
					Type           string    `json:"type"`
					Health         string    `json:"health"`
					LastError      string    `json:"lastError"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	getJSON(t, promURL+"/api/v1/rules", &rules2)
	n := 0
	for _, g := range rules2.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Type != "alerting" || r.Health != "ok" || r.LastEvaluation.IsZero() {
				t.Errorf("group %s rule %s: type %q health %q (%s), last evaluated %s", g.Name, r.Name, r.Type, r.Health, r.LastError, r.LastEvaluation)
			}
		}
	}
	if n == 0 {
		t.Error("Prometheus loaded no rule")
	}

	// The annotations render with the labels of the firing.
	var live struct {
		Data struct {
			Alerts []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"alerts"`
		} `json:"data"`
	}
	getJSON(t, promURL+"/api/v1/alerts", &live)
	j := slices.IndexFunc(live.Data.Alerts, func(a struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}) bool {
		return a.Labels["alertname"] == "SeckillOrderDeadLetters"
	})
	if j < 0 {
		t.Fatalf("SeckillOrderDeadLetters is not among the live alerts: %+v", live.Data.Alerts)
	}
	a := live.Data.Alerts[j].Annotations
	if want := "2 accepted orders on the orders dead-letter topic"; a["summary"] != want {
		t.Errorf("summary %q, want %q", a["summary"], want)
	}
	if want := "GET /api/v1/admin/dead-letters/orders"; !strings.Contains(a["description"], want) {
		t.Errorf("description %q does not name %q", a["description"], want)
	}
	if want := "https://github.com/flashsale/seckill/blob/main/docs/alerts.md#seckillorderdeadletters"; a["runbook_url"] != want {
		t.Errorf("runbook_url %q, want %q", a["runbook_url"], want)
	}
}

// freeAddr returns a loopback address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
