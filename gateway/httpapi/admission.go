package httpapi

import (
	"fmt"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/platform/metrics"
)

// DefaultMaxBuysInFlight is Config.MaxBuysInFlight when unset
// (SECKILL_MAX_BUYS_IN_FLIGHT). By Little's law the buys in flight are the
// buy rate times the time one spends in the gateway: a 2-core gateway
// serves some 5,000-10,000 buys/s, so 512 in flight keeps Redis and the
// queue busy while bounding the wait inside the process to about 50-100 ms
// before the next buy is refused. It is also the load tester's default
// connection count: in the in-process spike (generator and gateway on the
// same 2 cores, CPU-bound) a bound of 256 refused most buys and the
// clients' retries tripled the requests, which made the spike slower.
const DefaultMaxBuysInFlight = 512

// admission bounds the buys in flight: a semaphore of MaxBuysInFlight
// slots. A buy that finds no slot free is answered 503 BUSY with
// Retry-After at once, before any Redis work, so nothing is reserved for
// it and it does not wait behind the others.
type admission struct {
	slots    chan struct{}
	inFlight prometheus.Gauge
	refused  prometheus.Counter
	refusal  error
}

func newAdmission(limit int, reg prometheus.Registerer) *admission {
	ad := &admission{
		slots: make(chan struct{}, limit),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seckill_buys_in_flight", Help: "Buys admitted and not yet answered (bounded by SECKILL_MAX_BUYS_IN_FLIGHT).",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_admission_refused_total", Help: "Buys refused 503 BUSY at once because SECKILL_MAX_BUYS_IN_FLIGHT buys were in flight.",
		}),
		refusal: errBusy(fmt.Sprintf("the gateway is saturated: %d buys in flight, its limit; nothing was reserved, try again after Retry-After", limit), nil),
	}
	metrics.MustRegister(reg, ad.inFlight, ad.refused)
	return ad
}

// acquire takes a slot if one is free. It never waits: under a spike the
// slots stay taken for the whole burst, so a wait would only delay the
// refusal the client needs to back off.
func (ad *admission) acquire() bool {
	select {
	case ad.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (ad *admission) release() { <-ad.slots }

// handle returns the middleware, which answers a refusal with respond. It
// sits after auth and the rate limits (a refused or rate-limited caller
// never takes a slot) and before the buy handler's Redis work.
func (ad *admission) handle(respond func(*gin.Context, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !ad.acquire() {
			ad.refused.Inc()
			respond(c, ad.refusal)
			return
		}
		ad.inFlight.Inc()
		// Deferred: a panic in the handler (answered 500 by the recovery
		// middleware) must give its slot back too.
		defer func() {
			ad.inFlight.Dec()
			ad.release()
		}()
		c.Next()
	}
}

// admitBuys returns the admission middleware of the buy route. The naive
// mode (Config.Naive) is the unbounded anti-pattern the load tester
// compares with, kept as it is: its buys pass through (the metrics are
// still registered, at 0).
func (s *Server) admitBuys() gin.HandlerFunc {
	ad := newAdmission(s.cfg.MaxBuysInFlight, s.cfg.Registry)
	if s.cfg.Naive != nil {
		return func(c *gin.Context) { c.Next() }
	}
	return ad.handle(s.respond)
}
