package spike

import (
	"slices"
	"testing"
	"time"
)

// Two orders of one user held a unit at once when the second was created
// before the first was cancelled; a purchase after a cancellation is a new
// one.
func TestLiveAtOnce(t *testing.T) {
	at := func(s float64) time.Time {
		return time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC).Add(time.Duration(s * float64(time.Second)))
	}
	got := liveAtOnce(map[string][]dbOrder{
		// Cancelled at its deadline, then bought again: fine.
		"again": {{ID: "a2", State: "paid", CreatedAt: at(20), UpdatedAt: at(21)}, {ID: "a1", State: "cancelled", CreatedAt: at(1), UpdatedAt: at(11)}},
		// An order nobody was told of, then the retry's: both live from 5s
		// to the first's cancellation at 14s.
		"ghost": {{ID: "g1", State: "cancelled", CreatedAt: at(4), UpdatedAt: at(14)}, {ID: "g2", State: "paid", CreatedAt: at(5), UpdatedAt: at(6)}},
		// Two live now (the unique index would refuse it; the rows say so).
		"two": {{ID: "t1", State: "created", CreatedAt: at(1)}, {ID: "t2", State: "paid", CreatedAt: at(2), UpdatedAt: at(3)}},
		"one": {{ID: "o1", State: "paid", CreatedAt: at(1), UpdatedAt: at(2)}},
	})
	// dbFacts leaves out the orders written already cancelled (they held
	// nothing); such a row is recognised by its times.
	if !(dbOrder{State: "cancelled", CreatedAt: at(3), UpdatedAt: at(3)}).neverLive() ||
		(dbOrder{State: "cancelled", CreatedAt: at(3), UpdatedAt: at(13)}).neverLive() ||
		(dbOrder{State: "paid", CreatedAt: at(3), UpdatedAt: at(3)}).neverLive() {
		t.Error("neverLive tells the wrong rows")
	}
	want := []string{
		"user ghost: orders g1 (created at 10:00:04.000, cancelled at 10:00:14.000) and g2 (created at 10:00:05.000, now paid) were live at once",
		"user two: orders t1 (created at 10:00:01.000, now created) and t2 (created at 10:00:02.000, now paid) were live at once",
	}
	if !slices.Equal(got, want) {
		t.Errorf("liveAtOnce =\n%q\nwant\n%q", got, want)
	}
}
