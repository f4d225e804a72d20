package spike

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/loadtest/audit"
	"github.com/flashsale/seckill/loadtest/internal/fakegw"
	"github.com/flashsale/seckill/loadtest/report"
	"github.com/flashsale/seckill/loadtest/scenario"
	"github.com/flashsale/seckill/testkit"
)

// small is a spike scaled down for tests: a few thousand users, short
// phases, a 2s pay timeout so that orders time out within the test.
func small(users int, stock int64) scenario.Config {
	c := scenario.Default()
	c.Users, c.Stock = users, stock
	c.Countdown, c.Tail, c.LateWindow, c.BotDuration = time.Second, time.Second, 500*time.Millisecond, time.Second
	c.PayTimeout, c.PayWithin = 2*time.Second, 500*time.Millisecond
	return c
}

// testLog shows the in-process gateway's warnings with -v, so that a
// failed audit comes with the gateway's side of the story.
func testLog(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func checkReport(t *testing.T, rep *report.Run, wantProbes int) {
	t.Helper()
	if !rep.Audit.OK() {
		t.Fatalf("audit failed: %+v", rep.Audit.Violations())
	}
	if len(rep.Audit.Checks) != 9 {
		t.Fatalf("%d audit checks, want the 7 invariants and 2 more", len(rep.Audit.Checks))
	}
	if len(rep.Funnel) != 6 || rep.Funnel[0].Count == 0 {
		t.Errorf("funnel %+v; want 6 stages from a non-zero request count", rep.Funnel)
	}
	for i := 1; i < len(rep.Funnel); i++ {
		if rep.Funnel[i].Count > rep.Funnel[i-1].Count {
			t.Errorf("funnel widens at %q: %v > %v", rep.Funnel[i].Name, rep.Funnel[i].Count, rep.Funnel[i-1].Count)
		}
	}
	if got := rep.Funnel[len(rep.Funnel)-1].Count; got < float64(rep.Scenario.Stock) {
		t.Errorf("funnel: %v written, want at least the stock %d", got, rep.Scenario.Stock)
	}
	if len(rep.Timeline) == 0 || rep.Figures.PeakIngress == 0 || rep.Figures.PeakDBWrite == 0 || rep.Figures.SpikeBuyP99 == 0 {
		written := make([]float64, len(rep.Timeline))
		for i, sec := range rep.Timeline {
			written[i] = sec.Written // -1: no /metrics reading at one of the second's edges
		}
		t.Errorf("figures %+v from %d seconds of timeline (written per second %v); want ingress, DB writes and latency measured",
			rep.Figures, len(rep.Timeline), written)
	}
	if len(rep.Probes) != wantProbes {
		t.Errorf("%d probes, want %d", len(rep.Probes), wantProbes)
	}
	for _, p := range rep.Probes {
		if p.Requests == 0 || p.RPS <= 0 {
			t.Errorf("probe %+v measured nothing", p)
		}
	}
}

func TestRunEmbedded(t *testing.T) {
	for _, mode := range []audit.Mode{audit.Pipeline, audit.Naive} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			rep, err := Run(context.Background(), Options{
				Mode: mode, Scenario: small(800, 30), ProbeDuration: 300 * time.Millisecond, ProbeClients: 8,
				GatewayLog: testLog(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, rep, 4)
			// Unset, the caps are DefaultConnsPerCPU per CPU (at most
			// DefaultMaxConns), in flight too.
			n := min(DefaultConnsPerCPU*runtime.NumCPU(), DefaultMaxConns)
			if want := fmt.Sprintf("%d connections, %d requests in flight at most", n, n); !strings.HasPrefix(rep.Generator, want) {
				t.Errorf("generator %q, want it to start with %q", rep.Generator, want)
			}
			// Orders timed out, so the lifecycle was exercised.
			if rep.Final.OrdersPaid != rep.Scenario.Stock || rep.Final.OrdersCancelled == 0 {
				t.Errorf("final %+v; want every unit paid in the end and some orders timed out", rep.Final)
			}
			for _, n := range []int{6, 7, 8, 9} {
				if c := rep.Audit.Checks[n-1]; c.Status != audit.OK {
					t.Errorf("check %d (%s) %s %q; want exercised and ok", n, c.Name, c.Status, c.Details)
				}
			}
			if mode == audit.Naive && rep.Funnel[3].Name != "reached the database" {
				t.Errorf("naive funnel %+v; want the database as the fourth stage, after the buy-token check", rep.Funnel)
			}
		})
	}
}

// TestRunBuyTokenRequired runs the spike in-process behind the buy-token
// door: every order went to a user that fetched a token, the bots (which
// skip it) were refused 403 BUY_TOKEN_MISSING at the door and the funnel's
// layer counts exactly them, and the audit holds: a refused buy reserves
// nothing.
func TestRunBuyTokenRequired(t *testing.T) {
	rep, err := Run(context.Background(), Options{
		Mode: audit.Pipeline, BuyToken: BuyTokenRequired, Scenario: small(2000, 50),
		ProbeDuration: 200 * time.Millisecond, ProbeClients: 4, GatewayLog: testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, 4)
	if !strings.Contains(strings.Join(rep.Settings, "\n"), "SECKILL_BUY_TOKEN=required") {
		t.Errorf("settings %q do not show the door", rep.Settings)
	}
	if d := rep.BuyToken; d.AcceptedWithoutToken != 0 || d.UsersWithToken < int(rep.Scenario.Stock) {
		t.Errorf("door %+v; want every order to a token holder", d)
	}
	if rep.Final.OrdersPaid != rep.Scenario.Stock {
		t.Errorf("final %+v; want every unit sold to token holders and paid in the end", rep.Final)
	}
	var refused int64 // every buy answered 403 BUY_TOKEN_*, whoever sent it
	for kind, answers := range rep.BuyAnswersByKind {
		for outcome, n := range answers {
			if !strings.HasPrefix(outcome, "403 BUY_TOKEN_") {
				continue
			}
			refused += n
			if kind != "bot" || outcome != "403 BUY_TOKEN_MISSING" {
				t.Errorf("%s buys answered %s x%d; only bots, which skip the token, should be refused, for a missing one", kind, outcome, n)
			}
		}
	}
	bots := rep.BuyAnswersByKind["bot"]
	if bots["403 BUY_TOKEN_MISSING"] == 0 || bots["202"] != 0 {
		t.Errorf("bot answers %v; want refusals at the door and no order", bots)
	}
	past, door := rep.Funnel[1], rep.Funnel[2]
	if door.Name != "past the buy-token check" || int64(past.Count-door.Count) != refused || !strings.Contains(door.Note, "missing") {
		t.Errorf("door layer %+v after %+v; want the %d refusals taken away and their reason named", door, past, refused)
	}
	for _, l := range rep.Latency {
		if l.Endpoint == epBuyToken && strings.HasPrefix(l.Outcome, "403") {
			t.Errorf("buy-token answered %s x%d during the spike; users fetch from the start", l.Outcome, l.Count)
		}
	}
	// Each of the spike's winners, at least a stock's worth, fetched one.
	if n := rep.Figures.PhysicalLimit.ByEndpoint[epBuyToken]; n < rep.Scenario.Stock {
		t.Errorf("physical limit counts %d buy-token requests (%v); want the fetches counted", n, rep.Figures.PhysicalLimit.ByEndpoint)
	}
	for _, p := range rep.Probes {
		if p.Name != report.ProbeHealthz && !strings.Contains(p.What, "buy token") {
			t.Errorf("probe %s: %q does not say each buy fetches its token", p.Name, p.What)
		}
	}
}

func TestRunRealRedisAndMariaDB(t *testing.T) {
	redisURL, dsn := testkit.RedisURL(t), testkit.MySQLDSN(t)
	for _, mode := range []audit.Mode{audit.Pipeline, audit.Naive} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			rep, err := Run(context.Background(), Options{
				Mode: mode, Scenario: small(800, 30), RedisURL: redisURL, DBDSN: dsn, GatewayLog: testLog(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, rep, 0)
			if !strings.Contains(rep.Backends, "redis external") || !strings.Contains(rep.Backends, "database external") {
				t.Errorf("backends %q; want the real ones", rep.Backends)
			}
		})
	}
}

func fakeOptions(t *testing.T, oversell int64) Options {
	t.Helper()
	const admin, secret = "fake-admin-token", "fake-jwt-secret-0123456789"
	g := fakegw.New(admin, []byte(secret))
	g.Oversell = oversell
	ts := httptest.NewServer(g)
	t.Cleanup(ts.Close)
	c := small(300, 20)
	c.Countdown = 0
	return Options{URL: ts.URL, AdminToken: admin, JWTSecret: secret, Scenario: c, SettleTimeout: 2 * time.Second}
}

// TestRunCatchesAnOversellingGateway shows the audit failing a gateway that
// sells more than it has: a tester that cannot fail proves nothing.
func TestRunCatchesAnOversellingGateway(t *testing.T) {
	rep, err := Run(context.Background(), fakeOptions(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Audit.OK() {
		t.Fatal("the audit passed a gateway that sold 23 units of 20")
	}
	c := rep.Audit.Checks[0]
	if c.Status != audit.Violated || !strings.Contains(strings.Join(c.Details, "\n"), "23 created + 0 paid orders for a stock of 20") {
		t.Errorf("invariant 1: %+v; want the oversell named", c)
	}
}

func TestRunWithoutLifecycle(t *testing.T) {
	rep, err := Run(context.Background(), fakeOptions(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Audit.OK() {
		t.Fatalf("honest fake failed the audit: %+v", rep.Audit.Violations())
	}
	for _, n := range []int{6, 7} {
		if c := rep.Audit.Checks[n-1]; c.Status != audit.Skipped {
			t.Errorf("invariant %d = %s; want not exercised without a pay endpoint", n, c.Status)
		}
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "no pay endpoint") {
		t.Errorf("notes %q do not say the lifecycle was missing", rep.Notes)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"bad mode", Options{Mode: "sync", Scenario: scenario.Default()}, "--mode"},
		{"url without admin token", Options{URL: "http://x", Scenario: scenario.Default()}, "--admin-token"},
		{"secrets without url", Options{JWTSecret: "x", Scenario: scenario.Default()}, "only apply with --url"},
		{"bad scenario", Options{Scenario: scenario.Config{}}, "--users"},
		{"bad admission", Options{Admission: "lottery", Scenario: scenario.Default()}, "--admission must be open or queue"},
		{"queue in naive mode", Options{Admission: AdmissionQueue, Mode: audit.Naive, Scenario: scenario.Default()}, "--mode pipeline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
