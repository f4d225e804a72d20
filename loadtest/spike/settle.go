package spike

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/audit"
	"github.com/flashsale/seckill/loadtest/report"
	"github.com/flashsale/seckill/order"
)

// settle waits until the queue is drained and, with the lifecycle, every
// order is paid or cancelled (the unpaid ones time out); after faults
// (a chaos run) also until Redis and the database agree with the orders
// again (a restore from the database, the reconciler) and every process
// reports an empty queue. At the bound it returns what had not settled:
// not an error of the run, the audit shows what is wrong.
func (r *runner) settle(activity string, lifecycle bool, phase string) (api.Stats, report.Settle, error) {
	start := time.Now()
	rec := report.Settle{Phase: phase, Bound: r.opts.SettleTimeout.Seconds()}
	deadline := start.Add(r.opts.SettleTimeout)
	for {
		st, err := r.client.Stats(r.ctx, activity)
		var unmet []string
		if err != nil {
			unmet = []string{"the stats could not be read: " + err.Error()}
		} else {
			unmet = r.unsettled(st, lifecycle)
		}
		if len(unmet) == 0 {
			rec.Settled, rec.Waited = true, time.Since(start).Seconds()
			return st, rec, nil
		}
		if time.Now().After(deadline) {
			rec.Waited, rec.Unmet = time.Since(start).Seconds(), unmet
			if err != nil {
				return st, rec, fmt.Errorf("settle: %w", err)
			}
			r.log.Warn("did not settle", "timeout", r.opts.SettleTimeout, "unmet", unmet, "stats", st)
			return st, rec, nil
		}
		select {
		case <-r.ctx.Done():
			return st, rec, r.ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// unsettled lists what keeps the run from having settled.
func (r *runner) unsettled(st api.Stats, lifecycle bool) []string {
	var out []string
	pipeline := r.opts.Mode != audit.Naive
	strict := r.opts.Chaos != nil
	if pipeline && (st.Queued > 0 || strict && st.Queued != 0) {
		out = append(out, fmt.Sprintf("%d orders still queued (stats: reserved - created - paid)", st.Queued))
	}
	if lifecycle && st.OrdersCreated != 0 {
		out = append(out, fmt.Sprintf("%d orders neither paid nor cancelled yet", st.OrdersCreated))
	}
	if !strict {
		return out
	}
	stock := r.opts.Scenario.Stock
	if want := stock - st.Queued - st.Live(); pipeline && st.Remaining != want {
		out = append(out, fmt.Sprintf("Redis remaining %d, want stock %d - queued %d - live orders %d = %d", st.Remaining, stock, st.Queued, st.Live(), want))
	}
	if want := stock - st.Live(); st.DBAvailable != want {
		out = append(out, fmt.Sprintf("database available %d, want stock %d - live orders %d = %d", st.DBAvailable, stock, st.Live(), want))
	}
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
	defer cancel()
	m, err := r.metrics.read(ctx)
	switch {
	case err != nil:
		out = append(out, "no process's /metrics could be read: "+err.Error())
	case m.Sum(mQueue) != 0:
		out = append(out, fmt.Sprintf("the order queue holds %.0f messages (%s; -1: unreadable)", m.Sum(mQueue), mQueue))
	case m.Has(mQueueAge) && m.Sum(mQueueAge) != 0:
		out = append(out, fmt.Sprintf("the oldest unwritten order is %.1fs old (%s; -1: unreadable)", m.Sum(mQueueAge), mQueueAge))
	}
	return out
}

// evidence collects what the audit needs: the final stats, every 202
// order's state as its owner reads it, and the database rows when a
// database is at hand.
func (r *runner) evidence(activity string, store *order.Store, lifecycle bool, resale *audit.Resale, samples []api.Stats, since time.Time) (audit.Evidence, error) {
	accepted, requestOrders, pays, tried := r.ledger.snapshot()
	final, err := r.client.Stats(r.ctx, activity)
	if err != nil {
		return audit.Evidence{}, err
	}
	inFlight, _, answers := r.ledger.failures()
	ev := audit.Evidence{
		Mode: r.opts.Mode, Stock: r.opts.Scenario.Stock, Final: final, Samples: samples,
		UsersTried: tried, Accepted: accepted, RequestOrders: requestOrders, Pays: pays,
		Lifecycle: lifecycle, Resale: resale, FinalStates: map[string]string{},
		InFlight: inFlight, UserAnswers: answers,
	}
	ev.DeadLetters, ev.DeadLettersSkipped = r.deadLetters(since)
	ids := make([]string, 0, len(accepted))
	for id := range accepted {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var firstErr error
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			tok, err := r.client.Token(r.ctx, accepted[id])
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				return
			}
			o, a := r.client.GetOrder(r.ctx, id, tok)
			mu.Lock()
			defer mu.Unlock()
			switch a.Status {
			case http.StatusOK:
				ev.FinalStates[id] = o.State
			case http.StatusNotFound:
				ev.FinalStates[id] = ""
			default:
				if firstErr == nil {
					firstErr = fmt.Errorf("read order %s back: %s", id, a.Outcome())
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return ev, firstErr
	}
	if store != nil {
		facts, err := dbFacts(r.ctx, store, activity)
		if err != nil {
			return ev, err
		}
		ev.DB = facts
	}
	return ev, nil
}
