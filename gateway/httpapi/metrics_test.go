package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/flashsale/seckill/gateway/ratelimit"
)

// Each filter of the buy path shows in /metrics under its own series, by
// route template (never the raw path, which would explode the series).
func TestMetricsCoverEveryFilter(t *testing.T) {
	f := newFixture(t, fixtureOpts{queueCapacity: 2, tweak: func(o *options) {
		o.Limits.PerUser = ratelimit.NewKeyed(ratelimit.Config{Rate: 0.001, Burst: 1})
	}})
	act := openActivity(f, 3)
	steps := []struct {
		user string
		want int
	}{
		{"a", http.StatusAccepted},
		{"a", http.StatusTooManyRequests}, // per-user limit
		{"b", http.StatusAccepted},
		{"c", http.StatusServiceUnavailable}, // queue full (capacity 2, no consumer)
	}
	for i, s := range steps {
		if r := f.buy(act, s.user, ""); r.status != s.want {
			t.Fatalf("step %d (%s): %d %s, want %d", i, s.user, r.status, r.raw, s.want)
		}
	}
	f.call("GET", "/api/v1/activities/"+act, "", nil)
	f.call("GET", "/no/such/path", "", nil)

	r := f.call("GET", "/metrics", "", nil)
	for _, want := range []string{
		`seckill_http_requests_total{code="202",method="POST",route="/api/v1/activities/:id/orders"} 2`,
		`seckill_http_requests_total{code="429",method="POST",route="/api/v1/activities/:id/orders"} 1`,
		`seckill_http_requests_total{code="200",method="GET",route="/api/v1/activities/:id"} 1`,
		`seckill_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`seckill_http_request_duration_seconds_count{method="POST",route="/api/v1/activities/:id/orders"} 4`,
		`seckill_http_request_duration_seconds_bucket{method="GET",route="/api/v1/activities/:id",le="+Inf"} 1`,
		`seckill_rate_limited_total{limiter="user"} 1`,
		`seckill_rate_limited_total{limiter="global"} 0`,
		`seckill_rate_limited_total{limiter="ip"} 0`,
		`seckill_reserve_total{outcome="reserved"} 3`,
		`seckill_publish_failures_total{reason="full"} 1`,
		`seckill_publish_failures_total{reason="error"} 0`,
		`seckill_publish_duration_seconds_count 3`,
		`seckill_soldout_local_total 0`,
	} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(r.raw, `route="/api/v1/activities/`+act) {
		t.Error("a raw path is used as a route label")
	}
}

// Once Redis said sold out, the local flag answers without Redis and is
// counted.
func TestMetricsCountLocalSoldOut(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	act := openActivity(f, 1)
	for i, want := range []int{http.StatusAccepted, http.StatusGone, http.StatusGone, http.StatusGone} {
		if r := f.buy(act, string(rune('a'+i)), ""); r.status != want {
			t.Fatalf("buy %d: %d, want %d", i, r.status, want)
		}
	}
	r := f.call("GET", "/metrics", "", nil)
	for _, want := range []string{
		`seckill_reserve_total{outcome="sold_out"} 1`,
		`seckill_soldout_local_total 2`,
	} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
