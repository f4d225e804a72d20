package measure

import (
	"math"
	"sync"
	"testing"
	"time"
)

func TestRecorderLatencyFromTheIntendedTime(t *testing.T) {
	t0 := time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)
	r := New(t0, "buy")
	var wg sync.WaitGroup
	// 100 buys scheduled at T0+100ms: 99 answered after 10ms, one after
	// 1s. Half of them left 40ms late (the generator fell behind): that
	// wait counts in their latency.
	for i := range 100 {
		wg.Go(func() {
			intended := t0.Add(100 * time.Millisecond)
			sent := intended
			if i%2 == 0 {
				sent = sent.Add(40 * time.Millisecond)
			}
			took := 10 * time.Millisecond
			outcome, status := "202", 202
			if i == 99 {
				took, outcome, status = time.Second, "503 BUSY", 503
			}
			r.Record("buy", outcome, status, intended, sent, sent.Add(took))
		})
	}
	wg.Wait()
	r.Record("page", "200", 200, t0.Add(-2500*time.Millisecond), t0.Add(-2500*time.Millisecond), t0.Add(-2490*time.Millisecond))

	all := r.Latency("buy", AllOutcomes)
	if all.Count != 100 {
		t.Fatalf("all buys: %d samples, want 100", all.Count)
	}
	if math.Abs(all.P50-50) > 0.1 || all.P90 < 49.9 || math.Abs(all.Max-1000) > 2 {
		t.Errorf("all buys %+v; want p50 50ms (10ms + 40ms late send), max 1000ms", all)
	}
	if ok := r.Latency("buy", "202"); ok.Count != 99 || ok.Max > 50.1 {
		t.Errorf("buy 202 %+v; want 99 samples, max 50ms", ok)
	}
	if r.Count("buy", "") != 100 || r.Count("buy", "503") != 1 || r.Count("buy", "429") != 0 || r.Count("page", "2") != 1 {
		t.Error("Count by prefix is wrong")
	}
	if lag := r.Lag(); math.Abs(lag.Max-40) > 0.1 || math.Abs(lag.P99-40) > 0.1 {
		t.Errorf("lag %+v, want max and p99 40ms", lag)
	}
	secs := r.Seconds()
	if len(secs) != 5 || secs[0].T != -3 || secs[4].T != 1 {
		t.Fatalf("timeline %+v; want seconds -3..1 without gaps", secs)
	}
	if secs[0].Sent["page"] != 1 || secs[1].Sent["page"]+secs[2].Sent["page"] != 0 {
		t.Errorf("page view not in second -3: %+v", secs[:3])
	}
	if s := secs[3]; s.Sent["buy"] != 100 || s.Answers["buy 202"] != 99 || s.P99 < 49 {
		t.Errorf("second 0: %+v", s)
	}
	if s := secs[4]; s.Answers["buy 503"] != 1 || s.P50 < 1000 {
		t.Errorf("second 1 (the slow answer completes there): %+v", s)
	}
	rows := r.Latencies()
	if len(rows) != 5 || rows[0].Endpoint != "buy" || rows[0].Outcome != AllOutcomes || rows[3].Endpoint != "page" {
		t.Errorf("Latencies order: %+v", rows)
	}
	if span := r.Span(); span != 3600*time.Millisecond { // first send at T0-2.5s, last answer at T0+1.1s
		t.Errorf("span %s", span)
	}
	// The buys were scheduled at T0+100ms; the slow one left 40ms late
	// (i=99 is odd: on time) and was answered 1s later, at T0+1.1s.
	if span := r.TimedSpan(); span != time.Second {
		t.Errorf("buy span %s, want 1s (first scheduled at T0+100ms, last answered at T0+1.1s)", span)
	}
}

func TestRecorderTransportErrors(t *testing.T) {
	t0 := time.Now()
	r := New(t0, "buy")
	r.Record("buy", "error", 0, t0, t0, t0.Add(time.Millisecond))
	if r.Count("buy", "error") != 1 || r.Seconds()[0].Answers["buy error"] != 1 {
		t.Errorf("transport error not counted: %+v", r.Seconds())
	}
}
