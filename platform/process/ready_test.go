package process_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flashsale/seckill/platform/process"
)

// seckill_backend_up has a series per check, 1 for the backends that
// answer and 0 for the ones that do not, read afresh at each scrape.
func TestBackendUpReportsEachCheck(t *testing.T) {
	redisDown := true
	checks := func() []process.Check {
		return []process.Check{
			{Name: "redis", Ping: func(context.Context) error {
				if redisDown {
					return errors.New("connection refused")
				}
				return nil
			}},
			{Name: "database", Ping: func(context.Context) error { return nil }},
		}
	}
	reg := prometheus.NewRegistry()
	if err := process.BackendUp(reg, time.Second, checks); err != nil {
		t.Fatal(err)
	}
	want := func(redis int) string {
		return `
# HELP seckill_backend_up Whether a backend of this process answered its readiness ping at the scrape (1) or not (0), by backend (redis, database, queue): what /readyz reports.
# TYPE seckill_backend_up gauge
seckill_backend_up{backend="database"} 1
seckill_backend_up{backend="redis"} ` + map[int]string{0: "0", 1: "1"}[redis] + "\n"
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(0)), "seckill_backend_up"); err != nil {
		t.Fatal(err)
	}
	redisDown = false
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(1)), "seckill_backend_up"); err != nil {
		t.Fatal(err)
	}
}

// A ping that does not answer within the timeout counts as down.
func TestBackendUpTimesOut(t *testing.T) {
	reg := prometheus.NewRegistry()
	hang := func() []process.Check {
		return []process.Check{{Name: "queue", Ping: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}}
	}
	if err := process.BackendUp(reg, 10*time.Millisecond, hang); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP seckill_backend_up Whether a backend of this process answered its readiness ping at the scrape (1) or not (0), by backend (redis, database, queue): what /readyz reports.
# TYPE seckill_backend_up gauge
seckill_backend_up{backend="queue"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "seckill_backend_up"); err != nil {
		t.Fatal(err)
	}
}
