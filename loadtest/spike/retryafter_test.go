package spike

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flashsale/seckill/loadtest/internal/fakegw"
)

func TestBackoffHonoursRetryAfter(t *testing.T) {
	for range 200 {
		// Retry-After longer than the backoff: it wins, with a little jitter.
		if d := backoff(10*time.Millisecond, 0, time.Second); d < time.Second || d > 1250*time.Millisecond {
			t.Fatalf("backoff(10ms, 0, 1s) = %s, want 1s to 1.25s", d)
		}
		if d := backoff(10*time.Millisecond, 1, 8*time.Second); d < 8*time.Second || d > 9*time.Second {
			t.Fatalf("backoff(10ms, 1, 8s) = %s, want 8s to 9s (jitter capped at 1s)", d)
		}
		// No Retry-After, or a shorter one: the jittered exponential backoff.
		for _, ra := range []time.Duration{0, 100 * time.Millisecond} {
			if d := backoff(400*time.Millisecond, 1, ra); d < 400*time.Millisecond || d > 800*time.Millisecond {
				t.Fatalf("backoff(400ms, 1, %s) = %s, want 400ms to 800ms", ra, d)
			}
		}
	}
}

// TestRetriesWaitForRetryAfter: against a gateway that refuses each user's
// first buy with 503 BUSY or 429 and Retry-After: 1, every retry comes at
// least a second later although the tester's own backoff is 10ms, and the
// sale still sells out without an audit finding.
func TestRetriesWaitForRetryAfter(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			const admin, secret = "fake-admin-token", "fake-jwt-secret-0123456789"
			g := fakegw.New(admin, []byte(secret))
			g.RefuseFirst, g.RefuseStatus, g.RetryAfter = 1, status, 1
			ts := httptest.NewServer(g)
			t.Cleanup(ts.Close)
			c := small(200, 20)
			c.Countdown = 0
			// Humans only, one click each: every second buy of a user is
			// a retry, not a bot's next shot or a double click.
			c.BotShare, c.DoubleClickShare = 0, 0
			c.Retries, c.RetryBackoff = 2, 10*time.Millisecond
			rep, err := Run(context.Background(), Options{URL: ts.URL, AdminToken: admin, JWTSecret: secret, Scenario: c, SettleTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Audit.OK() {
				t.Fatalf("audit failed: %+v", rep.Audit.Violations())
			}
			retried := 0
			for user, buys := range g.Buys() {
				if len(buys) < 2 {
					continue // a user whose first click came after the sale ended, or a late one
				}
				if buys[0].Status != status {
					t.Fatalf("%s: first buy %d, want the refusal %d", user, buys[0].Status, status)
				}
				retried++
				if gap := buys[1].At.Sub(buys[0].At); gap < time.Second {
					t.Errorf("%s retried %s after a %d with Retry-After: 1; want at least 1s", user, gap, status)
				}
			}
			if retried < 100 {
				t.Fatalf("%d users retried, want most of the 200", retried)
			}
			if rep.Final.Remaining != 0 {
				t.Errorf("final %+v; want the stock sold through the retries", rep.Final)
			}
		})
	}
}
