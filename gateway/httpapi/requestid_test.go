package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order/ordermsg"
)

// Every answer carries an X-Request-ID: the client's when it is sane, a
// fresh one otherwise.
func TestRequestIDOnEveryAnswer(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	generated := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-z]+$`)
	tests := []struct {
		name, sent string
		keep       bool
	}{
		{"none sent", "", false},
		{"sane", "checkout-7f3a.b:2", true},
		{"spaces", "two words", false},
		{"too long", strings.Repeat("a", 65), false},
		{"header injection", "x\r\nSet-Cookie: a=b", false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.ts.URL+"/healthz", nil)
			if tt.sent != "" {
				req.Header["X-Request-Id"] = []string{tt.sent}
			}
			resp, err := f.ts.Client().Do(req)
			if err != nil {
				if tt.name == "header injection" {
					return // the client refused to send it: nothing to test
				}
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Request-ID")
			switch {
			case tt.keep && got != tt.sent:
				t.Fatalf("X-Request-ID %q, want the client's %q", got, tt.sent)
			case !tt.keep && !generated.MatchString(got):
				t.Fatalf("X-Request-ID %q, want a generated id", got)
			}
			if !tt.keep && seen[got] {
				t.Fatalf("generated id %q twice", got)
			}
			seen[got] = true
		})
	}
}

// A buy's request id travels in the order message (TraceID), which the
// worker stores on the order and the outbox copies into its events.
func TestRequestIDReachesTheOrderMessage(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	var mu sync.Mutex
	var got []ordermsg.Message
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	err := f.broker.Subscribe(ctx, ordermsg.TopicOrders, mq.SubscribeOptions{Group: "test"}, func(_ context.Context, m *mq.Message) error {
		var om ordermsg.Message
		if err := json.Unmarshal(m.Payload, &om); err != nil {
			return err
		}
		mu.Lock()
		got = append(got, om)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	act := openActivity(f, 5)
	req, _ := http.NewRequest(http.MethodPost, f.ts.URL+"/api/v1/activities/"+act+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+f.token("alice"))
	req.Header.Set("X-Request-ID", "trace-alice-1")
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Request-ID") != "trace-alice-1" {
		t.Fatalf("buy: %d, X-Request-ID %q", resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no order message")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got[0].TraceID != "trace-alice-1" || got[0].UserID != "alice" {
		t.Fatalf("order message %+v, want TraceID trace-alice-1", got[0])
	}
}

// A server-side failure is logged with the request id the client saw, so
// an operator can find it from a support ticket.
func TestFailuresAreLoggedWithTheRequestID(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.Logger = log }})
	act := openActivity(f, 5)
	f.redis.Close() // the buy gets 503
	r := f.buy(act, "bob", "")
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("buy with Redis down: %d %s", r.status, r.raw)
	}
	rid := r.header.Get("X-Request-ID")
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if rec["msg"] == "http" && rec["request_id"] == rid {
			found = true
			if rec["level"] != "WARN" || rec["status"] != float64(503) || rec["route"] != "/api/v1/activities/:id/orders" || rec["user"] != "bob" {
				t.Fatalf("access log %v", rec)
			}
		}
	}
	if !found {
		t.Fatalf("no access log line with request_id %q in:\n%s", rid, buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
