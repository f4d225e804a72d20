package chaos

import (
	"fmt"
	"sort"
	"time"
)

// AgeFloor is the queue age below which the queue counts as keeping up,
// whatever it was before the fault: under a steady crowd the oldest
// unwritten order is always a fraction of a second old (a batch waits for
// its worker), so "as young as before the fault" alone could demand an
// empty queue at the instant of a sample.
const AgeFloor = time.Second

// AgeSample is the age of the oldest order message not yet written,
// sampled at At (seckill_queue_oldest_age_seconds, the largest any process
// reported). Age < 0: unknown (no process could read the queue, or none
// answered).
type AgeSample struct {
	At  time.Time
	Age float64 // seconds
}

// Observations are what the load generator saw over a run, in time order:
// when each 202 arrived, and the queue's age at each sample.
type Observations struct {
	Accepted []time.Time
	Ages     []AgeSample
}

// RecoveryHold is how long the queue must keep up before the system
// counts as recovered: a fault's effect on the queue shows only once the
// orders accepted meanwhile should have been written (Redis restarted
// empty, the workers fail for a while), so its first young sample after
// the fault proves nothing.
const RecoveryHold = 5 * time.Second

// Recovery is how a fault was recovered from.
//
// The system has recovered from a fault at R, the first instant at or
// after the fault's end E at which both hold:
//
//  1. 202s flow again: a buy was answered 202 at or after E, and no later
//     than R;
//  2. the queue keeps up again, and goes on doing so: the age of its
//     oldest unwritten order, at every sample from R to R+RecoveryHold
//     (and at least one at or after R+RecoveryHold), is known and at most
//     the larger of what it was at the last sample before the fault began
//     (the baseline) and AgeFloor.
//
// R is a sample instant of the queue's age (every 250 ms in a spike), so
// it is known to that resolution. The time to recover is R - E.
type Recovery struct {
	Recovered bool
	// At is R, Duration R - E.
	At       time.Time
	Duration time.Duration
	// Baseline is the queue's age before the fault (seconds; 0 when
	// unknown), Threshold what condition 2 allows.
	Baseline  float64
	Threshold float64
	// First202 is the first 202 at or after E (zero: none).
	First202 time.Time
	// Why it did not recover within the observations.
	Why string
}

// RecoveryOf computes the recovery of a fault that began at start and
// ended at end, from obs (see Recovery for the definition).
func RecoveryOf(start, end time.Time, obs Observations) Recovery {
	r := Recovery{}
	for _, s := range obs.Ages {
		if s.At.After(start) {
			break
		}
		if s.Age >= 0 {
			r.Baseline = s.Age
		}
	}
	r.Threshold = max(r.Baseline, AgeFloor.Seconds())
	i := sort.Search(len(obs.Accepted), func(i int) bool { return !obs.Accepted[i].Before(end) })
	if i == len(obs.Accepted) {
		r.Why = "no buy was answered 202 after it ended"
		return r
	}
	r.First202 = obs.Accepted[i]
	from := r.First202 // at or after end
	ok := func(a float64) bool { return a >= 0 && a <= r.Threshold }
	ages := obs.Ages[sort.Search(len(obs.Ages), func(i int) bool { return !obs.Ages[i].At.Before(from) }):]
	var candidate time.Time // the start of the run of young samples
	for _, s := range ages {
		switch {
		case !ok(s.Age):
			candidate = time.Time{}
		case candidate.IsZero():
			candidate = s.At
		}
		if !candidate.IsZero() && !s.At.Before(candidate.Add(RecoveryHold)) {
			r.Recovered, r.At, r.Duration = true, candidate, candidate.Sub(end)
			return r
		}
	}
	switch {
	case len(ages) == 0:
		r.Why = "the queue's age was not sampled after the first 202"
	case !candidate.IsZero():
		r.Why = fmt.Sprintf("the queue kept up from %.1fs after the fault's end, but the sampling ended before it had for %s", candidate.Sub(end).Seconds(), RecoveryHold)
	case ages[len(ages)-1].Age < 0:
		r.Why = "the queue's age was unknown at the last sample"
	default:
		r.Why = fmt.Sprintf("the queue's oldest order was still %.1fs old at the last sample (before the fault: %.1fs)", ages[len(ages)-1].Age, r.Baseline)
	}
	return r
}
