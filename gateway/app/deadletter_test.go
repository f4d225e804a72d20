package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/ordermsg"
)

type deadLettersResp struct {
	Topic    string `json:"topic"`
	Count    int    `json:"count"`
	Messages []struct {
		Seq      uint64 `json:"seq"`
		ID       string `json:"id"`
		Reason   string `json:"reason"`
		Attempts string `json:"attempts"`
		Payload  string `json:"payload"`
	} `json:"messages"`
}

// TestDeadLettersAreListedAndReplayed: an order message that can never be
// written (its activity does not exist) ends on orders.dlq after its
// attempts, where an operator sees it (admin route and gauge); once the
// cause is fixed (the activity exists, the buyer's reservation is there),
// a replay writes the order and empties the dead-letter topic. A malformed
// message stays a dead letter through its replay.
func TestDeadLettersAreListedAndReplayed(t *testing.T) {
	a, c := startApp(t, nil)
	ctx := context.Background()
	// The next activity id: the order names it before it exists.
	first := c.createActivity(t, 5, time.Now().Add(-time.Second), time.Now().Add(time.Hour))
	next := mustParseID(t, first) + 1
	msg := ordermsg.Message{OrderID: "dlq-order-1", ActivityID: next, UserID: "dlq-user", PriceCents: 1999, ReservedAt: time.Now().UTC()}
	payload, _ := json.Marshal(msg)
	if err := a.b.Queue.Publish(ctx, ordermsg.TopicOrders, &mq.Message{ID: msg.OrderID, Key: msg.UserID, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	if err := a.b.Queue.Publish(ctx, ordermsg.TopicOrders, &mq.Message{ID: "garbage", Payload: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}

	var dl deadLettersResp
	waitFor(t, "both messages on orders.dlq", func() bool {
		return c.do(t, "GET", "/api/v1/admin/dead-letters/orders", testAdminToken, nil, &dl) == http.StatusOK && dl.Count == 2
	})
	byID := map[string]uint64{}
	for _, m := range dl.Messages {
		byID[m.ID] = m.Seq
		if m.Attempts != "5" || m.Reason == "" {
			t.Errorf("dead letter %s: attempts %q reason %q; want 5 attempts and the handler's error", m.ID, m.Attempts, m.Reason)
		}
	}
	if len(byID) != 2 || !strings.Contains(dl.Messages[0].Reason+dl.Messages[1].Reason, "malformed") {
		t.Fatalf("dead letters %+v; want dlq-order-1 and garbage, one of them malformed", dl.Messages)
	}
	if g := metric(t, c, `seckill_dead_letters{topic="orders"}`); g != 2 {
		t.Errorf("seckill_dead_letters{topic=\"orders\"} = %v, want 2", g)
	}
	if code := c.do(t, "GET", "/api/v1/admin/dead-letters/nope", testAdminToken, nil, nil); code != http.StatusNotFound {
		t.Errorf("unknown topic: %d, want 404", code)
	}
	if code := c.do(t, "POST", "/api/v1/admin/dead-letters/orders/replay", testAdminToken, map[string]any{}, nil); code != http.StatusBadRequest {
		t.Errorf("replay without seqs or all: %d, want 400", code)
	}
	if code := c.do(t, "GET", "/api/v1/admin/dead-letters/orders", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("dead letters without the admin token: %d, want 401", code)
	}

	// The operator fixes the cause: the activity exists, and the buyer's
	// reservation is in Redis (as it was when the 202 was given).
	aid := mustParseID(t, c.createActivity(t, 5, time.Now().Add(-time.Second), time.Now().Add(time.Hour)))
	if aid != next {
		t.Fatalf("created activity %d, want %d", aid, next)
	}
	if _, err := a.b.Inventory.Reserve(ctx, aid, msg.UserID, "", msg.OrderID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.b.Inventory.Confirm(ctx, aid, msg.OrderID); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Replayed int `json:"replayed"`
	}
	if code := c.do(t, "POST", "/api/v1/admin/dead-letters/orders/replay", testAdminToken, map[string]any{"seqs": []uint64{byID[msg.OrderID]}}, &rep); code != http.StatusOK || rep.Replayed != 1 {
		t.Fatalf("replay: %d %+v, want 200 and 1 replayed", code, rep)
	}
	waitFor(t, "the replayed order written", func() bool {
		o, err := a.Store().GetOrder(ctx, msg.OrderID)
		return err == nil && o.State == order.StateCreated
	})
	if code := c.do(t, "GET", "/api/v1/admin/dead-letters/orders", testAdminToken, nil, &dl); code != http.StatusOK || dl.Count != 1 || dl.Messages[0].ID != "garbage" {
		t.Fatalf("after the replay: %d %+v; want only the malformed message left", code, dl)
	}
	// Replaying the malformed one sends it round again, to the same end.
	if code := c.do(t, "POST", "/api/v1/admin/dead-letters/orders/replay", testAdminToken, map[string]any{"all": true}, &rep); code != http.StatusOK || rep.Replayed != 1 {
		t.Fatalf("replay all: %d %+v", code, rep)
	}
	waitFor(t, "the malformed message back on orders.dlq", func() bool {
		return c.do(t, "GET", "/api/v1/admin/dead-letters/orders", testAdminToken, nil, &dl) == http.StatusOK && dl.Count == 1 && dl.Messages[0].Seq != byID["garbage"]
	})
	// The operator gives up on it: discarded, the topic and gauge are empty.
	if code := c.do(t, "POST", "/api/v1/admin/dead-letters/orders/discard", testAdminToken, map[string]any{"seqs": []uint64{}}, nil); code != http.StatusBadRequest {
		t.Errorf("discard of nothing: %d, want 400", code)
	}
	if code := c.do(t, "POST", "/api/v1/admin/dead-letters/orders/discard", testAdminToken, map[string]any{"seqs": []uint64{dl.Messages[0].Seq}}, nil); code != http.StatusOK {
		t.Fatalf("discard: %d, want 200", code)
	}
	if code := c.do(t, "GET", "/api/v1/admin/dead-letters/orders", testAdminToken, nil, &dl); code != http.StatusOK || dl.Count != 0 || len(dl.Messages) != 0 {
		t.Fatalf("after the discard: %d %+v; want an empty dead-letter topic", code, dl)
	}
	if g := metric(t, c, `seckill_dead_letters{topic="orders"}`); g != 0 {
		t.Errorf("seckill_dead_letters{topic=\"orders\"} = %v after the discard, want 0", g)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric reads one sample of /metrics by its exact name and labels.
func metric(t *testing.T, c *client, series string) float64 {
	t.Helper()
	resp, err := c.http.Get(c.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("%s not in /metrics", series)
	return 0
}
