package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
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
			env := map[string]string{"SECKILL_DATA_DIR": t.TempDir(), "SECKILL_DEMO": "true", "SECKILL_HTTP_ADDR": "127.0.0.1:0"}
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
