package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/testkit"
)

// requirePrograms skips the test (fails it under CI=true) when an OS
// package the cluster needs is missing.
func requirePrograms(t *testing.T) {
	t.Helper()
	p := paths{}
	err := locatePrograms(context.Background(), &p, false, nil)
	var m *MissingError
	if errors.As(err, &m) {
		if testkit.InCI() {
			t.Fatalf("%v\nCI must install them: this cluster test must run in CI", err)
		}
		t.Skipf("skipping the cluster test: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// buildSeckill builds the three binaries the cluster runs from this
// checkout, as make build does, so the test never runs stale ones.
func buildSeckill(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bin")
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, b := range []struct{ name, pkg string }{
		{"seckill-gateway", "./gateway/cmd/seckill-gateway"},
		{"seckill-order-worker", "./order/cmd/seckill-order-worker"},
		{"seckill-notifier", "./notifier/cmd/seckill-notifier"},
	} {
		wg.Go(func() {
			_, errs[i] = goRun(context.Background(), root, []string{"CGO_ENABLED=0"}, "build", "-trimpath", "-o", filepath.Join(bin, b.name), b.pkg)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return bin
}

// freeBase finds a base port whose whole span is free.
func freeBase(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(400)*100
		var ports []Port
		for i := range PortSpan {
			ports = append(ports, Port{"p", base + i})
		}
		if portsFree(ports) == nil {
			return base
		}
	}
	t.Fatal("no free span of ports found")
	return 0
}

type testLog struct{ t *testing.T }

func (w testLog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestClusterInABox brings a real cluster up in demo mode, buys through
// nginx, kills a gateway and still buys, and stops it, leaving nothing.
func TestClusterInABox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 13 processes: not with -short")
	}
	requirePrograms(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	cfg := Config{
		Settings: Settings{BasePort: freeBase(t), Demo: true},
		Root:     root, Dir: filepath.Join(t.TempDir(), DefaultDirName), BinDir: buildSeckill(t, root),
		Log: testLog{t}, ExitWithCaller: true,
	}
	start := time.Now()
	c, err := Up(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up in %s", time.Since(start).Round(100*time.Millisecond))
	records := c.procs(Names()...)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Down(context.Background(), false)
		}
	})

	// Up again with the same settings: a no-op, the same processes.
	again, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("second Up: %v", err)
	}
	for _, p := range records {
		if q, _ := again.Process(p.Name); q.PID != p.PID {
			t.Errorf("second Up: %s is pid %d, was %d", p.Name, q.PID, p.PID)
		}
	}
	other := cfg
	other.Demo = false
	if _, err := Up(ctx, other); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Errorf("Up with other settings on a running cluster: %v, want a refusal", err)
	}

	if err := httpOK(ctx, c.URL()+"/readyz"); err != nil {
		t.Fatalf("front door: %v", err)
	}
	cl := api.New(c.URL(), api.Options{AdminToken: c.AdminToken(), Timeout: 10 * time.Second})
	defer cl.Close()
	act, err := cl.CreateActivity(ctx, api.ActivitySpec{
		Name: "cluster test", Stock: 5, PriceCents: 100, StartsAt: time.Now().Add(-time.Second),
		EndsAt: time.Now().Add(time.Hour), PayTimeoutSeconds: 600,
	})
	if err != nil {
		t.Fatal(err)
	}
	buy := func(user string) {
		t.Helper()
		tok, err := cl.Token(ctx, user) // the demo login, through nginx
		if err != nil {
			t.Fatal(err)
		}
		a := cl.Buy(ctx, act, tok, "req-"+user, "")
		if a.Status != http.StatusAccepted || a.OrderID == "" {
			t.Fatalf("buy of %s through nginx: %s %s %v %s", user, a.Outcome(), a.Message, a.Err, a.Body)
		}
		if err := pollUntil(ctx, func() error {
			o, a := cl.GetOrder(ctx, a.OrderID, tok)
			if o.State != "created" {
				return fmt.Errorf("order %s of %s: %s %q", o.OrderID, user, a.Outcome(), o.State)
			}
			return nil
		}); err != nil {
			t.Fatalf("the order never reached created: %v", err)
		}
	}
	buy("alice")

	// The notifier mailed alice (a demo contact) through the sink.
	if err := pollUntil(ctx, func() error {
		var in Inbox
		if err := getJSON(ctx, c.InboxURL(), &in); err != nil {
			return err
		}
		for _, m := range in.Messages {
			if slices.ContainsFunc(m.To, func(to string) bool { return strings.Contains(to, "alice") }) {
				return nil
			}
		}
		return fmt.Errorf("no mail to alice among %d", in.Total)
	}); err != nil {
		t.Errorf("mail: %v", err)
	}

	replicas, err := c.StreamReplicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(replicas) == 0 {
		t.Error("the cluster reports no streams")
	}
	for s, r := range replicas {
		if r != 3 {
			t.Errorf("stream %s has %d replicas, want 3 (SECKILL_NATS_REPLICAS=3)", s, r)
		}
	}

	// A gateway dies: nginx sends everything to the other one.
	if err := c.Kill(Gateway1); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := httpOK(ctx, c.URL()+"/readyz"); err != nil {
			t.Fatalf("front door with gateway-1 dead, request %d: %v", i, err)
		}
	}
	buy("bob")
	if err := c.Start(ctx, Gateway1); err != nil {
		t.Fatalf("restart gateway-1: %v", err)
	}
	if err := httpOK(ctx, c.HTTPURL(Gateway1)+"/readyz"); err != nil {
		t.Fatal(err)
	}

	// Up on a cluster with a process down starts that process.
	if err := c.Kill(Worker2); err != nil {
		t.Fatal(err)
	}
	if _, err := Up(ctx, cfg); err != nil {
		t.Fatalf("Up with worker-2 down: %v", err)
	}
	reloaded, err := Load(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := reloaded.Process(Worker2); w.PID == 0 {
		t.Fatal("Up did not start worker-2 again")
	} else if err := httpOK(ctx, reloaded.HTTPURL(Worker2)+"/readyz"); err != nil {
		t.Fatal(err)
	}
	// The reloaded state is the current one: this handle carries on from it.
	c = reloaded
	c.SetLog(testLog{t})

	if err := c.RestartRedisEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Process(Redis); r.PID == 0 || r.PID == records[slices.IndexFunc(records, func(p *proc) bool { return p.Name == Redis })].PID {
		t.Errorf("redis after RestartRedisEmpty: pid %d", r.PID)
	}

	final := c.procs(Names()...)
	if err := c.Down(ctx, false); err != nil {
		t.Fatal(err)
	}
	stopped = true
	for _, p := range append(records, final...) {
		if _, ok := p.alive(); ok {
			t.Errorf("%s (pid %d) still runs after Down", p.Name, p.PID)
		}
		if m := p.members(); len(m) != 0 {
			t.Errorf("%s: processes of its session left after Down: %+v", p.Name, m)
		}
	}
	for _, s := range c.Status(ctx) {
		if s.State != StateDown {
			t.Errorf("after Down: %+v", s)
		}
	}
}
