package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/flashsale/seckill/gateway/httpapi"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/platform/tracing"
	"github.com/flashsale/seckill/testkit"
)

// The buy handler in-process (no sockets), against /healthz through the same
// router as the reference: the ratio is what the buy path costs on top of
// gin itself. Reserve runs the real script on miniredis.
func BenchmarkHandler(b *testing.B) {
	b.Run("healthz", func(b *testing.B) {
		f := newBenchFixture(b, nil)
		serve(b, f, func(int64) *http.Request { return httptest.NewRequest("GET", "/healthz", nil) })
	})
	buyInStock := func(b *testing.B, f benchFixture) {
		act := openActivity(f.fixture, 10_000_000)
		serve(b, f, func(i int64) *http.Request {
			// Each request needs a fresh user (one unit per user); signing
			// the token is part of the cost, as a client's first buy.
			tok := f.token(fmt.Sprint("u", i))
			r := httptest.NewRequest("POST", "/api/v1/activities/"+act+"/orders", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		})
	}
	b.Run("buy-in-stock-miniredis", func(b *testing.B) { buyInStock(b, newBenchFixture(b, nil)) })
	// Tracing off as the app wires it without SECKILL_OTEL_ENDPOINT must
	// cost what the line above (no tracing field set) costs; on is what a
	// recorded buy costs (spans to a discarding exporter).
	b.Run("buy-in-stock-miniredis-tracing-off", func(b *testing.B) {
		off, err := tracing.Start(b.Context(), tracing.Config{})
		if err != nil {
			b.Fatal(err)
		}
		buyInStock(b, newTracedBenchFixture(b, nil, off))
	})
	b.Run("buy-in-stock-miniredis-tracing-on", func(b *testing.B) {
		buyInStock(b, newTracedBenchFixture(b, nil, recorder(b, tracetest.NewNoopExporter())))
	})
	b.Run("buy-in-stock-redis", func(b *testing.B) {
		url := testkit.RedisURL(b)
		rdb, err := inventory.NewClient(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rdb.Close() })
		buyInStock(b, newBenchFixture(b, rdb))
	})
	b.Run("buy-sold-out", func(b *testing.B) {
		f := newBenchFixture(b, nil)
		act := openActivity(f.fixture, 1)
		f.buy(act, "winner", "")
		f.buy(act, "loser", "") // sets the local flag
		tok := f.token("late")
		serve(b, f, func(int64) *http.Request {
			r := httptest.NewRequest("POST", "/api/v1/activities/"+act+"/orders", strings.NewReader(""))
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		})
	})
}

type benchFixture struct{ *fixture }

func newBenchFixture(b *testing.B, rdb redis.UniversalClient, tweaks ...func(*options)) benchFixture {
	f := newFixture(b, fixtureOpts{queueCapacity: 1 << 30, rdb: rdb, tweak: func(o *options) {
		o.Limits = httpapi.Limits{} // measure the path, not the limiters' rejections
		for _, tw := range tweaks {
			tw(o)
		}
	}})
	// Consume order messages without a database, so the queue never fills
	// and the benchmark measures the gateway alone.
	if err := f.broker.Subscribe(context.Background(), ordermsg.TopicOrders, mq.SubscribeOptions{Group: "sink", Concurrency: 4},
		func(context.Context, *mq.Message) error { return nil }); err != nil {
		b.Fatal(err)
	}
	return benchFixture{f}
}

func serve(b *testing.B, f benchFixture, req func(int64) *http.Request) {
	b.ReportAllocs()
	// Many requests in flight, like a spike: the buy path waits on Redis
	// round trips, so two goroutines would measure latency, not capacity.
	b.SetParallelism(16)
	b.ResetTimer()
	var i atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, req(i.Add(1)))
			if w.Code >= 500 || w.Code == http.StatusTooManyRequests {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
}
