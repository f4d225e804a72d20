package report

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/loadtest/audit"
)

const ms = time.Millisecond

// fairPeople is a crowd over a 1s pre-queue window: in each tenth 10
// humans, of whom won[i]; 4 bot accounts, 1 of which won; 2 humans after
// the start who heard sold out 300ms and 1.5s after the last sale (at
// 900ms).
func fairPeople(won [Slices]int) []Person {
	var out []Person
	for i := range Slices {
		for j := range 10 {
			p := Person{User: fmt.Sprintf("h%d-%d", i, j), Kind: "human", Arrival: -time.Second + time.Duration(i*100+5)*ms,
				Joined: true, Prequeue: true, Final: FinalSoldOut, FinalAt: 500 * ms}
			if j < won[i] {
				p.Final, p.FinalAt, p.OrderID = FinalWon, 200*ms, "o"
			}
			out = append(out, p)
		}
	}
	for i := range 4 {
		p := Person{User: fmt.Sprintf("b%d", i), Kind: "bot", Bot: true, Arrival: 0, Final: FinalSoldOut, FinalAt: 100 * ms}
		if i == 0 {
			p.Final, p.FinalAt = FinalWon, 900*ms
		}
		out = append(out, p)
	}
	out = append(out,
		Person{User: "late1", Kind: "human", Arrival: 800 * ms, Final: FinalSoldOut, FinalAt: 1200 * ms},
		Person{User: "late2", Kind: "human", Arrival: 850 * ms, Final: FinalSoldOut, FinalAt: 2400 * ms},
		Person{User: "lost", Kind: "human", Arrival: 860 * ms},
	)
	return out
}

func TestFairness(t *testing.T) {
	in := FairnessInput{Admission: "queue", Window: time.Second, QueuePolls: []int{0, 300, 100, 0, 200},
		PollBudget: 250, Reserves: 22, QueueRedis: -1, PeakRequests: 1234}
	t.Run("flat", func(t *testing.T) {
		in.People = fairPeople([Slices]int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2})
		f := NewFairness(in)
		for i, s := range f.Slices {
			if s.People != 10 || s.Won != 2 {
				t.Errorf("slice %d = %+v, want 10 people, 2 won", i, s)
			}
		}
		if f.P == nil || *f.P < 0.99 || f.DF != 9 {
			t.Fatalf("p %v df %d, want ~1 with 9 df for a flat crowd", f.P, f.DF)
		}
		if f.Units != 21 || f.BotUnits != 1 || f.Accounts != 107 || f.BotAccounts != 4 {
			t.Errorf("units %d bots %d accounts %d bot accounts %d, want 21, 1, 107, 4", f.Units, f.BotUnits, f.Accounts, f.BotAccounts)
		}
		if f.BeforePeople != 100 || f.BeforeWon != 20 || f.AfterPeople != 3 || f.AfterWon != 0 {
			t.Errorf("before %d/%d after %d/%d", f.BeforeWon, f.BeforePeople, f.AfterWon, f.AfterPeople)
		}
		if f.PollPeak != 300 || f.PollMean != 200 {
			t.Errorf("polls peak %v mean %v, want 300 and 200 (over the seconds with polls)", f.PollPeak, f.PollMean)
		}
		if f.ReserveCalls == nil || *f.ReserveCalls != 22 || f.QueueRedisCalls != nil {
			t.Errorf("reserves %v queue calls %v, want 22 and unknown", f.ReserveCalls, f.QueueRedisCalls)
		}
		// The 80 pre-start losers heard it 300ms after the humans' last
		// sale (200ms); late1 and late2 arrived before the bot's sale
		// (900ms) and heard it 300ms and 1.5s after it.
		if f.SoldOutLatency == nil || math.Abs(*f.SoldOutLatency-1.5) > 1e-9 || f.SoldOutHeard != 82 {
			t.Errorf("sold out latency %v heard by %d, want 1.5s by 82 (80 pre-start losers and 2 late)", f.SoldOutLatency, f.SoldOutHeard)
		}
		if f.Unanswered != 1 || f.Answered != 106 {
			t.Errorf("answered %d unanswered %d, want 106 and 1", f.Answered, f.Unanswered)
		}
		// Of 106 answers the p99 is the 105th: the first slice's losers
		// (arrived at -0.995s, told at 0.5s), only late2's 1.55s is longer.
		if math.Abs(f.ArrivalToFinalP99-1.495) > 1e-9 || f.ArrivalToFinalP50 > f.ArrivalToFinalP99 {
			t.Errorf("arrival to final p50 %v p99 %v, want p99 1.495s", f.ArrivalToFinalP50, f.ArrivalToFinalP99)
		}
	})
	t.Run("early wins", func(t *testing.T) {
		in.People = fairPeople([Slices]int{10, 10, 0, 0, 0, 0, 0, 0, 0, 0})
		f := NewFairness(in)
		if f.P == nil || *f.P > 1e-6 {
			t.Fatalf("p %v, want tiny when only the first arrivals win", f.P)
		}
		if !strings.Contains(f.ChiText(), "NOT flat") {
			t.Errorf("chi text %q does not say it is not flat", f.ChiText())
		}
	})
}

// TestFairnessRendered checks that the summary and the page carry the
// figures.
// TestFairnessLateJoins: with a waiting room, a human the generator meant
// to arrive before the start but whose join reached the gateway after it
// (not in the pre-queue) is counted after the start, outside the slices:
// the chi-square tests the room, not the generator's lag. With open
// admission the planned arrival decides.
func TestFairnessLateJoins(t *testing.T) {
	people := append(fairPeople([Slices]int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2}),
		Person{User: "lagged", Kind: "human", Arrival: -50 * ms, Joined: true, Final: FinalSoldOut, FinalAt: time.Second})
	q := NewFairness(FairnessInput{Admission: "queue", Window: time.Second, People: people})
	if q.LateJoins != 1 || q.BeforePeople != 100 || q.AfterPeople != 4 || q.Slices[Slices-1].People != 10 {
		t.Errorf("queue: late %d, before %d, after %d, last slice %d people; want 1, 100, 4, 10", q.LateJoins, q.BeforePeople, q.AfterPeople, q.Slices[Slices-1].People)
	}
	var b bytes.Buffer
	q.WriteSummary(&b)
	if !strings.Contains(b.String(), "1 humans meant to join before the start but reached the gateway after it") {
		t.Errorf("summary does not report the late join:\n%s", b.String())
	}
	o := NewFairness(FairnessInput{Admission: "open", Window: time.Second, People: people})
	if o.LateJoins != 0 || o.BeforePeople != 101 || o.Slices[Slices-1].People != 11 {
		t.Errorf("open: late %d, before %d, last slice %d people; want 0, 101, 11", o.LateJoins, o.BeforePeople, o.Slices[Slices-1].People)
	}
}

func TestFairnessRendered(t *testing.T) {
	f := NewFairness(FairnessInput{Admission: "queue", Window: time.Second, People: fairPeople([Slices]int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2}),
		QueuePolls: []int{300, 100}, PollBudget: 250, Reserves: 22, QueueRedis: 42, PeakRequests: 1234})
	r := sampleRun("queue", audit.Pipeline, 10, 1000, false)
	r.Admission, r.Fairness = "queue", f
	var sum, page bytes.Buffer
	r.WriteSummary(&sum)
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"fairness (queue admission)", "p 1", "9 df", "1 of 21 units", "4 of 107 accounts",
		"peak 300/s, mean 200/s, budget 250/s (OVER budget)", "1.05 (22 calls / 21 units)", "2.00 (42 calls / 21 units)",
		"1.50 s for the last of 82 people", "1234/s",
	}
	for _, w := range want {
		if !strings.Contains(sum.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, sum.String())
		}
	}
	html := page.String()
	for _, w := range append(want[2:], `id="fairness"`, "[-1.00, -0.90)", "20.0%") {
		if !strings.Contains(html, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func TestAdmissionCompare(t *testing.T) {
	mk := func(name string, won [Slices]int, peak float64) *Run {
		r := sampleRun("queue", audit.Pipeline, 10, 1000, false)
		r.Name, r.Admission = name, name
		r.Fairness = NewFairness(FairnessInput{Admission: name, Window: time.Second, People: fairPeople(won), PollBudget: 250,
			QueuePolls: []int{int(peak / 10)}, Reserves: 30, QueueRedis: -1, PeakRequests: peak})
		return r
	}
	open := mk("open", [Slices]int{10, 10, 0, 0, 0, 0, 0, 0, 0, 0}, 5000)
	queue := mk("queue", [Slices]int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, 4000)
	if _, err := NewAdmissionCompare(open, &Run{}); err == nil {
		t.Fatal("a run without fairness was compared")
	}
	c, err := NewAdmissionCompare(open, queue)
	if err != nil {
		t.Fatal(err)
	}
	if !c.QueuePeakNoHigher() {
		t.Error("queue's peak 4000 reported higher than open's 5000")
	}
	var sum, page bytes.Buffer
	c.WriteSummary(&sum)
	dir := t.TempDir()
	path, err := c.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"open vs queue", fmt.Sprintf("%.3g", *open.Fairness.P), "5000", "4000", "queue no higher: true"} {
		if !strings.Contains(sum.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, sum.String())
		}
	}
	for _, w := range []string{"open admission vs the waiting room", "(met)", "open.html", "queue.html", "Fairness (open admission)", "Fairness (queue admission)"} {
		if !strings.Contains(page.String(), w) {
			t.Errorf("page lacks %q", w)
		}
	}
	if !strings.HasSuffix(path, "admission.html") {
		t.Errorf("wrote %s, want admission.html", path)
	}
}
