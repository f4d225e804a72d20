package spike

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/flashsale/seckill/loadtest/api"
)

// metricsSource reads the system's counters: the gateway's own /metrics
// (an all-in-one process, or the in-process gateway), or, behind a load
// balancer, the /metrics of every gateway and worker read as one
// (api.Merger). Reads happen one at a time, in time order, as the
// merger needs. Safe for concurrent use.
type metricsSource struct {
	client  *api.Client
	targets []string // the processes' /metrics URLs; nil: the gateway's own

	mu     sync.Mutex
	merger *api.Merger
}

func newMetricsSource(client *api.Client, targets []string) *metricsSource {
	return &metricsSource{client: client, targets: targets, merger: api.NewMerger(api.GlobalGauges())}
}

// read returns the metrics now; with several processes, nil only when
// none of them answered.
func (s *metricsSource) read(ctx context.Context) (api.Metrics, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.targets) == 0 {
		return s.client.Metrics(ctx)
	}
	scrapes := make(map[string]api.Metrics, len(s.targets))
	errs := make([]error, len(s.targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, u := range s.targets {
		wg.Go(func() {
			m, err := s.client.MetricsFrom(ctx, u)
			errs[i] = err
			mu.Lock()
			scrapes[u] = m // nil when it failed: the merger keeps its counters
			mu.Unlock()
		})
	}
	wg.Wait()
	if !slices.ContainsFunc(errs, func(e error) bool { return e == nil }) {
		return nil, errors.Join(errs...) // nobody answered
	}
	return s.merger.Merge(scrapes), nil
}
