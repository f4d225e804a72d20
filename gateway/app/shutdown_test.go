package app

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/sqldb"
)

// TestShutdownKeepsEveryAcceptedOrder stops the process right after a burst
// of buys, with a deliberately slow order worker (one order per transaction)
// so the queue still holds orders: every 202 must be in the database once the
// process has stopped, because shutdown drains the queue first.
func TestShutdownKeepsEveryAcceptedOrder(t *testing.T) {
	dataDir := t.TempDir()
	a, c := startApp(t, map[string]string{
		"SECKILL_DATA_DIR": dataDir, "SECKILL_WORKER_CONCURRENCY": "1", "SECKILL_WORKER_BATCH": "1",
	})
	activity := c.createActivity(t, 300, time.Now().Add(-time.Second), time.Now().Add(time.Hour))
	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		wg       sync.WaitGroup
	)
	for g := range 30 {
		wg.Go(func() {
			for i := range 10 {
				user := fmt.Sprintf("u-%d-%d", g, i)
				var body struct {
					OrderID string `json:"order_id"`
				}
				if c.do(t, "POST", "/api/v1/activities/"+activity+"/orders", c.token(t, user), c.buyBody(t, activity, user, ""), &body) == http.StatusAccepted {
					mu.Lock()
					accepted[body.OrderID] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	depth := a.b.Queue.Depth()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	t.Logf("%d orders accepted, %d still queued when shutdown began", len(accepted), depth)
	if depth == 0 {
		t.Fatal("the one-order-per-transaction worker kept up with the buys: nothing was left to drain, so the test proved nothing")
	}
	if len(accepted) != 300 {
		t.Fatalf("%d buys accepted, want 300", len(accepted))
	}

	gdb, err := sqldb.Open(context.Background(), sqldb.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := gdb.DB()
	defer sqlDB.Close()
	var rows []order.Order
	if err := gdb.Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(accepted) {
		t.Fatalf("database holds %d orders after shutdown, want the %d accepted", len(rows), len(accepted))
	}
	for _, o := range rows {
		if !accepted[o.ID] || o.State != order.StateCreated {
			t.Errorf("row %s state %s was not an accepted order", o.ID, o.State)
		}
	}
}
