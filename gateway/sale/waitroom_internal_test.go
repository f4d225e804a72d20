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
