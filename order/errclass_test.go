package order

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/testkit"
)

// TestClassifyErrors pins the table the queue relies on: the permanent
// errors count toward MaxAttempts and end in the dead-letter topic; every
// other error, including one nobody listed, is mq.Transient and waited out.
// The original error stays reachable through the mark either way.
func TestClassifyErrors(t *testing.T) {
	permanent := []error{
		fmt.Errorf("mq message m: %w: order_id is empty", ordermsg.ErrMalformed),
		fmt.Errorf("order o: %w", fmt.Errorf("activity 7: %w", ErrNotFound)),
		fmt.Errorf("order o: %w: stored for activity 1 user u", ErrOrderIDClash),
		fmt.Errorf("order o: %w: user u of activity 1 already has order p", ErrUserHasOrder),
		fmt.Errorf("order o: take 1 units of activity 1: %w", ErrOutOfStock),
	}
	transient := []error{
		&gomysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock; try restarting transaction"},
		&gomysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded; try restarting transaction"},
		&gomysql.MySQLError{Number: 2006, Message: "MySQL server has gone away"},
		gomysql.ErrInvalidConn,
		driver.ErrBadConn,
		&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)},
		fmt.Errorf("look up stored orders: %w", context.DeadlineExceeded),
		fmt.Errorf("order o: %w", context.Canceled),
		fmt.Errorf("order o: claim reservation: %w", errors.New("redis: connection pool timeout")),
		fmt.Errorf("order o: %w", ErrWorkerClosed),
		errors.New("an error nobody foresaw"),
	}
	for _, err := range permanent {
		got := classify(err)
		if !PermanentWriteError(err) || mq.IsTransient(got) || got != err {
			t.Errorf("classify(%v) = %v (transient %v), want it permanent and unchanged", err, got, mq.IsTransient(got))
		}
	}
	for _, err := range transient {
		got := classify(err)
		if PermanentWriteError(err) || !mq.IsTransient(got) || !errors.Is(got, err) || got.Error() != err.Error() {
			t.Errorf("classify(%v) = %v (transient %v), want it transient, wrapping the original", err, got, mq.IsTransient(got))
		}
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

// TestWorkerErrorClasses drives a real worker into each failure and checks
// what Handle tells the queue.
func TestWorkerErrorClasses(t *testing.T) {
	ctx := context.Background()
	s := NewStore(backends()[0].open(t))
	a := newActivity(t, s, 10)
	empty := newActivity(t, s, 0)
	w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 1})
	for _, m := range []ordermsg.Message{message(a.ID, "taken", "alice"), message(a.ID, "bobs", "bob")} {
		if err := w.Handle(ctx, mqMessage(t, m)); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name      string
		claimer   Claimer
		msg       *mq.Message
		want      error // errors.Is target
		transient bool
	}{
		{"malformed", nil, &mq.Message{ID: "m", Payload: []byte("order please")}, ordermsg.ErrMalformed, false},
		{"unknown activity", nil, mqMessage(t, message(a.ID+100, "o-1", "u-1")), ErrNotFound, false},
		{"order id of another user", nil, mqMessage(t, message(a.ID, "taken", "mallory")), ErrOrderIDClash, false},
		{"second order of a user", nil, mqMessage(t, message(a.ID, "bobs-2", "bob")), ErrUserHasOrder, false},
		{"database out of stock", nil, mqMessage(t, message(empty.ID, "o-2", "u-2")), ErrOutOfStock, false},
		{"redis fails the claim", &fakeClaimer{err: errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")}, mqMessage(t, message(a.ID, "o-3", "u-3")), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.claimer
			if c == nil {
				c = &fakeClaimer{}
			}
			w, _ := testWorker(t, s, c, WorkerConfig{BatchSize: 1})
			err := w.Handle(ctx, tt.msg)
			if err == nil || mq.IsTransient(err) != tt.transient || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Handle = %v (transient %v); want an error wrapping %v, transient %v", err, mq.IsTransient(err), tt.want, tt.transient)
			}
		})
	}

	t.Run("worker closed", func(t *testing.T) {
		w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{})
		w.Close()
		err := w.Handle(ctx, mqMessage(t, message(a.ID, "late", "u-4")))
		if !errors.Is(err, ErrWorkerClosed) || !mq.IsTransient(err) {
			t.Fatalf("Handle after Close = %v, want transient ErrWorkerClosed", err)
		}
	})
	t.Run("subscription stopping", func(t *testing.T) {
		w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 10, Linger: long})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := w.Handle(cctx, mqMessage(t, message(a.ID, "stopping", "u-5")))
		if !errors.Is(err, context.Canceled) || !mq.IsTransient(err) {
			t.Fatalf("Handle with a cancelled context = %v, want transient context.Canceled", err)
		}
	})
	// None of the failures wrote anything. ("stopping" may be written: the
	// batcher can take it before Handle sees the cancelled context.)
	for _, id := range []string{"o-1", "o-2", "o-3", "bobs-2", "late"} {
		if _, err := s.GetOrder(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("order %s written: %v", id, err)
		}
	}
	if o, err := s.GetOrder(ctx, "taken"); err != nil || o.UserID != "alice" {
		t.Errorf("order taken: %+v, %v; want alice's, untouched", o, err)
	}
}

// TestWorkerDatabaseDownIsTransient: whatever shape the database's absence
// takes, the worker's answer is transient, so the queue waits it out; and
// once the database is back the same worker writes the order (the pool
// reconnects by itself).
func TestWorkerDatabaseDownIsTransient(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite closed", func(t *testing.T) {
		db := backends()[0].open(t)
		s := NewStore(db)
		a := newActivity(t, s, 10)
		// One worker has the activity cached, the other has not: both
		// fail on their first statement.
		warm, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 1})
		if err := warm.Handle(ctx, mqMessage(t, message(a.ID, "o-1", "u-1"))); err != nil {
			t.Fatal(err)
		}
		cold, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 1})
		sqlDB, err := db.DB()
		if err != nil {
			t.Fatal(err)
		}
		sqlDB.Close()
		for name, w := range map[string]*Worker{"warm": warm, "cold": cold} {
			err := w.Handle(ctx, mqMessage(t, message(a.ID, "o-2", "u-2")))
			if err == nil || !mq.IsTransient(err) {
				t.Errorf("%s worker on a closed database: Handle = %v, want a transient error", name, err)
			}
		}
	})
	t.Run("mysql unreachable", func(t *testing.T) {
		dsn, proxy := testkit.ProxyMySQL(t, testkit.MySQLDSN(t))
		db := openTestDB(t, sqldb.Config{DSN: dsn})
		s := NewStore(db)
		a := newActivity(t, s, 10)
		w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 1})
		if err := w.Handle(ctx, mqMessage(t, message(a.ID, "o-1", "u-1"))); err != nil {
			t.Fatal(err)
		}

		proxy.Cut()
		m := mqMessage(t, message(a.ID, "o-2", "u-2"))
		for i := range 3 { // open connections cut, then new ones refused
			err := w.Handle(ctx, m)
			if err == nil || !mq.IsTransient(err) {
				t.Fatalf("attempt %d while MariaDB is unreachable: Handle = %v, want a transient error", i+1, err)
			}
		}

		if err := proxy.Restore(); err != nil {
			t.Fatal(err)
		}
		if err := w.Handle(ctx, m); err != nil {
			t.Fatalf("redelivery after the database came back: %v", err)
		}
		if o, err := s.GetOrder(ctx, "o-2"); err != nil || o.State != StateCreated {
			t.Fatalf("order after the outage: %+v, %v", o, err)
		}
		if got := mustActivity(t, s, a.ID).Available; got != 8 {
			t.Errorf("available = %d, want 8", got)
		}
	})
}

// TestHandleTimeoutErrorClasses: the canceller's only permanent error is an
// inconsistent stock; a database or Redis away, and an early message with
// nowhere to reschedule it, are transient.
func TestHandleTimeoutErrorClasses(t *testing.T) {
	ctx := context.Background()
	payload := func(o *Order) *mq.Message {
		b, _ := json.Marshal(ordermsg.Timeout{OrderID: o.ID, ActivityID: o.ActivityID, PayDeadline: o.PayDeadline})
		return &mq.Message{ID: "t-" + o.ID, Key: o.UserID, Payload: b}
	}
	db := backends()[0].open(t)
	s := NewStore(db)
	a := newActivity(t, s, 10)
	os := writeOrders(t, s, a, "cls", 5)

	t.Run("redis down after the commit", func(t *testing.T) {
		l := NewLifecycle(s, &fakeReleaser{err: errors.New("redis: connection refused")}, LifecycleConfig{Now: at(os[0].PayDeadline)})
		if err := l.HandleTimeout(ctx, payload(os[0])); err == nil || !mq.IsTransient(err) {
			t.Fatalf("HandleTimeout = %v, want a transient error", err)
		}
	})
	t.Run("early without a publisher", func(t *testing.T) {
		l := NewLifecycle(s, &fakeReleaser{}, LifecycleConfig{Now: at(os[1].PayDeadline.Add(-time.Minute))})
		if err := l.HandleTimeout(ctx, payload(os[1])); !errors.Is(err, errNotDue) || !mq.IsTransient(err) {
			t.Fatalf("HandleTimeout = %v, want transient errNotDue", err)
		}
	})
	t.Run("reschedule refused", func(t *testing.T) {
		pub := &recordingPublisher{err: mq.ErrQueueFull}
		l := NewLifecycle(s, &fakeReleaser{}, LifecycleConfig{Now: at(os[1].PayDeadline.Add(-time.Minute)), Publisher: pub})
		if err := l.HandleTimeout(ctx, payload(os[1])); !errors.Is(err, mq.ErrQueueFull) || !mq.IsTransient(err) {
			t.Fatalf("HandleTimeout = %v, want transient ErrQueueFull", err)
		}
	})
	t.Run("stock inconsistent", func(t *testing.T) {
		// A manual edit gave the units back already: the cancel would
		// lift available above stock.
		if err := db.Model(&Activity{}).Where("id = ?", a.ID).Update("available", gorm.Expr("stock")).Error; err != nil {
			t.Fatal(err)
		}
		l := NewLifecycle(s, &fakeReleaser{}, LifecycleConfig{Now: at(os[2].PayDeadline)})
		err := l.HandleTimeout(ctx, payload(os[2]))
		if !errors.Is(err, ErrStockInconsistent) || mq.IsTransient(err) {
			t.Fatalf("HandleTimeout = %v, want permanent ErrStockInconsistent", err)
		}
	})
	t.Run("database closed", func(t *testing.T) {
		sqlDB, err := db.DB()
		if err != nil {
			t.Fatal(err)
		}
		sqlDB.Close()
		l := NewLifecycle(s, &fakeReleaser{}, LifecycleConfig{Now: at(os[3].PayDeadline)})
		if err := l.HandleTimeout(ctx, payload(os[3])); err == nil || !mq.IsTransient(err) {
			t.Fatalf("HandleTimeout = %v, want a transient error", err)
		}
	})
}
