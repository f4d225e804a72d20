package ledger_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/notifier/internal/dbtest"
	"github.com/flashsale/seckill/notifier/ledger"
	"github.com/flashsale/seckill/notifier/schema"
)

func entry(eventID, ch string) *ledger.Entry {
	return &ledger.Entry{
		EventID: eventID, Channel: ch, EventType: "order.created", OrderID: "o-" + eventID, UserID: "alice",
		Recipient: "alice@example.com", Payload: []byte(`{"event_id":"` + eventID + `"}`),
	}
}

// clock is a settable time source.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC).UnixMilli())
	return c
}
func (c *clock) now() time.Time                    { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration)           { c.ms.Add(d.Milliseconds()) }
func (c *clock) ledger(db *gorm.DB) *ledger.Ledger { return ledger.New(db, c.now) }

// The same (event, channel) inserts once; the second insert reports the
// existing row. Another channel of the same event is a row of its own.
func TestInsertDedupes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		l := newClock().ledger(db)
		ctx := t.Context()
		first := entry("e1", "mail")
		ins, _, err := l.Insert(ctx, first, time.Minute)
		if err != nil || !ins || first.ID == 0 {
			t.Fatalf("first insert: inserted=%v id=%d err=%v", ins, first.ID, err)
		}
		ins, existing, err := l.Insert(ctx, entry("e1", "mail"), time.Minute)
		if err != nil || ins {
			t.Fatalf("second insert: inserted=%v err=%v, want a duplicate", ins, err)
		}
		if existing == nil || existing.ID != first.ID || existing.Status != ledger.StatusPending {
			t.Fatalf("duplicate reports %+v, want row %d pending", existing, first.ID)
		}
		sms := entry("e1", "sms")
		if ins, _, err := l.Insert(ctx, sms, time.Minute); err != nil || !ins {
			t.Fatalf("sms insert: inserted=%v err=%v", ins, err)
		}
	})
}

// Many replicas inserting the same notification at once: exactly one wins.
func TestInsertRaceHasOneWinner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		l := ledger.New(db, nil)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				ins, _, err := l.Insert(t.Context(), entry("race", "mail"), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ins {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d inserts won, want exactly 1", wins.Load())
		}
	})
}

// A row is due only once its lease passed; a claim is a compare-and-swap,
// so of two replicas that read the same due row only one gets it; the
// outcome needs the claimed version.
func TestLeaseClaimAndOutcome(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		c := newClock()
		l := c.ledger(db)
		ctx := t.Context()
		e := entry("e2", "sms")
		if _, _, err := l.Insert(ctx, e, time.Minute); err != nil {
			t.Fatal(err)
		}
		if due, err := l.Due(ctx, 10); err != nil || len(due) != 0 {
			t.Fatalf("Due inside the lease: %d rows, err %v; want none", len(due), err)
		}
		c.advance(time.Minute + time.Millisecond)
		due, err := l.Due(ctx, 10)
		if err != nil || len(due) != 1 {
			t.Fatalf("Due after the lease: %d rows, err %v; want 1", len(due), err)
		}
		a, b := due[0], due[0]
		okA, err := l.Claim(ctx, &a, time.Minute)
		if err != nil || !okA {
			t.Fatalf("first claim: %v %v", okA, err)
		}
		if okB, err := l.Claim(ctx, &b, time.Minute); err != nil || okB {
			t.Fatalf("second claim of the same read: ok=%v err=%v, want refused", okB, err)
		}
		// The inserter's stale version can no longer settle the row.
		if ok, err := l.MarkSent(ctx, e); err != nil || ok {
			t.Fatalf("MarkSent with the lost lease: ok=%v err=%v, want refused", ok, err)
		}
		if ok, err := l.Reschedule(ctx, &a, c.now().Add(5*time.Second), "451 greylisted"); err != nil || !ok {
			t.Fatalf("Reschedule by the owner: ok=%v err=%v", ok, err)
		}
		got, _, _ := l.Get(ctx, "e2", "sms")
		if got.Attempts != 1 || got.LastError != "451 greylisted" || got.Status != ledger.StatusPending || !got.DueAt().Equal(c.now().Add(5*time.Second)) {
			t.Fatalf("after reschedule: %+v", got)
		}
		c.advance(5 * time.Second)
		due, _ = l.Due(ctx, 10)
		if len(due) != 1 {
			t.Fatalf("rescheduled row not due: %d", len(due))
		}
		claimed := due[0]
		if ok, _ := l.Claim(ctx, &claimed, time.Minute); !ok {
			t.Fatal("claim of the rescheduled row refused")
		}
		if ok, err := l.MarkSent(ctx, &claimed); err != nil || !ok {
			t.Fatalf("MarkSent: %v %v", ok, err)
		}
		got, _, _ = l.Get(ctx, "e2", "sms")
		if got.Status != ledger.StatusSent || got.Attempts != 2 || got.SentAt == nil || got.LastError != "" {
			t.Fatalf("after MarkSent: %+v", got)
		}
		c.advance(time.Hour)
		if due, _ := l.Due(ctx, 10); len(due) != 0 {
			t.Fatalf("a sent row is due again: %+v", due)
		}
	})
}

// Dead-lettering keeps the reason (truncated to the column, on a rune
// boundary); Release gives a row back without counting an attempt.
func TestDeadLetterAndRelease(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		c := newClock()
		l := c.ledger(db)
		ctx := t.Context()
		e := entry("e3", "mail")
		if _, _, err := l.Insert(ctx, e, time.Minute); err != nil {
			t.Fatal(err)
		}
		if ok, err := l.Release(ctx, e, c.now()); err != nil || !ok {
			t.Fatalf("Release: %v %v", ok, err)
		}
		if due, _ := l.Due(ctx, 10); len(due) != 1 || due[0].Attempts != 0 {
			t.Fatalf("released row: %+v, want due with 0 attempts", due)
		}
		long := "550 " + strings.Repeat("ü", 800)
		if ok, err := l.MarkDeadLettered(ctx, e, long); err != nil || !ok {
			t.Fatalf("MarkDeadLettered: %v %v", ok, err)
		}
		got, _, _ := l.Get(ctx, "e3", "mail")
		if got.Status != ledger.StatusDeadLettered || got.Attempts != 1 || !strings.HasPrefix(got.LastError, "550 ü") || len(got.LastError) > 1000 {
			t.Fatalf("dead-lettered row: status %s attempts %d reason %d bytes", got.Status, got.Attempts, len(got.LastError))
		}
		if !strings.HasSuffix(got.LastError, "ü...") {
			t.Errorf("truncated reason ends %q, want a whole rune then ...", got.LastError[len(got.LastError)-8:])
		}
		c.advance(time.Hour)
		if due, _ := l.Due(ctx, 10); len(due) != 0 {
			t.Fatal("a dead-lettered row is due")
		}
	})
}

// Backlog counts pending rows per channel; Purge deletes old sent rows only.
func TestBacklogAndPurge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		c := newClock()
		l := c.ledger(db)
		ctx := t.Context()
		for i := range 5 {
			e := entry(fmt.Sprint("p", i), "mail")
			if _, _, err := l.Insert(ctx, e, 0); err != nil {
				t.Fatal(err)
			}
			switch i {
			case 0, 1:
				if ok, err := l.MarkSent(ctx, e); !ok || err != nil {
					t.Fatal(ok, err)
				}
			case 2:
				if ok, err := l.MarkDeadLettered(ctx, e, "550"); !ok || err != nil {
					t.Fatal(ok, err)
				}
			}
		}
		if _, _, err := l.Insert(ctx, entry("p9", "sms"), 0); err != nil {
			t.Fatal(err)
		}
		b, err := l.Backlog(ctx)
		if err != nil || b["mail"] != 2 || b["sms"] != 1 {
			t.Fatalf("Backlog = %v, %v; want mail 2, sms 1", b, err)
		}
		if n, err := l.Purge(ctx, c.now().Add(-time.Hour), 100); err != nil || n != 0 {
			t.Fatalf("Purge of nothing old: %d, %v", n, err)
		}
		n, err := l.Purge(ctx, c.now().Add(time.Hour), 100)
		if err != nil || n != 2 {
			t.Fatalf("Purge: %d, %v; want the 2 sent rows", n, err)
		}
		for _, id := range []string{"p2", "p3", "p4"} {
			if _, found, _ := l.Get(ctx, id, "mail"); !found {
				t.Errorf("%s was purged: only sent rows go", id)
			}
		}
	})
}

// Migrations are idempotent and keep their own history table; a changed,
// applied migration stops the start.
func TestMigrateTwiceAndDetectsChange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		if err := schema.Migrate(t.Context(), db); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		var n int64
		if err := db.Table("notifier_schema_migrations").Count(&n).Error; err != nil || n != 1 {
			t.Fatalf("notifier_schema_migrations has %d rows (%v), want 1", n, err)
		}
		if err := db.Exec("UPDATE notifier_schema_migrations SET checksum = 'x'").Error; err != nil {
			t.Fatal(err)
		}
		if err := schema.Migrate(t.Context(), db); err == nil || !strings.Contains(err.Error(), "0001_notifier.sql") {
			t.Fatalf("Migrate after a changed checksum: %v, want an error naming the file", err)
		}
	})
}
