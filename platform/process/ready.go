package process

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Check is one backend a readiness probe pings.
type Check struct {
	Name string // what /readyz says when it is down: "redis", "database", "queue"
	Ping func(context.Context) error
}

// NotReady says which backends a readiness probe could not reach. Its text
// names them and nothing else: /readyz is public, and a driver's error
// (addresses, user names) is for the log, reachable through Unwrap.
type NotReady struct {
	Backends []string
	Err      error
}

func (e *NotReady) Error() string {
	return "not ready: " + strings.Join(e.Backends, ", ") + " unreachable"
}

func (e *NotReady) Unwrap() error { return e.Err }

// Readiness returns a Ready function that pings every check and, when any
// fails, returns a *NotReady naming them.
func Readiness(checks ...Check) func(context.Context) error {
	return func(ctx context.Context) error {
		var names []string
		var errs []error
		for _, c := range checks {
			if err := c.Ping(ctx); err != nil {
				names = append(names, c.Name)
				errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
			}
		}
		if len(names) == 0 {
			return nil
		}
		return &NotReady{Backends: names, Err: errors.Join(errs...)}
	}
}

// BackendUp exports seckill_backend_up{backend}, one series per check: 1
// when the check answered within timeout at the scrape, 0 otherwise. It
// pings as /readyz does, so the alert that reads it (SeckillBackendDown)
// cannot disagree with the probe; it is how Prometheus sees a Redis or a
// database down while no buy is there to fail.
func BackendUp(reg prometheus.Registerer, timeout time.Duration, checks func() []Check) error {
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "seckill_backend_up",
		Help: "Whether a backend of this process answered its readiness ping at the scrape (1) or not (0), by backend (redis, database, queue): what /readyz reports.",
	}, []string{"backend"})
	return reg.Register(backendUp{up: up, checks: checks, timeout: timeout})
}

// backendUp pings at each scrape and reports through its gauge vector.
type backendUp struct {
	up      *prometheus.GaugeVec
	checks  func() []Check
	timeout time.Duration
}

func (b backendUp) Describe(ch chan<- *prometheus.Desc) { b.up.Describe(ch) }

func (b backendUp) Collect(ch chan<- prometheus.Metric) {
	checks := b.checks()
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
			defer cancel()
			v := 0.0
			if c.Ping(ctx) == nil {
				v = 1
			}
			b.up.WithLabelValues(c.Name).Set(v)
		})
	}
	wg.Wait()
	b.up.Collect(ch)
}

// ReadyMessage is what /readyz tells a caller about err: the names of the
// backends down for a *NotReady, nothing of the cause otherwise.
func ReadyMessage(err error) string {
	var nr *NotReady
	if errors.As(err, &nr) {
		return nr.Error()
	}
	return "not ready"
}
