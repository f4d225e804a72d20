package spike

import (
	"fmt"
	"strconv"

	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/audit"
	"github.com/flashsale/seckill/loadtest/report"
)

// Admissions of an activity (the admin create body's "admission").
const (
	AdmissionOpen  = "open"
	AdmissionQueue = "queue"
)

// Counters of the fairness section.
const (
	mQueuePolls   = "seckill_queue_polls_total" // answer=join and answer=redis reach Redis, answer=memory does not
	envPollBudget = "SECKILL_QUEUE_POLL_BUDGET"
)

// pollBudget is the gateway's SECKILL_QUEUE_POLL_BUDGET as the run knows
// it: --set, else the gateway's default.
func (r *runner) pollBudget() float64 {
	if v, ok := r.opts.Env[envPollBudget]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return sale.DefaultQueuePollBudget
}

// delta is a counter's growth between two readings (-1 when either is
// missing or the counter is not exported).
func delta(before, after api.Metrics, name string, match ...string) float64 {
	if before == nil || after == nil || !after.Has(name) {
		return -1
	}
	return after.Sum(name, match...) - before.Sum(name, match...)
}

// fairness computes the run's fairness section from what each person did
// and the counters read before the spike and after it settled.
func (r *runner) fairness(rep *report.Run, before, after api.Metrics) *report.Fairness {
	var peak float64
	for _, s := range rep.Timeline {
		peak = max(peak, float64(s.Requests))
	}
	queueRedis := -1.0
	if j, q := delta(before, after, mQueuePolls, `answer="join"`), delta(before, after, mQueuePolls, `answer="redis"`); j >= 0 && q >= 0 {
		queueRedis = j + q
	}
	return report.NewFairness(report.FairnessInput{
		Admission: r.opts.Admission, People: r.ppl.all(), Window: r.opts.Scenario.Countdown,
		QueuePolls: r.ppl.pollsPerSecond(), PollBudget: r.pollBudget(),
		Reserves: delta(before, after, mReserve), QueueRedis: queueRedis, PeakRequests: peak,
	})
}

// queueEvidence reads the waiting room through the admin audit route and
// pairs it with what each person heard and who holds the orders (the
// database rows when at hand, else the 202s).
func (r *runner) queueEvidence(activity string, ev audit.Evidence) (*audit.QueueEvidence, error) {
	members, _, err := r.client.QueueAudit(r.ctx, activity)
	if err != nil {
		return nil, fmt.Errorf("the waiting room's audit: %w", err)
	}
	q := &audit.QueueEvidence{People: r.ppl.queuePeople(), Orders: ev.Accepted}
	if ev.DB != nil && ev.DB.Users != nil {
		q.Orders = ev.DB.Users
	}
	for _, m := range members {
		q.Members = append(q.Members, audit.QueueMember{User: m.User, Rank: m.Rank, State: m.State})
	}
	return q, nil
}
