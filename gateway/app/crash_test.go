package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/testkit"
)

// envCrashChild makes the test binary run the all-in-one instead of the
// tests: the crash test's child process, killed with SIGKILL.
const envCrashChild = "SECKILL_TEST_CRASH_CHILD"

func TestMain(m *testing.M) {
	if name := os.Getenv(envCrashChild); name != "" {
		role := map[string]Target{AllInOne.String(): AllInOne, GatewayOnly.String(): GatewayOnly}[name]
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := Run(ctx, role, os.Getenv, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashRole is one process of a crash round: a role of this package run by
// the test binary itself, or (bin set) a separate binary, such as
// seckill-order-worker.
type crashRole struct {
	name string
	role Target
	bin  string
}

func (r crashRole) String() string { return r.name }

// testBinary runs role in this package's test binary (TestMain).
func testBinary(role Target) crashRole { return crashRole{name: role.String(), role: role} }

// crashProcess is the all-in-one as a child process on a fixed address and
// data directory, so that a restart finds what the killed one left.
type crashProcess struct {
	t    *testing.T
	bin  string // "": this test binary, running the role of envCrashChild
	env  []string
	addr string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

func newCrashProcess(t *testing.T, role crashRole, dir string, extra map[string]string) *crashProcess {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{
		"SECKILL_HTTP_ADDR":           addr,
		"SECKILL_DATA_DIR":            dir,
		"SECKILL_JWT_SECRET":          testJWTSecret,
		"SECKILL_ADMIN_TOKEN":         testAdminToken,
		"SECKILL_DEMO":                "false",
		"SECKILL_RESERVATION_TIMEOUT": "3s",
		"SECKILL_NOTIFIER_ENABLED":    "false",
		"SECKILL_LOG_LEVEL":           "warn",
	}
	for k, v := range extra {
		env[k] = v
	}
	if role.bin == "" {
		env[envCrashChild] = role.role.String()
	}
	p := &crashProcess{t: t, bin: role.bin, addr: addr, log: filepath.Join(dir, role.String()+".log")}
	p.env = os.Environ()
	for k, v := range env {
		p.env = append(p.env, k+"="+v)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			if b, err := os.ReadFile(p.log); err == nil {
				t.Logf("child log:\n%s", lastBytes(b, 4000))
			}
		}
	})
	return p
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// start runs the child and waits until it is ready.
func (p *crashProcess) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if p.bin != "" {
		cmd = exec.Command(p.bin)
	}
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	testkit.KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	exited := make(chan struct{})
	p.done = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(p.log)
			p.t.Fatalf("child exited during start:\n%s", lastBytes(b, 4000))
		default:
		}
		if resp, err := c.Get("http://" + p.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatal("child not ready within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *crashProcess) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		p.cmd = nil
	}
}

// TestCrashKeepsEveryAcceptedOrder: the all-in-one is killed with SIGKILL
// at a random moment of a burst of buys, five times, and restarted on the
// same data each time. Afterwards every order answered 202 is in the
// database, for its buyer; stock is conserved on both sides; no buyer is
// left queued or blocked; nothing is oversold.
func TestCrashKeepsEveryAcceptedOrder(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { crashRounds(t, nil, testBinary(AllInOne)) })
	t.Run("redis+mariadb", func(t *testing.T) {
		crashRounds(t, map[string]string{
			"SECKILL_REDIS_URL": testkit.RedisURL(t),
			"SECKILL_DB_DSN":    testkit.MySQLDSN(t),
		}, testBinary(AllInOne))
	})
	t.Run("kafka-split", func(t *testing.T) {
		redisURL, dsn := testkit.RedisURL(t), testkit.MySQLDSN(t)
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cluster.Close)
		crashRounds(t, map[string]string{
			"SECKILL_MQ": "kafka", "SECKILL_KAFKA_BROKERS": strings.Join(cluster.ListenAddrs(), ","),
			"SECKILL_KAFKA_PARTITIONS": "4", "SECKILL_KAFKA_SESSION_TIMEOUT": "6s",
			"SECKILL_REDIS_URL": redisURL, "SECKILL_DB_DSN": dsn,
		}, testBinary(GatewayOnly), crashRole{name: "order-worker", bin: buildBinary(t, "seckill-order-worker")})
	})
}

// crashRounds runs the processes of roles (the first serves the API) and
// kills each of them with SIGKILL at its own random moment of each burst.
func crashRounds(t *testing.T, extra map[string]string, roles ...crashRole) {
	const (
		rounds   = 5
		stock    = 3000
		perBurst = 800 // buyers per round; stock runs out in the last rounds
		clients  = 24
	)
	env := map[string]string{"SECKILL_REDIS_PREFIX": "skcrash-" + testkit.RandomHex(4)}
	for k, v := range extra {
		env[k] = v
	}
	dir := t.TempDir()
	var procs []*crashProcess
	for _, r := range roles {
		procs = append(procs, newCrashProcess(t, r, dir, env))
	}
	for _, p := range procs {
		p.start()
	}
	c := newClient("http://" + procs[0].addr)
	c.http.Timeout = 5 * time.Second
	activity := c.createActivity(t, stock, time.Now().Add(-time.Second), time.Now().Add(time.Hour))

	var mu sync.Mutex
	accepted := map[string]string{} // order id -> user
	for round := range rounds {
		users := make(chan string, perBurst)
		for i := range perBurst {
			users <- fmt.Sprintf("r%d-u%03d", round, i)
		}
		close(users)
		var killAt []time.Duration
		for range procs {
			killAt = append(killAt, time.Duration(30+rand.IntN(400))*time.Millisecond)
		}
		var wg sync.WaitGroup
		var dead atomic.Bool
		for range clients {
			wg.Go(func() {
				for u := range users {
					if dead.Load() {
						return
					}
					var body struct {
						OrderID string `json:"order_id"`
					}
					status, err := c.tryDo("POST", "/api/v1/activities/"+activity+"/orders", c.token(t, u), c.buyBody(t, activity, u, "buy-"+u), &body)
					mu.Lock()
					if err == nil && status == http.StatusAccepted {
						accepted[body.OrderID] = u
					}
					mu.Unlock()
				}
			})
		}
		var kills sync.WaitGroup
		for i, p := range procs {
			kills.Go(func() {
				time.Sleep(killAt[i])
				p.kill()
				if i == 0 {
					dead.Store(true) // the API is gone: the rest of the burst fails
				}
			})
		}
		kills.Wait()
		wg.Wait()
		mu.Lock()
		t.Logf("round %d: %v killed %v into the burst; %d orders accepted so far", round, roles, killAt, len(accepted))
		mu.Unlock()
		for _, p := range procs {
			p.start()
		}
	}

	// The last start drains what the kills left in the queue; the reaper
	// frees reservations whose buyers never got an answer.
	var s statsResp
	deadline := time.Now().Add(90 * time.Second)
	for {
		s = c.stats(t, activity)
		written := s.OrdersCreated + s.OrdersPaid + s.OrdersCancelled
		if s.Queued == 0 && s.Reserved == s.OrdersCreated+s.OrdersPaid && written >= int64(len(accepted)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled within 90s: %+v, %d orders accepted", s, len(accepted))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(accepted) == 0 {
		t.Fatal("no order was accepted: the kills came before any buy; the test proves nothing")
	}
	if s.OrdersCreated+s.OrdersPaid > stock {
		t.Errorf("oversold: %d live orders for stock %d", s.OrdersCreated+s.OrdersPaid, stock)
	}
	if s.Remaining != s.Stock-(s.Queued+s.OrdersCreated+s.OrdersPaid) || s.DBAvailable != s.Stock-(s.OrdersCreated+s.OrdersPaid) {
		t.Errorf("conservation broken: %+v", s)
	}
	// Every 202 reached the database, for its buyer. Orders the buyers
	// never heard of (the kill came between the publish and the answer)
	// may exist too; they are sold units, so they count in the stats.
	for id, user := range accepted {
		var o struct {
			State  string `json:"state"`
			UserID string `json:"user_id"`
		}
		if code := c.do(t, "GET", "/api/v1/orders/"+id, c.token(t, user), nil, &o); code != http.StatusOK || o.UserID != user ||
			(o.State != order.StateCreated && o.State != order.StatePaid && o.State != order.StateCancelled) {
			t.Errorf("accepted order %s of %s: status %d, %+v; want it written", id, user, code, o)
		} else if o.State == order.StateCancelled {
			t.Logf("accepted order %s ended cancelled", id)
		}
	}
	// No unit and no buyer is stranded: the settled stats above say every
	// reservation Redis holds is a written order (reserved = created +
	// paid, queued 0), so a buyer without an order holds nothing.
	t.Logf("settled: %+v; %d orders accepted across %d kills", s, len(accepted), rounds)
}

// tryDo is do without failing the test on a transport error (the process
// under test is being killed).
func (c *client) tryDo(method, path, bearer string, body any, out any) (int, error) {
	ft := &fakeT{}
	code := c.do(ft, method, path, bearer, body, out)
	if ft.err != "" {
		return code, fmt.Errorf("%s", ft.err)
	}
	return code, nil
}

// fakeT collects what client.do would report, for tryDo.
type fakeT struct {
	testing.TB
	err string
}

func (f *fakeT) Helper()                        {}
func (f *fakeT) Errorf(format string, a ...any) { f.err = fmt.Sprintf(format, a...) }
func (f *fakeT) Fatal(a ...any)                 { f.err = fmt.Sprint(a...) }
