package ordermsg

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeMessage(t *testing.T) {
	valid := Message{OrderID: "o1", ActivityID: 7, UserID: "u1", RequestID: "r1", PriceCents: 999, ReservedAt: time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC), TraceID: "t1"}
	long := strings.Repeat("x", 65)
	tests := []struct {
		name string
		edit func(m *Message)
		want string // "" means valid; else the problem named
	}{
		{"valid", func(*Message) {}, ""},
		{"no order id", func(m *Message) { m.OrderID = "" }, "order_id is empty"},
		{"long order id", func(m *Message) { m.OrderID = long }, "order_id is longer than"},
		{"activity id 0", func(m *Message) { m.ActivityID = 0 }, "activity_id 0 is not positive"},
		{"no user id", func(m *Message) { m.UserID = "" }, "user_id is empty"},
		{"long user id", func(m *Message) { m.UserID = long }, "user_id is longer than"},
		{"long request id", func(m *Message) { m.RequestID = long }, "request_id is longer than"},
		{"long trace id", func(m *Message) { m.TraceID = long }, "trace_id is longer than"},
		{"negative price", func(m *Message) { m.PriceCents = -1 }, "price_cents -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid
			tt.edit(&m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeMessage(b)
			if tt.want == "" {
				if err != nil || got != m {
					t.Errorf("DecodeMessage = %+v, %v; want %+v", got, err, m)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeMessage = %v, want ErrMalformed naming %q", err, tt.want)
			}
		})
	}
	if _, err := DecodeMessage([]byte("order please")); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeMessage(not JSON) = %v, want ErrMalformed", err)
	}
}

func TestDecodeEvent(t *testing.T) {
	valid := Event{
		ID: EventID("o1", EventCancelled), Type: EventCancelled, OrderID: "o1", ActivityID: 7, ActivityName: "flash",
		UserID: "u1", PriceCents: 999, PayDeadline: time.Date(2026, 11, 11, 0, 15, 0, 0, time.UTC),
		Reason: ReasonPayTimeout, OccurredAt: time.Date(2026, 11, 11, 0, 15, 1, 0, time.UTC),
	}
	tests := []struct {
		name string
		edit func(e *Event)
		want string
	}{
		{"valid", func(*Event) {}, ""},
		{"no event id", func(e *Event) { e.ID = "" }, "without event_id"},
		{"unknown type", func(e *Event) { e.Type = "order.shipped" }, `unknown type "order.shipped"`},
		{"no order id", func(e *Event) { e.OrderID = "" }, "lacks order_id or user_id"},
		{"no user id", func(e *Event) { e.UserID = "" }, "lacks order_id or user_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid
			tt.edit(&e)
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeEvent(b)
			if tt.want == "" {
				if err != nil || got != e {
					t.Errorf("DecodeEvent = %+v, %v; want %+v", got, err, e)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeEvent = %v, want ErrMalformed naming %q", err, tt.want)
			}
		})
	}
	if _, err := DecodeEvent([]byte("{")); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeEvent(not JSON) = %v, want ErrMalformed", err)
	}
}

func TestEventID(t *testing.T) {
	if got := EventID("0412345678901234567-42", EventPaid); got != "0412345678901234567-42/order.paid" {
		t.Errorf("EventID = %q, want <order id>/<type>", got)
	}
}
