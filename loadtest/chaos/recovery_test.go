package chaos

import (
	"strings"
	"testing"
	"time"
)

// timeline builds observations from offsets (seconds after T0): 202s
// answered at the given instants, and the queue's age sampled every
// quarter second from ages[0] at T0 on (NaN-free; -1 = unknown).
func timeline(accepted []float64, ages []float64) Observations {
	var o Observations
	for _, s := range accepted {
		o.Accepted = append(o.Accepted, t0.Add(time.Duration(s*float64(time.Second))))
	}
	for i, a := range ages {
		o.Ages = append(o.Ages, AgeSample{At: t0.Add(time.Duration(i) * 250 * time.Millisecond), Age: a})
	}
	return o
}

func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestRecoveryOf(t *testing.T) {
	// Ages sampled at 0, 0.25, 0.5, ... seconds.
	ramp := func(n int, f func(t float64) float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = f(float64(i) / 4)
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		start, end float64
		obs        Observations
		recovered  bool
		at         float64 // R, seconds after T0
		baseline   float64
		why        string
	}{
		{
			// MariaDB down from 2s to 4s: the queue ages while it is down,
			// 202s flow on (the gateways still accept), the workers catch up
			// at 5s: recovered when the age is back under the floor.
			name: "the queue drains after the fault", start: 2, end: 4,
			obs: timeline([]float64{0.5, 1, 3, 4.1, 6}, ramp(80, func(t float64) float64 {
				switch {
				case t < 2:
					return 0.2
				case t < 5:
					return t - 2 + 0.2 // the oldest order waits since 2s
				default:
					return 0.3
				}
			})),
			recovered: true, at: 5, baseline: 0.2,
		},
		{
			// A gateway killed: the queue never ages, but no 202 comes
			// until 4.6s: recovered at the first age sample after it.
			name: "202s come back later than the queue", start: 1, end: 4,
			obs:       timeline([]float64{0.5, 4.6, 5}, ramp(80, func(float64) float64 { return 0 })),
			recovered: true, at: 4.75,
		},
		{
			// An earlier fault left the queue 8s behind: "younger than
			// before" is 8s, not the floor.
			name: "a queue already behind before the fault", start: 2, end: 3,
			obs: timeline([]float64{3.1}, ramp(80, func(t float64) float64 {
				switch {
				case t <= 2: // the sample at the fault's start is before it
					return 8
				case t < 3.5:
					return 9
				}
				return 7.9
			})),
			recovered: true, at: 3.5, baseline: 8,
		},
		{
			name: "no 202 after the fault", start: 1, end: 2,
			obs: timeline([]float64{0.5, 1.99}, ramp(80, func(float64) float64 { return 0 })),
			why: "no buy was answered 202 after it ended",
		},
		{
			name: "the queue never catches up", start: 1, end: 2,
			obs: timeline([]float64{2.5}, ramp(80, func(t float64) float64 {
				if t <= 1 {
					return 0
				}
				return t
			})),
			why: "the queue's oldest order was still 19.8s old at the last sample (before the fault: 0.0s)",
		},
		{
			// The queue's age is unknown (-1) while NATS is unreachable:
			// unknown is not "young".
			name: "an unreadable queue is not a recovered one", start: 1, end: 2,
			obs: timeline([]float64{2.2}, ramp(80, func(t float64) float64 {
				if t < 1 {
					return 0
				}
				return -1
			})),
			why: "the queue's age was unknown at the last sample",
		},
		{
			name: "unknown, then known", start: 1, end: 2,
			obs: timeline([]float64{2.2}, ramp(80, func(t float64) float64 {
				if t >= 1 && t < 3 {
					return -1
				}
				return 0.1
			})),
			recovered: true, at: 3, baseline: 0.1,
		},
		{
			// Redis restarted empty at 2s: the queue still looks young
			// right after, then the orders accepted meanwhile wait on
			// failing writes; it keeps up again from 6s. Its first young
			// sample is not the recovery.
			name: "a fault whose effect on the queue comes later", start: 2, end: 2,
			obs: timeline([]float64{1, 2.3, 4, 7}, ramp(80, func(t float64) float64 {
				switch {
				case t < 2.75:
					return 0.2
				case t < 6:
					return t - 2.5
				default:
					return 0.3
				}
			})),
			recovered: true, at: 6, baseline: 0.2,
		},
		{
			// Young again at 16s, and the samples end at 19.75s: not held
			// for RecoveryHold yet.
			name: "sampled too briefly after keeping up", start: 1, end: 2,
			obs: timeline([]float64{2.1}, ramp(80, func(t float64) float64 {
				if t > 1 && t < 16 {
					return 5
				}
				return 0
			})),
			why: "the queue kept up from 14.0s after the fault's end, but the sampling ended before it had for 5s",
		},
		{
			// An instant fault (Redis restarted empty) ends where it begins.
			name: "an instant fault", start: 2, end: 2,
			obs:       timeline([]float64{1, 2.3}, ramp(80, func(float64) float64 { return 0.4 })),
			recovered: true, at: 2.5, baseline: 0.4,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := RecoveryOf(sec(tc.start), sec(tc.end), tc.obs)
			if r.Recovered != tc.recovered {
				t.Fatalf("recovered %v (%s), want %v", r.Recovered, r.Why, tc.recovered)
			}
			if r.Baseline != tc.baseline {
				t.Errorf("baseline %v, want %v", r.Baseline, tc.baseline)
			}
			if r.Threshold != max(tc.baseline, 1) {
				t.Errorf("threshold %v, want %v", r.Threshold, max(tc.baseline, 1))
			}
			if !tc.recovered {
				if !strings.Contains(r.Why, tc.why) {
					t.Errorf("why %q, want %q", r.Why, tc.why)
				}
				return
			}
			if !r.At.Equal(sec(tc.at)) || r.Duration != sec(tc.at).Sub(sec(tc.end)) {
				t.Errorf("recovered at T0+%s after %s, want T0+%vs", r.At.Sub(t0), r.Duration, tc.at)
			}
		})
	}
}
