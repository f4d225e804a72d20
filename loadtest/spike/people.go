package spike

import (
	"sort"
	"sync"
	"time"

	"github.com/flashsale/seckill/loadtest/audit"
	"github.com/flashsale/seckill/loadtest/report"
	"github.com/flashsale/seckill/loadtest/scenario"
)

// people records what each simulated person did and heard, for the
// fairness section and the waiting room's audit. Safe for concurrent use.
type people struct {
	t0 time.Time

	mu sync.Mutex
	m  map[string]*report.Person
	// passes are the distinct pass expiries each person was given.
	passes map[string]map[int64]bool
	// polls are GET .../queue sent per second since T0 (index 0 is the
	// first second before T0 and earlier).
	polls map[int]int
}

// arrival is when u shows up: its first page view during the countdown,
// else its first click.
func arrival(u *scenario.User) time.Duration {
	if len(u.PageViews) > 0 && u.PageViews[0] < 0 && u.PageViews[0] < u.Arrive {
		return u.PageViews[0]
	}
	return u.Arrive
}

func newPeople(t0 time.Time, plan scenario.Plan) *people {
	p := &people{t0: t0, m: make(map[string]*report.Person, len(plan.Users)), passes: map[string]map[int64]bool{}, polls: map[int]int{}}
	for i := range plan.Users {
		u := &plan.Users[i]
		p.m[u.ID] = &report.Person{User: u.ID, Kind: u.Kind.String(), Bot: u.Kind == scenario.Bot, Arrival: arrival(u)}
	}
	return p
}

func (p *people) since(t time.Time) time.Duration { return t.Sub(p.t0) }

// joined notes that user's join was answered, in the pre-queue or not.
func (p *people) joined(user string, at time.Time, prequeue bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ps := p.m[user]; ps != nil && !ps.Joined {
		ps.Joined, ps.JoinedAt, ps.Prequeue = true, p.since(at), prequeue
	}
}

// admitted notes a pass (its expiry tells one pass from another).
func (p *people) admitted(user string, expires time.Time, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.m[user]
	if ps == nil {
		return
	}
	if !ps.Admitted {
		ps.Admitted, ps.AdmittedAt = true, p.since(at)
	}
	set := p.passes[user]
	if set == nil {
		set = map[int64]bool{}
		p.passes[user] = set
	}
	set[expires.UnixMilli()] = true
	ps.Admissions = len(set)
}

// final notes a final answer. A won order stays the answer: a later
// answer (a double click's 410, a sold-out poll) does not undo it.
func (p *people) final(user, final string, at time.Time, orderID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.m[user]
	if ps == nil || ps.Final == report.FinalWon {
		return
	}
	if final == report.FinalGaveUp && ps.Final != "" {
		return // a definite answer came before
	}
	if final == report.FinalSoldOut && ps.SoldOutAt == 0 {
		ps.SoldOutAt = p.since(at)
	}
	if ps.Final == final {
		return // the same answer again: it came first then
	}
	ps.Final, ps.FinalAt, ps.OrderID = final, p.since(at), orderID
}

// settled reports whether user won or heard sold out.
func (p *people) settled(user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.m[user]
	return ps != nil && (ps.Final == report.FinalWon || ps.Final == report.FinalSoldOut)
}

// poll counts a GET .../queue sent at t.
func (p *people) poll(t time.Time) {
	s := max(int(p.since(t).Seconds()), -1)
	p.mu.Lock()
	p.polls[s]++
	p.mu.Unlock()
}

// all returns every person, sorted by user.
func (p *people) all() []report.Person {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]report.Person, 0, len(p.m))
	for _, ps := range p.m {
		out = append(out, *ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out
}

// pollsPerSecond is the queue polls of each second, in time order.
func (p *people) pollsPerSecond() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.polls) == 0 {
		return nil
	}
	lo, hi := 0, 0
	for s := range p.polls {
		lo, hi = min(lo, s), max(hi, s)
	}
	out := make([]int, hi-lo+1)
	for s, n := range p.polls {
		out[s-lo] = n
	}
	return out
}

// queuePeople is the audit's view of who joined and what they heard.
func (p *people) queuePeople() []audit.QueuePerson {
	all := p.all()
	out := make([]audit.QueuePerson, 0, len(all))
	for _, ps := range all {
		final := ps.Final
		if final == report.FinalGaveUp {
			final = "" // ran out of patience: no final answer
		}
		out = append(out, audit.QueuePerson{User: ps.User, Joined: ps.Joined, Admissions: ps.Admissions, Final: final})
	}
	return out
}
