package cluster

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Process names. Each is one OS process (nginx counts as one: its master,
// whose workers share its session).
const (
	LB        = "lb"
	Gateway1  = "gateway-1"
	Gateway2  = "gateway-2"
	Worker1   = "worker-1"
	Worker2   = "worker-2"
	Notifier  = "notifier"
	NATS1     = "nats-1"
	NATS2     = "nats-2"
	NATS3     = "nats-3"
	Redis     = "redis"
	MariaDB   = "mariadb"
	Toxiproxy = "toxiproxy"
	SMTP      = "smtp"
	// Prometheus runs only when Debian's prometheus is installed: it
	// scrapes the seckill processes every second and evaluates
	// deploy/prometheus/alerts.yml, so a chaos run can tell which alerts
	// its faults raised. A cluster without it lacks nothing else.
	Prometheus = "prometheus"
)

// Names lists every process a cluster may have, in start order. A cluster
// without Prometheus (the package is not installed) has all the others.
func Names() []string {
	return []string{Redis, MariaDB, NATS1, NATS2, NATS3, Toxiproxy, SMTP, Prometheus,
		Worker1, Worker2, Notifier, Gateway1, Gateway2, LB}
}

// RulesFile is the alerting rules the cluster's Prometheus loads, relative
// to the repository root.
const RulesFile = "deploy/prometheus/alerts.yml"

// ProxyNames lists toxiproxy's proxies. Each carries the name of the
// backend process it stands in front of: the seckill processes reach Redis
// through proxy "redis", MariaDB through "mariadb" and NATS node n through
// "nats-n", never directly.
func ProxyNames() []string { return []string{Redis, MariaDB, NATS1, NATS2, NATS3} }

// Queue sync policies (SECKILL_QUEUE_SYNC), and each NATS node's
// jetstream sync_interval with them.
const (
	// QueueSyncAlways: every JetStream write is fsynced before it is
	// acknowledged (sync_interval: always), so a 202 survives a power loss.
	QueueSyncAlways = "always"
	// QueueSyncInterval: writes reach the disk within Settings.SyncInterval;
	// a crash of a node loses nothing its replicas hold.
	QueueSyncInterval = "interval"
)

// Rate limit profiles of the gateways (Settings.Limits).
const (
	// LimitsLoadTest lifts the global and per-IP limits to
	// LoadTestRate, as the spike tool's in-process gateway does: the whole
	// load generator is one client IP, and the limiter would otherwise be
	// what a run measures. The per-user limit stays at the product default.
	LimitsLoadTest = "loadtest"
	// LimitsProduction keeps the product defaults (and whatever --set
	// gives): 20,000/s global and 10,000/s per IP, each per gateway.
	LimitsProduction = "production"
)

// LoadTestRate is the global and per-IP rate (and burst) of each gateway
// under LimitsLoadTest.
const LoadTestRate = 1_000_000

// Defaults of Config.
const (
	// DefaultBasePort is the first of the cluster's ports; it uses
	// PortSpan of them from there.
	DefaultBasePort = 18000
	// DefaultDirName is the state directory under the repository root.
	DefaultDirName = ".cluster"
	// DefaultSyncInterval is nats-server's own default, made explicit.
	DefaultSyncInterval = 2 * time.Minute
	// DefaultReadyTimeout bounds each wait for a group of processes to be
	// ready (MariaDB's first initialisation is the slow one).
	DefaultReadyTimeout = 3 * time.Minute
	// DefaultStopTimeout is how long a process gets after SIGTERM before
	// it is killed. The seckill processes drain within shutdownTimeout,
	// well inside it.
	DefaultStopTimeout = 20 * time.Second
)

// shutdownTimeout is the seckill processes' SECKILL_SHUTDOWN_TIMEOUT.
const shutdownTimeout = 10 * time.Second

// Settings are what a running cluster is: Up refuses to add to a cluster
// that runs with other settings.
type Settings struct {
	// BasePort is the first port; the cluster listens on 127.0.0.1 from
	// there to BasePort+PortSpan-1. Default DefaultBasePort.
	BasePort int `json:"base_port"`
	// QueueSync is QueueSyncAlways (default) or QueueSyncInterval: the
	// SECKILL_QUEUE_SYNC of the seckill processes and the sync_interval of
	// the NATS nodes.
	QueueSync string `json:"queue_sync"`
	// SyncInterval is the NATS nodes' sync_interval under
	// QueueSyncInterval. Default DefaultSyncInterval.
	SyncInterval time.Duration `json:"sync_interval"`
	// Demo runs the seckill processes with SECKILL_DEMO=true, as `make
	// run` does: the demo login on, buy tokens off, a demo activity, and
	// demo contacts, so the notifier has someone to mail.
	Demo bool `json:"demo"`
	// Limits is LimitsLoadTest (default) or LimitsProduction.
	Limits string `json:"limits"`
	// Env holds more SECKILL_* settings for every seckill process; they
	// win over the cluster's own.
	Env map[string]string `json:"env,omitempty"`
}

// Config is how Up starts a cluster. The zero value of each field selects
// its default.
type Config struct {
	Settings

	// Root is the repository root: where the go.work is. Default: the
	// nearest directory holding go.work at or above the working directory.
	Root string
	// Dir holds the state file, the data and the logs. Default
	// Root/DefaultDirName.
	Dir string
	// BinDir holds seckill-gateway, seckill-order-worker and
	// seckill-notifier (`make build`). Default Root/bin.
	BinDir string
	// CacheDir is where nats-server and toxiproxy-server are built, once
	// per version. Default $XDG_CACHE_HOME/seckill/bin (or
	// ~/.cache/seckill/bin), where scripts/ci-services.sh builds
	// nats-server too.
	CacheDir string
	// Install installs missing OS packages with apt-get (sudo unless
	// root) instead of failing with the command that would.
	Install bool
	// ReadyTimeout: see DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// StopTimeout: see DefaultStopTimeout.
	StopTimeout time.Duration
	// Log receives progress lines. Default: discarded.
	Log io.Writer
	// ExitWithCaller has the kernel kill every process when the thread
	// that started it exits (Linux's parent-death signal): for tests, so
	// a test binary killed by its timeout leaves nothing behind. Off, the
	// processes outlive the caller, as `make cluster-up` needs.
	ExitWithCaller bool
}

func (s Settings) withDefaults() Settings {
	if s.BasePort == 0 {
		s.BasePort = DefaultBasePort
	}
	if s.QueueSync == "" {
		s.QueueSync = QueueSyncAlways
	}
	if s.SyncInterval == 0 {
		s.SyncInterval = DefaultSyncInterval
	}
	if s.Limits == "" {
		s.Limits = LimitsLoadTest
	}
	if s.QueueSync == QueueSyncAlways {
		s.SyncInterval = DefaultSyncInterval // not used: keep equal settings equal
	}
	return s
}

func (s Settings) validate() error {
	var errs []error
	if s.BasePort < 1024 || s.BasePort+PortSpan-1 > 65535 {
		errs = append(errs, fmt.Errorf("base port %d: must be 1024..%d (the cluster uses %d ports from it)", s.BasePort, 65535-PortSpan+1, PortSpan))
	}
	switch s.QueueSync {
	case QueueSyncAlways, QueueSyncInterval:
	default:
		errs = append(errs, fmt.Errorf("queue sync %q: must be %s or %s", s.QueueSync, QueueSyncAlways, QueueSyncInterval))
	}
	if s.SyncInterval < 0 {
		errs = append(errs, fmt.Errorf("sync interval %s: must be positive", s.SyncInterval))
	}
	switch s.Limits {
	case LimitsLoadTest, LimitsProduction:
	default:
		errs = append(errs, fmt.Errorf("limits %q: must be %s or %s", s.Limits, LimitsLoadTest, LimitsProduction))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if !strings.HasPrefix(k, "SECKILL_") || strings.ContainsAny(k, "= \t\n") {
			errs = append(errs, fmt.Errorf("setting %q: only SECKILL_* variables can be set", k))
		}
		if k == "SECKILL_QUEUE_SYNC" {
			errs = append(errs, errors.New("setting SECKILL_QUEUE_SYNC: use the queue sync option (--queue-sync), which sets the NATS nodes' sync_interval to match"))
		}
	}
	return errors.Join(errs...)
}

// equal reports whether two clusters would be the same.
func (s Settings) equal(o Settings) bool {
	return s.BasePort == o.BasePort && s.QueueSync == o.QueueSync && s.SyncInterval == o.SyncInterval &&
		s.Demo == o.Demo && s.Limits == o.Limits && maps.Equal(s.Env, o.Env)
}

// diff names the settings that differ, for the error that refuses them.
func (s Settings) diff(o Settings) string {
	var d []string
	add := func(name string, a, b any) {
		if a != b {
			d = append(d, fmt.Sprintf("%s %v (running) vs %v", name, a, b))
		}
	}
	add("base port", s.BasePort, o.BasePort)
	add("queue sync", s.QueueSync, o.QueueSync)
	add("sync interval", s.SyncInterval, o.SyncInterval)
	add("demo", s.Demo, o.Demo)
	add("limits", s.Limits, o.Limits)
	if !maps.Equal(s.Env, o.Env) {
		d = append(d, fmt.Sprintf("settings %v (running) vs %v", s.Env, o.Env))
	}
	return strings.Join(d, ", ")
}

func (c Config) withDefaults() (Config, error) {
	c.Settings = c.Settings.withDefaults()
	if c.Root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return c, err
		}
		if c.Root, err = FindRoot(wd); err != nil {
			return c, err
		}
	}
	var err error
	if c.Root, err = filepath.Abs(c.Root); err != nil {
		return c, err
	}
	if c.Dir == "" {
		c.Dir = filepath.Join(c.Root, DefaultDirName)
	}
	if c.BinDir == "" {
		c.BinDir = filepath.Join(c.Root, "bin")
	}
	if c.CacheDir == "" {
		c.CacheDir = defaultCacheDir()
	}
	for _, p := range []*string{&c.Dir, &c.BinDir, &c.CacheDir} {
		if *p, err = filepath.Abs(*p); err != nil {
			return c, err
		}
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c, c.Settings.validate()
}

func defaultCacheDir() string {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "seckill", "bin")
}

// FindRoot returns the nearest directory at or above dir that holds a
// go.work: the repository root.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("cluster: no go.work at or above %s: run from the seckill repository (or set the root)", dir)
		}
	}
}
