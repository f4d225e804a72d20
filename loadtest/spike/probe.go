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
func (r *runner) probes(soldOut, prefix string) ([]report.Probe, error) {
	o := r.opts
	var out []report.Probe
	out = append(out, r.probe(report.ProbeHealthz, "GET /healthz: the ceiling of this generator, network and HTTP stack", func(int64) api.Answer {
		return r.client.Healthz(r.ctx)
	}))
	if len(o.JWTSecret) == 0 && o.URL != "" {
		return out, nil // a demo login per buy would be measured too; the note says so
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
	out = append(out,
		r.probe(report.ProbeSoldOut, what("buy a sold-out activity, no request_id (pipeline: the local sold-out flag answers)"), buyer("so", soldOut, false)),
		r.probe(report.ProbeSoldOutReqID, what("buy a sold-out activity with a request_id (pipeline: skips the flag, Redis answers)"), buyer("sr", soldOut, true)),
	)
	now := time.Now().UTC()
	inStock, err := r.client.CreateActivity(r.ctx, api.ActivitySpec{
		Name: "load test probe " + o.Name, Stock: 10_000_000, PriceCents: 100,
		StartsAt: now.Truncate(time.Second).Add(-time.Second), EndsAt: now.Add(2 * time.Hour), PayTimeoutSeconds: 3600,
	})
	if err != nil {
		return nil, err
	}
	out = append(out, r.probe(report.ProbeBuyInStock, what("buy while stock lasts (10M units): the whole buy path"), buyer("in", inStock, true)))
	return out, nil
}

func (r *runner) probe(name, what string, do func(i int64) api.Answer) report.Probe {
	o := r.opts
	start := time.Now()
	rec := measure.New(start, name)
	deadline := start.Add(o.ProbeDuration)
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range o.ProbeClients {
		wg.Go(func() {
			for time.Now().Before(deadline) && r.ctx.Err() == nil {
				sent := time.Now()
				a := do(seq.Add(1))
				rec.Record(name, a.Outcome(), a.Status, sent, sent, time.Now())
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
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
