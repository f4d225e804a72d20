package spike

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/loadtest/audit"
	"github.com/flashsale/seckill/loadtest/chaos"
	"github.com/flashsale/seckill/loadtest/internal/fakegw"
)

// gatewayKiller is a chaos target over the fake gateway: killing
// gateway-1 makes every buy fail in flight (the load balancer's 502) until
// it is started again. Heals are counted.
type gatewayKiller struct {
	g       *fakegw.Gateway
	reserve bool

	mu    sync.Mutex
	calls []string
	heals int
}

func (k *gatewayKiller) note(c string) error {
	k.mu.Lock()
	k.calls = append(k.calls, c)
	k.mu.Unlock()
	return nil
}

func (k *gatewayKiller) Kill(n string) error {
	k.g.SetDown(true, k.reserve)
	return k.note("kill " + n)
}

func (k *gatewayKiller) Start(_ context.Context, n string) error {
	k.g.SetDown(false, false)
	return k.note("start " + n)
}
func (k *gatewayKiller) Pause(n string) error  { return k.note("pause " + n) }
func (k *gatewayKiller) Resume(n string) error { return k.note("resume " + n) }
func (k *gatewayKiller) RestartRedisEmpty(context.Context) error {
	return k.note("restart-redis-empty")
}
func (k *gatewayKiller) DisableProxy(p string) error            { return k.note("disable " + p) }
func (k *gatewayKiller) EnableProxy(p string) error             { return k.note("enable " + p) }
func (k *gatewayKiller) AddToxic(p string, _ chaos.Toxic) error { return k.note("add " + p) }
func (k *gatewayKiller) RemoveToxic(p, _ string) error          { return k.note("remove " + p) }
func (k *gatewayKiller) Heal(context.Context) error {
	k.mu.Lock()
	k.heals++
	k.mu.Unlock()
	return nil
}

// A chaos run against a fake gateway killed for a second mid-sale: the
// fault is played at its offset and ended, the buys lost on the way are
// counted apart from the 202s, promise nothing and break no invariant, the
// system is healed before and after, and the fault's recovery is measured
// from the 202s that follow and the queue's age read from /metrics.
func TestRunWithChaos(t *testing.T) {
	for _, reserve := range []bool{false, true} {
		name := "dies before reserving"
		if reserve {
			name = "dies after reserving"
		}
		t.Run(name, func(t *testing.T) {
			const admin, secret = "fake-admin-token", "fake-jwt-secret-0123456789"
			g := fakegw.New(admin, []byte(secret))
			ts := httptest.NewServer(g)
			t.Cleanup(ts.Close)
			k := &gatewayKiller{g: g, reserve: reserve}
			sc := small(300, 300)
			sc.Countdown, sc.SteadyShare, sc.SteadyWindow = 0, 0.6, 4*time.Second
			s := chaos.Schedule{Name: "kill", Faults: []chaos.Fault{
				{At: chaos.Duration(time.Second), Kind: chaos.Kill, Process: "gateway-1", For: chaos.Duration(time.Second)}}}
			rep, err := Run(context.Background(), Options{
				URL: ts.URL, AdminToken: admin, JWTSecret: secret, Scenario: sc, SettleTimeout: 3 * time.Second,
				MetricsURLs: []string{ts.URL + "/metrics"},
				Chaos:       &Chaos{Schedule: s, Target: k, Heal: k.Heal},
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Name != "chaos-kill" {
				t.Errorf("report named %q", rep.Name)
			}
			if !slices.Equal(k.calls, []string{"kill gateway-1", "start gateway-1"}) || k.heals != 2 {
				t.Errorf("calls %q, heals %d; want the kill, the start, a heal before and one after", k.calls, k.heals)
			}
			c := rep.Chaos
			if c == nil || len(c.Faults) != 1 {
				t.Fatalf("chaos report %+v", c)
			}
			f := c.Faults[0]
			// Not before their times (T0+1s and T0+2s); late by however the
			// machine is loaded.
			if f.Began == nil || f.Ended == nil || *f.Began < 1 || *f.Ended < 2 {
				t.Errorf("fault began %s ended %s, want at T0+1s and T0+2s", optSecs(f.Began), optSecs(f.Ended))
			}
			if c.InFlight.Total == 0 || c.InFlight.ByOutcome["502"] != c.InFlight.Total {
				t.Errorf("in flight %+v, want the 502s of the dead gateway", c.InFlight)
			}
			if !f.Recovered || f.RecoverySeconds == nil || f.First202 == nil || *f.First202 < *f.Ended {
				t.Errorf("fault %+v: want recovered, 202s flowing after its end", f)
			}
			if c.AlertsNote == "" {
				t.Error("no Prometheus, yet the report does not say why no alert is listed")
			}
			// The in-flight failures are not promises: nothing is broken.
			if !rep.Audit.OK() {
				t.Fatalf("audit: %+v", rep.Audit.Violations())
			}
			if n := rep.Audit.Checks[4]; n.Status != audit.OK || !slices.ContainsFunc(n.Details, func(d string) bool {
				return strings.Contains(d, "buys failed in flight (502 ")
			}) {
				t.Errorf("nothing lost: %+v; want the in-flight failures noted", n)
			}
			if len(rep.Settles) == 0 || !rep.Settles[0].Settled {
				t.Errorf("settles %+v", rep.Settles)
			}
		})
	}
}

func optSecs(v *float64) string {
	if v == nil {
		return "never"
	}
	return fmt.Sprintf("T0+%.3fs", *v)
}

func TestStreamNotes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		streams map[string]int
		err     error
		want    []string
	}{
		{"three replicas", map[string]int{"orders": 3, "order-events": 3}, nil, []string{"JetStream streams: order-events R3, orders R3"}},
		{"one replica", map[string]int{"orders": 1, "order-events": 3}, nil, []string{"JetStream streams: order-events R3, orders R1",
			"a stream with one replica stops while its node is down: a NATS node killed then turns the buys that publish to it away (503) until it is back; the processes create streams with three replicas when they read SECKILL_NATS_REPLICAS"}},
		{"unreadable", nil, errors.New("no node answered"), []string{"the queue's streams could not be read: no node answered"}},
	} {
		got := streamNotes(context.Background(), func(context.Context) (map[string]int, error) { return tc.streams, tc.err })
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
