package report

import (
	"fmt"
	"io"
	"math"
	"sort"
	"time"
)

// Final answers of a person (Person.Final).
const (
	FinalWon     = "won"      // a 202: an order
	FinalSoldOut = "sold_out" // told the stock is gone (a 410, or the queue's sold_out)
	FinalExpired = "expired"  // admitted, the pass lapsed unused
	FinalOther   = "other"    // a definite refusal that is neither (a 409, a 403 of a bad pass)
	FinalGaveUp  = "gave_up"  // retries or polls ran out without a definite answer
)

// Person is what one simulated person did and heard, times from T0.
// Humans and late users are people; so is each bot account.
type Person struct {
	User string `json:"user"`
	Kind string `json:"kind"`
	Bot  bool   `json:"bot"`
	// Arrival is when the person showed up: the first page view of one
	// who opened the page during the countdown, else the first click
	// (open) or join (queue).
	Arrival time.Duration `json:"arrival"`
	// Joined, with JoinedAt: the join was answered (queue admission);
	// Prequeue: the answer put them in the pre-queue (the join reached
	// the gateway before the start, whenever the generator meant to send
	// it).
	Joined   bool          `json:"joined"`
	JoinedAt time.Duration `json:"joined_at"`
	Prequeue bool          `json:"prequeue,omitempty"`
	// Admitted, with AdmittedAt: first answered admitted (queue);
	// Admissions counts the distinct passes (expiries) they were given.
	Admitted   bool          `json:"admitted"`
	AdmittedAt time.Duration `json:"admitted_at"`
	Admissions int           `json:"admissions"`
	// Final is the final answer (Final*; "" none) and FinalAt when it came.
	Final   string        `json:"final"`
	FinalAt time.Duration `json:"final_at"`
	// SoldOutAt is when they first heard sold out (0: never): with a
	// waiting room the page keeps listening after it, since units may
	// come back, so it need not be the final answer's time.
	SoldOutAt time.Duration `json:"sold_out_at,omitempty"`
	OrderID   string        `json:"order_id,omitempty"`
}

// FairSlice is one tenth of the time before the start.
type FairSlice struct {
	From   float64 `json:"from_s"` // seconds from T0 (negative: before)
	To     float64 `json:"to_s"`
	People int     `json:"people"`
	Won    int     `json:"won"`
}

// Rate is the slice's chance to win.
func (s FairSlice) Rate() float64 { return ratio(float64(s.Won), float64(s.People)) }

// Fairness is who won, by when they arrived and whether they were bots,
// and what the crowd cost the system: the fairness section of a report.
type Fairness struct {
	Admission string `json:"admission"`
	// Slices are the human arrivals before the start in ten equal slices
	// of the pre-queue window; ChiSquare, DF and P test their chances to
	// win against one flat chance (P nil: nothing to test).
	Slices    []FairSlice `json:"slices"`
	ChiSquare *float64    `json:"chi_square"`
	DF        int         `json:"df"`
	P         *float64    `json:"p"`
	// Before and after the start: humans and how many of them won. With
	// a waiting room, before means a join the gateway put in the
	// pre-queue, and LateJoins counts the humans who meant to arrive
	// before the start but whose join reached the gateway after it (the
	// generator fell behind): they queue behind the pre-queue, which says
	// nothing of the room's fairness, so they are counted after.
	BeforePeople, BeforeWon, AfterPeople, AfterWon int
	LateJoins                                      int `json:"late_joins,omitempty"`
	// Accounts and units by bots.
	Accounts    int `json:"accounts"`
	BotAccounts int `json:"bot_accounts"`
	Units       int `json:"units_won"`
	BotUnits    int `json:"bot_units_won"`
	// ArrivalToFinal is arrival to the final answer, seconds (p50, p99),
	// over the Answered people who got one; Unanswered got none.
	ArrivalToFinalP50 float64 `json:"arrival_to_final_p50_s"`
	ArrivalToFinalP99 float64 `json:"arrival_to_final_p99_s"`
	Answered          int     `json:"answered"`
	Unanswered        int     `json:"unanswered"`
	// QueuePolls: GET .../queue sent per second (peak, mean over the
	// seconds with any), against SECKILL_QUEUE_POLL_BUDGET.
	PollPeak   float64 `json:"queue_poll_peak_per_s"`
	PollMean   float64 `json:"queue_poll_mean_per_s"`
	PollBudget float64 `json:"queue_poll_budget_per_s"`
	// Redis: reserve script calls (seckill_reserve_total) and the waiting
	// room's script calls (seckill_queue_polls_total how=join|redis)
	// during the spike, per unit sold in it; nil when /metrics had none.
	ReserveCalls    *float64 `json:"reserve_calls"`
	QueueRedisCalls *float64 `json:"queue_redis_calls"`
	// SoldOutLatency is, over the people who heard sold out, the longest
	// time from the last unit sold before they heard it to when they
	// heard it (seconds; nil: nobody was waiting when a sale sold out);
	// SoldOutHeard how many heard it.
	SoldOutLatency *float64 `json:"sold_out_latency_s"`
	SoldOutHeard   int      `json:"sold_out_heard"`
	// PeakRequests is the most requests the gateway got in one second.
	PeakRequests float64 `json:"peak_requests_per_s"`
}

// FairnessInput is what NewFairness needs from a run.
type FairnessInput struct {
	Admission string
	People    []Person
	// Window is the pre-queue window before the start that arrivals are
	// sliced over (the countdown).
	Window time.Duration
	// QueuePolls are GET .../queue sent in each second of the run.
	QueuePolls []int
	PollBudget float64
	// Reserves and QueueRedis are /metrics deltas over the spike (<0:
	// unknown).
	Reserves, QueueRedis float64
	// PeakRequests is the timeline's busiest second.
	PeakRequests float64
}

// Slices is how many equal slices the pre-queue window is cut into.
const Slices = 10

// NewFairness computes the fairness section.
func NewFairness(in FairnessInput) *Fairness {
	f := &Fairness{Admission: in.Admission, PollBudget: in.PollBudget, PeakRequests: in.PeakRequests}
	win := in.Window
	if win <= 0 {
		win = time.Second
	}
	width := win / Slices
	for i := range Slices {
		from := -win + time.Duration(i)*width
		f.Slices = append(f.Slices, FairSlice{From: from.Seconds(), To: (from + width).Seconds()})
	}
	var toFinal []float64
	for _, p := range in.People {
		f.Accounts++
		won := p.Final == FinalWon
		if p.Bot {
			f.BotAccounts++
		}
		if won {
			f.Units++
			if p.Bot {
				f.BotUnits++
			}
		}
		if p.Final != "" && p.Final != FinalGaveUp {
			toFinal = append(toFinal, (p.FinalAt - p.Arrival).Seconds())
		} else {
			f.Unanswered++
		}
		if p.Bot || p.Kind != "human" {
			continue
		}
		before := p.Arrival < 0
		if in.Admission == "queue" && before && !p.Prequeue {
			before = false
			f.LateJoins++
		}
		if before {
			f.BeforePeople++
			if won {
				f.BeforeWon++
			}
			i := int((p.Arrival + win) / width)
			if p.Arrival < -win {
				i = 0 // arrived before the window: the first slice
			}
			i = min(max(i, 0), Slices-1)
			f.Slices[i].People++
			if won {
				f.Slices[i].Won++
			}
		} else {
			f.AfterPeople++
			if won {
				f.AfterWon++
			}
		}
	}
	f.Answered = len(toFinal)
	sort.Float64s(toFinal)
	f.ArrivalToFinalP50, f.ArrivalToFinalP99 = quantile(toFinal, 0.5), quantile(toFinal, 0.99)
	wins, tries := make([]int, Slices), make([]int, Slices)
	for i, s := range f.Slices {
		wins[i], tries[i] = s.Won, s.People
	}
	if stat, df, p := ChiSquareFlat(wins, tries); !math.IsNaN(p) {
		f.ChiSquare, f.DF, f.P = &stat, df, &p
	}
	var sum float64
	var n int
	for _, c := range in.QueuePolls {
		f.PollPeak = max(f.PollPeak, float64(c))
		if c > 0 {
			sum += float64(c)
			n++
		}
	}
	f.PollMean = ratio(sum, float64(n))
	if in.Reserves >= 0 {
		v := in.Reserves
		f.ReserveCalls = &v
	}
	if in.QueueRedis >= 0 {
		v := in.QueueRedis
		f.QueueRedisCalls = &v
	}
	f.SoldOutLatency, f.SoldOutHeard = soldOutLatency(in.People)
	return f
}

// soldOutLatency is the longest wait, over the people who heard sold
// out, from the last sale before it to their hearing it, and how many of
// them were waiting at that sale (they arrived before it).
func soldOutLatency(people []Person) (*float64, int) {
	var sales []time.Duration
	for _, p := range people {
		if p.Final == FinalWon {
			sales = append(sales, p.FinalAt)
		}
	}
	sort.Slice(sales, func(i, j int) bool { return sales[i] < sales[j] })
	var worst time.Duration = -1
	heard := 0
	for _, p := range people {
		at := p.SoldOutAt
		if at == 0 && p.Final == FinalSoldOut {
			at = p.FinalAt
		}
		if at == 0 {
			continue
		}
		i := sort.Search(len(sales), func(i int) bool { return sales[i] > at }) - 1
		if i < 0 || p.Arrival >= sales[i] {
			continue // no sale before, or arrived after it
		}
		heard++
		worst = max(worst, at-sales[i])
	}
	if worst < 0 {
		return nil, 0
	}
	v := worst.Seconds()
	return &v, heard
}

// quantile of sorted values (0 when none).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// BotAccountShare and BotUnitShare are the bots' shares of the accounts
// and of the units won.
func (f *Fairness) BotAccountShare() float64 {
	return ratio(float64(f.BotAccounts), float64(f.Accounts))
}

// BotUnitShare is the bots' share of the units won.
func (f *Fairness) BotUnitShare() float64 { return ratio(float64(f.BotUnits), float64(f.Units)) }

// PText is the chi-square's p-value, or why there is none.
func (f *Fairness) PText() string {
	if f.P == nil {
		return "n/a (no pre-start arrivals won, or all did, or they fill fewer than two slices)"
	}
	return fmt.Sprintf("%.3g", *f.P)
}

// ChiText is "chi2 12.3, 9 df, p 0.2 (flat: fair)".
func (f *Fairness) ChiText() string {
	if f.P == nil {
		return "p " + f.PText()
	}
	verdict := "consistent with flat (p > 0.01)"
	if *f.P <= 0.01 {
		verdict = "NOT flat: the chance to win depends on when one arrived (p <= 0.01)"
	}
	return fmt.Sprintf("chi-square %.1f, %d df, p %s: %s", *f.ChiSquare, f.DF, f.PText(), verdict)
}

// PerUnit is calls per unit won, as text.
func (f *Fairness) PerUnit(calls *float64) string {
	if calls == nil {
		return "unknown (not in /metrics)"
	}
	if f.Units == 0 {
		return fmt.Sprintf("%.0f calls, no unit sold", *calls)
	}
	return fmt.Sprintf("%.2f (%.0f calls / %d units)", *calls/float64(f.Units), *calls, f.Units)
}

// SoldOutText is the sold-out latency, against the 2 s target.
func (f *Fairness) SoldOutText() string {
	if f.SoldOutLatency == nil {
		return "nobody was waiting when the last unit was sold"
	}
	verdict := "within the 2 s target"
	if *f.SoldOutLatency >= 2 {
		verdict = "OVER the 2 s target"
	}
	return fmt.Sprintf("%.2f s for the last of %d people (%s)", *f.SoldOutLatency, f.SoldOutHeard, verdict)
}

// PollText is the queue's polling against its budget.
func (f *Fairness) PollText() string {
	if f.PollPeak == 0 {
		return "no queue polls (open admission)"
	}
	verdict := "within budget"
	if f.PollPeak > f.PollBudget {
		verdict = "OVER budget"
	}
	return fmt.Sprintf("peak %.0f/s, mean %.0f/s, budget %.0f/s (%s)", f.PollPeak, f.PollMean, f.PollBudget, verdict)
}

// WriteSummary writes the fairness section of the terminal summary.
func (f *Fairness) WriteSummary(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("fairness (%s admission)", f.Admission)
	p("  chance to win by arrival before the start (humans, %d slices)", len(f.Slices))
	for _, s := range f.Slices {
		p("    [%5.2fs, %5.2fs)  %6d people  %6d won  %6.2f%%", s.From, s.To, s.People, s.Won, 100*s.Rate())
	}
	p("  %s", f.ChiText())
	p("  humans before the start won %d of %d (%.2f%%), after %d of %d (%.2f%%)",
		f.BeforeWon, f.BeforePeople, 100*ratio(float64(f.BeforeWon), float64(f.BeforePeople)),
		f.AfterWon, f.AfterPeople, 100*ratio(float64(f.AfterWon), float64(f.AfterPeople)))
	if f.LateJoins > 0 {
		p("  %d humans meant to join before the start but reached the gateway after it (the generator fell behind): counted after", f.LateJoins)
	}
	p("  bots: %d of %d units (%.1f%%) with %d of %d accounts (%.1f%%)",
		f.BotUnits, f.Units, 100*f.BotUnitShare(), f.BotAccounts, f.Accounts, 100*f.BotAccountShare())
	p("  arrival to final answer          p50 %.2fs, p99 %.2fs (%d answered, %d not)", f.ArrivalToFinalP50, f.ArrivalToFinalP99, f.Answered, f.Unanswered)
	p("  queue polling (GET .../queue)    %s", f.PollText())
	p("  Redis reserves per unit sold     %s", f.PerUnit(f.ReserveCalls))
	p("  Redis queue calls per unit sold  %s", f.PerUnit(f.QueueRedisCalls))
	p("  last unit sold to sold out heard %s", f.SoldOutText())
	p("  gateway peak request rate        %.0f/s", f.PeakRequests)
}

// fairnessBody is the fairness section of a run's page.
const fairnessBody = `<h2 id="fairness">Fairness ({{.Admission}} admission)</h2>
<table>
<tr><th class="l">pre-start arrivals: chance to win against flat</th><td class="l">{{.ChiText}}</td></tr>
<tr><th class="l">humans before / after the start who won</th><td class="l">{{.BeforeWon}} of {{.BeforePeople}} / {{.AfterWon}} of {{.AfterPeople}}{{if .LateJoins}} ({{.LateJoins}} meant to join before the start, reached the gateway after it: counted after){{end}}</td></tr>
<tr><th class="l">bots' units against their accounts</th><td class="l">{{.BotUnits}} of {{.Units}} units ({{pct1 .BotUnitShare}}) with {{.BotAccounts}} of {{.Accounts}} accounts ({{pct1 .BotAccountShare}})</td></tr>
<tr><th class="l">arrival to final answer (p50 / p99)</th><td class="l">{{f2 .ArrivalToFinalP50}} s / {{f2 .ArrivalToFinalP99}} s ({{.Answered}} answered, {{.Unanswered}} not)</td></tr>
<tr><th class="l">queue polling (GET .../queue) against SECKILL_QUEUE_POLL_BUDGET</th><td class="l">{{.PollText}}</td></tr>
<tr><th class="l">Redis reserve calls per unit sold</th><td class="l">{{.PerUnit .ReserveCalls}}</td></tr>
<tr><th class="l">Redis waiting-room calls per unit sold</th><td class="l">{{.PerUnit .QueueRedisCalls}}</td></tr>
<tr><th class="l">last unit sold to the last waiting person told sold out</th><td class="l">{{.SoldOutText}}</td></tr>
<tr><th class="l">gateway peak request rate</th><td class="l">{{f0 .PeakRequests}}/s</td></tr>
</table>
<table><tr><th class="l">arrived (s from the start)</th><th>people</th><th>won</th><th>chance</th></tr>
{{range .Slices}}<tr><td class="l">[{{f2 .From}}, {{f2 .To}})</td><td>{{.People}}</td><td>{{.Won}}</td><td>{{pct1 .Rate}}</td></tr>{{end}}
</table>
<p class="muted">Flat is fair: arriving earlier before the start should not change the chance to win. The chi-square compares wins and losses per slice with one
pooled chance; p is the chance of a spread at least this large if the chance were flat (p &le; 0.01: not flat). docs/loadtest.md, "Fairness and the waiting room".</p>
`
