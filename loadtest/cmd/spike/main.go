// Command spike runs a Double-11 spike against the seckill gateway and
// audits it: make spike (one run) and make spike-compare (the same spike
// against the naive synchronous mode and against the pipeline). With
// --cluster it runs against the cluster in a box (docs/cluster.md); with
// --chaos it injects a schedule of faults mid-spike (docs/chaos.md).
//
// Exit status: 0 when every audit passed, 1 when an invariant was
// violated, 2 when the run could not be carried out (bad flags, gateway
// unreachable). docs/loadtest.md explains every flag and number.
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
	"strings"
	"syscall"
	"time"

	"github.com/flashsale/seckill/loadtest/audit"
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

// setFlags collects repeated --set KEY=VALUE.
type setFlags map[string]string

func (s setFlags) String() string { return fmt.Sprint(map[string]string(s)) }
func (s setFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || !strings.HasPrefix(k, "SECKILL_") {
		return fmt.Errorf("want SECKILL_NAME=value, got %q", v)
	}
	s[k] = val
	return nil
}

// urlFlags collects repeated --metrics-url.
type urlFlags []string

func (u *urlFlags) String() string     { return strings.Join(*u, ",") }
func (u *urlFlags) Set(v string) error { *u = append(*u, v); return nil }

// config is everything the flags say.
type config struct {
	opts     spike.Options
	compare  bool
	naiveURL string
	out      string
	quiet    bool
	// clusterDir is the cluster in a box to run against (--cluster, or
	// .cluster with --chaos); schedule the faults (--chaos).
	clusterDir string
	schedule   *chaos.Schedule
	set        map[string]bool // the flags given
	// admissions are --admission's values: one, or open and queue side
	// by side with --compare.
	admissions []string
}

// chaosDefaults applies a chaos run's crowd (spike.ChaosUsers and the
// others) to the flags set does not name; no saturation probes either
// (they measure a healthy system).
func chaosDefaults(sc *scenario.Config, o *spike.Options, s chaos.Schedule, set map[string]bool) {
	if !set["users"] {
		sc.Users = spike.ChaosUsers
	}
	if !set["stock"] {
		sc.Stock = int64(sc.Users)
	}
	if !set["steady-share"] {
		sc.SteadyShare = spike.ChaosSteadyShare
	}
	if !set["steady-window"] {
		sc.SteadyWindow = spike.ChaosSteadyWindow(s)
	}
	if !set["probe-duration"] {
		o.ProbeDuration = 0
	}
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("spike", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sc := scenario.Default()
	c := &config{}
	o := &c.opts
	sets := setFlags{}
	var mode, buyToken, logLevel, gatewayLogLevel, admission string

	fs.IntVar(&sc.Users, "users", sc.Users, "simulated users (humans, bots and late users)")
	fs.Int64Var(&sc.Stock, "stock", sc.Stock, "units on sale")
	fs.DurationVar(&sc.Countdown, "countdown", sc.Countdown, "page traffic (activity GETs) before the start")
	fs.Float64Var(&sc.PageViewShare, "page-view-share", sc.PageViewShare, "share of users who open the page during the countdown (1-3 loads each)")
	fs.Float64Var(&sc.FirstSecondShare, "first-second-share", sc.FirstSecondShare, "share of humans whose first click falls in the first second")
	fs.DurationVar(&sc.Tail, "tail", sc.Tail, "the decaying tail of arrivals after the first second")
	fs.Float64Var(&sc.DoubleClickShare, "double-click-share", sc.DoubleClickShare, "humans who click twice with the same request_id")
	fs.Float64Var(&sc.RequestIDShare, "request-id-share", sc.RequestIDShare, "humans and late users who send a request_id (the buyer page always does; without one the local sold-out flag can answer)")
	fs.IntVar(&sc.Retries, "retries", sc.Retries, "retries after 429/503 per click")
	fs.DurationVar(&sc.RetryBackoff, "retry-backoff", sc.RetryBackoff, "first retry backoff (doubles, jittered; Retry-After wins when longer)")
	fs.Float64Var(&sc.BotShare, "bot-share", sc.BotShare, "share of users that are bots (with --admission: 0.1 unless given)")
	fs.Float64Var(&sc.BotShare, "bots", sc.BotShare, "the same as --bot-share: the share of the accounts held by bots")
	fs.IntVar(&sc.BotOperators, "bot-operators", sc.BotOperators, "bot operators holding the bot accounts: each starts all its accounts at one instant and uses them as the front door asks (buy token, waiting room); 0: independent scripts that skip the buy token (with --admission: 5 unless given)")
	fs.Float64Var(&sc.BotRate, "bot-rate", sc.BotRate, "requests/s of one bot")
	fs.DurationVar(&sc.BotDuration, "bot-duration", sc.BotDuration, "how long a bot fires")
	fs.Float64Var(&sc.LateShare, "late-share", sc.LateShare, "share of users arriving after the sell-out")
	fs.DurationVar(&sc.LateWindow, "late-window", sc.LateWindow, "late users arrive within this after the tail")
	fs.Float64Var(&sc.PayShare, "pay-share", sc.PayShare, "winners who pay promptly")
	fs.Float64Var(&sc.RaceShare, "race-share", sc.RaceShare, "winners who pay right at the deadline, racing the cancel")
	fs.DurationVar(&sc.PayWithin, "pay-within", sc.PayWithin, "prompt payers pay within this after winning")
	fs.DurationVar(&sc.PayTimeout, "pay-timeout", sc.PayTimeout, "the activity's pay timeout (whole seconds); the rest of the winners time out")
	fs.Float64Var(&sc.SteadyShare, "steady-share", sc.SteadyShare, "share of users arriving evenly over --steady-window instead of in the spike (with --chaos: 0.5)")
	fs.DurationVar(&sc.SteadyWindow, "steady-window", sc.SteadyWindow, "the steady users arrive within this after T0 (with --chaos: the schedule's end + 15s, at least 20s)")
	fs.Uint64Var(&sc.Seed, "seed", sc.Seed, "seed of the crowd: the same seed plays the same crowd")

	fs.StringVar(&o.URL, "url", "", "a deployed gateway (http://host:port); without it the tool starts one in-process")
	fs.StringVar(&c.naiveURL, "naive-url", "", "with --compare and --url: a gateway running SECKILL_BUY_MODE=naive")
	var metricsURLs urlFlags
	var schedule string
	fs.Var(&metricsURLs, "metrics-url", "with --url: a process's own /metrics (repeatable); the counters of all are summed, as behind a load balancer (default: --url's /metrics)")
	fs.StringVar(&c.clusterDir, "cluster", "", "run against the cluster in a box in this directory (make cluster-up's .cluster): its front door, secrets, database and every gateway's and worker's /metrics")
	fs.StringVar(&schedule, "chaos", "", "inject faults during the spike: a built-in schedule ("+strings.Join(chaos.Builtin(), ", ")+") or a YAML/JSON file (docs/chaos.md); needs the cluster (--cluster, default .cluster)")
	fs.StringVar(&mode, "mode", "pipeline", "buy mode: pipeline or naive (in-process: started so; --url: what the gateway runs, for the audit)")
	fs.StringVar(&buyToken, "buy-token", string(spike.BuyTokenRequired), "SECKILL_BUY_TOKEN: required (humans and late users fetch a buy token before their first buy; bots skip it and are refused at the door) or off (in-process: started so; --url: what the gateway runs; --compare: both modes)")
	fs.BoolVar(&c.compare, "compare", false, "run the same spike against naive and pipeline and write a side-by-side report (with --admission open,queue: against open admission and a waiting room)")
	fs.StringVar(&admission, "admission", spike.AdmissionOpen, "the activity's admission: open (buy at the start) or queue (a waiting room in front of the sale); open,queue with --compare runs both")
	fs.StringVar(&o.AdminToken, "admin-token", os.Getenv("SECKILL_ADMIN_TOKEN"), "with --url: the gateway's admin token (default $SECKILL_ADMIN_TOKEN)")
	fs.StringVar(&o.JWTSecret, "jwt-secret", os.Getenv("SECKILL_JWT_SECRET"), "with --url: mint user tokens with this secret (default $SECKILL_JWT_SECRET); empty uses the demo login")
	fs.StringVar(&o.RedisURL, "redis-url", "", "in-process gateway: a real Redis (redis://...) instead of miniredis")
	fs.StringVar(&o.DBDSN, "db-dsn", "", "in-process gateway: a MySQL/MariaDB DSN instead of SQLite; with --url: read by the audit")
	fs.Var(sets, "set", "in-process gateway: SECKILL_NAME=value, repeatable (e.g. --set SECKILL_WORKER_BATCH=200)")
	fs.IntVar(&o.Conns, "conns", 0, fmt.Sprintf("connections to the gateway at most; 0 means %d per CPU of this machine, at most %d (%d here)", spike.DefaultConnsPerCPU, spike.DefaultMaxConns, spike.DefaultConns()))
	fs.IntVar(&o.MaxInFlight, "max-inflight", 0, "requests in flight at most; 0 means --conns, since more would only wait inside the HTTP client for a connection (beyond, sends leave late and the lateness is measured)")
	fs.DurationVar(&o.ProbeDuration, "probe-duration", 3*time.Second, "each saturation probe (healthz, buy sold out, buy in stock); 0 skips them")
	fs.IntVar(&o.ProbeClients, "probe-clients", 64, "closed-loop clients of a probe")
	fs.DurationVar(&o.SettleTimeout, "settle-timeout", 0, "bound on waiting for the queue and the pay deadlines (default pay timeout + 60s)")
	fs.StringVar(&c.out, "out", "spike-report", "directory for the reports (JSON and HTML)")
	fs.BoolVar(&c.quiet, "quiet", false, "no live progress line")
	fs.StringVar(&logLevel, "log-level", "warn", "log level of the tool: debug, info, warn, error")
	fs.StringVar(&gatewayLogLevel, "gateway-log-level", "error", "log level of the in-process gateway")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (flags start with --)", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.set = set
	o.MetricsURLs = metricsURLs
	if schedule != "" {
		s, err := chaos.Load(schedule)
		if err != nil {
			return nil, err
		}
		c.schedule = &s
		if c.compare {
			return nil, errors.New("--chaos and --compare do not go together: a chaos run measures one system under faults")
		}
		chaosDefaults(&sc, o, s, set)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	o.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	var glvl slog.Level
	if err := glvl.UnmarshalText([]byte(gatewayLogLevel)); err != nil {
		return nil, fmt.Errorf("--gateway-log-level: %w", err)
	}
	o.GatewayLog = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: glvl}))
	c.admissions = strings.Split(admission, ",")
	if len(c.admissions) > 1 && (!c.compare || len(c.admissions) != 2 || c.admissions[0] != spike.AdmissionOpen || c.admissions[1] != spike.AdmissionQueue) {
		return nil, fmt.Errorf("--admission %s: two admissions are open,queue, with --compare", admission)
	}
	o.Admission = c.admissions[0]
	if set["admission"] {
		// A fairness run: bots are accounts of a few operators, a tenth
		// of the crowd, unless the flags say otherwise.
		if !set["bots"] && !set["bot-share"] {
			sc.BotShare = 0.1
		}
		if !set["bot-operators"] {
			sc.BotOperators = 5
		}
	}
	o.Scenario = sc
	o.Mode = audit.Mode(mode)
	o.BuyToken = spike.BuyTokenSetting(buyToken)
	o.Env = sets
	if !c.quiet {
		o.Progress = stderr
		o.ProgressLines = !isTerminal(stderr)
	}
	if c.compare && (o.URL == "") != (c.naiveURL == "") {
		return nil, errors.New("--compare with deployed gateways needs both --url (pipeline) and --naive-url; without either, both are started in-process")
	}
	if !c.compare && c.naiveURL != "" {
		return nil, errors.New("--naive-url only applies with --compare")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "spike:", err)
		return 2
	}
	if c.clusterDir != "" || c.schedule != nil {
		if err := onCluster(c); err != nil {
			fmt.Fprintln(stderr, "spike:", err)
			return 2
		}
	}
	if !c.compare {
		rep, err := spike.Run(ctx, c.opts)
		return finish(stdout, stderr, c.out, []*report.Run{rep}, nil, err)
	}
	if len(c.admissions) == 2 {
		return compareAdmissions(ctx, c, stdout, stderr)
	}
	// Both runs keep --buy-token: the naive mode sits behind the same door.
	naive := c.opts
	naive.Name, naive.Mode = "naive", audit.Naive
	if c.naiveURL != "" {
		naive.URL = c.naiveURL
	}
	pipe := c.opts
	pipe.Name, pipe.Mode = "pipeline", audit.Pipeline
	fmt.Fprintln(stderr, "spike: 1/2 naive mode")
	nrep, err := spike.Run(ctx, naive)
	if err != nil {
		return finish(stdout, stderr, c.out, []*report.Run{nrep}, nil, err)
	}
	fmt.Fprintln(stderr, "spike: 2/2 pipeline mode")
	prep, err := spike.Run(ctx, pipe)
	if err != nil {
		return finish(stdout, stderr, c.out, []*report.Run{nrep, prep}, nil, err)
	}
	return finish(stdout, stderr, c.out, []*report.Run{nrep, prep}, report.NewCompare(nrep, prep), nil)
}

// compareAdmissions runs the same spike against open admission and a
// waiting room, and writes admission.html.
func compareAdmissions(ctx context.Context, c *config, stdout, stderr io.Writer) int {
	var runs []*report.Run
	for i, adm := range c.admissions {
		o := c.opts
		o.Name, o.Admission = adm, adm
		fmt.Fprintf(stderr, "spike: %d/2 %s admission\n", i+1, adm)
		rep, err := spike.Run(ctx, o)
		if rep != nil {
			runs = append(runs, rep)
		}
		if err != nil {
			return finish(stdout, stderr, c.out, runs, nil, err)
		}
	}
	cmp, err := report.NewAdmissionCompare(runs[0], runs[1])
	if err != nil {
		return finish(stdout, stderr, c.out, runs, nil, err)
	}
	return finish(stdout, stderr, c.out, runs, cmp, nil)
}

// onCluster points the run at the cluster in a box (--cluster, or .cluster
// at the repository root with --chaos) and validates the schedule against
// it: a fault the cluster cannot take stops the run before it starts.
func onCluster(c *config) error {
	dir := c.clusterDir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		root, err := cluster.FindRoot(wd)
		if err != nil {
			return err
		}
		dir = filepath.Join(root, cluster.DefaultDirName)
	}
	cl, err := cluster.Load(dir)
	if errors.Is(err, cluster.ErrNoCluster) {
		return fmt.Errorf("%w: start one with make cluster-up (or name its directory with --cluster)", err)
	}
	if err != nil {
		return err
	}
	if cl.Settings().Demo && !c.set["buy-token"] {
		c.opts.BuyToken = spike.BuyTokenOff // demo mode asks for no buy tokens
	}
	if err := spike.ForCluster(&c.opts, cl); err != nil {
		return err
	}
	if c.schedule != nil {
		ch, err := spike.ChaosOn(cl, *c.schedule)
		if err != nil {
			return err
		}
		c.opts.Chaos = ch
	}
	return nil
}

// finish prints the summaries, writes the files and picks the exit code.
func finish(stdout, stderr io.Writer, dir string, runs []*report.Run, cmp comparison, runErr error) int {
	ok := true
	for _, r := range runs {
		if r == nil || r.Timeline == nil {
			continue
		}
		r.WriteSummary(stdout)
		j, h, err := r.WriteFiles(dir)
		if err != nil {
			fmt.Fprintln(stderr, "spike:", err)
			return 2
		}
		fmt.Fprintf(stdout, "report: %s and %s\n", h, j)
		ok = ok && r.Audit.OK()
	}
	if cmp != nil {
		cmp.WriteSummary(stdout)
		p, err := cmp.WriteFiles(dir)
		if err != nil {
			fmt.Fprintln(stderr, "spike:", err)
			return 2
		}
		fmt.Fprintf(stdout, "comparison: %s\n", p)
	}
	if runErr != nil {
		fmt.Fprintln(stderr, "spike:", runErr)
		return 2
	}
	if !ok {
		fmt.Fprintln(stderr, "spike: AUDIT FAILED: an invariant was violated (see the audit above)")
		return 1
	}
	return 0
}

// comparison is a side-by-side page of two runs (naive vs pipeline, open
// vs queue admission).
type comparison interface {
	WriteSummary(io.Writer)
	WriteFiles(dir string) (string, error)
}

// isTerminal reports whether w is a character device (a terminal), where a
// redrawn progress line makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
