package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/testkit"
)

// claimingPublisher is Kafka's "some records may have been written": the
// message reaches the queue and a worker claims its reservation at once,
// yet Publish reports an error.
type claimingPublisher struct {
	inv *inventory.Store
}

func (p *claimingPublisher) Publish(ctx context.Context, _ string, msgs ...*mq.Message) error {
	for _, m := range msgs {
		var om ordermsg.Message
		if err := json.Unmarshal(m.Payload, &om); err != nil {
			return err
		}
		if ok, err := p.inv.Claim(ctx, om.ActivityID, []string{om.OrderID}); err != nil || !ok[0] {
			return errors.Join(errors.New("claim failed"), err)
		}
	}
	return errors.New("kafka: some records may have been written")
}
func (*claimingPublisher) Close() error { return nil }

// TestFailedPublishKeepsAClaimedReservation: the publish reports an error
// but a worker already claimed the reservation. The buyer still gets 503
// BUSY, yet the release after it must keep the claimed unit: the stock is
// not given back and the same user cannot reserve a second unit (one user,
// one unit), and the gateway logs that the order went through. A retry
// with the same request_id finds the order.
func TestFailedPublishKeepsAClaimedReservation(t *testing.T) {
	backends := []struct {
		name string
		rdb  func(t *testing.T) redis.UniversalClient
	}{
		{"miniredis", func(*testing.T) redis.UniversalClient { return nil }},
		{"redis", func(t *testing.T) redis.UniversalClient {
			rdb, err := inventory.NewClient(testkit.RedisURL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rdb.Close() })
			return rdb
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			pub := &claimingPublisher{}
			logs := &syncBuffer{}
			f := newFixture(t, fixtureOpts{rdb: b.rdb(t), publisher: pub, tweak: func(o *options) {
				o.Logger = slog.New(slog.NewTextHandler(logs, nil))
			}})
			pub.inv = f.inv
			act := openActivity(f, 2)

			r := f.buy(act, "u1", "req-1")
			if r.status != http.StatusServiceUnavailable || r.body["code"] != "BUSY" {
				t.Fatalf("buy: %d %s; want 503 BUSY", r.status, r.raw)
			}
			s := f.stats(act)
			if num(s, "remaining") != 1 || num(s, "reserved") != 1 {
				t.Fatalf("after the failed publish of a claimed order: %v; want remaining 1, reserved 1 (the unit stays sold)", s)
			}
			if got := logs.String(); !strings.Contains(got, "went through") {
				t.Errorf("log does not say the order went through:\n%s", got)
			}
			// The user is still blocked: no second unit.
			if r := f.buy(act, "u1", "req-2"); r.status != http.StatusConflict || r.body["code"] != "ALREADY_PURCHASED" {
				t.Fatalf("u1 buying again: %d %s; want 409 ALREADY_PURCHASED", r.status, r.raw)
			}
			res, err := f.inv.Reserve(context.Background(), mustID(t, act), "u1", "", "0000000000000000009-"+act, time.Now())
			if err != nil || res.Outcome != inventory.AlreadyPurchased {
				t.Fatalf("u1 reserving again: %+v, %v; want AlreadyPurchased", res, err)
			}
			// The same request again finds its order.
			again := f.buy(act, "u1", "req-1")
			if again.status != http.StatusAccepted || again.body["order_id"] == "" {
				t.Fatalf("retry with req-1: %d %s; want 202 with the order", again.status, again.raw)
			}
			if !strings.Contains(logs.String(), again.body["order_id"].(string)) {
				t.Errorf("log does not name order %v:\n%s", again.body["order_id"], logs.String())
			}
			if s := f.stats(act); num(s, "remaining") != 1 || num(s, "reserved") != 1 {
				t.Fatalf("stats after the retries: %v; want remaining 1, reserved 1", s)
			}
		})
	}
}

// TestCreateActivityWindowAtStoredPrecision: the database keeps
// microseconds, so a window that only nanosecond digits keep open is empty
// as stored: it is refused with 400 VALIDATION naming ends_at, and nothing
// is created (such a row would fail every later load into Redis). A window
// that survives truncation is stored exactly as truncated.
func TestCreateActivityWindowAtStoredPrecision(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	create := func(starts, ends string) response {
		return f.call("POST", "/api/v1/admin/activities", adminToken, jsonBody(map[string]any{
			"name": "precise", "stock": 3, "price_cents": 100, "starts_at": starts, "ends_at": ends,
		}))
	}
	r := create("2026-12-01T00:00:00.0000001Z", "2026-12-01T00:00:00.0000002Z")
	if r.status != http.StatusBadRequest || r.body["code"] != "VALIDATION" || !strings.Contains(r.raw, "ends_at") {
		t.Fatalf("sub-microsecond window: %d %s; want 400 VALIDATION naming ends_at", r.status, r.raw)
	}
	acts, err := f.store.ListActivities(context.Background())
	if err != nil || len(acts) != 0 {
		t.Fatalf("activities after the refused create: %v, %v; want none", acts, err)
	}

	r = create("2026-12-01T00:00:00.0000019Z", "2026-12-01T00:00:00.0000021Z")
	if r.status != http.StatusCreated {
		t.Fatalf("one-microsecond window: %d %s; want 201", r.status, r.raw)
	}
	a, err := f.store.GetActivity(context.Background(), mustID(t, r.body["id"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	wantStart := time.Date(2026, 12, 1, 0, 0, 0, 1000, time.UTC)
	wantEnd := time.Date(2026, 12, 1, 0, 0, 0, 2000, time.UTC)
	if !a.StartsAt.Equal(wantStart) || !a.EndsAt.Equal(wantEnd) {
		t.Errorf("stored window %s .. %s; want %s .. %s", a.StartsAt.Format(time.RFC3339Nano), a.EndsAt.Format(time.RFC3339Nano),
			wantStart.Format(time.RFC3339Nano), wantEnd.Format(time.RFC3339Nano))
	}
	if r.body["starts_at"] != wantStart.Format(time.RFC3339Nano) || r.body["ends_at"] != wantEnd.Format(time.RFC3339Nano) {
		t.Errorf("answered window %v .. %v; want the stored one", r.body["starts_at"], r.body["ends_at"])
	}
}
