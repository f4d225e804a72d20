package chaos

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

	"github.com/flashsale/seckill/loadtest/cluster"
)

// TestFiredAlertsAgainstPrometheus starts the Prometheus a chaos run
// starts (Debian's 2.42) with the repository's rules and a target that
// reports dead letters, then reads the alert back with FiredAlerts: the rules load,
// every rule evaluates without an error, the alert fires with its topic and
// its annotations render with it.
func TestFiredAlertsAgainstPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus not found: CI installs Debian's prometheus package (apt-get install prometheus)")
		}
		t.Skip("prometheus not found: apt-get install prometheus")
	}
	rules, err := filepath.Abs(filepath.Join("..", "..", cluster.RulesFile))
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
	var fired []Alert
	for {
		fired, err = FiredAlerts(context.Background(), &http.Client{Timeout: 10 * time.Second}, promURL, start, time.Now())
		if err == nil && slices.ContainsFunc(fired, func(f Alert) bool { return f.Name == "SeckillOrderDeadLetters" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SeckillOrderDeadLetters did not fire within a minute: %v (last error %v)", fired, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	i := slices.IndexFunc(fired, func(f Alert) bool { return f.Name == "SeckillOrderDeadLetters" })
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
