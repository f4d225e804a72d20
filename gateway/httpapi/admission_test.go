package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
			f := newFixture(t, fixtureOpts{tweak: func(o *options) {
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
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.MaxBuysInFlight = 1 }})
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

// signalBody tells, on its first Read, that a handler started reading a
// buy's body: by then everything in front of the body read has run.
type signalBody struct {
	io.ReadCloser
	once  sync.Once
	first chan<- struct{}
}

func (b *signalBody) Read(p []byte) (int, error) {
	b.once.Do(func() { b.first <- struct{}{} })
	return b.ReadCloser.Read(p)
}

// slowBuy sends a buy's headers and the first bytes of its body on a raw
// connection, and holds the rest back until the connection closes.
func slowBuy(t *testing.T, f *fixture, act, user string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", f.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := `{"request_id":"slow-` + user + `"}`
	fmt.Fprintf(conn, "POST /api/v1/activities/%s/orders HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", act, f.token(user), len(body), body[:3])
	return conn
}

// Buys that send their bodies a byte at a time hold no slot of the bound on
// buys in flight: with MaxBuysInFlight slow bodies being read, an honest
// buy is still answered 202 (the bodies are read before the buy takes any
// of the gateway's capacity).
func TestSlowBodiesDoNotBlockAnHonestBuy(t *testing.T) {
	const limit = 2
	first := make(chan struct{}, limit)
	f := newFixture(t, fixtureOpts{tweak: func(o *options) {
		o.MaxBuysInFlight = limit
		o.BuyBodyTimeout = time.Minute // the slow bodies stay in flight for the whole test
	}})
	inner := f.ts.Config.Handler
	f.ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/orders") && r.ContentLength > 0 {
			r.Body = &signalBody{ReadCloser: r.Body, first: first}
		}
		inner.ServeHTTP(w, r)
	})
	act := openActivity(f, 5)
	for i := range limit {
		slowBuy(t, f, act, "slow-"+strconv.Itoa(i))
	}
	for range limit {
		select {
		case <-first:
		case <-time.After(10 * time.Second):
			t.Fatal("the slow buys never reached their body read")
		}
	}
	if r := f.buy(act, "honest", ""); r.status != http.StatusAccepted {
		t.Fatalf("honest buy while %d slow bodies are read: %d %s, want 202", limit, r.status, r.raw)
	}
	if v := metricValue(t, f, "seckill_admission_refused_total"); v != "0" {
		t.Fatalf("seckill_admission_refused_total = %s, want 0", v)
	}
}

// A buy whose body does not arrive within BuyBodyTimeout is answered 408
// and nothing is reserved for it.
func TestSlowBodyIsCutOff(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.BuyBodyTimeout = 50 * time.Millisecond }})
	act := openActivity(f, 5)
	conn := slowBuy(t, f, act, "slow")
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(raw), "did not arrive within") {
		t.Fatalf("stalled body: %d %s, want 408 naming the deadline", resp.StatusCode, raw)
	}
	if s := f.stats(act); num(s, "reserved") != 0 || num(s, "remaining") != 5 {
		t.Fatalf("stats %v after a stalled body, want nothing reserved", s)
	}
}
