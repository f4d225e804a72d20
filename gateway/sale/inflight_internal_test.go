package sale

import (
	"testing"
)

func TestInFlightDefaultAndLimit(t *testing.T) {
	// An unset limit is the default, filled in by Config.withDefaults.
	m := newMetrics(nil)
	f := newInFlight(Config{}.withDefaults().MaxBuysInFlight, m)
	if cap(f.slots) != DefaultMaxBuysInFlight {
		t.Fatalf("default limit %d, want %d", cap(f.slots), DefaultMaxBuysInFlight)
	}
	f = newInFlight(1, m)
	if f.acquire() != nil || f.acquire() == nil {
		t.Fatal("limit 1: want the first acquire admitted and the second refused")
	}
	f.release()
	if f.acquire() != nil {
		t.Fatal("a released slot is not taken again")
	}
}
