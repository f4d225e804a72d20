package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/testkit"
)

// TestBadBackendsFailAtStartNamingTheBackend: a process pointed at a
// backend it cannot use refuses to start, and says which one.
func TestBadBackendsFailAtStartNamingTheBackend(t *testing.T) {
	secrets := map[string]string{"SECKILL_JWT_SECRET": testJWTSecret, "SECKILL_ADMIN_TOKEN": testAdminToken}
	cases := []struct {
		name    string
		role    Target
		env     map[string]string
		mention []string
	}{
		{"redis URL does not parse", AllInOne, map[string]string{"SECKILL_REDIS_URL": "redis://:hunter2@127.0.0.1:notaport"}, []string{"SECKILL_REDIS_URL"}},
		{"redis unreachable", AllInOne, map[string]string{"SECKILL_REDIS_URL": "redis://:hunter2@" + testkit.FreeAddr(t)}, []string{"redis", "unreachable"}},
		{"database unreachable", AllInOne, map[string]string{"SECKILL_DB_DSN": "root:hunter2@tcp(" + testkit.FreeAddr(t) + ")/seckill"}, []string{"database", "SECKILL_DB_DSN"}},
		{"database DSN garbage", AllInOne, map[string]string{"SECKILL_DB_DSN": "not a dsn"}, []string{"database"}},
		{"kafka unreachable", AllInOne, map[string]string{"SECKILL_MQ": "kafka", "SECKILL_KAFKA_BROKERS": testkit.FreeAddr(t)}, []string{"kafka", "SECKILL_KAFKA_BROKERS"}},
		{"split gateway on the embedded queue", GatewayOnly, map[string]string{}, []string{"SECKILL_MQ"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// No wait for a backend that does not answer: this is about
			// the error (TestStartWaitsForTheDatabase about the wait).
			env := map[string]string{"SECKILL_DATA_DIR": t.TempDir(), "SECKILL_DEMO": "true", "SECKILL_HTTP_ADDR": "127.0.0.1:0", "SECKILL_START_WAIT": "0"}
			for k, v := range secrets {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := config.Load(func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), tc.role)
			if err == nil {
				a.Shutdown(ctx)
				t.Fatal("started with a backend it cannot use")
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks a password: %q", err)
			}
		})
	}
}

// logSignal is a slog handler that closes seen the first time a record
// with message msg is logged.
type logSignal struct {
	msg  string
	once sync.Once
	seen chan struct{}
}

func (h *logSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h *logSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}
func (h *logSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logSignal) WithGroup(string) slog.Handler      { return h }

// TestStartWaitsForTheDatabase: a process started while its database does
// not answer (restarting, as a supervisor restarts a crashed gateway in
// the middle of a database outage) waits for it, retrying, and starts
// when it answers, instead of exiting and being restarted in a loop.
func TestStartWaitsForTheDatabase(t *testing.T) {
	dsn, proxy := testkit.ProxyMySQL(t, testkit.MySQLDSN(t))
	proxy.Cut()
	env := map[string]string{
		"SECKILL_DATA_DIR": t.TempDir(), "SECKILL_DEMO": "true", "SECKILL_HTTP_ADDR": "127.0.0.1:0",
		"SECKILL_JWT_SECRET": testJWTSecret, "SECKILL_ADMIN_TOKEN": testAdminToken,
		"SECKILL_DB_DSN": dsn, "SECKILL_START_WAIT": "2m", "SECKILL_REDIS_PREFIX": "sktest-" + testkit.RandomHex(4),
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	waiting := &logSignal{msg: "waiting for a backend before starting", seen: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type started struct {
		a   *App
		err error
	}
	done := make(chan started, 1)
	go func() {
		a, err := New(ctx, cfg, slog.New(waiting), AllInOne)
		done <- started{a, err}
	}()
	select {
	case <-waiting.seen:
	case s := <-done:
		if s.a != nil {
			s.a.Shutdown(ctx)
		}
		t.Fatalf("New returned while the database was cut (%v); want it waiting", s.err)
	}
	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	s := <-done
	if s.err != nil {
		t.Fatalf("New after the database came back: %v", s.err)
	}
	t.Cleanup(func() {
		if err := s.a.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	if err := s.a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.a.Store().ListActivities(ctx); err != nil {
		t.Errorf("the database after the wait: %v", err)
	}
}
