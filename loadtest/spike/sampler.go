package spike

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/report"
)

// sample is one poll of the gateway.
type sample struct {
	At      time.Time   // when it was sent
	Read    time.Time   // when /metrics answered (zero when it failed)
	Metrics api.Metrics // nil when /metrics failed
	Stats   *api.Stats  // nil when the stats failed
}

// Counters read from /metrics.
const (
	mReserve      = "seckill_reserve_total"
	mWritten      = "seckill_orders_written_total"
	mNaive        = "seckill_naive_buy_total"
	mQueue        = "seckill_queue_depth"
	mQueueAge     = "seckill_queue_oldest_age_seconds"
	mRateLimited  = "seckill_rate_limited_total"
	mSoldOutLocal = "seckill_soldout_local_total"
	mBatches      = "seckill_order_batch_size_count" // one per worker transaction
	mTokenRefused = "seckill_buy_token_refused_total"
)

// dbTransactions is the cumulative count of database transactions on the
// buy path: the workers' batches in pipeline mode, every buy in naive mode
// (each takes the row lock, sold out or not).
func dbTransactions(m api.Metrics, naive bool) float64 {
	if naive {
		return m.Sum(mNaive)
	}
	return m.Sum(mBatches)
}

// written is the cumulative count of orders written to the database as
// created: by the workers in pipeline mode, by the buy requests in naive
// mode.
func written(m api.Metrics, naive bool) float64 {
	if naive {
		return m.Sum(mNaive, `outcome="created"`)
	}
	return m.Sum(mWritten, `result="created"`)
}

// sampler polls /metrics (every gateway's and worker's behind a load
// balancer) and the activity's stats four times a second, on edges
// relative to T0, and prints the live progress line. A process that does
// not answer (paused) holds a poll up to its 900 ms bound: the polls then
// come as fast as that allows.
type sampler struct {
	r        *runner
	activity string
	t0       time.Time
	progress io.Writer
	label    string

	mu      sync.Mutex
	samples []sample
}

// samplePeriod is how often the gateway is polled: four times a second,
// so that the counters at each second's edge are known within a quarter
// of a second.
const samplePeriod = 250 * time.Millisecond

func (s *sampler) run(ctx context.Context, done <-chan struct{}) {
	// The first quarter-second tick at or after now.
	k := math.Floor(float64(time.Since(s.t0))/float64(samplePeriod)) + 1
	tick := s.t0.Add(time.Duration(k) * samplePeriod)
	for {
		select {
		case <-time.After(time.Until(tick)):
		case <-done:
			return
		case <-ctx.Done():
			return
		}
		s.poll(ctx, tick)
		tick = tick.Add(samplePeriod)
	}
}

func (s *sampler) poll(ctx context.Context, edge time.Time) {
	pctx, cancel := context.WithTimeout(ctx, 900*time.Millisecond)
	defer cancel()
	smp := sample{At: edge}
	var wg sync.WaitGroup
	wg.Go(func() {
		if m, err := s.r.metrics.read(pctx); err == nil {
			smp.Metrics = m
			// The counters are as of the answer, which under load can
			// come well after the tick: book them by when they were read,
			// so nothing is counted before it happened.
			smp.Read = time.Now()
		}
	})
	wg.Go(func() {
		if st, err := s.r.monitor.Stats(pctx, s.activity); err == nil {
			smp.Stats = &st
		}
	})
	wg.Wait()
	s.mu.Lock()
	s.samples = append(s.samples, smp)
	s.mu.Unlock()
	if s.progress != nil && edge.Sub(s.t0)%time.Second == 0 {
		s.printProgress(smp)
	}
}

func (s *sampler) printProgress(smp sample) {
	t := s.r.rec.SecondOf(smp.At.Add(time.Millisecond))
	sent := s.r.rec.Count(epBuy, "")
	line := fmt.Sprintf("[%s] T%+ds buys answered %d (202 %d, 410 %d, 429 %d, 503 %d, err %d) in flight %d",
		s.label, t, sent, s.r.rec.Count(epBuy, "202"), s.r.rec.Count(epBuy, "410"), s.r.rec.Count(epBuy, "429"),
		s.r.rec.Count(epBuy, "503"), s.r.rec.Count(epBuy, "error"), s.r.exec.InFlight())
	if st := smp.Stats; st != nil {
		line += fmt.Sprintf(" | queued %d created %d paid %d cancelled %d", st.Queued, st.OrdersCreated, st.OrdersPaid, st.OrdersCancelled)
	}
	if s.r.opts.ProgressLines {
		if t%5 == 0 {
			fmt.Fprintln(s.progress, line)
		}
		return
	}
	fmt.Fprintf(s.progress, "\r%-150s", line)
}

// all returns the samples so far.
func (s *sampler) all() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sample(nil), s.samples...)
}

// stats returns the stats of every sample that has them.
func (s *sampler) stats() []api.Stats {
	var out []api.Stats
	for _, smp := range s.all() {
		if smp.Stats != nil {
			out = append(out, *smp.Stats)
		}
	}
	return out
}

// timeline joins the generator's seconds with the gateway's counters:
// second T gets the counters' growth between the edges T and T+1.
func timeline(r *runner, samples []sample, naive bool) []report.Second {
	// byEdge[k] is the counters at the edge T0+k: the last sample read
	// before it (within a sample period and the poll's latency).
	byEdge := map[int]api.Metrics{}
	first, last := math.MaxInt, math.MinInt
	for _, smp := range samples { // in the order they were taken
		if smp.Metrics != nil {
			k := r.rec.SecondOf(smp.Read) + 1
			byEdge[k] = smp.Metrics
			first, last = min(first, k), max(last, k)
		}
	}
	seconds := r.rec.Seconds()
	if len(seconds) > 0 {
		last = max(last, seconds[len(seconds)-1].T+1)
	}
	// An edge without a reading of its own (a poll that failed, or was
	// answered a second late under load) takes the last one before it:
	// the counters only grow, so growth is booked no earlier than it
	// happened, and a second is not left without its writes.
	for k := first + 1; first != math.MaxInt && k <= last; k++ {
		if byEdge[k] == nil {
			byEdge[k] = byEdge[k-1]
		}
	}
	var out []report.Second
	for _, s := range seconds {
		sec := report.Second{T: s.T, Buys: s.Sent[epBuy], Answers: map[string]int{}, P50: s.P50, P99: s.P99,
			Reserved: -1, Written: -1, DBTx: -1, QueueDepth: -1, QueueAge: -1}
		for _, n := range s.Sent {
			sec.Requests += n
		}
		for k, n := range s.Answers {
			if len(k) > len(epBuy) && k[:len(epBuy)+1] == epBuy+" " {
				sec.Answers[k[len(epBuy)+1:]] += n
			}
		}
		a, b := byEdge[s.T], byEdge[s.T+1]
		if a != nil && b != nil {
			sec.Written = written(b, naive) - written(a, naive)
			sec.DBTx = dbTransactions(b, naive) - dbTransactions(a, naive)
			if !naive {
				sec.Reserved = b.Sum(mReserve, `outcome="reserved"`) - a.Sum(mReserve, `outcome="reserved"`)
			}
		}
		if b != nil {
			sec.QueueDepth = b.Sum(mQueue)
			if b.Has(mQueueAge) {
				sec.QueueAge = b.Sum(mQueueAge)
			}
		}
		out = append(out, sec)
	}
	return out
}

// funnel counts each layer of the buy path over the spike. The first two
// stages come from the generator; the rest subtract or are the growth of
// the gateway's counters between before and after (so they include any
// other traffic the gateway had meanwhile: run against a quiet gateway).
func funnel(r *runner, before, after api.Metrics, naive bool) []report.Stage {
	requests := float64(r.rec.Count(epBuy, ""))
	limited := float64(r.rec.Count(epBuy, "429"))
	st := []report.Stage{
		{Name: "buy requests", Count: requests, Note: "sent by the generator (bots, double clicks and retries included)"},
		{Name: "past the rate limits", Count: requests - limited, Note: "answers other than 429"},
	}
	if before == nil || after == nil {
		return append(st, report.Stage{Name: "(gateway counters unavailable)", Note: "/metrics could not be read"})
	}
	d := func(name string, match ...string) float64 {
		return after.Sum(name, match...) - before.Sum(name, match...)
	}
	st = append(st, doorStage(r.opts.BuyToken, requests-limited, before, after))
	if naive {
		return append(st,
			report.Stage{Name: "reached the database", Count: d(mNaive), Note: "seckill_naive_buy_total: every buy is a locking transaction"},
			report.Stage{Name: "orders created", Count: d(mNaive, `outcome="created"`), Note: `seckill_naive_buy_total{outcome="created"}`},
			report.Stage{Name: "written to the database", Count: d(mNaive, `outcome="created"`), Note: "the same transaction"},
		)
	}
	return append(st,
		// A double click waiting on its twin calls the script again after
		// each "pending": counting every outcome but that one counts each
		// buy that reached Redis once.
		report.Stage{Name: "past window and sold-out flag", Count: d(mReserve) - d(mReserve, `outcome="pending"`),
			Note: `reached Redis: seckill_reserve_total, every outcome but "pending" (a double click waiting on its twin asks again; counted once)`},
		report.Stage{Name: "reserved in Redis", Count: d(mReserve, `outcome="reserved"`), Note: `seckill_reserve_total{outcome="reserved"}`},
		report.Stage{Name: "written to the database", Count: d(mWritten, `result="created"`), Note: `seckill_orders_written_total{result="created"}`},
	)
}

// doorStage is the buy-token layer (both buy modes sit behind it): the
// buys past the rate limits less those the gateway refused 403 for their
// token, by the growth of seckill_buy_token_refused_total, its note naming
// the reasons seen.
func doorStage(setting BuyTokenSetting, past float64, before, after api.Metrics) report.Stage {
	const name = "past the buy-token check"
	var reasons []string
	for _, reason := range after.LabelValues(mTokenRefused, "reason") {
		match := `reason="` + reason + `"`
		if n := after.Sum(mTokenRefused, match) - before.Sum(mTokenRefused, match); n > 0 {
			reasons = append(reasons, fmt.Sprintf("%s %.0f", reason, n))
		}
	}
	refused := after.Sum(mTokenRefused) - before.Sum(mTokenRefused)
	st := report.Stage{Name: name, Count: past - refused}
	switch {
	case setting == BuyTokenOff && refused > 0:
		st.Note = fmt.Sprintf("buy tokens off (--buy-token off), yet the gateway refused %.0f buys for their token (%s): it runs %s=required",
			refused, strings.Join(reasons, ", "), envBuyToken)
	case setting == BuyTokenOff:
		st.Note = "buy tokens off (--buy-token off): no check, nothing refused"
	case !after.Has(mTokenRefused):
		st.Note = "the gateway exports no " + mTokenRefused + ": no refusal could be counted"
	case refused == 0:
		st.Note = "less " + mTokenRefused + ": none refused"
	default:
		st.Note = fmt.Sprintf("less %s: refused 403 at the door, %s", mTokenRefused, strings.Join(reasons, ", "))
	}
	return st
}
