package cluster

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/notifier/delivery"
	"github.com/flashsale/seckill/order/service"
)

// getenv reads a planned process's environment as its binary will.
func getenv(env []string) func(string) string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func planned(t *testing.T, s Settings) (map[string]*proc, layout) {
	t.Helper()
	m := map[string]*proc{}
	for _, p := range plan(s.withDefaults(), testPaths(t), secrets{JWTSecret: strings.Repeat("j", 64), AdminToken: strings.Repeat("a", 48)}) {
		m[p.Name] = p
	}
	return m, layout{s.withDefaults().BasePort}
}

// The seckill processes' environments are checked by the binaries' own
// configuration loaders: what they accept, and what it means to them.
func TestGatewayEnvironment(t *testing.T) {
	for _, tt := range []struct {
		name   string
		s      Settings
		demo   bool
		perIP  float64
		buyTok string
	}{
		{"production mode, load-test limits", Settings{BasePort: 21000}, false, LoadTestRate, config.BuyTokenRequired},
		{"demo mode, production limits", Settings{BasePort: 21000, Demo: true, Limits: LimitsProduction}, true, 10000, config.BuyTokenOff},
	} {
		t.Run(tt.name, func(t *testing.T) {
			procs, l := planned(t, tt.s)
			for _, n := range []string{Gateway1, Gateway2} {
				c, err := config.Load(getenv(procs[n].Env))
				if err != nil {
					t.Fatalf("%s: the gateway refuses its environment: %v", n, err)
				}
				if c.HTTPAddr != addr(l.http(n)) || c.MetricsAddr != addr(l.metrics(n)) {
					t.Errorf("%s: listens on %s, metrics on %s", n, c.HTTPAddr, c.MetricsAddr)
				}
				if c.MQ != config.MQNATS || c.NATSURL != l.natsURLs() {
					t.Errorf("%s: queue %s at %s, want nats through the proxies %s", n, c.MQ, c.NATSURL, l.natsURLs())
				}
				if c.RedisURL != "redis://"+addr(l.proxy(Redis))+"/0" || c.DBDSN != dsn(l.proxy(MariaDB)) {
					t.Errorf("%s: redis %s, db %s: not through toxiproxy", n, c.RedisURL, c.DBDSN)
				}
				if c.Demo != tt.demo || c.BuyToken != tt.buyTok || c.GeneratedAdminToken {
					t.Errorf("%s: demo %v, buy token %s, generated admin token %v", n, c.Demo, c.BuyToken, c.GeneratedAdminToken)
				}
				if string(c.JWTSecret) != strings.Repeat("j", 64) || c.AdminToken != strings.Repeat("a", 48) {
					t.Errorf("%s: not the cluster's secrets", n)
				}
				// nginx connects from 127.0.0.1: its X-Forwarded-For must be
				// believed, or all buyers share one per-IP bucket.
				if !slices.Contains(c.TrustedProxies, "127.0.0.1") {
					t.Errorf("%s: trusted proxies %v do not include nginx's 127.0.0.1", n, c.TrustedProxies)
				}
				if c.RatePerIP != tt.perIP || c.RatePerUser != 2 {
					t.Errorf("%s: per-IP rate %v, per-user %v; want %v and the product's 2", n, c.RatePerIP, c.RatePerUser, tt.perIP)
				}
			}
		})
	}
}

func TestWorkerAndNotifierEnvironment(t *testing.T) {
	procs, l := planned(t, Settings{BasePort: 21000, Demo: true})
	for _, n := range []string{Worker1, Worker2} {
		c, err := service.LoadProcessConfig(getenv(procs[n].Env))
		if err != nil {
			t.Fatalf("%s: the order worker refuses its environment: %v", n, err)
		}
		if c.HTTPAddr != addr(l.http(n)) || c.MQ != service.MQNATS || c.NATSURL != l.natsURLs() ||
			c.RedisURL != "redis://"+addr(l.proxy(Redis))+"/0" || c.DBDSN != dsn(l.proxy(MariaDB)) {
			t.Errorf("%s: %+v", n, c.Redacted())
		}
		if getenv(procs[n].Env)("SECKILL_JWT_SECRET") != "" || getenv(procs[n].Env)("SECKILL_ADMIN_TOKEN") != "" {
			t.Errorf("%s is handed the gateway's secrets, which it does not use", n)
		}
	}
	c, err := delivery.LoadProcessConfig(getenv(procs[Notifier].Env))
	if err != nil {
		t.Fatalf("the notifier refuses its environment: %v", err)
	}
	if c.Delivery.SMTP == nil || c.Delivery.SMTP.Host != "127.0.0.1" || c.Delivery.SMTP.Port != l.smtp() || c.Delivery.SMTP.StartTLS != "none" {
		t.Fatalf("notifier mail: %+v, want the sink on %d in clear", c.Delivery.SMTP, l.smtp())
	}
	if c.MQ != "nats" || c.NATSURL != l.natsURLs() || c.DBDSN != dsn(l.proxy(MariaDB)) || c.HTTPAddr != addr(l.http(Notifier)) {
		t.Errorf("notifier: mq %s %s, db %s, http %s", c.MQ, c.NATSURL, c.DBDSN, c.HTTPAddr)
	}
}

func TestEnvironmentSettings(t *testing.T) {
	// Nothing of the caller's own SECKILL_* environment leaks in.
	t.Setenv("SECKILL_OTEL_ENDPOINT", "http://collector:4318")
	procs, _ := planned(t, Settings{BasePort: 21000, QueueSync: QueueSyncInterval,
		Env: map[string]string{"SECKILL_WORKER_BATCH": "20", "SECKILL_LOG_LEVEL": "debug"}})
	for _, n := range []string{Gateway1, Gateway2, Worker1, Worker2, Notifier} {
		get := getenv(procs[n].Env)
		for k, want := range map[string]string{
			"SECKILL_NATS_REPLICAS": "3", "SECKILL_QUEUE_SYNC": QueueSyncInterval,
			// --set wins over the cluster's own settings.
			"SECKILL_WORKER_BATCH": "20", "SECKILL_LOG_LEVEL": "debug",
			"SECKILL_OTEL_ENDPOINT": "",
		} {
			if got := get(k); got != want {
				t.Errorf("%s: %s=%q, want %q", n, k, got, want)
			}
		}
	}
}

// flagValue is the argument after name in argv.
func flagValue(argv []string, name string) (string, bool) {
	i := slices.Index(argv, name)
	if i < 0 || i+1 >= len(argv) {
		return "", false
	}
	return argv[i+1], true
}

func TestRedisAndMariaDBCommandLines(t *testing.T) {
	procs, l := planned(t, Settings{BasePort: 21000})
	for name, want := range map[string]string{
		"--port": strconv.Itoa(l.redis()), "--bind": "127.0.0.1", "--daemonize": "no",
		// No persistence: a restart is an empty Redis (RestartRedisEmpty).
		"--save": "", "--appendonly": "no",
	} {
		if v, ok := flagValue(procs[Redis].Argv, name); !ok || v != want {
			t.Errorf("redis-server %s %q, want %q", name, v, want)
		}
	}
	m := procs[MariaDB].Argv
	for _, want := range []string{"--no-defaults", "--port=" + strconv.Itoa(l.mariadb()), "--bind-address=127.0.0.1"} {
		if !slices.Contains(m, want) {
			t.Errorf("mariadbd %v: missing %q", m, want)
		}
	}
}
