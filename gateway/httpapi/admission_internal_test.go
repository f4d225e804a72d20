package httpapi

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAdmissionDefaultAndLimit(t *testing.T) {
	ad := newAdmission(0, prometheus.NewRegistry())
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
