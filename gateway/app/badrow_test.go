package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/testkit"
)

// lockedBuffer is a log sink shared by the app's goroutines and the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStartSkipsAnActivityThatCannotBeLoaded: a row no load into Redis
// accepts (an empty window, as an older gateway stored a sub-microsecond
// one) is planted in the database of an embedded process. The next start
// logs the activity with its reason and skips it instead of exiting, and
// serves the good activity: one bad row never bricks a restart.
func TestStartSkipsAnActivityThatCannotBeLoaded(t *testing.T) {
	dataDir := t.TempDir()
	first, c := startApp(t, map[string]string{"SECKILL_DATA_DIR": dataDir})
	good := c.createActivity(t, 5, time.Now().Add(-time.Second), time.Now().Add(time.Hour))

	at := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	bad := &order.Activity{
		Name: "empty window", Stock: 3, Available: 3, PriceCents: 100,
		StartsAt: at, EndsAt: at, PayTimeoutSeconds: 60,
	}
	if err := first.Store().DB().Create(bad).Error; err != nil {
		t.Fatalf("plant the bad row: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown of the first process: %v", err)
	}

	// The restart: same data directory, so the same SQLite file; the
	// embedded Redis starts empty, so every activity is loaded again.
	env := map[string]string{
		"SECKILL_HTTP_ADDR":    "127.0.0.1:0",
		"SECKILL_DATA_DIR":     dataDir,
		"SECKILL_JWT_SECRET":   testJWTSecret,
		"SECKILL_ADMIN_TOKEN":  testAdminToken,
		"SECKILL_DEMO":         "true",
		"SECKILL_REDIS_PREFIX": "sktest-" + testkit.RandomHex(4),
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	second, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)), AllInOne)
	if err != nil {
		t.Fatalf("restart with a bad row: %v", err)
	}
	if err := second.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := second.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})

	var skipped string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, fmt.Sprintf("activity_id=%d ", bad.ID)) && strings.Contains(line, "not after its start") {
			skipped = line
		}
	}
	if skipped == "" {
		t.Errorf("no log line names activity %d and why it was skipped:\n%s", bad.ID, logs.String())
	}

	c = newClient("http://" + second.Addr())
	var act activityResp
	if code := c.do(t, "GET", "/api/v1/activities/"+good, "", nil, &act); code != http.StatusOK || act.State != "active" || act.Remaining != 5 {
		t.Fatalf("GET the good activity: %d %+v; want 200, active, 5 remaining", code, act)
	}
	if code, id := c.buyOne(t, good, "buyer-1"); code != http.StatusAccepted || id == "" {
		t.Fatalf("buy from the good activity: %d %q; want 202", code, id)
	}
	c.waitDrained(t, good, 1)
}
