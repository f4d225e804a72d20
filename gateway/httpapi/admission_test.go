package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/gateway/httpapi"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
)

// gate holds the buys that reach it until open is closed; entered gets a
// value per buy held.
type gate struct {
	entered chan struct{}
	open    chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 16), open: make(chan struct{})} }

func (g *gate) hold() {
	g.entered <- struct{}{}
	<-g.open
}

// slowInventory reserves for real, then takes its time to answer.
type slowInventory struct {
	*inventory.Store
	g *gate
}

func (s slowInventory) Reserve(ctx context.Context, activityID int64, userID, requestID, orderID string, now time.Time) (inventory.ReserveResult, error) {
	res, err := s.Store.Reserve(ctx, activityID, userID, requestID, orderID, now)
	s.g.hold()
	return res, err
}

// slowPublisher takes its time to accept a message, then accepts it.
type slowPublisher struct {
	mq.Publisher
	g *gate
}

func (s slowPublisher) Publish(ctx context.Context, topic string, msgs ...*mq.Message) error {
	s.g.hold()
	return s.Publisher.Publish(ctx, topic, msgs...)
}

func metricValue(t *testing.T, f *fixture, name string) string {
	t.Helper()
	r := f.call("GET", "/metrics", "", nil)
	for _, line := range strings.Split(r.raw, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics lacks %s", name)
	return ""
}

// TestAdmissionRefusesPastTheLimit: with MaxBuysInFlight buys held by a
// slow backend, one more buy is answered 503 BUSY with Retry-After at
// once, nothing is reserved for it, and once a slot frees a buy is
// admitted again; the in-flight gauge goes back to 0.
func TestAdmissionRefusesPastTheLimit(t *testing.T) {
	const limit = 2
	for _, slow := range []string{"inventory", "publisher"} {
		t.Run("slow "+slow, func(t *testing.T) {
			g := newGate()
			var once sync.Once
			openGate := func() { once.Do(func() { close(g.open) }) }
			t.Cleanup(openGate) // never leave a handler blocked
			f := newFixture(t, fixtureOpts{tweak: func(o *httpapi.Config) {
				o.MaxBuysInFlight = limit
				o.PublishTimeout = 30 * time.Second // the held publish must not time out
				if slow == "inventory" {
					o.Inventory = slowInventory{Store: o.Inventory.(*inventory.Store), g: g}
				} else {
					o.Publisher = slowPublisher{Publisher: o.Publisher, g: g}
				}
			}})
			act := openActivity(f, 10)

			codes := make([]int, limit)
			var wg sync.WaitGroup
			for i := range limit {
				wg.Go(func() { codes[i] = f.buy(act, "held-"+strconv.Itoa(i), "req-held-"+strconv.Itoa(i)).status })
			}
			for range limit {
				select {
				case <-g.entered:
				case <-time.After(10 * time.Second):
					t.Fatal("the first buys never reached the slow backend")
				}
			}
			if v := metricValue(t, f, "seckill_buys_in_flight"); v != strconv.Itoa(limit) {
				t.Fatalf("seckill_buys_in_flight = %s with %d buys held, want %d", v, limit, limit)
			}
			before := f.stats(act)

			// Answered while every slot is still held: a buy that waited
			// for a slot would not return before the held ones finish.
			r := f.buy(act, "extra", "req-extra")
			if r.status != http.StatusServiceUnavailable || r.body["code"] != "BUSY" {
				t.Fatalf("buy past the limit: %d %s, want 503 BUSY", r.status, r.raw)
			}
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("Retry-After %q, want whole seconds >= 1", r.header.Get("Retry-After"))
			}
			if msg, _ := r.body["message"].(string); !strings.Contains(msg, strconv.Itoa(limit)+" buys in flight") {
				t.Fatalf("message %q does not name the limit", msg)
			}
			after := f.stats(act)
			for _, k := range []string{"remaining", "reserved"} {
				if num(after, k) != num(before, k) {
					t.Fatalf("stats %s: %d before the refused buy, %d after; nothing may be reserved for it", k, num(before, k), num(after, k))
				}
			}
			if v := metricValue(t, f, "seckill_admission_refused_total"); v != "1" {
				t.Fatalf("seckill_admission_refused_total = %s, want 1", v)
			}

			openGate()
			wg.Wait()
			for i, c := range codes {
				if c != http.StatusAccepted {
					t.Fatalf("held buy %d: %d, want 202 once the backend answers", i, c)
				}
			}
			if v := metricValue(t, f, "seckill_buys_in_flight"); v != "0" {
				t.Fatalf("seckill_buys_in_flight = %s after every buy was answered, want 0", v)
			}
			// The slots are free again: the refused buyer gets in, with
			// the same request_id.
			if r := f.buy(act, "extra", "req-extra"); r.status != http.StatusAccepted {
				t.Fatalf("retry after a slot freed: %d %s, want 202", r.status, r.raw)
			}
			if s := f.stats(act); num(s, "reserved") != limit+1 || num(s, "remaining") != 10-limit-1 {
				t.Fatalf("stats %v; want %d reserved", s, limit+1)
			}
			if v := metricValue(t, f, "seckill_buys_in_flight"); v != "0" {
				t.Fatalf("seckill_buys_in_flight = %s at rest, want 0", v)
			}
		})
	}
}

// Refused requests before admission (auth, rate limits) take no slot, and
// buys answered without Redis (not started) give theirs back.
func TestAdmissionSlotsComeBack(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *httpapi.Config) { o.MaxBuysInFlight = 1 }})
	act := openActivity(f, 5)
	later := f.createActivity(5, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
	for i := range 5 {
		if r := f.call("POST", "/api/v1/activities/"+act+"/orders", "", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated buy %d: %d", i, r.status)
		}
		if r := f.buy(later, "early-"+strconv.Itoa(i), ""); r.status != http.StatusForbidden {
			t.Fatalf("buy before the start %d: %d %s", i, r.status, r.raw)
		}
	}
	for i := range 3 {
		if r := f.buy(act, "u"+strconv.Itoa(i), ""); r.status != http.StatusAccepted {
			t.Fatalf("sequential buy %d with one slot: %d %s", i, r.status, r.raw)
		}
	}
	if v := metricValue(t, f, "seckill_admission_refused_total"); v != "0" {
		t.Fatalf("seckill_admission_refused_total = %s, want 0 (one buy at a time)", v)
	}
	if v := metricValue(t, f, "seckill_buys_in_flight"); v != "0" {
		t.Fatalf("seckill_buys_in_flight = %s, want 0", v)
	}
}
