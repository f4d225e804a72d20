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
)

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

// Dir is the cluster's state directory.
func (c *Cluster) Dir() string { return c.dir }

// Settings are the settings the cluster runs with.
func (c *Cluster) Settings() Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Settings
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
