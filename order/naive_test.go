package order

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/order/ordermsg"
	"gorm.io/gorm"
)

func naiveBuy(aid int64, user, requestID, orderID string) NaiveBuy {
	return NaiveBuy{ActivityID: aid, UserID: user, RequestID: requestID, OrderID: orderID, TraceID: "t-" + orderID, Now: time.Now()}
}

func TestBuyNaiveSellsEachUnitOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		const stock, users = 5, 40
		a := newActivity(t, s, stock)

		errs := make([]error, users)
		var wg sync.WaitGroup
		for i := range users {
			wg.Go(func() {
				_, _, errs[i] = s.BuyNaive(ctx, naiveBuy(a.ID, fmt.Sprintf("u%02d", i), "r", fmt.Sprintf("o%02d", i)))
			})
		}
		wg.Wait()
		sold := 0
		for i, err := range errs {
			switch {
			case err == nil:
				sold++
			case !errors.Is(err, ErrSoldOut):
				t.Errorf("user %d: %v, want nil or ErrSoldOut", i, err)
			}
		}
		if sold != stock {
			t.Fatalf("%d buys succeeded, want exactly %d", sold, stock)
		}
		got := mustActivity(t, s, a.ID)
		if got.Available != 0 || got.Version != stock {
			t.Errorf("activity available=%d version=%d, want 0 and %d", got.Available, got.Version, stock)
		}
		snap, err := s.Snapshot(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Created != stock || countOrders(t, s, a.ID) != stock {
			t.Errorf("%d created orders, %d rows; want %d of each", snap.Created, countOrders(t, s, a.ID), stock)
		}
	})
}

func TestBuyNaiveOneOrderPerUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		a := newActivity(t, s, 10)

		first, existing, err := s.BuyNaive(ctx, naiveBuy(a.ID, "alice", "click-1", "o1"))
		if err != nil || existing || first.State != StateCreated || first.ID != "o1" {
			t.Fatalf("first buy = %+v, existing=%v, %v; want new created order o1", first, existing, err)
		}
		if want := first.CreatedAt.Add(900 * time.Second); !first.PayDeadline.Equal(want) {
			t.Errorf("pay deadline %s, want created_at + pay_timeout_seconds = %s", first.PayDeadline, want)
		}
		// The double click: same request_id, same order, no second unit.
		again, existing, err := s.BuyNaive(ctx, naiveBuy(a.ID, "alice", "click-1", "o2"))
		if err != nil || !existing || again.ID != "o1" {
			t.Errorf("same request_id again = %+v, existing=%v, %v; want existing order o1", again, existing, err)
		}
		// Another request of the same user, concurrent or not: refused.
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				_, _, errs[i] = s.BuyNaive(ctx, naiveBuy(a.ID, "alice", fmt.Sprintf("other-%d", i), fmt.Sprintf("x%d", i)))
			})
		}
		wg.Wait()
		for i, err := range errs {
			if !errors.Is(err, ErrUserHasOrder) {
				t.Errorf("other request %d of the same user: %v, want ErrUserHasOrder", i, err)
			}
		}
		// Without a request_id a repeat is a new request, so refused too.
		if _, _, err := s.BuyNaive(ctx, naiveBuy(a.ID, "alice", "", "o3")); !errors.Is(err, ErrUserHasOrder) {
			t.Errorf("repeat without request_id: %v, want ErrUserHasOrder", err)
		}
		// Its outbox rows committed with it, once: the created event and
		// the pay-deadline message.
		var outbox []outboxRow
		if err := s.DB().Order("id").Find(&outbox).Error; err != nil {
			t.Fatal(err)
		}
		if len(outbox) != 2 || outbox[0].EventID != ordermsg.EventID("o1", ordermsg.EventCreated) || outbox[1].EventID != timeoutID("o1") ||
			outbox[1].DeliverAt == nil || !outbox[1].DeliverAt.Equal(first.PayDeadline) {
			t.Errorf("outbox = %+v; want the created event and the timeout at the pay deadline of o1, once", outbox)
		}
		if got := mustActivity(t, s, a.ID); got.Available != 9 || got.Version != 1 {
			t.Errorf("available=%d version=%d, want one unit taken once (9, 1)", got.Available, got.Version)
		}
		// Once the order is cancelled (and its unit returned), the user
		// may buy again.
		if err := s.DB().Model(&Order{}).Where("id = ?", "o1").Update("state", StateCancelled).Error; err != nil {
			t.Fatal(err)
		}
		if o, existing, err := s.BuyNaive(ctx, naiveBuy(a.ID, "alice", "click-1", "o4")); err != nil || existing || o.ID != "o4" {
			t.Errorf("buy after cancellation = %+v, existing=%v, %v; want new order o4", o, existing, err)
		}
	})
}

func TestBuyNaiveRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		now := time.Now().UTC()
		mk := func(starts, ends time.Time) *Activity {
			a := &Activity{Name: "w", Stock: 3, PriceCents: 1, StartsAt: starts, EndsAt: ends, PayTimeoutSeconds: 60}
			if err := s.CreateActivity(ctx, a); err != nil {
				t.Fatal(err)
			}
			return a
		}
		upcoming := mk(now.Add(time.Hour), now.Add(2*time.Hour))
		ended := mk(now.Add(-2*time.Hour), now.Add(-time.Hour))
		open := mk(now.Add(-time.Hour), now.Add(time.Hour))
		for _, tc := range []struct {
			name string
			buy  NaiveBuy
			want error
		}{
			{"not started", naiveBuy(upcoming.ID, "u", "", "o1"), ErrNotStarted},
			{"ended", naiveBuy(ended.ID, "u", "", "o2"), ErrEnded},
			{"unknown activity", naiveBuy(open.ID+100, "u", "", "o3"), ErrNotFound},
			{"no order id", naiveBuy(open.ID, "u", "", ""), nil},
			{"no user", naiveBuy(open.ID, "", "", "o4"), nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				o, _, err := s.BuyNaive(ctx, tc.buy)
				if err == nil || o != nil {
					t.Fatalf("BuyNaive = %+v, %v; want an error", o, err)
				}
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Errorf("error %v, want %v", err, tc.want)
				}
			})
		}
		for _, a := range []*Activity{upcoming, ended, open} {
			if got := mustActivity(t, s, a.ID); got.Available != 3 || got.Version != 0 || countOrders(t, s, a.ID) != 0 {
				t.Errorf("activity %d changed by a refused buy: available=%d version=%d orders=%d", a.ID, got.Available, got.Version, countOrders(t, s, a.ID))
			}
		}
	})
}
