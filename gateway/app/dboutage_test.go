package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/testkit"
)

// dbOutage is how long TestDatabaseOutageDuringSpike keeps the database
// away: well past the whole retry schedule of a permanent failure on the
// order subscription (MaxAttempts 10, backoff doubling from 100ms to its 5s
// cap: dead-lettered about 21s after the first attempt), so an outage
// reported as anything but transient would dead-letter every order
// accepted during it. SECKILL_TEST_DB_OUTAGE (a Go duration) changes it for
// a local run.
const dbOutage = 60 * time.Second

// gatewayActivityTTL is how long the gateway serves an activity row from its
// cache (httpapi's ActivityTTL, which the App leaves at its default): the
// buys of the first moments of an outage get 202 from it, later ones 503.
const gatewayActivityTTL = 2 * time.Second

func dbOutageLength(t *testing.T) time.Duration {
	v := os.Getenv("SECKILL_TEST_DB_OUTAGE")
	if v == "" {
		return dbOutage
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("SECKILL_TEST_DB_OUTAGE=%q: want a positive Go duration", v)
	}
	return d
}

// Phases of TestDatabaseOutageDuringSpike: a buy is tagged with the phase
// in which it started.
const (
	phaseBefore = iota // database up
	phaseCut           // database unreachable
	phaseAfter         // database back
)

var phaseNames = [...]string{"before the cut", "during the cut", "after the restore"}

// outageBuyer buys one unit per fresh user and keeps what was answered.
type outageBuyer struct {
	t        *testing.T
	c        *client
	activity string
	phase    atomic.Int32
	next     atomic.Int64

	mu       sync.Mutex
	accepted map[string]string // order id -> user
	phaseOf  map[string]int    // order id -> phase its buy started in
	statuses [3]map[int]int    // per phase: HTTP status -> count
}

func newOutageBuyer(t *testing.T, c *client, activity string) *outageBuyer {
	b := &outageBuyer{t: t, c: c, activity: activity, accepted: map[string]string{}, phaseOf: map[string]int{}}
	for i := range b.statuses {
		b.statuses[i] = map[int]int{}
	}
	return b
}

// buy makes one purchase for a new user: 202 (kept) or 503 BUSY are the
// only answers a sale with stock to spare may give, outage or not.
func (b *outageBuyer) buy() int {
	t := b.t
	phase := int(b.phase.Load())
	user := fmt.Sprintf("dbo-%05d", b.next.Add(1))
	var body struct {
		OrderID string `json:"order_id"`
		State   string `json:"state"`
		Code    string `json:"code"`
	}
	status := b.c.do(t, "POST", "/api/v1/activities/"+b.activity+"/orders", b.c.token(t, user), b.c.buyBody(t, b.activity, user, ""), &body)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.statuses[phase][status]++
	switch status {
	case http.StatusAccepted:
		if body.OrderID == "" || body.State != order.StateQueued {
			t.Errorf("%s: 202 for %s with order %q state %q", phaseNames[phase], user, body.OrderID, body.State)
			return status
		}
		if prev, ok := b.accepted[body.OrderID]; ok {
			t.Errorf("order %s answered to %s and %s", body.OrderID, prev, user)
		}
		b.accepted[body.OrderID] = user
		b.phaseOf[body.OrderID] = phase
	case http.StatusServiceUnavailable:
		if body.Code != "BUSY" {
			t.Errorf("%s: 503 with code %q, want BUSY", phaseNames[phase], body.Code)
		}
	default:
		t.Errorf("%s: buy by %s: status %d (%s), want 202 or 503 BUSY", phaseNames[phase], user, status, body.Code)
	}
	return status
}

// burst runs n buys over clients concurrent clients.
func (b *outageBuyer) burst(clients, n int) {
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				b.buy()
			}
		})
	}
	wg.Wait()
}

func (b *outageBuyer) acceptedIn(phase int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.statuses[phase][http.StatusAccepted]
}

// TestDatabaseOutageDuringSpike cuts the all-in-one App off its MariaDB in
// the middle of a spike, for a minute, and gives it back: orders accepted
// before and during the cut wait in the queue (the workers report the
// outage as transient), none is dead-lettered, and once the database is
// back every 202 order is created exactly once and the stock adds up. The
// database is reached through a TCP proxy the test cuts, as a client sees a
// stopped server: open connections closed, new ones refused. It runs on
// whichever queue the App is configured with by default.
func TestDatabaseOutageDuringSpike(t *testing.T) {
	outage := dbOutageLength(t)
	dsn, proxy := testkit.ProxyMySQL(t, testkit.MySQLDSN(t))
	redisURL := testkit.RedisURL(t)
	// The App runs with its default pool settings on purpose: they are
	// what brings it back by itself. The driver reports a connection cut
	// under a statement as bad and database/sql dials a new one; one cut
	// while idle fails the driver's liveness check before reuse and is
	// replaced the same way; a refused dial fails at once, and one into a
	// server that does not answer stops at sqldb.Open's dial timeout
	// (5s). ConnMaxLifetime only recycles healthy connections and plays no
	// part.
	a, c := startApp(t, map[string]string{"SECKILL_DB_DSN": dsn, "SECKILL_REDIS_URL": redisURL})

	// Whatever reaches the dead-letter topic is an accepted order lost.
	var (
		deadMu sync.Mutex
		dead   []string
	)
	err := a.b.Queue.Subscribe(t.Context(), mq.DeadLetterTopic(ordermsg.TopicOrders), mq.SubscribeOptions{Group: "test-dboutage-dlq"},
		func(_ context.Context, m *mq.Message) error {
			deadMu.Lock()
			defer deadMu.Unlock()
			dead = append(dead, fmt.Sprintf("%s (after %s attempts: %s)", m.ID, m.Headers[mq.HeaderDeadLetterAttempts], m.Headers[mq.HeaderDeadLetterReason]))
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}

	const stock = 2000 // more than every buy of the test: nothing sells out
	activity := c.createActivity(t, stock, time.Now().Add(-time.Second), time.Now().Add(time.Hour))
	b := newOutageBuyer(t, c, activity)

	// The gateway's cached activity row decides how long buys still get
	// 202 once the database is gone: let it expire, so that the first buy
	// below reads it afresh and the cut falls early in its lifetime.
	time.Sleep(gatewayActivityTTL + 200*time.Millisecond)
	if status := b.buy(); status != http.StatusAccepted {
		t.Fatalf("first buy: status %d", status)
	}
	refreshed := time.Now()

	// The spike: 20 clients; the database is cut while it runs, with
	// orders on their way into it.
	const spikeBuys = 400
	var spike sync.WaitGroup
	spike.Go(func() { b.burst(20, spikeBuys) })
	for b.acceptedIn(phaseBefore) < 100 && time.Since(refreshed) < 500*time.Millisecond {
		time.Sleep(time.Millisecond)
	}
	acceptsBefore := proxy.Accepted()
	proxy.Cut()
	cutAt := time.Now()
	b.phase.Store(phaseCut)
	t.Logf("database cut %s after the activity was read, %d buys accepted so far", cutAt.Sub(refreshed).Round(time.Millisecond), b.acceptedIn(phaseBefore))
	spike.Wait()

	// The rest of the outage: buyers keep coming, at a trickle.
	readyDuringCut := 0
	for time.Since(cutAt) < outage {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { b.buy() })
		}
		wg.Wait()
		if readyDuringCut == 0 {
			readyDuringCut = c.do(t, "GET", "/readyz", "", nil, nil)
		}
		time.Sleep(min(500*time.Millisecond, max(outage-time.Since(cutAt), 0)))
	}
	if readyDuringCut != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: status %d, want 503", readyDuringCut)
	}
	if n := b.acceptedIn(phaseCut); n == 0 {
		t.Fatalf("no buy got 202 during the cut (answers %v): the test did not put orders into the queue while the database was away", b.statuses[phaseCut])
	}
	deadMu.Lock()
	deadDuringCut := len(dead)
	deadMu.Unlock()

	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	restoredAt := time.Now()
	b.phase.Store(phaseAfter)
	t.Logf("database restored after %s; answers during the cut: %v", restoredAt.Sub(cutAt).Round(time.Millisecond), b.statuses[phaseCut])
	for deadline := time.Now().Add(30 * time.Second); c.do(t, "GET", "/readyz", "", nil, nil) != http.StatusOK; {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 200 within 30s of the database coming back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("ready %s after the restore", time.Since(restoredAt).Round(time.Millisecond))
	b.burst(20, 200)
	if got := b.statuses[phaseAfter]; got[http.StatusAccepted] != 200 {
		t.Errorf("after the restore: answers %v, want 200 x 202", got)
	}

	// Every 202 reaches the database, whenever it was given; a dead
	// letter means one never will.
	b.mu.Lock()
	accepted := len(b.accepted)
	b.mu.Unlock()
	var s statsResp
	for deadline := time.Now().Add(60 * time.Second); ; {
		s = c.stats(t, activity)
		if s.Queued == 0 && s.OrdersCreated+s.OrdersPaid+s.OrdersCancelled >= int64(accepted) {
			break
		}
		deadMu.Lock()
		n, first := len(dead), ""
		if n > 0 {
			first = dead[0]
		}
		deadMu.Unlock()
		if n > 0 {
			t.Fatalf("%d accepted orders dead-lettered (%d of them during the outage), want none; stats %+v; first: %s", n, deadDuringCut, s, first)
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained within 60s of the restore: %+v (want %d orders)", s, accepted)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("drained %s after the restore: %d accepted (%d before, %d during, %d after the cut); stats %+v",
		time.Since(restoredAt).Round(time.Millisecond), accepted, b.acceptedIn(phaseBefore), b.acceptedIn(phaseCut), b.acceptedIn(phaseAfter), s)
	if s.OrdersCreated != int64(accepted) || s.OrdersPaid != 0 || s.OrdersCancelled != 0 || s.Queued != 0 {
		t.Errorf("stats %+v: want %d created, none paid, cancelled or queued", s, accepted)
	}
	// Invariant 3, both sides: the 503s kept nothing, the 202s one each.
	if s.Remaining != s.Stock-(s.Queued+s.OrdersCreated+s.OrdersPaid) || s.DBAvailable != s.Stock-(s.OrdersCreated+s.OrdersPaid) {
		t.Errorf("conservation broken: %+v", s)
	}
	// Invariant 5, as the buyer sees it.
	for id, user := range b.accepted {
		var o struct {
			State  string `json:"state"`
			UserID string `json:"user_id"`
		}
		if code := c.do(t, "GET", "/api/v1/orders/"+id, c.token(t, user), nil, &o); code != http.StatusOK || o.State != order.StateCreated || o.UserID != user {
			t.Errorf("order %s of %s (accepted %s): status %d, %+v; want 200 created", id, user, phaseNames[b.phaseOf[id]], code, o)
		}
	}
	// And in the database: one row per 202, nothing else.
	var rows []order.Order
	if err := a.Store().DB().Where("activity_id = ?", mustParseID(t, activity)).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != accepted {
		t.Errorf("database holds %d orders, want %d", len(rows), accepted)
	}
	for _, o := range rows {
		if b.accepted[o.ID] != o.UserID || o.State != order.StateCreated {
			t.Errorf("row %s (user %s, state %s) does not match a 202 answer", o.ID, o.UserID, o.State)
		}
	}
	deadMu.Lock()
	defer deadMu.Unlock()
	if len(dead) != 0 {
		t.Errorf("%d order messages dead-lettered (%d of them during the outage), want none; first: %s", len(dead), deadDuringCut, dead[0])
	}
	if proxy.Accepted() <= acceptsBefore {
		t.Errorf("no database connection was opened after the restore (%d before the cut, %d now)", acceptsBefore, proxy.Accepted())
	}
}
