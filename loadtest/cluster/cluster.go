package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
)

// Errors of the per-process controls.
var (
	// ErrUnknownProcess: the name is none of the cluster's (Cluster.Names).
	ErrUnknownProcess = errors.New("cluster: unknown process")
	// ErrNotRunning: the process is not running (Kill, Pause, Resume).
	ErrNotRunning = errors.New("cluster: process not running")
)

// routeSettle is how long after its start a NATS cluster's routes may still
// change: a node that started before its peers listened dials them again a
// second later and drops the duplicate routes. JetStream API requests made
// before then are sometimes lost (see testkit.StartNATSClusterNodes).
const routeSettle = 2 * time.Second

// Cluster is a handle on a cluster's processes, from Up or Load. One
// Cluster value at a time should control a cluster: each keeps its own copy
// of the state file and writes it back when it restarts a process. Its
// methods are safe for concurrent use.
type Cluster struct {
	dir string
	log io.Writer

	mu sync.Mutex
	st *state
	// logMu serialises the progress lines: processes start and stop in
	// goroutines of their own, and Config.Log need not be safe for
	// concurrent writes (a bytes.Buffer, a test's writer).
	logMu sync.Mutex
}

// Up starts a cluster as cfg says and waits until every process is ready:
// the backends answer, the NATS nodes agree on a JetStream meta leader,
// toxiproxy serves every proxy, each seckill process's /readyz and the
// front door's /readyz answer 200.
//
// Up on a running cluster with the same settings starts what is down (a
// no-op when nothing is) and returns it; with other settings it is an
// error. Data (MariaDB, the NATS stores, the mail) and the secrets are kept
// from an earlier run in cfg.Dir; Redis starts empty. When a process fails
// to start, Up stops what it started and returns the error with the end of
// that process's log.
func Up(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	st, err := readState(cfg.Dir)
	if err != nil && !errors.Is(err, ErrNoCluster) {
		return nil, err
	}
	c := &Cluster{dir: cfg.Dir, log: cfg.Log}
	if st != nil && st.anyAlive() {
		if !st.Settings.equal(cfg.Settings) {
			return nil, fmt.Errorf("cluster: already running from %s with other settings (%s): stop it first (make cluster-down)", cfg.Dir, st.Settings.diff(cfg.Settings))
		}
		c.st = st
		down := c.notRunning()
		if len(down) == 0 {
			fmt.Fprintf(cfg.Log, "cluster: already up (state in %s)\n", cfg.Dir)
			return c, nil
		}
		fmt.Fprintf(cfg.Log, "cluster: partly up; starting %s\n", strings.Join(down, ", "))
		for _, stage := range stages(st.Settings.Demo) {
			var todo []string
			for _, n := range stage {
				if slices.Contains(down, n) {
					todo = append(todo, n)
				}
			}
			if err := c.startGroup(ctx, todo, nil); err != nil {
				return nil, err
			}
		}
		return c, nil
	}

	sec := newSecrets()
	if st != nil && st.Secrets.JWTSecret != "" {
		sec = st.Secrets // warm start: tokens handed out before stay valid
	}
	p := newPaths(cfg)
	if err := locatePrograms(ctx, &p, cfg.Install, cfg.Log); err != nil {
		return nil, err
	}
	if p.prometheus != "" {
		p.rules = filepath.Join(cfg.Root, RulesFile)
		if _, err := os.Stat(p.rules); err != nil {
			fmt.Fprintf(cfg.Log, "cluster: no alerting rules at %s: running without prometheus\n", p.rules)
			p.prometheus = ""
		}
	} else {
		fmt.Fprintln(cfg.Log, "cluster: prometheus is not installed (apt-get install prometheus): running without it, so chaos reports list no alerts")
	}
	if err := checkBinaries(cfg.BinDir); err != nil {
		return nil, err
	}
	if err := buildHelpers(ctx, cfg.Root, cfg.CacheDir, &p, cfg.Log); err != nil {
		return nil, err
	}
	procs := plan(cfg.Settings, p, sec)
	if err := portsFree(allPorts(procs)); err != nil {
		return nil, err
	}
	if err := writeConfigs(cfg.Settings, p, procs); err != nil {
		return nil, err
	}
	if err := nginxTest(ctx, p); err != nil {
		return nil, err
	}
	c.st = &state{
		Version: stateVersion, Settings: cfg.Settings, Secrets: sec, Root: cfg.Root,
		ExitWithCaller: cfg.ExitWithCaller,
		ReadyTimeout:   int64(cfg.ReadyTimeout), StopTimeout: int64(cfg.StopTimeout),
		Procs: procs,
	}
	if err := c.save(); err != nil {
		return nil, err
	}
	if err := c.startAll(ctx, p); err != nil {
		fmt.Fprintf(cfg.Log, "cluster: start failed; stopping what was started (logs stay in %s)\n", p.logs)
		if serr := c.stopAll(context.Background()); serr != nil {
			err = errors.Join(err, serr)
		}
		return nil, err
	}
	return c, nil
}

// Load returns the cluster whose state is in dir (Config.Dir), running or
// not; ErrNoCluster when there is none.
func Load(dir string) (*Cluster, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	return &Cluster{dir: dir, log: io.Discard, st: st}, nil
}

// SetLog sends the progress of later calls to w.
func (c *Cluster) SetLog(w io.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = w
}

// logf writes one progress line.
func (c *Cluster) logf(format string, args ...any) {
	c.mu.Lock()
	w := c.log
	c.mu.Unlock()
	c.logMu.Lock()
	defer c.logMu.Unlock()
	fmt.Fprintf(w, "cluster: "+format+"\n", args...)
}

// stages are the groups of processes started together, each after the
// previous one is ready: backends, then the services, then the front door.
// In demo mode the second gateway waits for the first, which seeds the
// demo activity when there is none: two at once would seed two.
func stages(demo bool) [][]string {
	backends := []string{Redis, MariaDB, NATS1, NATS2, NATS3, Toxiproxy, SMTP, Prometheus}
	if demo {
		return [][]string{backends, {Worker1, Worker2, Notifier, Gateway1}, {Gateway2}, {LB}}
	}
	return [][]string{backends, {Worker1, Worker2, Notifier, Gateway1, Gateway2}, {LB}}
}

func (c *Cluster) startAll(ctx context.Context, p paths) error {
	for i, stage := range stages(c.st.Settings.Demo) {
		var prepare func(context.Context, string) error
		if i == 0 {
			prepare = func(ctx context.Context, name string) error {
				if name == MariaDB {
					return initMariaDB(ctx, p, c.st.proc(MariaDB), c.logf)
				}
				return nil
			}
		}
		start := time.Now()
		if err := c.startGroup(ctx, stage, prepare); err != nil {
			return err
		}
		if i == 0 {
			if err := c.backendsReady(ctx, start); err != nil {
				return err
			}
		}
	}
	return nil
}

// startGroup starts the named processes at once (each after prepare, when
// given) and waits until all are ready. Names the cluster does not have
// (Prometheus, when it is not installed) are left out.
func (c *Cluster) startGroup(ctx context.Context, names []string, prepare func(context.Context, string) error) error {
	c.mu.Lock()
	names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return c.st.proc(n) == nil })
	c.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.st.ReadyTimeout))
	defer cancel()
	c.logf("starting %s", strings.Join(names, ", "))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			if prepare != nil {
				if errs[i] = prepare(ctx, n); errs[i] != nil {
					return
				}
			}
			errs[i] = c.launchAndWait(ctx, n)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// launchAndWait starts one process (unless it runs), records it, and waits
// until it is ready.
func (c *Cluster) launchAndWait(ctx context.Context, name string) error {
	c.mu.Lock()
	p := c.st.proc(name)
	if p == nil {
		c.mu.Unlock()
		return fmt.Errorf("%w %q", ErrUnknownProcess, name)
	}
	if _, ok := p.alive(); !ok {
		if err := p.launch(c.st.ExitWithCaller); err != nil {
			c.mu.Unlock()
			return err
		}
		if err := writeState(c.dir, c.st); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	snapshot := *p
	c.mu.Unlock()
	return waitReady(ctx, &snapshot)
}

// backendsReady finishes the backends' start: the NATS nodes form one
// JetStream cluster and their routes settle, and MariaDB has the database.
func (c *Cluster) backendsReady(ctx context.Context, launched time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.st.ReadyTimeout))
	defer cancel()
	nodes := c.procs(NATS1, NATS2, NATS3)
	if err := pollUntil(ctx, func() error { return natsClusterReady(ctx, nodes) }); err != nil {
		return fmt.Errorf("cluster: the NATS nodes did not form a JetStream cluster: %w", err)
	}
	select {
	case <-time.After(time.Until(launched.Add(routeSettle))):
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := pollUntil(ctx, func() error { return natsClusterReady(ctx, nodes) }); err != nil {
		return fmt.Errorf("cluster: the NATS cluster did not settle: %w", err)
	}
	db, err := openDB(addr(c.st.proc(MariaDB).port(PortClient)), "")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+dbName+" CHARACTER SET utf8mb4"); err != nil {
		return fmt.Errorf("cluster: mariadb: create database %s as root without a password: %w (is %s from another setup? make cluster-down ARGS=--purge starts afresh)", dbName, err, c.dir)
	}
	return nil
}

// pollUntil calls check every 100 ms until it passes or ctx ends.
func pollUntil(ctx context.Context, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// initMariaDB makes MariaDB's data directory the first time: into a
// scratch directory first, so an interrupted run leaves no half-made data
// directory behind.
func initMariaDB(ctx context.Context, p paths, pr *proc, logf func(string, ...any)) error {
	data := p.mariadbData()
	if _, err := os.Stat(filepath.Join(data, "mysql")); err == nil {
		return nil
	}
	if _, err := os.Stat(data); err == nil {
		return fmt.Errorf("cluster: %s exists but holds no initialised database: move it away or purge the cluster (make cluster-down ARGS=--purge)", data)
	}
	logf("initialising mariadb in %s", data)
	scratch := data + ".init"
	if err := os.RemoveAll(scratch); err != nil {
		return err
	}
	args := []string{"--no-defaults"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	args = append(args, "--datadir="+scratch, "--auth-root-authentication-method=normal", "--skip-test-db")
	cmd := exec.CommandContext(ctx, p.installDB, args...)
	logPath := filepath.Join(p.logs, "mariadb-install.log")
	out, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr, cmd.Env = out, out, pr.Env
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cluster: %s failed: %w; the end of %s:\n%s", p.installDB, err, logPath, tail(logPath, 20))
	}
	return os.Rename(scratch, data)
}

// nginxTest has nginx check the generated configuration.
func nginxTest(ctx context.Context, p paths) error {
	out, err := exec.CommandContext(ctx, p.nginx, "-t", "-q", "-p", p.proc(LB)+"/", "-c", p.nginxConf(),
		"-e", filepath.Join(p.logs, "lb.error.log")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cluster: nginx -t refuses %s: %w\n%s", p.nginxConf(), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// portsFree checks that every port can be listened on.
func portsFree(ports []Port) error {
	var taken []string
	for _, pt := range ports {
		ln, err := net.Listen("tcp", addr(pt.Port))
		if err != nil {
			taken = append(taken, fmt.Sprintf("%d (%s)", pt.Port, pt.Name))
			continue
		}
		ln.Close()
	}
	if len(taken) > 0 {
		return fmt.Errorf("cluster: ports in use on 127.0.0.1: %s; choose another base port (--base-port; the cluster uses %d ports from it)", strings.Join(taken, ", "), PortSpan)
	}
	return nil
}

func newSecrets() secrets {
	return secrets{JWTSecret: randomHex(32), AdminToken: randomHex(24)}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

func (s *state) anyAlive() bool {
	for _, p := range s.Procs {
		if _, ok := p.alive(); ok {
			return true
		}
	}
	return false
}

// notRunning lists the processes that do not run, in start order.
func (c *Cluster) notRunning() []string {
	var out []string
	for _, n := range Names() {
		if p := c.st.proc(n); p != nil {
			if _, ok := p.alive(); !ok {
				out = append(out, n)
			}
		}
	}
	return out
}

// procs returns copies of the named processes' records.
func (c *Cluster) procs(names ...string) []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*proc
	for _, n := range names {
		if p := c.st.proc(n); p != nil {
			cp := *p
			out = append(out, &cp)
		}
	}
	return out
}

func (c *Cluster) save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return writeState(c.dir, c.st)
}

// Down stops every process of the cluster: the front door first, then the
// gateways, the workers and the notifier (each drains), then the backends.
// Each gets its stop signal and Config.StopTimeout to finish, then SIGKILL.
// Only processes the state file records, and whose start times still
// match, are signalled. With purge, Dir is deleted afterwards: data, logs,
// secrets.
func (c *Cluster) Down(ctx context.Context, purge bool) error {
	unlock, err := lockDir(c.dir)
	if err != nil {
		return err
	}
	err = c.stopAll(ctx)
	unlock()
	if err != nil {
		return err
	}
	if purge {
		c.logf("deleting %s", c.dir)
		return os.RemoveAll(c.dir)
	}
	return nil
}

func (c *Cluster) stopAll(ctx context.Context) error {
	order := slices.Clone(stages(false))
	slices.Reverse(order)
	var errs []error
	for _, stage := range order {
		for _, group := range splitServices(stage) {
			errs = append(errs, c.stopGroup(ctx, group))
		}
	}
	c.mu.Lock()
	if sock := c.mariadbSocket(); sock != "" && strings.HasPrefix(sock, "/tmp/") {
		_ = os.Remove(sock)
	}
	err := writeState(c.dir, c.st)
	c.mu.Unlock()
	return errors.Join(append(errs, err)...)
}

// splitServices stops the gateways before the workers and the notifier, so
// no gateway publishes to a queue nobody drains; the backends go in two
// steps too, the proxies before what they stand in front of.
func splitServices(stage []string) [][]string {
	switch {
	case slices.Contains(stage, Gateway1):
		return [][]string{{Gateway1, Gateway2}, {Worker1, Worker2, Notifier}}
	case slices.Contains(stage, Redis):
		return [][]string{{Toxiproxy, SMTP, Prometheus}, {NATS1, NATS2, NATS3, Redis, MariaDB}}
	}
	return [][]string{stage}
}

func (c *Cluster) stopGroup(ctx context.Context, names []string) error {
	timeout := time.Duration(c.st.StopTimeout)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		c.mu.Lock()
		p := c.st.proc(n)
		c.mu.Unlock()
		if p == nil {
			continue
		}
		wg.Go(func() {
			c.mu.Lock()
			snapshot := *p
			c.mu.Unlock()
			_, running := snapshot.alive()
			if !running && len(snapshot.members()) == 0 {
				return
			}
			c.logf("stopping %s (pid %d)", n, snapshot.PID)
			errs[i] = snapshot.stop(ctx, timeout)
			if errs[i] == nil || snapshot.waitGone(0) {
				c.mu.Lock()
				if p.PID == snapshot.PID {
					p.PID, p.StartTicks = 0, 0
				}
				c.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Cluster) mariadbSocket() string {
	p := c.st.proc(MariaDB)
	if p == nil {
		return ""
	}
	for _, a := range p.Argv {
		if s, ok := strings.CutPrefix(a, "--socket="); ok {
			return s
		}
	}
	return ""
}

// Purge deletes dir, a cluster's state directory, when no process of a
// cluster recorded there runs. It refuses a directory that holds neither a
// state file nor the name DefaultDirName, so a wrong --dir cannot delete
// something else.
func Purge(dir string) error {
	st, err := readState(dir)
	switch {
	case err == nil:
		if st.anyAlive() {
			return fmt.Errorf("cluster: processes of the cluster in %s still run: stop it first", dir)
		}
	case errors.Is(err, ErrNoCluster):
		if filepath.Base(dir) != DefaultDirName {
			return fmt.Errorf("cluster: %s holds no cluster state: not deleting it", dir)
		}
	default:
		return err
	}
	return os.RemoveAll(dir)
}

// Process describes one process of the cluster.
type Process struct {
	Name  string
	PID   int // 0 when not running
	Ports []Port
	// Log is the file its output goes to.
	Log string
	// Proxy is the toxiproxy proxy the seckill processes reach this
	// backend through ("" for processes that are not behind one).
	Proxy string
}

// Port returns the port named name (PortHTTP, PortMetrics, ...), or 0.
func (p Process) Port(name string) int {
	for _, pt := range p.Ports {
		if pt.Name == name {
			return pt.Port
		}
	}
	return 0
}

// Process returns the named process.
func (c *Cluster) Process(name string) (Process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.st.proc(name)
	if p == nil {
		return Process{}, fmt.Errorf("%w %q (one of %s)", ErrUnknownProcess, name, strings.Join(Names(), ", "))
	}
	out := Process{Name: p.Name, Ports: slices.Clone(p.Ports), Log: p.Log}
	if _, ok := p.alive(); ok {
		out.PID = p.PID
	}
	if slices.Contains(ProxyNames(), name) {
		out.Proxy = name
	}
	return out, nil
}

// Processes returns every process, in start order.
func (c *Cluster) Processes() []Process {
	var out []Process
	for _, n := range Names() {
		if p, err := c.Process(n); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Dir is the cluster's state directory.
func (c *Cluster) Dir() string { return c.dir }

// Settings are the settings the cluster runs with.
func (c *Cluster) Settings() Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Settings
}

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

// Process states of ProcessStatus.
const (
	StateUp     = "up"
	StatePaused = "paused" // stopped by SIGSTOP (Pause)
	StateDown   = "down"
)

// ProcessStatus is what Status found about one process.
type ProcessStatus struct {
	Name  string
	State string // StateUp, StatePaused or StateDown
	PID   int    // 0 when down
	Ports []Port
	// Ready: its readiness probe passed (see Up for what each checks).
	Ready bool
	// Problem says why it is not ready.
	Problem string
}

// Status reports every process: up, paused or down, and ready or not.
func (c *Cluster) Status(ctx context.Context) []ProcessStatus {
	procs := c.procs(Names()...)
	out := make([]ProcessStatus, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() {
			s := ProcessStatus{Name: p.Name, State: StateDown, Ports: p.Ports}
			st, ok := p.alive()
			switch {
			case !ok:
				s.Problem = "not running"
			case st.state == 'T':
				s.State, s.PID, s.Problem = StatePaused, p.PID, "paused (SIGSTOP)"
			default:
				s.State, s.PID = StateUp, p.PID
				if err := probe(ctx, p); err != nil {
					s.Problem = err.Error()
				} else {
					s.Ready = true
				}
			}
			out[i] = s
		})
	}
	wg.Wait()
	return out
}

// StreamReplicas returns the configured replicas of each JetStream stream
// (3 when the seckill processes follow SECKILL_NATS_REPLICAS). A stream
// appears once a process has used its topic.
func (c *Cluster) StreamReplicas(ctx context.Context) (map[string]int, error) {
	return streamReplicas(ctx, c.procs(NATS1, NATS2, NATS3))
}

func (c *Cluster) known(name string) error {
	c.mu.Lock()
	p := c.st.proc(name)
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%w %q (one of %s)", ErrUnknownProcess, name, strings.Join(c.Names(), ", "))
	}
	return nil
}

// Names lists the processes this cluster has, in start order: Names()
// less Prometheus when it was not installed at cluster-up.
func (c *Cluster) Names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range Names() {
		if c.st.proc(n) != nil {
			out = append(out, n)
		}
	}
	return out
}

// signal sends sig to the whole session of the named running process.
func (c *Cluster) signal(name string, sig syscall.Signal) (proc, error) {
	if err := c.known(name); err != nil {
		return proc{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.st.proc(name)
	if _, ok := p.alive(); !ok {
		return proc{}, fmt.Errorf("%w: %s", ErrNotRunning, name)
	}
	if err := syscall.Kill(-p.PID, sig); err != nil {
		return proc{}, fmt.Errorf("cluster: %s %s: %w", sig, name, err)
	}
	return *p, nil
}

// Kill sends SIGKILL to the named process (and its workers, for nginx), as
// a crash would, and waits until it is gone. ErrNotRunning when it was not
// running.
func (c *Cluster) Kill(name string) error {
	p, err := c.signal(name, syscall.SIGKILL)
	if err != nil {
		return err
	}
	if !p.waitGone(10 * time.Second) {
		return fmt.Errorf("cluster: %s (pid %d) still runs 10s after SIGKILL", name, p.PID)
	}
	return nil
}

// Pause stops the named process with SIGSTOP: it holds its connections and
// answers nothing, as a process stuck in a long GC pause or on a frozen VM
// does. ErrNotRunning when it is not running.
func (c *Cluster) Pause(name string) error {
	_, err := c.signal(name, syscall.SIGSTOP)
	return err
}

// Resume continues a paused process (SIGCONT).
func (c *Cluster) Resume(name string) error {
	_, err := c.signal(name, syscall.SIGCONT)
	return err
}

// Start starts the named process again, with the same command line,
// environment and data as before, and waits until it is ready (a NATS node
// until it is current with its cluster). A running process is left alone.
func (c *Cluster) Start(ctx context.Context, name string) error {
	if err := c.known(name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.st.ReadyTimeout))
	defer cancel()
	return c.launchAndWait(ctx, name)
}

// WaitReady waits until the named processes (all when none are named) are
// ready, or ctx ends.
func (c *Cluster) WaitReady(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		names = Names()
	}
	for _, p := range c.procs(names...) {
		if err := pollUntil(ctx, func() error { return probe(ctx, p) }); err != nil {
			return fmt.Errorf("cluster: %s not ready: %w", p.Name, err)
		}
	}
	return nil
}

// RestartRedisEmpty kills Redis and starts it again, empty (it keeps no
// snapshot or log): the loss of every reservation, stock counter and
// sold-out mark at once, which the pipeline must repair from the database.
func (c *Cluster) RestartRedisEmpty(ctx context.Context) error {
	if err := c.Kill(Redis); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	if err := c.Start(ctx, Redis); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	n, err := redisCommand(pctx, addr(c.port(Redis, PortClient)), "DBSIZE")
	if err != nil {
		return err
	}
	if n != ":0" {
		// Something wrote already (a process reconnected through the
		// proxy): still a fresh Redis, but say what was seen.
		c.logf("redis restarted empty; it already holds %s keys", strings.TrimPrefix(n, ":"))
	}
	return nil
}
