package spike

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/audit"
	"github.com/flashsale/seckill/loadtest/chaos"
	"github.com/flashsale/seckill/loadtest/measure"
	"github.com/flashsale/seckill/loadtest/report"
	"github.com/flashsale/seckill/loadtest/scenario"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/sqldb"
)

// The generator's default connections to the gateway: DefaultConnsPerCPU
// per CPU of the machine it runs on, at most DefaultMaxConns, unless
// Options.Conns says otherwise. Past what the CPUs can keep busy, more
// connections only add goroutines and buffers on both ends: on 2 CPUs
// shared with an in-process gateway, the default spike's sold-out seconds
// ran at about 18,000 answers/s over 512 connections against about
// 25,000/s over 128 (docs/loadtest.md).
const (
	DefaultConnsPerCPU = 64
	DefaultMaxConns    = 512
)

// DefaultConns is the default of Options.Conns on this machine.
func DefaultConns() int { return min(DefaultConnsPerCPU*runtime.NumCPU(), DefaultMaxConns) }

// Options configure one run.
type Options struct {
	Name     string // report name ("pipeline", "naive", ...)
	Scenario scenario.Config
	// Mode is the gateway's buy mode. An in-process gateway is started in
	// it; for a deployed one (URL) it tells the audit what to check.
	Mode audit.Mode
	// BuyToken is the gateway's SECKILL_BUY_TOKEN (default required, the
	// production default). An in-process gateway is started with it; for
	// a deployed one (URL) it tells the crowd what the gateway runs. With
	// required, humans and late users fetch a buy token before their first
	// buy and bots do not.
	BuyToken BuyTokenSetting
	// Admission is the activity's: AdmissionOpen (the default) or
	// AdmissionQueue, a waiting room in front of the sale.
	Admission string

	// URL of a deployed gateway; empty starts one in-process.
	URL        string
	AdminToken string // required with URL
	JWTSecret  string // with URL: mint tokens; empty: demo login
	// RedisURL and DBDSN are the backends of the in-process gateway
	// (empty: embedded miniredis and SQLite). With URL, DBDSN is only read
	// by the audit.
	RedisURL string
	DBDSN    string
	// Env overrides SECKILL_* variables of the in-process gateway.
	Env map[string]string
	// MetricsURLs are the /metrics of each process of a deployment whose
	// front door serves none (a load balancer over gateways and workers):
	// read four times a second and added up as one (api.Merger). Empty:
	// the gateway's own /metrics at URL.
	MetricsURLs []string
	// Chaos, when set, plays a schedule of faults against the deployment
	// (URL) during the spike, and the report measures each fault's
	// recovery and the alerts it raised.
	Chaos *Chaos

	Conns int // connections to the gateway (default 512)
	// MaxInFlight caps the requests in flight (default Conns). More than
	// Conns would only wait inside the HTTP client for a connection, each
	// a parked goroutine whose stack the garbage collector scans on the
	// CPUs the system under test shares; waiting in the executor's queue
	// costs nothing, and either wait is measured.
	MaxInFlight int

	ProbeDuration time.Duration // each saturation probe; 0 skips them
	ProbeClients  int           // closed-loop clients of a probe (default 64)

	// SettleTimeout bounds each wait for the queue to drain and the
	// lifecycle to settle (default: pay timeout + 60s).
	SettleTimeout time.Duration

	Progress io.Writer // the live progress line; nil for none
	// ProgressLines prints a progress line every 5 seconds instead of
	// redrawing one line (for logs, where a carriage return is noise).
	ProgressLines bool
	Log           *slog.Logger
	// GatewayLog is the in-process gateway's logger (default: Log).
	GatewayLog *slog.Logger
}

func (o *Options) defaults() error {
	if o.Name == "" && o.Chaos != nil {
		o.Name = "chaos-" + o.Chaos.Schedule.Name
	}
	if o.Mode == "" {
		o.Mode = audit.Pipeline
	}
	if o.Name == "" && o.Admission == AdmissionQueue {
		o.Name = string(o.Mode) + "-queue"
	}
	if o.Name == "" {
		o.Name = string(o.Mode)
	}
	if o.Mode == "" {
		o.Mode = audit.Pipeline
	}
	if o.Mode != audit.Pipeline && o.Mode != audit.Naive {
		return fmt.Errorf("--mode must be pipeline or naive, got %q", o.Mode)
	}
	if o.BuyToken == "" {
		o.BuyToken = BuyTokenRequired
	}
	if o.Admission == "" {
		o.Admission = AdmissionOpen
	}
	if o.Admission != AdmissionOpen && o.Admission != AdmissionQueue {
		return fmt.Errorf("--admission must be open or queue, got %q", o.Admission)
	}
	if o.Admission == AdmissionQueue && o.Mode == audit.Naive {
		return errors.New("--admission queue needs --mode pipeline: the waiting room is in front of the pipeline's reserve")
	}
	if o.BuyToken != BuyTokenRequired && o.BuyToken != BuyTokenOff {
		return fmt.Errorf("--buy-token must be required or off, got %q", o.BuyToken)
	}
	if v, ok := o.Env[envBuyToken]; ok {
		// The crowd must know what the door does: one setting for both.
		return fmt.Errorf("--set %s=%s: use --buy-token %s, which also tells the crowd to fetch tokens", envBuyToken, v, v)
	}
	if err := o.Scenario.Validate(); err != nil {
		return err
	}
	if o.URL != "" && o.AdminToken == "" {
		return errors.New("--admin-token is required with --url (activities and stats are admin routes)")
	}
	if o.URL == "" && (o.AdminToken != "" || o.JWTSecret != "") {
		return errors.New("--admin-token and --jwt-secret only apply with --url: the in-process gateway makes up its own")
	}
	if o.URL == "" && (o.Chaos != nil || len(o.MetricsURLs) > 0) {
		return errors.New("--chaos and --metrics-url apply to a deployment (--url, --cluster): faults are injected into its processes")
	}
	if o.Chaos != nil {
		c, err := o.Chaos.withDefaults()
		if err != nil {
			return err
		}
		o.Chaos = &c
	}
	if o.Conns <= 0 {
		o.Conns = DefaultConns()
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = o.Conns
	}
	if o.ProbeClients <= 0 {
		o.ProbeClients = 64
	}
	if o.SettleTimeout <= 0 {
		o.SettleTimeout = o.Scenario.PayTimeout + 60*time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.GatewayLog == nil {
		o.GatewayLog = o.Log
	}
	return nil
}

// runner is the state of one run.
type runner struct {
	ctx    context.Context
	opts   Options
	client *api.Client
	// winners carries the payments and order reads of the winners on
	// connections of their own (see executor.atFree).
	winners *api.Client
	// monitor reads /metrics and the stats every second on connections
	// of its own, so the crowd's backlog cannot starve the timeline.
	monitor *api.Client
	// metrics reads the counters through monitor: the gateway's, or those
	// of every process of a deployment (Options.MetricsURLs).
	metrics *metricsSource
	rec     *measure.Recorder
	exec    *executor
	ppl     *people
	// saleOver is set once no unit can come back (queue admission): the
	// people who heard sold out stop listening.
	saleOver atomic.Bool
	ledger   *ledger
	log      *slog.Logger
}

// Run performs one run: setup, countdown and spike, payments and
// timeouts, resale of the returned units, audit, saturation probes. It
// returns the report, and an error only when the run could not be carried
// out; a failed audit is in the report (Audit.OK).
func Run(ctx context.Context, o Options) (*report.Run, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rep := &report.Run{
		Name: o.Name, Mode: o.Mode, BuyToken: report.BuyTokenDoor{Setting: string(o.BuyToken)}, Admission: o.Admission,
		StartedAt: time.Now().UTC(), Scenario: o.Scenario,
		Machine:   report.ThisMachine("the generator, gateway, workers, Redis and database share these CPUs"),
		Generator: fmt.Sprintf("%d connections, %d requests in flight at most (--conns, --max-inflight)", o.Conns, o.MaxInFlight),
	}
	base, secret, admin := o.URL, o.JWTSecret, o.AdminToken
	var store *order.Store
	if o.URL == "" {
		env := map[string]string{envBuyToken: string(o.BuyToken)}
		for k, v := range o.Env {
			env[k] = v
		}
		inst, err := startEmbedded(ctx, string(o.Mode), o.RedisURL, o.DBDSN, env, o.GatewayLog)
		if err != nil {
			return nil, err
		}
		defer inst.cleanup()
		base, secret, admin = inst.base, inst.secret, inst.admin
		store = inst.store()
		rep.Target, rep.Backends, rep.Settings = "embedded", inst.backends, inst.settings
	} else {
		rep.Target, rep.Backends = o.URL, "deployed gateway"
		rep.Machine.Shared = "the generator runs here; the gateway may not"
		rep.Settings = []string{
			"the gateway's own configuration (rate limits apply to the generator's single IP)",
			fmt.Sprintf("%s=%s (as --buy-token says the gateway runs)", envBuyToken, o.BuyToken),
		}
		if o.DBDSN != "" {
			db, err := sqldb.Open(ctx, sqldb.Config{DSN: o.DBDSN, Logger: o.Log})
			if err != nil {
				return nil, fmt.Errorf("--db-dsn: %w", err)
			}
			if sqlDB, err := db.DB(); err == nil {
				defer sqlDB.Close()
			}
			store = order.NewStore(db)
		}
	}
	r := &runner{
		ctx: ctx, opts: o, ledger: newLedger(), log: o.Log,
		client: api.New(base, api.Options{AdminToken: admin, JWTSecret: []byte(secret), Conns: o.Conns}),
	}
	r.winners = api.New(base, api.Options{AdminToken: admin, JWTSecret: []byte(secret), Conns: 64})
	r.monitor = api.New(base, api.Options{AdminToken: admin, Conns: 4, Timeout: 5 * time.Second})
	r.metrics = newMetricsSource(r.monitor, o.MetricsURLs)
	if o.Chaos != nil {
		r.ledger.keepAnswers()
		rep.Machine.Shared = "the generator and every process of the cluster share these CPUs"
	}
	defer r.client.Close()
	defer r.winners.Close()
	defer r.monitor.Close()
	if err := r.spike(rep, store); err != nil {
		return rep, err
	}
	return rep, nil
}

// spike is the body of Run once the gateway is reachable.
func (r *runner) spike(rep *report.Run, store *order.Store) error {
	ctx, o := r.ctx, r.opts
	if o.Chaos != nil {
		// An earlier run interrupted half-way must not count as this one's
		// fault: every process up and ready, no toxic left.
		if err := o.Chaos.heal(ctx); err != nil {
			return fmt.Errorf("before the spike: %w", err)
		}
	}
	if a := r.client.Healthz(ctx); a.Status != http.StatusOK {
		return fmt.Errorf("gateway %s not healthy: %s", r.client.Base(), a.Outcome())
	}
	prefix := fmt.Sprintf("lt%d", time.Now().Unix()%100000) // distinct users per run on a shared deployment
	plan := scenario.Build(o.Scenario, prefix)
	rep.Crowd = map[string]int{}
	for k, n := range plan.Counts() {
		rep.Crowd[k.String()] = n
	}

	tokens, err := r.tokens(plan)
	if err != nil {
		return err
	}
	probeToken := tokens[plan.Users[0].ID]
	lifecycle, err := r.client.HasPayRoute(ctx, probeToken)
	if err != nil {
		return fmt.Errorf("probe the pay route: %w", err)
	}
	if !lifecycle {
		rep.Notes = append(rep.Notes, "the gateway has no pay endpoint: nobody pays, nothing times out, invariants 6 and 7 are not exercised")
	}

	// T0 on a whole second (the API's times are whole seconds), after the
	// countdown.
	t0 := time.Now().Add(o.Scenario.Countdown + 1500*time.Millisecond).Truncate(time.Second).Add(time.Second)
	activity, err := r.client.CreateActivity(ctx, api.ActivitySpec{
		Name: "load test " + o.Name, Stock: o.Scenario.Stock, PriceCents: 9900,
		StartsAt: t0, EndsAt: t0.Add(2 * time.Hour), PayTimeoutSeconds: int64(o.Scenario.PayTimeout / time.Second),
		Admission: o.Admission,
	})
	if err != nil {
		return err
	}
	rep.ActivityID = activity
	r.rec = measure.New(t0, epBuy)
	r.exec = newExecutor(ctx, o.MaxInFlight)
	r.ppl = newPeople(t0, plan)

	var waitChaos func() []chaos.Event
	if o.Chaos != nil {
		waitChaos = r.startChaos(t0)
	}
	before, _ := r.metrics.read(ctx)
	smp := &sampler{r: r, activity: activity, t0: t0, progress: o.Progress, label: o.Name}
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() { smp.run(ctx, stopSampling) })

	c := &crowd{r: r, activity: activity, t0: t0, tokens: tokens, lifecycle: lifecycle, cfg: o.Scenario}
	queue := o.Admission == AdmissionQueue
	if o.BuyToken == BuyTokenRequired && !queue {
		c.door = newTokenDoor(c) // with a waiting room the pass is the buy token
	}
	crowdDone := make(chan struct{})
	if queue {
		c.scheduleQueue(plan)
		go r.watchSaleOver(activity, t0.Add(plan.End()), lifecycle, crowdDone)
	} else {
		c.schedule(plan)
	}
	r.exec.wait() // every click, retry and payment has been answered
	close(crowdDone)
	var events []chaos.Event
	var healErr error
	if waitChaos != nil {
		events = waitChaos() // every fault has ended
		if healErr = o.Chaos.heal(ctx); healErr != nil {
			healErr = fmt.Errorf("after the faults: %w", healErr)
		}
	}
	settled, rec, err := r.settle(activity, lifecycle, "drain after the spike")
	rep.Settles = append(rep.Settles, rec)
	if err != nil {
		close(stopSampling)
		sampling.Wait()
		return err
	}
	after, _ := r.metrics.read(ctx)
	if o.Chaos != nil {
		// A recovery must hold (chaos.RecoveryHold): one that comes with
		// the end of the drain is confirmed by the samples after it.
		time.Sleep(chaos.RecoveryHold)
	}
	// One more edge so that the timeline covers the last second.
	time.Sleep(time.Until(t0.Add(time.Duration(r.rec.SecondOf(time.Now())+1)*time.Second)) + 50*time.Millisecond)
	close(stopSampling)
	sampling.Wait()
	if o.Progress != nil && !o.ProgressLines {
		fmt.Fprintln(o.Progress)
	}
	samples := smp.all()
	naive := o.Mode == audit.Naive
	rep.Timeline = timeline(r, samples, naive)
	rep.Funnel = funnel(r, before, after, naive)
	_, _, rep.BuyAnswersByKind = r.ledger.door()
	rep.Latency = r.rec.Latencies()
	rep.Lag = r.rec.Lag()
	buyAll := r.rec.Latency(epBuy, measure.AllOutcomes)
	spikeSpan := r.rec.TimedSpan() // the recorder's timed endpoint is the buy

	// The units that timed out go back on sale: fresh users buy them.
	var resale *audit.Resale
	if queue && lifecycle && settled.OrdersCancelled > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d orders were cancelled; with a waiting room their units went to the next people in the queue, who were still listening, so no resale phase runs (invariants 2 and 6 are not exercised by one)", settled.OrdersCancelled))
	}
	if !queue && lifecycle && settled.OrdersCancelled > 0 {
		resale, err = r.resale(activity, settled, prefix)
		if err != nil {
			return err
		}
		_, rec, err := r.settle(activity, lifecycle, "drain after the resale")
		rep.Settles = append(rep.Settles, rec)
		if err != nil {
			return err
		}
	}

	ev, err := r.evidence(activity, store, lifecycle, resale, smp.stats(), rep.StartedAt)
	if err != nil {
		return err
	}
	rep.BuyToken.UsersWithToken, rep.BuyToken.AcceptedWithoutToken, _ = r.ledger.door()
	if o.BuyToken == BuyTokenRequired && rep.BuyToken.AcceptedWithoutToken > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d orders were accepted for users that never got a buy token, though --buy-token required says the gateway refuses such buys: the gateway does not run %s=required, or its door is open",
			rep.BuyToken.AcceptedWithoutToken, envBuyToken))
	}
	rep.Final = ev.Final
	if queue {
		if ev.Queue, err = r.queueEvidence(activity, ev); err != nil {
			return err
		}
	}
	rep.Audit = audit.Run(ev)
	if o.Chaos != nil {
		inFlight, acceptedAt, _ := r.ledger.failures()
		alerts, alertsErr := r.firedAlerts(t0)
		rep.Chaos = r.chaosReport(events, observations(acceptedAt, samples), t0, time.Now(), inFlightStats(inFlight, ev.Accepted), alerts, alertsErr)
		if healErr != nil {
			rep.Chaos.Errors = append(rep.Chaos.Errors, healErr.Error())
		}
	}

	if o.ProbeDuration > 0 {
		probes, err := r.probes(activity, prefix)
		if err != nil {
			return err
		}
		rep.Probes = probes
	}
	rep.ComputeFigures(buyAll, spikeSpan)
	rep.Fairness = r.fairness(rep, before, after)
	if rep.Lag.P99 > 100 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the generator sent late (p99 %.0fms behind schedule): the machine could not offer the planned load on time; latencies include that wait", rep.Lag.P99))
	}
	return nil
}

// tokens gets a token for every user: minted locally from the JWT secret,
// or through the demo login (64 at a time).
func (r *runner) tokens(plan scenario.Plan) (map[string]string, error) {
	out := make(map[string]string, len(plan.Users))
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, u := range plan.Users {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			tok, err := r.client.Token(r.ctx, u.ID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out[u.ID] = tok
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("user tokens: %w", firstErr)
	}
	return out, nil
}
