package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/loadtest/internal/fakegw"
	"github.com/flashsale/seckill/loadtest/spike"
)

func TestFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad mode", []string{"--mode", "sync"}, "--mode"},
		{"no users", []string{"--users", "0"}, "--users"},
		{"share over 1", []string{"--bot-share", "2"}, "--bot-share"},
		{"compare with one url", []string{"--compare", "--url", "http://x"}, "--naive-url"},
		{"naive url alone", []string{"--naive-url", "http://x"}, "only applies with --compare"},
		{"stray argument", []string{"now"}, "unexpected arguments"},
		{"bad set", []string{"--set", "WORKERS=3"}, "SECKILL_NAME=value"},
		{"bad buy token", []string{"--buy-token", "optional"}, "--buy-token must be required or off"},
		{"buy token through --set", []string{"--set", "SECKILL_BUY_TOKEN=off"}, "use --buy-token off"},
		{"url without admin token", []string{"--url", "http://127.0.0.1:1", "--admin-token", ""}, "--admin-token"},
		{"unknown schedule", []string{"--chaos", "tornado"}, "or one of the built-in schedules: default, redis-empty"},
		{"chaos and compare", []string{"--chaos", "default", "--compare"}, "--chaos and --compare"},
		{"chaos without a cluster", []string{"--chaos", "default", "--cluster", "/nonexistent/cluster"}, "no cluster state in /nonexistent/cluster: start one with make cluster-up"},
		{"metrics urls without a deployment", []string{"--metrics-url", "http://127.0.0.1:1/metrics"}, "apply to a deployment"},
		{"two admissions without compare", []string{"--admission", "open,queue"}, "two admissions are open,queue, with --compare"},
		{"three admissions", []string{"--compare", "--admission", "open,queue,open"}, "two admissions are open,queue"},
		{"unknown admission", []string{"--admission", "lottery", "--users", "10"}, "--admission must be open or queue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errb); code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q does not name %s", errb.String(), tc.want)
			}
		})
	}
}

// TestExitCodes runs the CLI against a fake gateway: honest, it exits 0
// and writes the reports; overselling, it exits 1.
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		oversell int64
		code     int
	}{
		{"honest gateway", 0, 0},
		{"overselling gateway", 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := fakegw.New("admin-token-0123456789", []byte("cli-test-secret-0123456789"))
			g.Oversell = tc.oversell
			ts := httptest.NewServer(g)
			t.Cleanup(ts.Close)
			dir := t.TempDir()
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{
				"--url", ts.URL, "--admin-token", "admin-token-0123456789", "--jwt-secret", "cli-test-secret-0123456789",
				"--users", "200", "--stock", "10", "--countdown", "0", "--tail", "300ms", "--late-window", "200ms",
				"--bot-duration", "300ms", "--probe-duration", "0", "--settle-timeout", "1s", "--quiet", "--out", dir,
			}, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			for _, f := range []string{"pipeline.json", "pipeline.html"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("report %s not written: %v", f, err)
				}
			}
			if tc.code == 1 && !strings.Contains(errb.String(), "AUDIT FAILED") {
				t.Errorf("stderr %q does not say the audit failed", errb.String())
			}
			if !strings.Contains(out.String(), "1. never oversold") {
				t.Errorf("no summary on stdout:\n%s", out.String())
			}
			// --probe-duration 0: no /healthz ceiling, so no physical limit.
			if !strings.Contains(out.String(), "(physical limit unknown: the saturation probes were skipped (--probe-duration 0)") {
				t.Errorf("the summary does not say the physical limit is unknown:\n%s", out.String())
			}
			js, _ := os.ReadFile(filepath.Join(dir, "pipeline.json"))
			if !strings.Contains(string(js), `"spike_vs_limit": null`) {
				t.Errorf("pipeline.json carries a physical limit without probes")
			}
		})
	}
}

// A chaos run's crowd keeps buying through the schedule and its
// recoveries, unless the flags say otherwise.
func TestChaosDefaults(t *testing.T) {
	var errb bytes.Buffer
	c, err := parse([]string{"--chaos", "default"}, &errb)
	if err != nil {
		t.Fatal(err)
	}
	sc := c.opts.Scenario
	if sc.Users != spike.ChaosUsers || sc.Stock != spike.ChaosUsers || sc.SteadyShare != spike.ChaosSteadyShare || sc.SteadyWindow != 39*time.Second || c.opts.ProbeDuration != 0 {
		t.Errorf("defaults: users %d, stock %d, steady %v over %s, probes %s", sc.Users, sc.Stock, sc.SteadyShare, sc.SteadyWindow, c.opts.ProbeDuration)
	}
	if c.schedule == nil || c.schedule.Name != "default" {
		t.Errorf("schedule %+v", c.schedule)
	}
	c, err = parse([]string{"--chaos", "redis-empty", "--users", "500", "--stock", "100", "--steady-share", "0.2", "--probe-duration", "1s"}, &errb)
	if err != nil {
		t.Fatal(err)
	}
	sc = c.opts.Scenario
	if sc.Users != 500 || sc.Stock != 100 || sc.SteadyShare != 0.2 || sc.SteadyWindow != 23*time.Second || c.opts.ProbeDuration != time.Second {
		t.Errorf("flags given: users %d, stock %d, steady %v over %s, probes %s", sc.Users, sc.Stock, sc.SteadyShare, sc.SteadyWindow, c.opts.ProbeDuration)
	}
}
