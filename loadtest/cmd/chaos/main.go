// Command chaos is make chaos: it starts a fresh cluster in a box
// (loadtest/cluster), plays each fault schedule against a spike on it
// (the default schedule, then redis-empty), audits every run, writes the
// reports and stops the cluster.
//
// Exit status: 0 when every run passed its audit, 1 when an invariant was
// violated or the cluster could not be made whole after the faults, 2
// when the runs could not be carried out (bad flags or schedule, the
// cluster did not start). docs/chaos.md explains the runs and the report.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flashsale/seckill/loadtest/chaos"
	"github.com/flashsale/seckill/loadtest/cluster"
	"github.com/flashsale/seckill/loadtest/report"
	"github.com/flashsale/seckill/loadtest/scenario"
	"github.com/flashsale/seckill/loadtest/spike"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Defaults of make chaos: a crowd two shared CPUs carry alongside the 14
// processes of the cluster (docs/chaos.md has the wall time).
const (
	DefaultUsers      = spike.ChaosUsers
	DefaultBasePort   = 19000
	DefaultDirName    = ".cluster-chaos"
	DefaultOut        = "spike-report"
	DefaultSettle     = 60 * time.Second
	DefaultPayTimeout = 10 * time.Second
)

// DefaultSchedules are the schedules make chaos plays, one after the
// other, on the same cluster.
func DefaultSchedules() []string { return []string{"default", "redis-empty"} }

type config struct {
	dir, out  string
	schedules []chaos.Schedule
	cluster   cluster.Config
	keepUp    bool
	sc        scenario.Config
	// steady is the steady buyers' window; 0: each schedule's own
	// (spike.ChaosSteadyWindow).
	steady   time.Duration
	settle   time.Duration
	conns    int
	quiet    bool
	logLevel slog.Level
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{sc: scenario.Default()}
	var schedules, logLevel string
	fs.StringVar(&schedules, "schedule", strings.Join(DefaultSchedules(), ","), "the schedules to play, one spike each, comma-separated: built-in names ("+strings.Join(chaos.Builtin(), ", ")+") or YAML/JSON files")
	fs.StringVar(&c.dir, "dir", "", "the cluster's directory, emptied first (default "+DefaultDirName+" at the repository root)")
	fs.IntVar(&c.cluster.BasePort, "base-port", DefaultBasePort, fmt.Sprintf("the cluster's first port (it uses %d); apart from make cluster-up's %d so both can run", cluster.PortSpan, cluster.DefaultBasePort))
	fs.BoolVar(&c.cluster.Install, "install", false, "install missing OS packages with apt-get")
	fs.StringVar(&c.cluster.BinDir, "bin-dir", "", "where the seckill binaries are (default bin/ at the repository root; make chaos builds them)")
	fs.BoolVar(&c.keepUp, "keep-up", false, "leave the cluster running afterwards (stop it with: go run ./loadtest/cmd/cluster down --dir ...)")
	fs.StringVar(&c.out, "out", DefaultOut, "directory for the reports: chaos-<schedule>.html and .json")
	fs.IntVar(&c.sc.Users, "users", DefaultUsers, "simulated users of each spike; the stock is as large (the resale sells what is left)")
	fs.Uint64Var(&c.sc.Seed, "seed", c.sc.Seed, "seed of the crowd: the same seed and schedule replay a run")
	fs.DurationVar(&c.sc.PayTimeout, "pay-timeout", DefaultPayTimeout, "the activity's pay timeout: unpaid orders are cancelled after it")
	fs.DurationVar(&c.sc.Countdown, "countdown", c.sc.Countdown, "page traffic before the sale starts")
	fs.DurationVar(&c.steady, "steady-window", 0, fmt.Sprintf("half the crowd buys evenly over this from T0 (default: each schedule's end + %s, at least %s)", spike.ChaosTail, spike.ChaosMinWindow))
	fs.DurationVar(&c.settle, "settle-timeout", DefaultSettle, "bound on each wait for the system to settle after the faults")
	fs.IntVar(&c.conns, "conns", 0, "connections to the front door (default: the spike's)")
	fs.BoolVar(&c.quiet, "quiet", false, "no live progress line")
	fs.StringVar(&logLevel, "log-level", "warn", "log level of the tool")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (flags start with --)", fs.Args())
	}
	if err := c.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	for _, name := range strings.Split(schedules, ",") {
		s, err := chaos.Load(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(c.schedules, func(o chaos.Schedule) bool { return o.Name == s.Name }) {
			return nil, fmt.Errorf("--schedule: %s twice (its report would overwrite the first)", s.Name)
		}
		// Against every process the cluster may run: whether it will run
		// Prometheus is known once it is up, and checked again then.
		if err := s.Validate(chaos.Topology{Processes: cluster.Names(), Proxies: cluster.ProxyNames()}); err != nil {
			return nil, err
		}
		c.schedules = append(c.schedules, s)
	}
	c.sc.Stock = int64(c.sc.Users)
	c.sc.SteadyShare = spike.ChaosSteadyShare
	c.sc.SteadyWindow = spike.ChaosMinWindow // each run sets its own (spike.ChaosSteadyWindow)
	if err := c.sc.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// lockedWriter serialises writes: the cluster's progress lines come from
// a goroutine per process, the spike's from its sampler.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	stderr = &lockedWriter{w: stderr}
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	start := time.Now()
	cl, err := freshCluster(ctx, c, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	fmt.Fprintf(stderr, "chaos: cluster up in %s (state and logs in %s)\n", time.Since(start).Round(100*time.Millisecond), cl.Dir())
	code := playAll(ctx, c, cl, stdout, stderr)
	if !c.keepUp {
		// The data and logs stay for a post-mortem; the next make chaos
		// starts afresh.
		if err := cl.Down(context.WithoutCancel(ctx), false); err != nil {
			fmt.Fprintln(stderr, "chaos: stop the cluster:", err)
			code = max(code, 1)
		}
	}
	fmt.Fprintf(stderr, "chaos: done in %s; logs in %s\n", time.Since(start).Round(time.Second), filepath.Join(cl.Dir(), "logs"))
	return code
}

// freshCluster stops and deletes whatever an earlier make chaos left in
// the directory, then starts the cluster afresh: each make chaos starts
// from the same empty state, so a seed replays it.
func freshCluster(ctx context.Context, c *config, log io.Writer) (*cluster.Cluster, error) {
	if c.dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		root, err := cluster.FindRoot(wd)
		if err != nil {
			return nil, err
		}
		c.dir = filepath.Join(root, DefaultDirName)
	}
	if old, err := cluster.Load(c.dir); err == nil {
		old.SetLog(log)
		if err := old.Down(ctx, true); err != nil {
			return nil, fmt.Errorf("stop the cluster an earlier run left in %s: %w", c.dir, err)
		}
	} else if !errors.Is(err, cluster.ErrNoCluster) {
		return nil, err
	}
	cfg := c.cluster
	cfg.Dir, cfg.Log = c.dir, log
	// A chaos run that dies (a CI timeout, a kill -9) takes the cluster
	// with it rather than leaving 14 processes behind; unless it is to
	// stay up.
	cfg.ExitWithCaller = !c.keepUp
	return cluster.Up(ctx, cfg)
}

// playAll plays each schedule against its own spike, on the same
// cluster: each run has its own activity and users, and starts from a
// cluster that is whole again (the previous run healed it and settled).
func playAll(ctx context.Context, c *config, cl *cluster.Cluster, stdout, stderr io.Writer) int {
	code := 0
	var results []string
	for i, s := range c.schedules {
		fmt.Fprintf(stderr, "chaos: %d/%d schedule %s\n", i+1, len(c.schedules), s.Name)
		rep, err := playOne(ctx, c, cl, s, stderr)
		if rep != nil && rep.Timeline != nil {
			rep.WriteSummary(stdout)
			j, h, werr := rep.WriteFiles(c.out)
			if werr != nil {
				fmt.Fprintln(stderr, "chaos:", werr)
				return 2
			}
			fmt.Fprintf(stdout, "report: %s and %s\n", h, j)
		}
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "chaos: schedule %s: %v\n", s.Name, err)
			results = append(results, fmt.Sprintf("%s: not carried out: %v", s.Name, err))
			code = 2
		default:
			verdict, bad := verdict(rep)
			results = append(results, s.Name+": "+verdict)
			if bad {
				code = max(code, 1)
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintln(stdout)
	for _, r := range results {
		fmt.Fprintln(stdout, "chaos:", r)
	}
	if code == 1 {
		fmt.Fprintln(stderr, "chaos: FAILED: an invariant was violated or the cluster was not whole again (see above)")
	}
	return code
}

func playOne(ctx context.Context, c *config, cl *cluster.Cluster, s chaos.Schedule, stderr io.Writer) (*report.Run, error) {
	ch, err := spike.ChaosOn(cl, s)
	if err != nil {
		return nil, err
	}
	sc := c.sc
	sc.SteadyWindow = spike.ChaosSteadyWindow(s)
	if c.steady > 0 {
		sc.SteadyWindow = c.steady
	}
	o := spike.Options{
		Scenario: sc, Chaos: ch, SettleTimeout: c.settle, Conns: c.conns,
		Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.logLevel})),
	}
	if !c.quiet {
		o.Progress, o.ProgressLines = stderr, true
	}
	if err := spike.ForCluster(&o, cl); err != nil {
		return nil, err
	}
	return spike.Run(ctx, o)
}

// verdict says how a run went, and whether it fails make chaos: an
// invariant violated, or the cluster not whole again after the faults.
func verdict(r *report.Run) (string, bool) {
	var parts []string
	bad := false
	if v := r.Audit.Violations(); len(v) > 0 {
		bad = true
		var names []string
		for _, c := range v {
			names = append(names, c.Label()+". "+c.Name)
		}
		parts = append(parts, "VIOLATED "+strings.Join(names, "; "))
	} else {
		parts = append(parts, "audit ok")
	}
	if r.Chaos != nil {
		if len(r.Chaos.Errors) > 0 {
			bad = true
			parts = append(parts, "fault errors: "+strings.Join(r.Chaos.Errors, "; "))
		}
		var rec []string
		for i, f := range r.Chaos.Faults {
			rec = append(rec, fmt.Sprintf("%d %s", i+1, f.RecoveryText()))
		}
		parts = append(parts, "recovery: "+strings.Join(rec, ", "))
		parts = append(parts, "in flight: "+r.Chaos.InFlight.Summary())
		var alerts []string
		for _, a := range r.Chaos.Alerts {
			if !a.BeforeSale {
				alerts = append(alerts, a.Name)
			}
		}
		if len(alerts) > 0 {
			parts = append(parts, "alerts: "+strings.Join(slices.Compact(slices.Sorted(slices.Values(alerts))), ", "))
		}
	}
	for _, s := range r.Settles {
		if !s.Settled {
			parts = append(parts, s.Summary())
		}
	}
	return fmt.Sprintf("%s (seed %d)", strings.Join(parts, "; "), r.Scenario.Seed), bad
}
