package service

import (
	"context"
	"strconv"
	"testing"
)

// The meta of an activity is lost while its reservations survive in Redis,
// one of them held by a buyer whose order the database and the queue do
// not know yet (its publish is in flight). The restore keeps that unit off
// sale: remaining + reservations never exceeds the stock.
func TestRestoreKeepsSurvivingReservationsOffSale(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		ctx := context.Background()
		e.buy("written")              // in the database: claimed
		e.reserve("in-flight", false) // pending: nobody knows it but Redis
		if err := e.rdb.Del(ctx, e.prefix+":{a"+itoa(e.act.ID)+"}:meta").Err(); err != nil {
			t.Fatal(err)
		}
		fresh, err := e.db.GetActivity(ctx, e.act.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := NewRestorer(Deps{DB: e.db, Inventory: e.inv, Logger: quietLog()})
		if err := r.Restore(ctx, fresh); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		st := e.stats()
		if st.Reserved != 2 || st.Remaining != 3 {
			t.Fatalf("after the restore: %+v; want 2 reservations and 3 remaining (stock 5)", st)
		}
		e.wantConserved()
	})
}

// Only meta is lost and the whole of the database's live orders survives
// as reservations: the restore rebuilds meta from them, bounded by the
// database.
func TestRestoreRebuildsLostMeta(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		ctx := context.Background()
		e.buy("a")
		e.buy("b")
		if err := e.rdb.Del(ctx, e.prefix+":{a"+itoa(e.act.ID)+"}:meta").Err(); err != nil {
			t.Fatal(err)
		}
		fresh, err := e.db.GetActivity(ctx, e.act.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := NewRestorer(Deps{DB: e.db, Inventory: e.inv, Logger: quietLog()})
		if err := r.Restore(ctx, fresh); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if st := e.stats(); st.Reserved != 2 || st.Remaining != 3 || st.Stock != 5 {
			t.Fatalf("after the restore: %+v; want stock 5, 2 reservations, 3 remaining", st)
		}
		e.wantConserved()
		// A second restore finds it loaded and changes nothing.
		if err := r.Restore(ctx, fresh); err != nil {
			t.Fatalf("Restore again: %v", err)
		}
		if st := e.stats(); st.Reserved != 2 || st.Remaining != 3 {
			t.Fatalf("after a second restore: %+v", st)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
