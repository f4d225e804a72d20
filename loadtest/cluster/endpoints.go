package cluster

import (
	"fmt"
	"strings"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
)

func (c *Cluster) port(name, port string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.st.proc(name); p != nil {
		return p.port(port)
	}
	return 0
}

// URL is the front door: nginx, over both gateways.
func (c *Cluster) URL() string { return "http://" + addr(c.port(LB, PortHTTP)) }

// HTTPURL is a seckill process's own HTTP address (SECKILL_HTTP_ADDR): a
// gateway's API around nginx, a worker's or the notifier's /readyz.
func (c *Cluster) HTTPURL(name string) string { return "http://" + addr(c.port(name, PortHTTP)) }

// MetricsURL is a seckill process's /metrics (its SECKILL_METRICS_ADDR).
func (c *Cluster) MetricsURL(name string) string {
	return "http://" + addr(c.port(name, PortMetrics)) + "/metrics"
}

// InboxURL lists the mail the SMTP sink received (JSON).
func (c *Cluster) InboxURL() string { return "http://" + addr(c.port(SMTP, PortInbox)) + "/messages" }

// AdminToken is the gateways' SECKILL_ADMIN_TOKEN.
func (c *Cluster) AdminToken() string { return c.st.Secrets.AdminToken }

// JWTSecret is the gateways' SECKILL_JWT_SECRET (HS256, claim sub).
func (c *Cluster) JWTSecret() string { return c.st.Secrets.JWTSecret }

// DBDSN is MariaDB's DSN, directly and not through toxiproxy, so an audit
// reads the database whatever faults the proxies inject.
func (c *Cluster) DBDSN() string { return dsn(c.port(MariaDB, PortClient)) }

// PrometheusURL is the cluster's Prometheus, "" when the cluster has none
// (the prometheus package was not installed at cluster-up).
func (c *Cluster) PrometheusURL() string {
	if p := c.port(Prometheus, PortHTTP); p != 0 {
		return "http://" + addr(p)
	}
	return ""
}

// ToxiproxyURL is toxiproxy's HTTP API.
func (c *Cluster) ToxiproxyURL() string { return "http://" + addr(c.port(Toxiproxy, PortAPI)) }

// Toxiproxy is a client of toxiproxy's API. Its proxies are named as
// ProxyNames says; a toxic added to one (down: Proxy.Disable, latency,
// reset_peer, ...) hits every seckill process's connections to that
// backend. A restart of toxiproxy brings the proxies back without toxics.
func (c *Cluster) Toxiproxy() *toxiproxy.Client { return toxiproxy.NewClient(c.ToxiproxyURL()) }

// EnvVar is one variable of Env.
type EnvVar struct{ Name, Value string }

// Env is what a load test or an audit needs to reach the cluster:
// SECKILL_URL (the front door), SECKILL_ADMIN_TOKEN, SECKILL_JWT_SECRET,
// SECKILL_DB_DSN (MariaDB directly, for the audit), SECKILL_TOXIPROXY_URL
// and SECKILL_PROMETHEUS_URL ("" without Prometheus).
func (c *Cluster) Env() []EnvVar {
	return []EnvVar{
		{"SECKILL_URL", c.URL()},
		{"SECKILL_ADMIN_TOKEN", c.AdminToken()},
		{"SECKILL_JWT_SECRET", c.JWTSecret()},
		{"SECKILL_DB_DSN", c.DBDSN()},
		{"SECKILL_TOXIPROXY_URL", c.ToxiproxyURL()},
		{"SECKILL_PROMETHEUS_URL", c.PrometheusURL()},
	}
}

// ExportLines renders Env as shell `export` lines, for eval.
func (c *Cluster) ExportLines() string {
	var b strings.Builder
	for _, v := range c.Env() {
		fmt.Fprintf(&b, "export %s='%s'\n", v.Name, strings.ReplaceAll(v.Value, "'", `'\''`))
	}
	return b.String()
}
