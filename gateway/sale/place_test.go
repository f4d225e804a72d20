package sale_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/orderid"
)

// The buy as a use case, without a router: the sale on the real Lua
// scripts (miniredis), with its other backends in memory.

// activities is the database side: activity rows in a map.
type activities struct {
	mu   sync.Mutex
	rows map[int64]order.Activity
}

func (s *activities) GetActivity(_ context.Context, id int64) (*order.Activity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.rows[id]
	if !ok {
		return nil, fmt.Errorf("activity %d: %w", id, order.ErrNotFound)
	}
	return &a, nil
}
func (s *activities) CreateActivity(context.Context, *order.Activity) error {
	return errors.New("unused")
}
func (s *activities) GetOrder(context.Context, string) (*order.Order, error) {
	return nil, order.ErrNotFound
}
func (s *activities) Snapshot(context.Context, int64) (*order.Snapshot, error) {
	return nil, errors.New("unused")
}
func (s *activities) ListActivities(context.Context) ([]order.Activity, error) { return nil, nil }

// loader restores an activity from its row alone.
type loader struct{ inv *inventory.Store }

func (l loader) Restore(ctx context.Context, a *order.Activity) error {
	_, err := l.inv.Load(ctx, inventory.Activity{ID: a.ID, Stock: a.Stock, StartsAt: a.StartsAt, EndsAt: a.EndsAt}, a.Available, nil)
	return err
}

type noPayer struct{}

func (noPayer) Pay(context.Context, string, string) (*order.Order, error) {
	return nil, order.ErrNotFound
}

// countingInventory counts the reserves that reach Redis and lets a test
// act between Redis's answer and the sale's reading of it.
type countingInventory struct {
	*inventory.Store
	reserves atomic.Int64
	after    func(user string, res inventory.ReserveResult)
}

func (c *countingInventory) Reserve(ctx context.Context, activityID int64, userID, requestID, orderID string, now time.Time) (inventory.ReserveResult, error) {
	c.reserves.Add(1)
	res, err := c.Store.Reserve(ctx, activityID, userID, requestID, orderID, now)
	if c.after != nil {
		c.after(userID, res)
	}
	return res, err
}

// publisher accepts messages, or fails with err.
type publisher struct {
	mu   sync.Mutex
	msgs []*mq.Message
	err  error
}

func (p *publisher) Publish(_ context.Context, _ string, msgs ...*mq.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}
func (p *publisher) Close() error { return nil }

type saleFixture struct {
	sale  *sale.Service
	inv   *countingInventory
	store *inventory.Store
	pub   *publisher
	now   *atomic.Int64 // the sale's clock, unix nanoseconds
}

const activityID = 7

func newSale(t *testing.T, stock int64, cfg sale.Config) *saleFixture {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := inventory.New(rdb, inventory.Options{Prefix: "t"})
	f := &saleFixture{inv: &countingInventory{Store: store}, store: store, pub: &publisher{}, now: new(atomic.Int64)}
	start := time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)
	f.now.Store(start.Add(time.Second).UnixNano())
	acts := &activities{rows: map[int64]order.Activity{activityID: {
		ID: activityID, Name: "phone", Stock: stock, Available: stock, PriceCents: 100,
		StartsAt: start, EndsAt: start.Add(time.Hour), PayTimeoutSeconds: 60,
	}}}
	ids, err := orderid.New(1)
	if err != nil {
		t.Fatal(err)
	}
	f.sale, err = sale.New(sale.Deps{
		Inventory: f.inv, Store: acts, Publisher: f.pub, Payer: noPayer{}, Restorer: loader{store}, IDs: ids,
		Tokens: auth.NewTokens([]byte("0123456789abcdef0123456789abcdef")), BuyTokens: auth.NewBuyTokens([]byte("0123456789abcdef0123456789abcdef"), 0),
		Now: func() time.Time { return time.Unix(0, f.now.Load()) },
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *saleFixture) place(t *testing.T, user, requestID string) (sale.Placed, error) {
	t.Helper()
	return f.sale.Place(context.Background(), sale.Purchase{ActivityID: activityID, UserID: user, RequestID: requestID})
}

func (f *saleFixture) advance(d time.Duration) { f.now.Add(int64(d)) }

// Once Redis said sold out, buys are answered from memory for the flag's
// TTL; then exactly one buy probes Redis again.
func TestPlaceAnswersSoldOutFromMemoryUntilTheFlagExpires(t *testing.T) {
	f := newSale(t, 1, sale.Config{SoldOutTTL: time.Second})
	if _, err := f.place(t, "winner", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.place(t, "first-loser", ""); !errors.Is(err, sale.ErrSoldOut) {
		t.Fatalf("first loser: %v, want sold out", err)
	}
	before := f.inv.reserves.Load()
	for i := range 10 {
		if _, err := f.place(t, fmt.Sprint("loser-", i), ""); !errors.Is(err, sale.ErrSoldOut) {
			t.Fatalf("loser %d: %v, want sold out", i, err)
		}
	}
	if n := f.inv.reserves.Load() - before; n != 0 {
		t.Fatalf("%d reserves reached Redis while the flag held, want 0", n)
	}
	f.advance(time.Second)
	for i := range 10 {
		_, _ = f.place(t, fmt.Sprint("after-", i), "")
	}
	if n := f.inv.reserves.Load() - before; n != 1 {
		t.Fatalf("%d reserves reached Redis after the flag expired, want exactly 1 probe", n)
	}
}

// A SoldOut answer that the sale reads after a release was announced does
// not set the flag (nor read holders): the freed unit sells at once.
func TestPlaceIgnoresASoldOutAnswerOlderThanARelease(t *testing.T) {
	f := newSale(t, 1, sale.Config{SoldOutTTL: time.Hour})
	won, err := f.place(t, "winner", "w")
	if err != nil {
		t.Fatal(err)
	}
	f.inv.after = func(user string, res inventory.ReserveResult) {
		if user != "loser" || res.Outcome != inventory.SoldOut {
			return
		}
		if _, err := f.store.Release(context.Background(), activityID, won.OrderID); err != nil {
			t.Error(err)
		}
		f.sale.ClearSoldOut(activityID)
	}
	if _, err := f.place(t, "loser", "l"); !errors.Is(err, sale.ErrSoldOut) {
		t.Fatalf("loser: %v, want sold out (Redis said so before the release)", err)
	}
	if _, err := f.place(t, "late", ""); err != nil {
		t.Fatalf("buy after the release: %v, want the freed unit", err)
	}
}

// With the holder snapshot loaded, a request_id buy of a user who holds
// nothing is answered from memory, and a holder's retry reaches Redis and
// gets their order back.
func TestPlaceHolderSnapshotAnswersNonHoldersFromMemory(t *testing.T) {
	f := newSale(t, 2, sale.Config{SoldOutTTL: time.Hour})
	var won sale.Placed
	for _, u := range []string{"a", "b"} {
		p, err := f.place(t, u, "req-"+u)
		if err != nil {
			t.Fatal(err)
		}
		won = p
	}
	if _, err := f.place(t, "c", "req-c"); !errors.Is(err, sale.ErrSoldOut) {
		t.Fatalf("c: %v, want sold out", err)
	}
	// The snapshot is read in the background after that answer: wait
	// until a non-holder is answered without Redis.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		before := f.inv.reserves.Load()
		if _, err := f.place(t, fmt.Sprint("d", i), "req"); !errors.Is(err, sale.ErrSoldOut) {
			t.Fatalf("non-holder: %v, want sold out", err)
		}
		if f.inv.reserves.Load() == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the holder snapshot never answered a non-holder")
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := f.inv.reserves.Load()
	again, err := f.place(t, "b", "req-b")
	if err != nil || again.OrderID != won.OrderID {
		t.Fatalf("holder's retry: %+v %v, want their order %s", again, err, won.OrderID)
	}
	if f.inv.reserves.Load() != before+1 {
		t.Fatal("a holder's retry must go to Redis")
	}
}

// A publish the queue refuses puts the unit back: the buyer is told busy,
// and the unit sells to the next buyer.
func TestPlaceReleasesWhenThePublishFails(t *testing.T) {
	f := newSale(t, 1, sale.Config{})
	f.pub.err = mq.ErrQueueFull
	_, err := f.place(t, "a", "")
	var se *sale.Error
	if !errors.As(err, &se) || se.Kind != sale.KindBusy {
		t.Fatalf("publish refused: %v, want busy", err)
	}
	if n, _, _ := f.store.Remaining(context.Background(), activityID); n != 1 {
		t.Fatalf("remaining %d after a refused publish, want the unit back", n)
	}
	f.pub.err = nil
	if _, err := f.place(t, "a", ""); err != nil {
		t.Fatalf("the same user again: %v", err)
	}
}

// Past MaxBuysInFlight, a buy is refused busy at once, with nothing
// reserved; buys answered from memory take no slot.
func TestPlaceRefusesPastTheBuysInFlight(t *testing.T) {
	f := newSale(t, 5, sale.Config{MaxBuysInFlight: 1})
	entered, release := make(chan struct{}), make(chan struct{})
	f.inv.after = func(user string, res inventory.ReserveResult) {
		if user == "held" && res.Outcome == inventory.Reserved {
			close(entered)
			<-release
		}
	}
	done := make(chan error, 1)
	go func() { _, err := f.place(t, "held", ""); done <- err }()
	<-entered
	_, err := f.place(t, "extra", "")
	var se *sale.Error
	if !errors.As(err, &se) || se.Kind != sale.KindBusy {
		t.Fatalf("buy past the bound: %v, want busy", err)
	}
	f.now.Store(time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC).UnixNano()) // before the start: answered from memory
	if _, err := f.place(t, "early", ""); !errors.Is(err, sale.ErrNotStarted) && !isKind(err, sale.KindNotStarted) {
		t.Fatalf("buy before the start with every slot taken: %v, want not started", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func isKind(err error, k sale.Kind) bool {
	var se *sale.Error
	return errors.As(err, &se) && se.Kind == k
}

// failingInventory's reserves fail with err.
type failingInventory struct {
	*countingInventory
	err error
}

func (f failingInventory) Reserve(context.Context, int64, string, string, string, time.Time) (inventory.ReserveResult, error) {
	return inventory.ReserveResult{}, f.err
}

// A failed reserve tells the buyer "nothing was reserved" only when the
// inventory knows it; when a unit may still be held, the answer says what
// to do instead.
func TestPlaceSaysNothingWasReservedOnlyWhenKnown(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		nothingHeld bool
	}{
		{"released", fmt.Errorf("reserve: %w", inventory.ErrUnavailable), true},
		{"maybe held", fmt.Errorf("reserve: %w", errors.Join(inventory.ErrUnavailable, inventory.ErrMaybeReserved)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSale(t, 1, sale.Config{})
			s, err := sale.New(sale.Deps{
				Inventory: failingInventory{f.inv, tc.err}, Store: &activities{rows: map[int64]order.Activity{activityID: {
					ID: activityID, Stock: 1, StartsAt: time.Now().Add(-time.Minute), EndsAt: time.Now().Add(time.Hour)}}},
				Publisher: f.pub, Payer: noPayer{}, Restorer: loader{f.store}, IDs: mustIDs(t),
				Tokens: auth.NewTokens([]byte("0123456789abcdef0123456789abcdef")), BuyTokens: auth.NewBuyTokens([]byte("0123456789abcdef0123456789abcdef"), 0),
			}, sale.Config{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Place(context.Background(), sale.Purchase{ActivityID: activityID, UserID: "u"})
			var se *sale.Error
			if !errors.As(err, &se) || se.Kind != sale.KindBusy {
				t.Fatalf("failed reserve: %v, want busy", err)
			}
			if said := strings.Contains(se.Message, "nothing was reserved"); said != tc.nothingHeld {
				t.Fatalf("message %q: says nothing was reserved = %v, want %v", se.Message, said, tc.nothingHeld)
			}
		})
	}
}

func mustIDs(t *testing.T) *orderid.Generator {
	ids, err := orderid.New(2)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// slowRestorer is a restore that takes until done is closed, as a restore
// after Redis lost its data reads a busy database: its callers wait until
// it ends or their context does.
type slowRestorer struct {
	done chan struct{}
	next loader
}

func (r slowRestorer) Restore(ctx context.Context, a *order.Activity) error {
	select {
	case <-r.done:
		return r.next.Restore(ctx, a)
	case <-ctx.Done():
		return fmt.Errorf("restore activity %d: %w", a.ID, ctx.Err())
	}
}

// Redis lost the activity and its restore is slow: a buy waits at most
// RestoreWait, then is told 503, nothing reserved, the stock being
// restored, instead of holding its connection for the whole restore (a
// load balancer that times such buys out takes the gateways out of
// rotation). Once the restore is done, buys go through.
func TestPlaceDoesNotWaitOutASlowRestore(t *testing.T) {
	f := newSale(t, 3, sale.Config{})
	restored := make(chan struct{})
	s, err := sale.New(sale.Deps{
		Inventory: f.inv, Store: &activities{rows: map[int64]order.Activity{activityID: {
			ID: activityID, Stock: 3, Available: 3, StartsAt: time.Now().Add(-time.Minute), EndsAt: time.Now().Add(time.Hour)}}},
		Publisher: f.pub, Payer: noPayer{}, Restorer: slowRestorer{done: restored, next: loader{f.store}}, IDs: mustIDs(t),
		Tokens: auth.NewTokens([]byte("0123456789abcdef0123456789abcdef")), BuyTokens: auth.NewBuyTokens([]byte("0123456789abcdef0123456789abcdef"), 0),
	}, sale.Config{RestoreWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Place(context.Background(), sale.Purchase{ActivityID: activityID, UserID: "early"})
	var se *sale.Error
	if !errors.As(err, &se) || se.Kind != sale.KindBusy || !strings.Contains(se.Message, "being restored") || !strings.Contains(se.Message, "nothing was reserved") {
		t.Fatalf("a buy during a slow restore: %v; want busy, saying the stock is being restored and nothing was reserved", err)
	}
	if n := f.inv.reserves.Load(); n != 1 {
		t.Errorf("%d reserves reached Redis; want the one that found the activity missing", n)
	}
	close(restored)
	if p, err := s.Place(context.Background(), sale.Purchase{ActivityID: activityID, UserID: "later"}); err != nil || p.OrderID == "" {
		t.Fatalf("a buy after the restore: %+v, %v; want an order", p, err)
	}
}
