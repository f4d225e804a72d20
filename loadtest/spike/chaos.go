package spike

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/audit"
	"github.com/flashsale/seckill/loadtest/chaos"
	"github.com/flashsale/seckill/loadtest/report"
	"github.com/flashsale/seckill/order/ordermsg"
)

// Chaos is a schedule of faults played against the system while the spike
// runs (spike --chaos, make chaos).
type Chaos struct {
	// Schedule is validated against the target's topology by the caller.
	Schedule chaos.Schedule
	Target   chaos.Target
	// Heal puts the system back in its normal state and waits until it is
	// (every process up and ready, no fault left): before the spike, so a
	// run starts healthy, and after the faults, before the drain.
	Heal func(ctx context.Context) error
	// PrometheusURL is a Prometheus evaluating the alerting rules over the
	// system; "" when there is none (the report says so).
	PrometheusURL string
	// Clock defaults to the wall clock.
	Clock chaos.Clock
	// HealTimeout bounds each Heal (default DefaultHealTimeout).
	HealTimeout time.Duration
	// Streams, when set, reports the queue's streams and their replicas
	// after the run (the cluster's JetStream): a stream of one replica
	// stops while its node is down, which explains a NATS node's kill.
	Streams func(ctx context.Context) (map[string]int, error)
}

// DefaultHealTimeout bounds the wait for the system to be whole again
// after the faults: a process started again must become ready, a NATS node
// must catch up with its cluster.
const DefaultHealTimeout = 3 * time.Minute

// alertLookback is how long before T0 the alert query starts, so that an
// alert still firing from an earlier run is told apart from the faults'.
const alertLookback = time.Minute

// heal runs c.Heal within its bound.
func (c *Chaos) heal(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.HealTimeout)
	defer cancel()
	return c.Heal(ctx)
}

// withDefaults returns c with its defaults filled in (the caller's value
// is left alone).
func (c Chaos) withDefaults() (Chaos, error) {
	if c.Target == nil || c.Heal == nil {
		return c, errors.New("chaos: a target and a heal are required")
	}
	if len(c.Schedule.Faults) == 0 {
		return c, fmt.Errorf("chaos schedule %s: no faults", c.Schedule.Name)
	}
	if c.Clock == nil {
		c.Clock = chaos.WallClock{}
	}
	if c.HealTimeout <= 0 {
		c.HealTimeout = DefaultHealTimeout
	}
	return c, nil
}

// startChaos plays the schedule from t0 on; wait returns the events once
// every fault has ended.
func (r *runner) startChaos(t0 time.Time) (wait func() []chaos.Event) {
	c := r.opts.Chaos
	done := make(chan []chaos.Event, 1)
	go func() { done <- chaos.Run(r.ctx, c.Schedule, c.Target, c.Clock, t0) }()
	return func() []chaos.Event { return <-done }
}

// observations are what the recovery of each fault is measured on: when
// each 202 arrived, and the queue's oldest order's age at each sample, as
// of when it was read.
func observations(accepted []time.Time, samples []sample) chaos.Observations {
	obs := chaos.Observations{Accepted: accepted}
	for _, s := range samples {
		if s.Read.IsZero() {
			continue // no process answered: no age, no time
		}
		age := -1.0
		if s.Metrics.Has(mQueueAge) {
			age = s.Metrics.Sum(mQueueAge)
		}
		obs.Ages = append(obs.Ages, chaos.AgeSample{At: s.Read, Age: age})
	}
	return obs
}

// chaosReport turns the injector's events and what the run saw into the
// report's chaos section.
func (r *runner) chaosReport(events []chaos.Event, obs chaos.Observations, t0, runEnd time.Time, inFlight InFlightStats, alerts []chaos.Alert, alertsErr error) *report.Chaos {
	c := r.opts.Chaos
	rc := &report.Chaos{
		Schedule: c.Schedule.Name, Description: c.Schedule.Description, Seed: r.opts.Scenario.Seed,
		Prometheus: c.PrometheusURL, InFlight: inFlight.report(),
	}
	rel := func(t time.Time) *float64 {
		if t.IsZero() {
			return nil
		}
		v := t.Sub(t0).Seconds()
		return &v
	}
	for i, e := range events {
		f := report.Fault{
			Fault: e.Fault.String(), Kind: string(e.Fault.Kind), Target: e.Fault.Target(),
			Began: rel(e.Began), Ended: rel(e.Ended), Ready: rel(e.Ready), Errors: e.Errors,
			StartFailures: e.StartFailures, StartFailure: lastLine(e.StartFailure),
		}
		// Until when the fault is the system's state: its recovery, or the
		// end of the run.
		until := runEnd
		if !e.Began.IsZero() && !e.Ended.IsZero() {
			rec := chaos.RecoveryOf(e.Began, e.Ended, obs)
			f.Recovered, f.NotRecovered = rec.Recovered, rec.Why
			f.QueueAgeBefore, f.QueueAgeAllowed = rec.Baseline, rec.Threshold
			f.First202 = rel(rec.First202)
			if rec.Recovered {
				d := rec.Duration.Seconds()
				f.RecoverySeconds, f.RecoveredAt = &d, rel(rec.At)
				until = rec.At
			}
		}
		others, othersUntil := chaos.Overlap(events, i, until)
		for _, o := range others {
			f.Overlaps = append(f.Overlaps, o+1)
		}
		f.OthersUntil = rel(othersUntil)
		rc.Faults = append(rc.Faults, f)
	}
	switch {
	case c.PrometheusURL == "":
		rc.AlertsNote = "The cluster runs no Prometheus (install Debian's prometheus package and start the cluster again), so which alerts would have fired is unknown."
	case alertsErr != nil:
		rc.AlertsNote = "Prometheus could not be asked: " + alertsErr.Error()
	}
	for _, a := range alerts {
		ra := report.Alert{Alert: a.String(), Name: a.Name, Severity: a.Severity,
			First: a.First.Sub(t0).Seconds(), Last: a.Last.Sub(t0).Seconds(), BeforeSale: a.First.Before(t0)}
		if !ra.BeforeSale {
			ra.Faults = report.AlertFaults(rc.Faults, ra.First)
			for _, n := range ra.Faults {
				rc.Faults[n-1].Alerts = append(rc.Faults[n-1].Alerts, a.Name)
			}
		}
		rc.Alerts = append(rc.Alerts, ra)
	}
	if err := chaos.Errors(events); err != nil {
		rc.Errors = append(rc.Errors, err.Error())
	}
	if c.Streams != nil {
		rc.Notes = append(rc.Notes, streamNotes(r.ctx, c.Streams)...)
	}
	return rc
}

// streamNotes describes the streams' replicas, and warns when one has a
// single replica.
func streamNotes(ctx context.Context, streams func(context.Context) (map[string]int, error)) []string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := streams(ctx)
	if err != nil {
		return []string{"the queue's streams could not be read: " + err.Error()}
	}
	var parts []string
	single := false
	for _, name := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s R%d", name, m[name]))
		single = single || m[name] < 2
	}
	notes := []string{"JetStream streams: " + strings.Join(parts, ", ")}
	if single {
		notes = append(notes, "a stream with one replica stops while its node is down: a NATS node killed then turns the buys that publish to it away (503) until it is back; the processes create streams with three replicas when they read SECKILL_NATS_REPLICAS")
	}
	return notes
}

// firedAlerts asks the Prometheus, if any, which alerts fired from a
// minute before T0 until now. Its rules are evaluated every second: wait
// for one more evaluation first, so the last state is in.
func (r *runner) firedAlerts(t0 time.Time) ([]chaos.Alert, error) {
	u := r.opts.Chaos.PrometheusURL
	if u == "" {
		return nil, nil
	}
	select {
	case <-time.After(2 * time.Second):
	case <-r.ctx.Done():
		return nil, r.ctx.Err()
	}
	ctx, cancel := context.WithTimeout(r.ctx, 15*time.Second)
	defer cancel()
	return chaos.FiredAlerts(ctx, &http.Client{Timeout: 15 * time.Second}, u, t0.Add(-alertLookback), time.Now())
}

// InFlightStats summarises the in-flight failures for the report.
type InFlightStats struct {
	Total, Users, LaterAccepted int
	ByOutcome                   map[string]int
}

func (s InFlightStats) report() report.InFlight {
	return report.InFlight{Total: s.Total, ByOutcome: s.ByOutcome, Users: s.Users, LaterAccepted: s.LaterAccepted}
}

// deadLetterTopics are the topics whose dead letters the audit reads.
func deadLetterTopics() []string {
	return []string{ordermsg.TopicOrders, ordermsg.TopicOrderTimeouts, ordermsg.TopicOrderEvents}
}

// deadLetterLimit is how many dead letters of a topic are read: a run
// that dead-letters more has one failure many times over.
const deadLetterLimit = 1000

// deadLetters reads each topic's dead letters and keeps those stored since
// the run began. A gateway that keeps none (not NATS) skips the check.
func (r *runner) deadLetters(since time.Time) ([]api.DeadLetterTopic, string) {
	var out []api.DeadLetterTopic
	for _, topic := range deadLetterTopics() {
		d, err := r.client.DeadLetters(r.ctx, topic, deadLetterLimit)
		if errors.Is(err, api.ErrNoDeadLetters) {
			return nil, "the gateway keeps no dead letters it can list (its queue is not NATS)"
		}
		if err != nil {
			return nil, "the dead letters could not be read: " + err.Error()
		}
		kept := d.Messages[:0]
		for _, m := range d.Messages {
			if !m.StoredAt.Before(since) {
				kept = append(kept, m)
			}
		}
		d.Messages = kept
		out = append(out, d)
	}
	return out, ""
}

// inFlightStats counts the in-flight failures, their users, and how many
// of those users then received a 202 all the same.
func inFlightStats(f []audit.InFlight, accepted map[string]string) InFlightStats {
	s := InFlightStats{Total: len(f), ByOutcome: map[string]int{}}
	users := map[string]bool{}
	for _, x := range f {
		s.ByOutcome[x.Outcome]++
		users[x.User] = true
	}
	s.Users = len(users)
	won := map[string]bool{}
	for _, u := range accepted {
		won[u] = true
	}
	for u := range users {
		if won[u] {
			s.LaterAccepted++
		}
	}
	return s
}

// lastLine is the last non-empty line of a start's error: the cluster
// appends the end of the process's log, whose last line says why it
// exited.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// A chaos run's crowd, unless told otherwise: faults need buyers during
// and after them, so half the crowd is steady, arriving evenly from T0
// until ChaosTail after the last fault ends (at least ChaosMinWindow), and
// the stock is as large as the crowd, so that 202s can flow after every
// fault (the resale sells what is left, so invariant 2 is still checked).
const (
	ChaosUsers       = 3000
	ChaosSteadyShare = 0.5
	ChaosTail        = 15 * time.Second
	ChaosMinWindow   = 20 * time.Second
)

// ChaosSteadyWindow is the steady buyers' window for schedule s.
func ChaosSteadyWindow(s chaos.Schedule) time.Duration {
	return max(s.End()+ChaosTail, ChaosMinWindow)
}
