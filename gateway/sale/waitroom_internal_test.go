package sale

import (
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/order"
)

// TestSoldOutReasksSpread: the people told sold out at one instant ask
// again over [soldOutPoll, 2*soldOutPoll), each at its own time (the same
// for the same person), not all at soldOutPoll: a queue of thousands told
// sold out together would otherwise come back together.
func TestSoldOutReasksSpread(t *testing.T) {
	now := time.Now()
	a := &order.Activity{ID: 1, StartsAt: now.Add(-time.Second), EndsAt: now.Add(time.Hour), Admission: order.AdmissionQueue}
	s := &Service{}
	seen := map[time.Duration]bool{}
	var lo, hi time.Duration = time.Hour, 0
	for i := range 1000 {
		user := fmt.Sprintf("u%04d", i)
		v := s.answer(a, user, inventory.QueuePlace{Status: inventory.QueueSoldOut, Rank: int64(i)}, now)
		if v.State != QueueSoldOut {
			t.Fatalf("state %q, want sold_out", v.State)
		}
		if v.PollAfter < soldOutPoll || v.PollAfter >= 2*soldOutPoll {
			t.Fatalf("%s asks again after %s, want within [%s, %s)", user, v.PollAfter, soldOutPoll, 2*soldOutPoll)
		}
		if again := s.answer(a, user, inventory.QueuePlace{Status: inventory.QueueSoldOut, Rank: int64(i)}, now); again.PollAfter != v.PollAfter {
			t.Fatalf("%s: %s then %s; a person's spread must not change (asking again is no edge)", user, v.PollAfter, again.PollAfter)
		}
		seen[v.PollAfter.Truncate(100*time.Millisecond)] = true
		lo, hi = min(lo, v.PollAfter), max(hi, v.PollAfter)
	}
	// 1000 people over 50 tenths of a second: nearly every tenth is used,
	// and the spread covers most of the interval.
	if len(seen) < 40 || hi-lo < soldOutPoll*9/10 {
		t.Errorf("re-asks fall in %d tenths of a second over [%s, %s]; want them spread over [%s, %s)", len(seen), lo, hi, soldOutPoll, 2*soldOutPoll)
	}
}

// TestSoldOutReasksKeepToTheBudget: when more people were told sold out
// than the polling budget serves in soldOutPoll, their re-asks spread over
// [T, 2T) with T the time the budget needs for all of them, so their
// busiest second stays within the budget (a fixed 5 s serves at most
// 100,000 people at the default 20,000/s; 300,000 would come back at
// 60,000 a second).
func TestSoldOutReasksKeepToTheBudget(t *testing.T) {
	const budget, people = 2000.0, 30000 // T = 15 s
	now := time.Now()
	a := &order.Activity{ID: 1, StartsAt: now.Add(-time.Second), EndsAt: now.Add(time.Hour), Admission: order.AdmissionQueue}
	s := &Service{cfg: Config{QueuePollBudget: budget}}
	rm := s.rooms.get(a)
	rm.mu.Lock()
	rm.inlet = inventory.QueueInlet{Head: 1000, Total: people + 1000, SoldOut: true}
	rm.mu.Unlock()
	perSecond := map[int64]int{}
	for i := range people {
		v := s.answer(a, fmt.Sprintf("u%05d", i), inventory.QueuePlace{Status: inventory.QueueSoldOut, Rank: int64(1000 + i)}, now)
		perSecond[int64(v.PollAfter/time.Second)]++
	}
	busiest := 0
	for _, n := range perSecond {
		busiest = max(busiest, n)
	}
	// Uniform over [15 s, 30 s): 2,000 a second on average; allow the
	// hash's unevenness, not a second twice as busy.
	if busiest > budget*1.1 {
		t.Errorf("the busiest second brings %d re-asks back, budget %.0f/s", busiest, budget)
	}
}
