package httpapi

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAdmissionDefaultAndLimit(t *testing.T) {
	// An unset limit is the default, filled in by Config.withDefaults.
	ad := newAdmission(Config{}.withDefaults().MaxBuysInFlight, prometheus.NewRegistry())
	if cap(ad.slots) != DefaultMaxBuysInFlight {
		t.Fatalf("default limit %d, want %d", cap(ad.slots), DefaultMaxBuysInFlight)
	}
	ad = newAdmission(1, prometheus.NewRegistry())
	if !ad.acquire() || ad.acquire() {
		t.Fatal("limit 1: want the first acquire admitted and the second refused")
	}
	ad.release()
	if !ad.acquire() {
		t.Fatal("a released slot is not taken again")
	}
}
