package spike

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/measure"
	"github.com/flashsale/seckill/loadtest/report"
)

// probes measure ceilings with the same client and connections as the
// spike, in the same run: the /healthz ceiling (the HTTP stack and the
// generator itself, nothing else), and the buy path in its three phases.
// Each is closed-loop: ProbeClients clients send as fast as answers come,
// for ProbeDuration. Every buy comes from a fresh user, so the per-user
// limit never answers (a probe measures the path, not the limiter). With
// buy tokens required each fresh user first fetches its token, as every
// buyer of the spike does: the fetch is part of the cost of a buy, so the
// probe's rate stays comparable with the spike's.
//
// /healthz and the two sold-out probes take turns, probeRounds slices
// each, so that the machine's drift (a neighbour's build, the workers
// finishing the spike's backlog, the garbage collector's state) falls on
// all three alike and their ratios keep only the difference of the path.
// The in-stock probe runs last and alone: the orders it takes keep the
// workers busy after it.
func (r *runner) probes(soldOut, prefix string) ([]report.Probe, error) {
	o := r.opts
	healthz := probeSpec{report.ProbeHealthz, "GET /healthz: the ceiling of this generator, network and HTTP stack", func(int64) api.Answer {
		return r.client.Healthz(r.ctx)
	}}
	if len(o.JWTSecret) == 0 && o.URL != "" {
		return r.probeInTurns(healthz), nil // a demo login per buy would be measured too; the note says so
	}
	if st, err := r.client.Stats(r.ctx, soldOut); err != nil {
		return nil, err
	} else if st.Remaining > 0 && o.Mode != "naive" || st.DBAvailable > 0 {
		r.log.Warn("the spike activity is not sold out; the sold-out probes measure something else", "stats", st)
	}
	withToken := o.BuyToken == BuyTokenRequired
	buyer := func(name, activity string, withRequestID bool) func(int64) api.Answer {
		return func(i int64) api.Answer {
			user := fmt.Sprintf("%s-%s-%d", prefix, name, i)
			tok, err := r.client.Token(r.ctx, user)
			if err != nil {
				return api.Answer{Err: err}
			}
			buyToken := ""
			if withToken {
				var a api.Answer
				if buyToken, _, a = r.client.BuyToken(r.ctx, activity, tok); buyToken == "" {
					// Counted as the buy's answer, marked as the fetch's.
					a.Code = strings.TrimSpace("(buy-token) " + a.Code)
					return a
				}
			}
			reqID := ""
			if withRequestID {
				reqID = "p" + fmt.Sprint(i)
			}
			return r.client.Buy(r.ctx, activity, tok, reqID, buyToken)
		}
	}
	what := func(s string) string {
		if withToken {
			return s + "; each buy first fetches its fresh user's buy token (--buy-token required), as part of its cost"
		}
		return s
	}
	out := r.probeInTurns(healthz,
		probeSpec{report.ProbeSoldOut, what("buy a sold-out activity, no request_id (pipeline: the local sold-out flag answers)"), buyer("so", soldOut, false)},
		probeSpec{report.ProbeSoldOutReqID, what("buy a sold-out activity with a request_id (pipeline: the holder snapshot answers, unless the user holds a unit)"), buyer("sr", soldOut, true)},
	)
	now := time.Now().UTC()
	inStock, err := r.client.CreateActivity(r.ctx, api.ActivitySpec{
		Name: "load test probe " + o.Name, Stock: 10_000_000, PriceCents: 100,
		StartsAt: now.Truncate(time.Second).Add(-time.Second), EndsAt: now.Add(2 * time.Hour), PayTimeoutSeconds: 3600,
	})
	if err != nil {
		return nil, err
	}
	out = append(out, r.probeInTurns(probeSpec{report.ProbeBuyInStock, what("buy while stock lasts (10M units): the whole buy path"), buyer("in", inStock, true)})...)
	return out, nil
}

// probeRounds is how many turns each of the probes run together takes.
const probeRounds = 3

// probeSpec is one probe: its name, what it measures, and one request.
type probeSpec struct {
	name, what string
	do         func(i int64) api.Answer
}

// probeInTurns runs the probes in probeRounds rounds, each probe for
// ProbeDuration/probeRounds a round, one after the other, and reports each
// over all its rounds. A single probe runs its ProbeDuration in one go.
func (r *runner) probeInTurns(specs ...probeSpec) []report.Probe {
	rounds := probeRounds
	if len(specs) == 1 {
		rounds = 1
	}
	slice := r.opts.ProbeDuration / time.Duration(rounds)
	recs := make([]*measure.Recorder, len(specs))
	spent := make([]time.Duration, len(specs))
	seqs := make([]atomic.Int64, len(specs))
	for i, s := range specs {
		recs[i] = measure.New(time.Now(), s.name)
	}
	for range rounds {
		for i, s := range specs {
			spent[i] += r.probeFor(slice, recs[i], s, &seqs[i])
		}
	}
	out := make([]report.Probe, len(specs))
	for i, s := range specs {
		out[i] = r.probeReport(s, recs[i], spent[i])
	}
	return out
}

// probeFor runs ProbeClients closed-loop clients of s for d, recording
// into rec, and returns how long it took (the last answers come after d).
func (r *runner) probeFor(d time.Duration, rec *measure.Recorder, s probeSpec, seq *atomic.Int64) time.Duration {
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range r.opts.ProbeClients {
		wg.Go(func() {
			for time.Now().Before(deadline) && r.ctx.Err() == nil {
				sent := time.Now()
				a := s.do(seq.Add(1))
				rec.Record(s.name, a.Outcome(), a.Status, sent, sent, time.Now())
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

func (r *runner) probeReport(s probeSpec, rec *measure.Recorder, spent time.Duration) report.Probe {
	o := r.opts
	name, what, secs := s.name, s.what, spent.Seconds()
	all := rec.Latency(name, measure.AllOutcomes)
	p := report.Probe{
		Name: name, What: what, Clients: o.ProbeClients, Requests: all.Count, Seconds: secs,
		RPS: float64(all.Count) / secs, P50: all.P50, P99: all.P99,
	}
	var parts []string
	var good int64
	for _, l := range rec.Latencies() {
		if l.Outcome == measure.AllOutcomes {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s x%d", l.Outcome, l.Count))
		if strings.HasPrefix(l.Outcome, "5") || l.Outcome == "error" || strings.HasPrefix(l.Outcome, "429") {
			continue
		}
		good += l.Count
	}
	sort.Strings(parts)
	p.Outcomes = strings.Join(parts, ", ")
	if good < all.Count {
		// Failures are fast and would flatter the rate: count only answers
		// that did the work.
		p.RPS = float64(good) / secs
		p.Outcomes += fmt.Sprintf(" (req/s counts only the %d answers other than 429/5xx/errors)", good)
	}
	return p
}
