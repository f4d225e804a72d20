package order

import (
	"encoding/json"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/order/ordermsg"
)

// outboxRow is one message waiting in the outbox table: an order event or
// an order's pay-deadline message (ordermsg.Event, ordermsg.Timeout). It
// commits in the transaction that changed the order, so neither the change
// nor its message can be lost between the write and a publish; the Relay
// publishes it afterwards.
type outboxRow struct {
	ID          int64 `gorm:"primaryKey;autoIncrement"`
	EventID     string
	Topic       string
	MsgKey      string
	Payload     []byte
	DeliverAt   *time.Time
	CreatedAt   time.Time
	PublishedAt *time.Time
	// Traceparent is the W3C traceparent of the span the row was written
	// in (the order's consumer span, the cancel, the payment request), nil
	// when that was not traced: the relay publishes the row in that trace.
	Traceparent *string
}

func (outboxRow) TableName() string { return "outbox" }

// timeoutID is the outbox id of an order's pay-deadline message.
func timeoutID(orderID string) string { return orderID + "/timeout" }

// newEvent builds the outbox row of an event about o.
func newEvent(o *Order, typ, reason, activityName string, now time.Time) outboxRow {
	e := ordermsg.Event{
		ID: ordermsg.EventID(o.ID, typ), Type: typ, OrderID: o.ID, ActivityID: o.ActivityID, ActivityName: activityName,
		UserID: o.UserID, PriceCents: o.PriceCents, PayDeadline: o.PayDeadline.UTC(), Reason: reason,
		RequestID: o.RequestID, TraceID: o.TraceID, OccurredAt: now.UTC(),
	}
	payload, _ := json.Marshal(e) // cannot fail: plain fields
	return outboxRow{EventID: e.ID, Topic: ordermsg.TopicOrderEvents, MsgKey: o.UserID, Payload: payload, CreatedAt: now}
}

// newTimeout builds the outbox row of o's pay-deadline message.
func newTimeout(o *Order, now time.Time) outboxRow {
	deadline := o.PayDeadline.UTC()
	payload, _ := json.Marshal(ordermsg.Timeout{OrderID: o.ID, ActivityID: o.ActivityID, PayDeadline: deadline})
	return outboxRow{
		EventID: timeoutID(o.ID), Topic: ordermsg.TopicOrderTimeouts, MsgKey: o.UserID,
		Payload: payload, DeliverAt: &deadline, CreatedAt: now,
	}
}

// tracedRows records sc, the trace the rows are written in, on each of them;
// nothing when sc is not valid.
func tracedRows(rows []outboxRow, sc trace.SpanContext) {
	tp := traceparentOf(sc)
	if tp == nil {
		return
	}
	for i := range rows {
		rows[i].Traceparent = tp
	}
}
