package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/flashsale/seckill/testkit"
)

// testPaths are the paths of a cluster under a temporary directory.
func testPaths(t *testing.T) paths {
	t.Helper()
	dir := t.TempDir()
	p := newPaths(Config{Dir: dir, BinDir: filepath.Join(dir, "bin")})
	p.nginx, p.redisServer, p.mariadbd, p.installDB = "/usr/sbin/nginx", "/usr/bin/redis-server", "/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db"
	p.natsServer, p.toxiproxy = "/cache/nats-server", "/cache/toxiproxy-server"
	p.prometheus, p.rules = "/usr/bin/prometheus", "/repo/"+RulesFile
	return p
}

func TestNATSConfigParses(t *testing.T) {
	for _, sync := range []string{QueueSyncAlways, QueueSyncInterval} {
		t.Run(sync, func(t *testing.T) {
			s := Settings{BasePort: 21000, QueueSync: sync, SyncInterval: 30 * time.Second}.withDefaults()
			p := testPaths(t)
			l := layout{s.BasePort}
			for i, name := range natsNames() {
				f := filepath.Join(t.TempDir(), "nats.conf")
				if err := os.WriteFile(f, renderNATS(s, l, p, i), 0o600); err != nil {
					t.Fatal(err)
				}
				// nats-server's own parser: what the process will read.
				o, err := server.ProcessConfigFile(f)
				if err != nil {
					t.Fatalf("%s: nats-server refuses the configuration: %v", name, err)
				}
				if o.ServerName != name || o.Host != "127.0.0.1" || o.Port != 21000+offNATSClient+i {
					t.Errorf("%s: server %q on %s:%d", name, o.ServerName, o.Host, o.Port)
				}
				if o.HTTPHost != "127.0.0.1" || o.HTTPPort != 21000+offNATSMonitor+i {
					t.Errorf("%s: monitoring on %s:%d", name, o.HTTPHost, o.HTTPPort)
				}
				if !o.JetStream || o.StoreDir != filepath.Join(p.proc(name), "jetstream") {
					t.Errorf("%s: jetstream %v in %q", name, o.JetStream, o.StoreDir)
				}
				if sync == QueueSyncAlways && !o.SyncAlways {
					t.Errorf("%s: sync_interval is not always under SECKILL_QUEUE_SYNC=always", name)
				}
				if sync == QueueSyncInterval && (o.SyncAlways || o.SyncInterval != 30*time.Second) {
					t.Errorf("%s: sync always=%v interval=%s, want interval 30s", name, o.SyncAlways, o.SyncInterval)
				}
				if o.Cluster.Name != "seckill" || o.Cluster.Host != "127.0.0.1" || o.Cluster.Port != 21000+offNATSCluster+i {
					t.Errorf("%s: cluster %q on %s:%d", name, o.Cluster.Name, o.Cluster.Host, o.Cluster.Port)
				}
				// Clients must only know the proxies: an advertised node
				// address would let them reconnect around a fault.
				if !o.Cluster.NoAdvertise {
					t.Errorf("%s: the node advertises its own client address to clients", name)
				}
				var routes []string
				for _, r := range o.Routes {
					routes = append(routes, r.Host)
				}
				var want []string
				for j := range natsNames() {
					if j != i {
						want = append(want, addr(21000+offNATSCluster+j))
					}
				}
				if !slices.Equal(routes, want) {
					t.Errorf("%s: routes %v, want the other two nodes %v", name, routes, want)
				}
			}
		})
	}
}

// directive is one directive of an nginx configuration, with its block.
type directive struct {
	name  string
	args  []string
	block []*directive
}

// parseNginx reads nginx's configuration syntax: enough to find directives
// in their blocks (comments, quotes, ';', '{', '}').
func parseNginx(src string) ([]*directive, error) {
	var toks []string
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == ';' || c == '{' || c == '}':
			toks = append(toks, string(c))
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(src[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unterminated quote at %d", i)
			}
			toks = append(toks, src[i+1:i+1+j])
			i += j + 2
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n;{}", rune(src[j])) {
				j++
			}
			toks = append(toks, src[i:j])
			i = j
		}
	}
	var parse func(pos int) ([]*directive, int, error)
	parse = func(pos int) ([]*directive, int, error) {
		var out []*directive
		var cur *directive
		for pos < len(toks) {
			tok := toks[pos]
			pos++
			switch {
			case tok == "}":
				if cur != nil {
					return nil, pos, fmt.Errorf("directive %s not ended before '}'", cur.name)
				}
				return out, pos, nil
			case tok == ";":
				if cur == nil {
					return nil, pos, fmt.Errorf("empty directive")
				}
				out, cur = append(out, cur), nil
			case tok == "{":
				if cur == nil {
					return nil, pos, fmt.Errorf("block without a directive")
				}
				block, next, err := parse(pos)
				if err != nil {
					return nil, pos, err
				}
				cur.block, pos = block, next
				out, cur = append(out, cur), nil
			case cur == nil:
				cur = &directive{name: tok}
			default:
				cur.args = append(cur.args, tok)
			}
		}
		return out, pos, nil
	}
	ds, _, err := parse(0)
	return ds, err
}

// find returns the directives named name in ds (not in nested blocks).
func find(ds []*directive, name string) []*directive {
	var out []*directive
	for _, d := range ds {
		if d.name == name {
			out = append(out, d)
		}
	}
	return out
}

// walk calls f on every directive, nested ones too.
func walk(ds []*directive, f func(*directive)) {
	for _, d := range ds {
		f(d)
		walk(d.block, f)
	}
}

func one(t *testing.T, ds []*directive, name string) *directive {
	t.Helper()
	found := find(ds, name)
	if len(found) != 1 {
		t.Fatalf("%d %q directives, want 1", len(found), name)
	}
	return found[0]
}

func TestNginxConfig(t *testing.T) {
	s := Settings{BasePort: 21000}.withDefaults()
	l := layout{s.BasePort}
	p := testPaths(t)
	src, err := renderNginx(l, p, false)
	if err != nil {
		t.Fatal(err)
	}
	top, err := parseNginx(string(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if len(find(top, "user")) != 0 {
		t.Error("a user directive for a master that is not root (nginx warns and ignores it)")
	}
	if d := one(t, top, "daemon"); d.args[0] != "off" {
		t.Error("nginx daemonizes: its recorded pid would not be the master's")
	}
	http := one(t, top, "http").block

	up := one(t, http, "upstream")
	if up.args[0] != "seckill_gateways" {
		t.Fatalf("upstream %v", up.args)
	}
	var servers []string
	for _, d := range find(up.block, "server") {
		servers = append(servers, d.args[0])
	}
	if want := []string{addr(l.http(Gateway1)), addr(l.http(Gateway2))}; !slices.Equal(servers, want) {
		t.Errorf("upstream servers %v, want the two gateways %v", servers, want)
	}
	if d := one(t, up.block, "keepalive"); d.args[0] == "0" {
		t.Error("no keepalive connections to the gateways: a connection per request in a spike")
	}
	ka, err := time.ParseDuration(one(t, up.block, "keepalive_timeout").args[0])
	if err != nil || ka >= 2*time.Minute {
		t.Errorf("upstream keepalive_timeout %v (%v): must stay below the gateways' 2m idle timeout, so nginx never reuses a connection the gateway is closing", ka, err)
	}

	srv := one(t, http, "server").block
	if d := one(t, srv, "listen"); d.args[0] != addr(l.lb()) {
		t.Errorf("listen %v, want %s", d.args, addr(l.lb()))
	}
	if d := one(t, srv, "proxy_http_version"); d.args[0] != "1.1" {
		t.Error("HTTP/1.0 to the gateways: no keepalive")
	}
	headers := map[string]string{}
	for _, d := range find(srv, "proxy_set_header") {
		headers[d.args[0]] = strings.Join(d.args[1:], " ")
	}
	if headers["Connection"] != "" {
		t.Errorf("Connection header %q: must be cleared for the keepalive pool", headers["Connection"])
	}
	// The edge sets the client's address; appending
	// ($proxy_add_x_forwarded_for) would let a client pick its own.
	if headers["X-Forwarded-For"] != "$remote_addr" {
		t.Errorf("X-Forwarded-For = %q, want $remote_addr", headers["X-Forwarded-For"])
	}
	// A POST is never passed to a second gateway once sent: no
	// non_idempotent anywhere, and retries only on errors and timeouts.
	walk(top, func(d *directive) {
		if d.name == "proxy_next_upstream" {
			for _, a := range d.args {
				if a != "error" && a != "timeout" {
					t.Errorf("proxy_next_upstream %v: %s retries more than an unreachable gateway (a buy could be sent twice)", d.args, a)
				}
			}
		}
	})
	if len(find(srv, "proxy_next_upstream")) != 1 {
		t.Error("proxy_next_upstream not set in the server block")
	}
	var passes int
	walk(srv, func(d *directive) {
		if d.name == "proxy_pass" {
			passes++
			if d.args[0] != "http://seckill_gateways" {
				t.Errorf("proxy_pass %v", d.args)
			}
		}
	})
	if passes == 0 {
		t.Error("nothing is proxied")
	}
}

func TestNginxConfigRefusesPathsItCannotHold(t *testing.T) {
	p := testPaths(t)
	p.dir = filepath.Join(p.dir, "my cluster")
	if _, err := renderNginx(layout{21000}, p, false); err == nil || !strings.Contains(err.Error(), "my cluster") {
		t.Fatalf("renderNginx with a space in the path: %v, want an error naming the path", err)
	}
}

// TestNginxAcceptsConfig has nginx itself check the generated file (nginx -t).
func TestNginxAcceptsConfig(t *testing.T) {
	bin, ok := findProgram("nginx")
	if !ok {
		if testkit.InCI() {
			t.Fatal("nginx is not installed: CI must install it (apt-get install nginx)")
		}
		t.Skip("nginx is not installed: skipping nginx -t (apt-get install nginx)")
	}
	s := Settings{BasePort: 21000}.withDefaults()
	p := testPaths(t)
	p.nginx = bin
	if err := writeConfigs(s, p, plan(s, p, newSecrets())); err != nil {
		t.Fatal(err)
	}
	if err := nginxTest(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func TestProxiesStandBetweenServicesAndBackends(t *testing.T) {
	s := Settings{BasePort: 21000}.withDefaults()
	l := layout{s.BasePort}
	p := testPaths(t)
	b, err := renderProxies(l)
	if err != nil {
		t.Fatal(err)
	}
	var proxies []toxiProxy
	if err := json.Unmarshal(b, &proxies); err != nil {
		t.Fatal(err)
	}
	procs := plan(s, p, newSecrets())
	byName := map[string]*proc{}
	for _, pr := range procs {
		byName[pr.Name] = pr
	}
	var names []string
	for _, px := range proxies {
		names = append(names, px.Name)
		backend := byName[px.Name]
		if backend == nil {
			t.Fatalf("proxy %q stands in front of no process", px.Name)
		}
		if px.Upstream != addr(backend.port(PortClient)) {
			t.Errorf("proxy %s forwards to %s, want %s's own port %d", px.Name, px.Upstream, px.Name, backend.port(PortClient))
		}
		if px.Listen != addr(backend.port(PortProxy)) || !px.Enabled {
			t.Errorf("proxy %s listens on %s (enabled %v), want %d", px.Name, px.Listen, px.Enabled, backend.port(PortProxy))
		}
	}
	if !slices.Equal(names, ProxyNames()) {
		t.Errorf("proxies %v, want %v", names, ProxyNames())
	}
}

func TestPortsAreDistinctAndInSpan(t *testing.T) {
	s := Settings{BasePort: 21000}.withDefaults()
	procs := plan(s, testPaths(t), newSecrets())
	seen := map[int]string{}
	for _, pt := range allPorts(procs) {
		if prev, ok := seen[pt.Port]; ok {
			t.Errorf("port %d is both %s and %s", pt.Port, prev, pt.Name)
		}
		seen[pt.Port] = pt.Name
		if pt.Port < s.BasePort || pt.Port >= s.BasePort+PortSpan {
			t.Errorf("%s on %d, outside %d..%d", pt.Name, pt.Port, s.BasePort, s.BasePort+PortSpan-1)
		}
	}
	var names []string
	for _, pr := range procs {
		names = append(names, pr.Name)
	}
	if !slices.Equal(names, Names()) {
		t.Errorf("planned %v, want %v", names, Names())
	}
}

// The generated prometheus.yml is one Debian's Prometheus 2.42 accepts
// (promtool checks it with the repository's rules), and it scrapes every
// seckill process's metrics listener every second, each labelled with the
// service the rules group by.
func TestPrometheusConfig(t *testing.T) {
	promtool := testkit.RequireBinary(t, "promtool")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	s := Settings{BasePort: 21000}.withDefaults()
	l := layout{s.BasePort}
	p := testPaths(t)
	p.rules = filepath.Join(root, RulesFile)
	conf := renderPrometheus(l, p.rules)
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s\n%s", err, out, conf)
	}

	var c struct {
		Global struct {
			Scrape   string `yaml:"scrape_interval"`
			Evaluate string `yaml:"evaluation_interval"`
		} `yaml:"global"`
		Rules   []string `yaml:"rule_files"`
		Configs []struct {
			Job    string `yaml:"job_name"`
			Static []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(conf, &c); err != nil {
		t.Fatal(err)
	}
	if c.Global.Scrape != "1s" || c.Global.Evaluate != "1s" {
		t.Errorf("scrape every %s, evaluate every %s; want 1s and 1s", c.Global.Scrape, c.Global.Evaluate)
	}
	if !slices.Equal(c.Rules, []string{p.rules}) {
		t.Errorf("rule files %v, want %s", c.Rules, p.rules)
	}
	service := map[string]string{}
	for _, sc := range c.Configs {
		for _, st := range sc.Static {
			for _, tg := range st.Targets {
				service[tg] = st.Labels["service"]
			}
		}
	}
	for name, want := range map[string]string{Gateway1: "gateway", Gateway2: "gateway", Worker1: "order-worker", Worker2: "order-worker", Notifier: "notifier"} {
		if got := service[addr(l.metrics(name))]; got != want {
			t.Errorf("%s's metrics %s: service %q, want %q", name, addr(l.metrics(name)), got, want)
		}
	}
}

// Without the prometheus package the cluster has every other process.
func TestPlanWithoutPrometheus(t *testing.T) {
	p := testPaths(t)
	p.prometheus = ""
	var names []string
	for _, pr := range plan(Settings{BasePort: 21000}.withDefaults(), p, newSecrets()) {
		names = append(names, pr.Name)
	}
	want := slices.DeleteFunc(Names(), func(n string) bool { return n == Prometheus })
	if !slices.Equal(names, want) {
		t.Errorf("planned %v, want %v", names, want)
	}
}
