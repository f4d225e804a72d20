package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAdmissionDefaultAndWait(t *testing.T) {
	ad := newAdmission(0, 0, prometheus.NewRegistry())
	if cap(ad.slots) != DefaultMaxBuysInFlight {
		t.Fatalf("default limit %d, want %d", cap(ad.slots), DefaultMaxBuysInFlight)
	}
	ctx := context.Background()
	ad = newAdmission(1, 0, prometheus.NewRegistry())
	if !ad.acquire(ctx) || ad.acquire(ctx) {
		t.Fatal("limit 1: want the first acquire admitted and the second refused")
	}
	ad.release()
	if !ad.acquire(ctx) {
		t.Fatal("a released slot is not taken again")
	}

	// With a short wait, a slot that frees within it admits the buy; one
	// that does not is refused after the wait, not later.
	ad = newAdmission(1, 50*time.Millisecond, prometheus.NewRegistry())
	ad.acquire(ctx)
	go func() { time.Sleep(5 * time.Millisecond); ad.release() }()
	if !ad.acquire(ctx) {
		t.Fatal("a slot freed within the wait was not taken")
	}
	start := time.Now()
	if ad.acquire(ctx) {
		t.Fatal("admitted with every slot held")
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Fatalf("refused after %s, want about the 50ms wait", d)
	}
}
