package cluster

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// PortSpan is how many ports from Settings.BasePort the cluster uses.
const PortSpan = 52

// Port offsets from Settings.BasePort. Metrics listeners sit 10 above
// their process's HTTP port.
const (
	offLB           = 0
	offGateway      = 1 // gateway-1, gateway-2
	offWorker       = 3 // worker-1, worker-2
	offNotifier     = 5
	offMetrics      = 10
	offNATSClient   = 20 // nats-1..3: 20..22
	offNATSCluster  = 23 // 23..25
	offNATSMonitor  = 26 // 26..28
	offRedis        = 30
	offMariaDB      = 31
	offPrometheus   = 32
	offToxiproxyAPI = 40
	offProxy        = 41 // in ProxyNames order: redis, mariadb, nats-1..3
	offSMTP         = 50
	offInbox        = 51
)

// Port names, as Process.Port takes them.
const (
	PortHTTP    = "http"    // a seckill process's SECKILL_HTTP_ADDR; nginx's front door
	PortMetrics = "metrics" // a seckill process's SECKILL_METRICS_ADDR
	PortClient  = "client"  // a NATS node's clients, Redis's, MariaDB's: the backend itself
	PortProxy   = "proxy"   // toxiproxy's listener in front of a backend: what the seckill processes dial
	PortCluster = "cluster" // a NATS node's routes
	PortMonitor = "monitor" // a NATS node's HTTP monitoring
	PortAPI     = "api"     // toxiproxy's HTTP API
	PortSMTP    = "smtp"    // the SMTP sink
	PortInbox   = "inbox"   // the SMTP sink's HTTP inbox
)

// Port is one listener of a process, on 127.0.0.1.
type Port struct {
	Name string `json:"name"`
	Port int    `json:"port"`
}

// kinds of process: how each is started, probed and stopped.
const (
	kindLB        = "nginx"
	kindGateway   = "gateway"
	kindWorker    = "order-worker"
	kindNotifier  = "notifier"
	kindNATS      = "nats"
	kindRedis     = "redis"
	kindMariaDB   = "mariadb"
	kindToxiproxy = "toxiproxy"
	kindSMTP      = "smtp"
	kindProm      = "prometheus"
)

// proc is one process as the state file keeps it: enough to start it again
// exactly as before, and to recognise it while it runs.
type proc struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	Argv  []string `json:"argv"`
	Env   []string `json:"env"`
	Dir   string   `json:"dir"` // working directory
	Log   string   `json:"log"`
	Ports []Port   `json:"ports"`
	// StopSignal asks the process to finish (nginx: SIGQUIT, its graceful
	// stop; the others SIGTERM).
	StopSignal syscall.Signal `json:"stop_signal"`
	// PID and StartTicks identify the running process: a pid whose start
	// time (in clock ticks since boot, /proc/<pid>/stat) differs is
	// someone else's. 0 when not started.
	PID        int    `json:"pid,omitempty"`
	StartTicks uint64 `json:"start_ticks,omitempty"`
}

func (p *proc) port(name string) int {
	for _, pt := range p.Ports {
		if pt.Name == name {
			return pt.Port
		}
	}
	return 0
}

// paths are where the programs and files of a cluster are.
type paths struct {
	dir     string // Config.Dir
	logs    string
	binDir  string // the seckill binaries
	toolBin string // the cluster tool itself, for the SMTP sink

	nginx, redisServer, mariadbd, installDB string
	natsServer, toxiproxy                   string
	// prometheus is Debian's prometheus, "" when it is not installed (the
	// cluster then runs without it); rules is the alerting rules file it
	// loads, deploy/prometheus/alerts.yml of the checkout.
	prometheus, rules string
}

func newPaths(c Config) paths {
	return paths{
		dir: c.Dir, logs: filepath.Join(c.Dir, "logs"), binDir: c.BinDir,
		toolBin: filepath.Join(c.Dir, "bin", "seckill-cluster"),
	}
}

func (p paths) proc(name string) string { return filepath.Join(p.dir, name) }
func (p paths) logFile(name string) string {
	return filepath.Join(p.logs, name+".log")
}

// Files of the processes, under paths.dir.
func (p paths) nginxConf() string        { return filepath.Join(p.proc(LB), "nginx.conf") }
func (p paths) natsConf(n string) string { return filepath.Join(p.proc(n), "nats.conf") }
func (p paths) proxiesJSON() string      { return filepath.Join(p.proc(Toxiproxy), "proxies.json") }
func (p paths) mariadbData() string      { return filepath.Join(p.proc(MariaDB), "data") }
func (p paths) mailDir() string          { return filepath.Join(p.proc(SMTP), "mail") }
func (p paths) prometheusConf() string   { return filepath.Join(p.proc(Prometheus), "prometheus.yml") }

// mariadbSocket is MariaDB's unix socket, which it always creates: a path
// longer than a sun_path (108 bytes) cannot be bound, so a deep checkout
// puts it in the temp directory (as scripts/services.sh does).
func (p paths) mariadbSocket(port int) string {
	s := filepath.Join(p.proc(MariaDB), "mariadb.sock")
	if len(s) > 100 {
		s = filepath.Join("/tmp", fmt.Sprintf("seckill-cluster-mariadb-%d-%d.sock", syscall.Getuid(), port))
	}
	return s
}

// secrets are shared by the gateways and kept across restarts, so user
// tokens and the admin token stay valid.
type secrets struct {
	JWTSecret  string `json:"jwt_secret"`
	AdminToken string `json:"admin_token"`
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// layout is the port of each listener, from the settings alone.
type layout struct{ base int }

func (l layout) lb() int                 { return l.base + offLB }
func (l layout) http(name string) int    { return l.base + httpOffset(name) }
func (l layout) metrics(name string) int { return l.base + httpOffset(name) + offMetrics }
func (l layout) natsClient(i int) int    { return l.base + offNATSClient + i }
func (l layout) natsCluster(i int) int   { return l.base + offNATSCluster + i }
func (l layout) natsMonitor(i int) int   { return l.base + offNATSMonitor + i }
func (l layout) redis() int              { return l.base + offRedis }
func (l layout) mariadb() int            { return l.base + offMariaDB }
func (l layout) toxiAPI() int            { return l.base + offToxiproxyAPI }
func (l layout) smtp() int               { return l.base + offSMTP }
func (l layout) inbox() int              { return l.base + offInbox }
func (l layout) prometheus() int         { return l.base + offPrometheus }

// proxy is the toxiproxy listener in front of the backend named name.
func (l layout) proxy(name string) int {
	return l.base + offProxy + slices.Index(ProxyNames(), name)
}

func httpOffset(name string) int {
	switch name {
	case Gateway1:
		return offGateway
	case Gateway2:
		return offGateway + 1
	case Worker1:
		return offWorker
	case Worker2:
		return offWorker + 1
	case Notifier:
		return offNotifier
	}
	panic("cluster: no HTTP port for " + name)
}

// natsNames are the NATS nodes, in order.
func natsNames() [3]string { return [3]string{NATS1, NATS2, NATS3} }

// natsURLs are the NATS URLs the seckill processes get: the nodes'
// toxiproxy listeners.
func (l layout) natsURLs() string {
	s := ""
	for i, n := range natsNames() {
		if i > 0 {
			s += ","
		}
		s += "nats://" + addr(l.proxy(n))
	}
	return s
}

// dbName is the database the seckill processes use.
const dbName = "seckill"

// dsn is the MariaDB DSN on port (the proxy's for the processes, the
// server's own for an audit).
func dsn(port int) string {
	return fmt.Sprintf("root@tcp(%s)/%s?parseTime=true", addr(port), dbName)
}

// plan lists every process of a cluster with its command line and
// environment. It starts nothing.
func plan(s Settings, p paths, sec secrets) []*proc {
	l := layout{s.BasePort}
	var procs []*proc
	add := func(pr *proc) {
		pr.Dir = p.proc(pr.Name)
		pr.Log = p.logFile(pr.Name)
		if pr.StopSignal == 0 {
			pr.StopSignal = syscall.SIGTERM
		}
		procs = append(procs, pr)
	}

	add(&proc{
		Name: Redis, Kind: kindRedis,
		Argv: []string{p.redisServer,
			"--bind", "127.0.0.1", "--port", strconv.Itoa(l.redis()),
			"--dir", p.proc(Redis), "--daemonize", "no", "--logfile", "",
			// No persistence: RestartRedisEmpty is a restart, and an
			// empty Redis is the fault the pipeline must recover from.
			"--save", "", "--appendonly", "no",
			// Stock and reservations have no TTL: never evict them.
			"--maxmemory-policy", "noeviction"},
		Env:   baseEnv(),
		Ports: []Port{{PortClient, l.redis()}, {PortProxy, l.proxy(Redis)}},
	})
	mariadbArgs := []string{p.mariadbd, "--no-defaults"}
	if syscall.Geteuid() == 0 {
		mariadbArgs = append(mariadbArgs, "--user=root") // it refuses root otherwise
	}
	add(&proc{
		Name: MariaDB, Kind: kindMariaDB,
		Argv: append(mariadbArgs,
			"--datadir="+p.mariadbData(), "--bind-address=127.0.0.1", "--port="+strconv.Itoa(l.mariadb()),
			"--socket="+p.mariadbSocket(l.mariadb()), "--pid-file="+filepath.Join(p.proc(MariaDB), "mariadb.pid"),
			"--skip-name-resolve",
			// 2 gateways, 2 workers and a notifier, each with its pool.
			"--max-connections=500"),
		Env:   baseEnv(),
		Ports: []Port{{PortClient, l.mariadb()}, {PortProxy, l.proxy(MariaDB)}},
	})
	for i, n := range natsNames() {
		add(&proc{
			Name: n, Kind: kindNATS,
			Argv: []string{p.natsServer, "-c", p.natsConf(n)},
			Env:  baseEnv(),
			Ports: []Port{{PortClient, l.natsClient(i)}, {PortProxy, l.proxy(n)},
				{PortCluster, l.natsCluster(i)}, {PortMonitor, l.natsMonitor(i)}},
		})
	}
	toxiPorts := []Port{{PortAPI, l.toxiAPI()}}
	add(&proc{
		Name: Toxiproxy, Kind: kindToxiproxy,
		// The proxies come from the file at every start, so a restarted
		// toxiproxy serves them again (without the toxics it had).
		Argv:  []string{p.toxiproxy, "-host", "127.0.0.1", "-port", strconv.Itoa(l.toxiAPI()), "-config", p.proxiesJSON()},
		Env:   baseEnv(),
		Ports: toxiPorts,
	})
	add(&proc{
		Name: SMTP, Kind: kindSMTP,
		Argv:  []string{p.toolBin, "smtp-sink", "--smtp", addr(l.smtp()), "--http", addr(l.inbox()), "--dir", p.mailDir()},
		Env:   baseEnv(),
		Ports: []Port{{PortSMTP, l.smtp()}, {PortInbox, l.inbox()}},
	})
	if p.prometheus != "" {
		add(&proc{
			Name: Prometheus, Kind: kindProm,
			Argv: []string{p.prometheus, "--config.file=" + p.prometheusConf(),
				"--storage.tsdb.path=" + filepath.Join(p.proc(Prometheus), "data"),
				"--storage.tsdb.retention.time=2d",
				"--web.listen-address=" + addr(l.prometheus())},
			Env:   baseEnv(),
			Ports: []Port{{PortHTTP, l.prometheus()}},
		})
	}

	for _, n := range []string{Worker1, Worker2} {
		add(&proc{
			Name: n, Kind: kindWorker,
			Argv:  []string{filepath.Join(p.binDir, "seckill-order-worker")},
			Env:   seckillEnv(s, p, l, n, sec),
			Ports: []Port{{PortHTTP, l.http(n)}, {PortMetrics, l.metrics(n)}},
		})
	}
	add(&proc{
		Name: Notifier, Kind: kindNotifier,
		Argv:  []string{filepath.Join(p.binDir, "seckill-notifier")},
		Env:   seckillEnv(s, p, l, Notifier, sec),
		Ports: []Port{{PortHTTP, l.http(Notifier)}, {PortMetrics, l.metrics(Notifier)}},
	})
	for _, n := range []string{Gateway1, Gateway2} {
		add(&proc{
			Name: n, Kind: kindGateway,
			Argv:  []string{filepath.Join(p.binDir, "seckill-gateway")},
			Env:   seckillEnv(s, p, l, n, sec),
			Ports: []Port{{PortHTTP, l.http(n)}, {PortMetrics, l.metrics(n)}},
		})
	}
	add(&proc{
		Name: LB, Kind: kindLB,
		// -e: the error log before the configuration is read, which
		// would otherwise be the package's /var/log/nginx/error.log.
		Argv:       []string{p.nginx, "-p", p.proc(LB) + "/", "-c", p.nginxConf(), "-e", filepath.Join(p.logs, "lb.error.log")},
		Env:        baseEnv(),
		Ports:      []Port{{PortHTTP, l.lb()}},
		StopSignal: syscall.SIGQUIT,
	})
	return procs
}

// baseEnv is what every process inherits from the caller: only what
// programs need to run. The caller's own SECKILL_* variables (from an
// `eval` of services-env, say) must not leak into the cluster.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// seckillEnv is the configuration of one seckill process: the production
// configuration of deploy/k8s, on the cluster's ports, through toxiproxy.
func seckillEnv(s Settings, p paths, l layout, name string, sec secrets) []string {
	kv := map[string]string{
		"SECKILL_HTTP_ADDR":        addr(l.http(name)),
		"SECKILL_METRICS_ADDR":     addr(l.metrics(name)),
		"SECKILL_DATA_DIR":         filepath.Join(p.proc(name), "data"),
		"SECKILL_MQ":               "nats",
		"SECKILL_NATS_URL":         l.natsURLs(),
		"SECKILL_NATS_REPLICAS":    "3",
		"SECKILL_QUEUE_SYNC":       s.QueueSync,
		"SECKILL_DB_DSN":           dsn(l.proxy(MariaDB)),
		"SECKILL_DEMO":             strconv.FormatBool(s.Demo),
		"SECKILL_LOG_FORMAT":       "json",
		"SECKILL_LOG_LEVEL":        "info",
		"SECKILL_SHUTDOWN_TIMEOUT": shutdownTimeout.String(),
	}
	switch name {
	case Gateway1, Gateway2, Worker1, Worker2:
		kv["SECKILL_REDIS_URL"] = "redis://" + addr(l.proxy(Redis)) + "/0"
		kv["SECKILL_REDIS_PREFIX"] = "seckill"
	}
	switch name {
	case Gateway1, Gateway2:
		kv["SECKILL_JWT_SECRET"] = sec.JWTSecret
		kv["SECKILL_ADMIN_TOKEN"] = sec.AdminToken
		// nginx is the only client of the gateways' ports, and it sets
		// X-Forwarded-For to the address of its own client: believe it,
		// or every buyer shares nginx's per-IP bucket.
		kv["SECKILL_TRUSTED_PROXIES"] = "127.0.0.1"
		if s.Limits == LimitsLoadTest {
			rate := strconv.Itoa(LoadTestRate)
			for _, k := range []string{"SECKILL_RATE_GLOBAL", "SECKILL_RATE_GLOBAL_BURST", "SECKILL_RATE_PER_IP", "SECKILL_RATE_PER_IP_BURST"} {
				kv[k] = rate
			}
		}
	case Notifier:
		kv["SECKILL_SMTP_URL"] = "smtp://" + addr(l.smtp())
		kv["SECKILL_SMTP_STARTTLS"] = "none" // the sink speaks plain SMTP on loopback
		kv["SECKILL_SMTP_FROM"] = "Flash Sale <no-reply@seckill.local>"
		kv["SECKILL_MAIL_RATE"] = "50"
		kv["SECKILL_MAIL_BURST"] = "100"
	}
	maps.Copy(kv, s.Env)
	env := baseEnv()
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		env = append(env, k+"="+kv[k])
	}
	return env
}

// allPorts lists every port the cluster listens on, for the check that
// they are free.
func allPorts(procs []*proc) []Port {
	var ports []Port
	for _, pr := range procs {
		for _, pt := range pr.Ports {
			ports = append(ports, Port{pr.Name + " " + pt.Name, pt.Port})
		}
	}
	return ports
}
