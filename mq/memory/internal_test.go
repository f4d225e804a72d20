package memory

import (
	"log/slog"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero", Config{}, Config{DefaultCapacity, DefaultDelayedCapacity, DefaultDrainTimeout, slog.Default()}},
		{"negative", Config{-1, -1, -1, nil}, Config{DefaultCapacity, DefaultDelayedCapacity, DefaultDrainTimeout, slog.Default()}},
		{"set", Config{5, 6, time.Second, logger}, Config{5, 6, time.Second, logger}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.withDefaults(); got != tc.want {
				t.Errorf("withDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRingIsFIFOAcrossGrowthAndWrap(t *testing.T) {
	var r ring
	next, want := 0, 0
	push := func(n int) {
		for range n {
			r.push(entry{attempt: next})
			next++
		}
	}
	pop := func(n int) {
		for range n {
			if got := r.pop().attempt; got != want {
				t.Fatalf("pop = %d, want %d", got, want)
			}
			want++
		}
	}
	push(10)
	pop(7)   // head moves forward
	push(30) // wraps, then grows with head != 0
	pop(20)
	push(5000) // grows past shrinkAbove
	if r.len() != 5013 {
		t.Fatalf("len = %d, want 5013", r.len())
	}
	pop(5013)
	if r.len() != 0 || r.buf != nil {
		t.Errorf("emptied large ring: len %d, cap %d; want 0 and its buffer released", r.len(), len(r.buf))
	}
}

func TestTimerHeapOrder(t *testing.T) {
	base := time.Now()
	var h timerHeap
	dues := []int{5, 1, 3, 1, 4, 0, 3}
	for i, d := range dues {
		h.push(timer{due: base.Add(time.Duration(d) * time.Second), seq: uint64(i)})
	}
	var got []uint64
	for len(h) > 0 {
		got = append(got, h.pop().seq)
	}
	want := []uint64{5, 1, 3, 2, 6, 4, 0} // by due, ties in insertion order
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pop order %v, want %v", got, want)
		}
	}
}

func TestTimerHeapInitAfterFilter(t *testing.T) {
	base := time.Now()
	var h timerHeap
	g := &group{}
	for i := range 20 {
		tm := timer{due: base.Add(time.Duration((i*7)%20) * time.Millisecond), seq: uint64(i)}
		if i%2 == 0 {
			tm.group = g
		}
		h.push(tm)
	}
	kept := h[:0]
	for _, tm := range h {
		if tm.group != nil {
			kept = append(kept, tm)
		}
	}
	kept.init()
	h = kept
	last := time.Time{}
	for n := 0; len(h) > 0; n++ {
		tm := h.pop()
		if tm.due.Before(last) {
			t.Fatalf("pop %d due %v before the previous %v", n, tm.due.Sub(base), last.Sub(base))
		}
		last = tm.due
	}
}
