package sale

import "fmt"

// inFlight bounds the buys that reach Redis at once: a semaphore of
// MaxBuysInFlight slots. A buy that finds no slot free is answered busy
// at once, before any Redis work, so nothing is reserved for it and it
// does not wait behind the others. It is taken only after everything
// answered from memory (the buy token, the activity window, the sold-out
// flag): a buy that sends its body slowly, or one answered sold out, never
// holds a slot.
type inFlight struct {
	slots   chan struct{}
	m       *saleMetrics
	refusal *Error
}

func newInFlight(limit int, m *saleMetrics) *inFlight {
	return &inFlight{
		slots: make(chan struct{}, limit), m: m,
		refusal: busy(fmt.Sprintf("the gateway is saturated: %d buys in flight, its limit; nothing was reserved, try again after Retry-After", limit), nil),
	}
}

// acquire takes a slot if one is free, or returns the refusal. It never
// waits: under a spike the slots stay taken for the whole burst, so a wait
// would only delay the refusal the client needs to back off.
func (f *inFlight) acquire() *Error {
	select {
	case f.slots <- struct{}{}:
		f.m.inFlight.Inc()
		return nil
	default:
		f.m.refused.Inc()
		return f.refusal
	}
}

func (f *inFlight) release() {
	f.m.inFlight.Dec()
	<-f.slots
}
