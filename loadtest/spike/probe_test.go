package spike

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
)

// TestProbesTakeTurns checks that probes run together alternate in
// probeRounds rounds (so drift falls on each alike), that each reports the
// requests of all its rounds over the time of all its rounds, and that a
// probe run alone takes its whole duration in one go.
func TestProbesTakeTurns(t *testing.T) {
	r := &runner{ctx: context.Background(), opts: Options{ProbeDuration: 300 * time.Millisecond, ProbeClients: 2}}
	var mu sync.Mutex
	var order []string // the probe of each request, in the order they were sent
	count := map[string]int64{}
	spec := func(name string) probeSpec {
		return probeSpec{name: name, what: name, do: func(int64) api.Answer {
			mu.Lock()
			order = append(order, name)
			count[name]++
			mu.Unlock()
			time.Sleep(time.Millisecond)
			return api.Answer{Status: 200}
		}}
	}
	probes := r.probeInTurns(spec("a"), spec("b"), spec("c"))
	if want := slices.Repeat([]string{"a", "b", "c"}, probeRounds); !slices.Equal(slices.Compact(order), want) {
		t.Errorf("probes ran in the turns %v, want %v", slices.Compact(order), want)
	}
	for _, p := range probes {
		if p.Requests != count[p.Name] {
			t.Errorf("probe %s reports %d requests, sent %d", p.Name, p.Requests, count[p.Name])
		}
		// Each ran probeRounds slices of 100ms: at least 300ms in all.
		if p.Seconds < 0.3 || p.RPS != float64(p.Requests)/p.Seconds {
			t.Errorf("probe %s: %d requests over %.3fs at %.1f/s; want the rate over at least 0.3s, all rounds", p.Name, p.Requests, p.Seconds, p.RPS)
		}
	}

	order = nil
	alone := r.probeInTurns(spec("d"))
	if len(alone) != 1 || alone[0].Seconds < 0.3 || !slices.Equal(slices.Compact(order), []string{"d"}) {
		t.Errorf("a probe alone: %+v, turns %v; want one run of the whole 300ms", alone, slices.Compact(order))
	}
}
