// Command cluster runs the production topology of seckill on this machine,
// without containers (package loadtest/cluster; docs/cluster.md): nginx over
// two gateways, two order workers, a notifier, a three-node NATS JetStream
// cluster, Redis, MariaDB, toxiproxy in front of every backend and an SMTP
// sink.
//
//	cluster up [flags]        start it (make cluster-up); again: a no-op
//	cluster down [--purge]    stop it (make cluster-down)
//	cluster status            each process: up, paused or down, and ready
//	cluster env               export lines for eval (make -s cluster-env)
//	cluster kill|start|pause|resume NAME
//	cluster restart-redis-empty
//	cluster smtp-sink ...     the SMTP sink the cluster runs
//
// Exit status: 0 done (status: everything up and ready), 1 failed (status:
// something is not), 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/flashsale/seckill/loadtest/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: cluster COMMAND [flags]

  up [flags]            start the cluster (again: a no-op) and print its URLs
  down [--purge]        stop it; --purge also deletes its directory (data, logs, secrets)
  status                each process: up, paused or down, its pid, ports and readiness
  env                   export lines for eval: SECKILL_URL, SECKILL_ADMIN_TOKEN, ...
  kill NAME             SIGKILL a process (and wait until it is gone)
  start NAME            start a process again, as before, and wait until it is ready
  pause NAME            SIGSTOP a process
  resume NAME           SIGCONT a process
  restart-redis-empty   kill Redis and start it again, empty
  smtp-sink [flags]     run the SMTP sink (the cluster runs it itself)

Every command takes --dir (default .cluster at the repository root).
NAME is one of: ` + "lb gateway-1 gateway-2 worker-1 worker-2 notifier nats-1 nats-2 nats-3 redis mariadb toxiproxy smtp prometheus" + `
(prometheus only when Debian's prometheus package is installed)
See docs/cluster.md.
`

// errUsage marks a usage error (exit status 2).
var errUsage = errors.New("usage")

// setFlags collects repeated --set SECKILL_NAME=value.
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

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "up":
		err = up(ctx, rest, stdout, stderr)
	case "down":
		err = down(ctx, rest, stderr)
	case "status":
		var ok bool
		ok, err = status(ctx, rest, stdout, stderr)
		if err == nil && !ok {
			return 1
		}
	case "env":
		err = env(rest, stdout, stderr)
	case "kill", "start", "pause", "resume", "restart-redis-empty":
		err = control(ctx, cmd, rest, stderr)
	case "smtp-sink":
		err = smtpSink(ctx, rest, stderr)
	default:
		fmt.Fprintf(stderr, "cluster: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// flagSet makes a command's flags, with --dir.
func flagSet(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("cluster "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "the cluster's directory (default .cluster at the repository root)")
	return fs, dir
}

func parse(fs *flag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != nargs {
		fmt.Fprintf(fs.Output(), "%s: want %d argument(s), got %q\n", fs.Name(), nargs, fs.Args())
		return errUsage
	}
	return nil
}

// resolveDir is --dir, or .cluster at the repository root.
func resolveDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root, err := cluster.FindRoot(wd)
	if err != nil {
		return "", err
	}
	return root + "/" + cluster.DefaultDirName, nil
}

func load(dir string) (*cluster.Cluster, error) {
	d, err := resolveDir(dir)
	if err != nil {
		return nil, err
	}
	c, err := cluster.Load(d)
	if errors.Is(err, cluster.ErrNoCluster) {
		return nil, fmt.Errorf("%w: start one with make cluster-up", err)
	}
	return c, err
}

func up(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := flagSet("up", stderr)
	cfg := cluster.Config{Log: stderr}
	sets := setFlags{}
	fs.IntVar(&cfg.BasePort, "base-port", cluster.DefaultBasePort, fmt.Sprintf("first port; the cluster listens on 127.0.0.1 from there to +%d", cluster.PortSpan-1))
	fs.StringVar(&cfg.QueueSync, "queue-sync", cluster.QueueSyncAlways, "SECKILL_QUEUE_SYNC and the NATS nodes' jetstream sync_interval: always (fsync each write) or interval")
	fs.DurationVar(&cfg.SyncInterval, "sync-interval", cluster.DefaultSyncInterval, "the NATS nodes' sync_interval with --queue-sync interval")
	fs.BoolVar(&cfg.Demo, "demo", false, "demo mode (SECKILL_DEMO=true, as make run): demo login, buy tokens off, a demo activity, demo mail contacts")
	fs.StringVar(&cfg.Limits, "limits", cluster.LimitsLoadTest, "gateway rate limits: loadtest (global and per-IP lifted to 1,000,000/s: a load generator is one IP) or production (the product defaults)")
	fs.Var(sets, "set", "SECKILL_NAME=value for every seckill process, repeatable; wins over the cluster's own")
	fs.BoolVar(&cfg.Install, "install", false, "install missing OS packages (nginx, redis-server, mariadb-server) with apt-get")
	fs.StringVar(&cfg.BinDir, "bin-dir", "", "where the seckill binaries are (default bin/ at the repository root; make build)")
	fs.DurationVar(&cfg.ReadyTimeout, "timeout", cluster.DefaultReadyTimeout, "how long each group of processes may take to be ready")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if len(sets) > 0 {
		cfg.Env = sets
	}
	cfg.Dir = *dir
	start := time.Now()
	c, err := cluster.Up(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "cluster: up in %s\n", time.Since(start).Round(100*time.Millisecond))
	printSummary(ctx, c, stdout)
	return nil
}

func printSummary(ctx context.Context, c *cluster.Cluster, w io.Writer) {
	s := c.Settings()
	mode := "production mode"
	if s.Demo {
		mode = "demo mode"
	}
	sync := "always"
	if s.QueueSync == cluster.QueueSyncInterval {
		sync = "interval " + s.SyncInterval.String()
	}
	fmt.Fprintf(w, "\nseckill cluster is up (%s, queue sync %s, %s limits); state in %s\n", mode, sync, s.Limits, c.Dir())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  front door (nginx)\t%s/\t(sale page, /api/v1, /readyz)\n", c.URL())
	for _, n := range []string{cluster.Gateway1, cluster.Gateway2, cluster.Worker1, cluster.Worker2, cluster.Notifier} {
		fmt.Fprintf(tw, "  %s\t%s/readyz\tmetrics %s\n", n, c.HTTPURL(n), c.MetricsURL(n))
	}
	for _, n := range []string{cluster.NATS1, cluster.NATS2, cluster.NATS3, cluster.Redis, cluster.MariaDB} {
		p, _ := c.Process(n)
		extra := ""
		switch n {
		case cluster.NATS1, cluster.NATS2, cluster.NATS3:
			extra = fmt.Sprintf("  monitor http://127.0.0.1:%d", p.Port(cluster.PortMonitor))
		case cluster.MariaDB:
			extra = "  root, no password, database seckill"
		}
		fmt.Fprintf(tw, "  %s\t127.0.0.1:%d\tvia toxiproxy 127.0.0.1:%d%s\n", n, p.Port(cluster.PortClient), p.Port(cluster.PortProxy), extra)
	}
	fmt.Fprintf(tw, "  toxiproxy API\t%s\tproxies %s\n", c.ToxiproxyURL(), strings.Join(cluster.ProxyNames(), ", "))
	smtp, _ := c.Process(cluster.SMTP)
	fmt.Fprintf(tw, "  mail inbox\t%s\tSMTP 127.0.0.1:%d\n", c.InboxURL(), smtp.Port(cluster.PortSMTP))
	if u := c.PrometheusURL(); u != "" {
		fmt.Fprintf(tw, "  prometheus\t%s/alerts\tscrapes every process each %s, rules %s\n", u, cluster.PrometheusInterval, cluster.RulesFile)
	}
	fmt.Fprintf(tw, "  admin token\t%s\t\n", c.AdminToken())
	fmt.Fprintf(tw, "  logs\t%s/logs/\t\n", c.Dir())
	tw.Flush()
	if r, err := c.StreamReplicas(ctx); err == nil && len(r) > 0 {
		var parts []string
		for _, name := range sortedKeys(r) {
			parts = append(parts, fmt.Sprintf("%s R%d", name, r[name]))
		}
		fmt.Fprintf(w, "  JetStream streams: %s\n", strings.Join(parts, ", "))
		for _, name := range sortedKeys(r) {
			if r[name] != 3 {
				fmt.Fprintln(w, "  warning: not every stream has 3 replicas: these seckill binaries do not read SECKILL_NATS_REPLICAS=3 (rebuild them: make build)")
				break
			}
		}
	}
	buyToken := ""
	if s.Demo {
		buyToken = " --buy-token off"
	}
	fmt.Fprintf(w, "\nLoad test it:\n  eval \"$(make -s cluster-env)\"\n  go run ./loadtest/cmd/spike --url \"$SECKILL_URL\" --db-dsn \"$SECKILL_DB_DSN\"%s --users 20000 --stock 500\n", buyToken)
	fmt.Fprintf(w, "Stop it: make cluster-down (ARGS=--purge deletes %s)\n", c.Dir())
}

func sortedKeys(m map[string]int) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

func down(ctx context.Context, args []string, stderr io.Writer) error {
	fs, dir := flagSet("down", stderr)
	purge := fs.Bool("purge", false, "also delete the cluster's directory: data, logs, secrets")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	c, err := load(*dir)
	if err != nil {
		d, derr := resolveDir(*dir)
		if *purge && derr == nil {
			if _, serr := os.Stat(d); serr == nil {
				fmt.Fprintf(stderr, "cluster: no cluster state in %s; deleting it\n", d)
				return cluster.Purge(d)
			}
		}
		if errors.Is(err, cluster.ErrNoCluster) {
			fmt.Fprintln(stderr, err)
			return nil
		}
		return err
	}
	c.SetLog(stderr)
	if err := c.Down(ctx, *purge); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "cluster: down")
	return nil
}

func status(ctx context.Context, args []string, stdout, stderr io.Writer) (bool, error) {
	fs, dir := flagSet("status", stderr)
	if err := parse(fs, args, 0); err != nil {
		return false, err
	}
	c, err := load(*dir)
	if err != nil {
		return false, err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tPORTS\tREADY")
	all := true
	for _, s := range c.Status(ctx) {
		pid := "-"
		if s.PID > 0 {
			pid = fmt.Sprint(s.PID)
		}
		var ports []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s %d", p.Name, p.Port))
		}
		ready := "ready"
		if !s.Ready {
			ready, all = "no: "+s.Problem, false
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, pid, strings.Join(ports, ", "), ready)
	}
	return all, tw.Flush()
}

func env(args []string, stdout, stderr io.Writer) error {
	fs, dir := flagSet("env", stderr)
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	c, err := load(*dir)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, c.ExportLines())
	return err
}

func control(ctx context.Context, cmd string, args []string, stderr io.Writer) error {
	fs, dir := flagSet(cmd, stderr)
	n := 1
	if cmd == "restart-redis-empty" {
		n = 0
	}
	if err := parse(fs, args, n); err != nil {
		return err
	}
	c, err := load(*dir)
	if err != nil {
		return err
	}
	c.SetLog(stderr)
	name := fs.Arg(0)
	switch cmd {
	case "kill":
		err = c.Kill(name)
	case "start":
		err = c.Start(ctx, name)
	case "pause":
		err = c.Pause(name)
	case "resume":
		err = c.Resume(name)
	case "restart-redis-empty":
		err = c.RestartRedisEmpty(ctx)
	}
	if err == nil {
		fmt.Fprintln(stderr, strings.TrimSpace("cluster: "+cmd+" "+name)+": done")
	}
	return err
}

func smtpSink(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("cluster smtp-sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smtpAddr := fs.String("smtp", "127.0.0.1:2525", "SMTP listen address")
	httpAddr := fs.String("http", "127.0.0.1:8025", "inbox listen address (GET /messages)")
	dir := fs.String("dir", "mail", "directory the messages are kept in")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	sl, err := net.Listen("tcp", *smtpAddr)
	if err != nil {
		return fmt.Errorf("smtp-sink: --smtp %s: %w", *smtpAddr, err)
	}
	hl, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		sl.Close()
		return fmt.Errorf("smtp-sink: --http %s: %w", *httpAddr, err)
	}
	return cluster.ServeSMTPSink(ctx, sl, hl, *dir, log)
}
