// Package audit checks the seven invariants of the design brief after a
// load-test run, from what the run collected: the admin stats (polled
// during the run and read at the end), every answer the generator got,
// and, when the database is reachable, the rows themselves.
//
// It is a pure function of its Evidence, so each invariant can be shown to
// fail by feeding it evidence that breaks it (see audit_test.go): an audit
// that cannot fail proves nothing.
package audit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/flashsale/seckill/loadtest/api"
)

// Status of one check.
type Status string

// Statuses.
const (
	OK       Status = "ok"
	Violated Status = "VIOLATED"
	Skipped  Status = "not exercised"
)

// Check is the verdict on one invariant, or on one of the checks that
// back them (Invariant 0: every order was promised, no dead letters).
type Check struct {
	Invariant int      `json:"invariant"`
	Name      string   `json:"name"`
	Status    Status   `json:"status"`
	Details   []string `json:"details,omitempty"`
}

// Result is every check.
type Result struct {
	Checks []Check `json:"checks"`
}

// OK reports whether no invariant was violated.
func (r Result) OK() bool {
	for _, c := range r.Checks {
		if c.Status == Violated {
			return false
		}
	}
	return true
}

// Violations lists the violated checks.
func (r Result) Violations() []Check {
	var v []Check
	for _, c := range r.Checks {
		if c.Status == Violated {
			v = append(v, c)
		}
	}
	return v
}

// Names of the invariants, numbered as in the design brief.
var names = [...]string{
	1: "never oversold",
	2: "never undersold",
	3: "conservation",
	4: "one active order per user",
	5: "nothing lost",
	6: "a cancellation returns exactly one unit, sold again",
	7: "pay and cancel: exactly one wins",
}

// Name returns the name of invariant n.
func Name(n int) string { return names[n] }

// checker accumulates the findings of one invariant.
type checker struct {
	c       Check
	skipped string
}

func newCheck(n int) *checker { return &checker{c: Check{Invariant: n, Name: names[n], Status: OK}} }

// Names of the checks beyond the seven invariants (Invariant 0).
const (
	NamePromised    = "every order was promised: by a 202, or a buy lost in flight"
	NameDeadLetters = "no dead letters, or each one explained"
)

func newExtra(name string) *checker { return &checker{c: Check{Name: name, Status: OK}} }

// Label is how the check is listed: its invariant's number, or "+".
func (c Check) Label() string {
	if c.Invariant == 0 {
		return "+"
	}
	return fmt.Sprint(c.Invariant)
}

func (k *checker) fail(format string, args ...any) {
	k.c.Status = Violated
	if len(k.c.Details) < 20 { // enough to diagnose; a broken run could list thousands
		k.c.Details = append(k.c.Details, fmt.Sprintf(format, args...))
	} else if len(k.c.Details) == 20 {
		k.c.Details = append(k.c.Details, "... (more)")
	}
}

func (k *checker) note(format string, args ...any) {
	k.c.Details = append(k.c.Details, fmt.Sprintf(format, args...))
}

func (k *checker) skip(why string) { k.skipped = why }

func (k *checker) done() Check {
	if k.c.Status == OK && k.skipped != "" {
		k.c.Status = Skipped
		k.c.Details = append(k.c.Details, k.skipped)
	}
	return k.c
}

// Run checks every invariant against e, then the checks beyond them.
func Run(e Evidence) Result {
	return Result{Checks: append([]Check{
		oversold(e), undersold(e), conservation(e), onePerUser(e), nothingLost(e), cancellations(e), payRace(e),
		promised(e), deadLetters(e),
	}, queueChecks(e)...)}
}

func oversold(e Evidence) Check {
	k := newCheck(1)
	all := append(append([]api.Stats(nil), e.Samples...), e.Final)
	for i, s := range all {
		when := fmt.Sprintf("stats sample %d", i+1)
		if i == len(all)-1 {
			when = "final stats"
		}
		if s.Live() > e.Stock {
			k.fail("%s: %d created + %d paid orders for a stock of %d", when, s.OrdersCreated, s.OrdersPaid, e.Stock)
		}
		if s.DBAvailable < 0 {
			k.fail("%s: database available is %d", when, s.DBAvailable)
		}
		if e.Mode == Pipeline && s.Remaining < 0 {
			k.fail("%s: Redis remaining is %d", when, s.Remaining)
		}
	}
	if d := e.DB; d != nil {
		if live := d.ByState[StateCreated] + d.ByState[StatePaid]; live > e.Stock {
			k.fail("database: %d live orders for a stock of %d", live, e.Stock)
		}
	}
	k.note("checked %d stats samples and the final stats", len(e.Samples))
	return k.done()
}

func undersold(e Evidence) Check {
	k := newCheck(2)
	f := e.Final
	switch {
	case e.UsersTried < int(e.Stock):
		k.skip(fmt.Sprintf("only %d distinct users got past the rate limits for %d units", e.UsersTried, e.Stock))
	case f.OrdersCancelled > 0 && e.Resale == nil:
		k.skip(fmt.Sprintf("%d orders were cancelled and no resale phase ran", f.OrdersCancelled))
	case f.OrdersCancelled > 0 && int64(e.Resale.Users) < e.Resale.Before.DBAvailable:
		k.skip(fmt.Sprintf("%d orders were cancelled and only %d resale users tried for %d returned units", f.OrdersCancelled, e.Resale.Users, e.Resale.Before.DBAvailable))
	default:
		if f.Live() != e.Stock {
			k.fail("%d distinct users tried for %d units, yet %d created + %d paid orders exist", e.UsersTried, e.Stock, f.OrdersCreated, f.OrdersPaid)
		}
		if e.Mode == Pipeline && f.Remaining != 0 {
			k.fail("Redis still has %d units to sell", f.Remaining)
		}
		if f.DBAvailable != 0 {
			k.fail("the database still has %d units available", f.DBAvailable)
		}
	}
	return k.done()
}

func conservation(e Evidence) Check {
	k := newCheck(3)
	f := e.Final
	if e.Mode == Pipeline {
		if want := e.Stock - (f.Queued + f.Live()); f.Remaining != want {
			k.fail("Redis remaining %d != stock %d - (queued %d + created %d + paid %d) = %d", f.Remaining, e.Stock, f.Queued, f.OrdersCreated, f.OrdersPaid, want)
		}
		if f.Queued != 0 {
			k.fail("%d orders still queued after the drain", f.Queued)
		}
	} else {
		k.note("naive mode: Redis holds no stock, only the database is checked")
	}
	if want := e.Stock - f.Live(); f.DBAvailable != want {
		k.fail("database available %d != stock %d - (created %d + paid %d) = %d", f.DBAvailable, e.Stock, f.OrdersCreated, f.OrdersPaid, want)
	}
	if f.Stock != e.Stock {
		k.fail("stats report stock %d, the activity was created with %d", f.Stock, e.Stock)
	}
	if d := e.DB; d != nil {
		live := d.ByState[StateCreated] + d.ByState[StatePaid]
		if d.Available != d.Stock-live {
			k.fail("database rows: available %d != stock %d - live orders %d", d.Available, d.Stock, live)
		}
		if d.ByState[StateCreated] != f.OrdersCreated || d.ByState[StatePaid] != f.OrdersPaid || d.ByState[StateCancelled] != f.OrdersCancelled {
			k.fail("database rows by state %v disagree with the stats (created %d, paid %d, cancelled %d)", d.ByState, f.OrdersCreated, f.OrdersPaid, f.OrdersCancelled)
		}
	}
	return k.done()
}

func onePerUser(e Evidence) Check {
	k := newCheck(4)
	liveByUser := map[string][]string{}
	for id, user := range e.Accepted {
		if s := e.FinalStates[id]; s == StateCreated || s == StatePaid {
			liveByUser[user] = append(liveByUser[user], id)
		}
	}
	for _, user := range sortedKeys(liveByUser) {
		if ids := liveByUser[user]; len(ids) > 1 {
			sort.Strings(ids)
			k.fail("user %s holds %d live orders: %s", user, len(ids), strings.Join(ids, ", "))
		}
	}
	for _, key := range sortedKeys(e.RequestOrders) {
		// A retry that comes after its order was cancelled (its pay
		// deadline passed) is a new purchase: Redis forgot the request.
		// Two orders of one request that were not cancelled are a
		// double sale of one click.
		var kept []string
		for _, id := range e.RequestOrders[key] {
			if e.FinalStates[id] != StateCancelled {
				kept = append(kept, id)
			}
		}
		if len(kept) > 1 {
			k.fail("request %s was answered with %d order ids not cancelled: %s (a retry or double click must get the same one)", key, len(kept), strings.Join(kept, ", "))
		}
	}
	if e.DB != nil {
		for _, u := range e.DB.UsersWithTwoLive {
			k.fail("database: user %s has more than one live order", u)
		}
		for _, d := range e.DB.LiveAtOnce {
			k.fail("database: %s", d)
		}
	}
	return k.done()
}

func nothingLost(e Evidence) Check {
	k := newCheck(5)
	for _, id := range sortedKeys(e.Accepted) {
		switch s := e.FinalStates[id]; s {
		case StateCreated, StatePaid, StateCancelled:
		case "":
			k.fail("order %s (user %s) was answered 202 but does not exist", id, e.Accepted[id])
		default:
			k.fail("order %s (user %s) was answered 202 and is still %s after the drain", id, e.Accepted[id], s)
		}
		if e.DB != nil && e.DB.States != nil {
			if s, ok := e.DB.States[id]; !ok {
				k.fail("order %s was answered 202 but has no database row", id)
			} else if viaAPI := e.FinalStates[id]; viaAPI != "" && s != viaAPI {
				k.fail("order %s: the API says %s, the database row says %s", id, viaAPI, s)
			}
		}
	}
	if total := e.Final.Live() + e.Final.OrdersCancelled; total < int64(len(e.Accepted)) {
		k.fail("%d orders were answered 202 but only %d exist (created %d + paid %d + cancelled %d)",
			len(e.Accepted), total, e.Final.OrdersCreated, e.Final.OrdersPaid, e.Final.OrdersCancelled)
	}
	k.note("%d orders answered 202", len(e.Accepted))
	if n := len(e.InFlight); n > 0 {
		k.note("%d buys failed in flight (%s): not promises, so not checked here", n, inFlightOutcomes(e.InFlight))
	}
	return k.done()
}

// inFlightOutcomes counts in-flight failures by outcome: "error 3, 502 1".
func inFlightOutcomes(f []InFlight) string {
	n := map[string]int{}
	for _, x := range f {
		n[x.Outcome]++
	}
	var parts []string
	for _, o := range sortedKeys(n) {
		parts = append(parts, fmt.Sprintf("%s %d", o, n[o]))
	}
	return strings.Join(parts, ", ")
}

// promised: every order row of the activity is one a buyer was told
// about (a received 202), or belongs to a buyer whose buy failed in flight
// (it may have been reserved before the gateway died). An order for a
// buyer whose every buy was refused (a 503 BUSY, a 410) that held a unit
// breaks the refusal's promise that nothing happened: the unit was held
// for a buyer who does not know of it. One written already cancelled (the
// worker found the reservation released) held nothing: it is listed, not
// a breach, since its buyer is still told of an order cancelled that it
// never bought.
func promised(e Evidence) Check {
	k := newExtra(NamePromised)
	if e.DB == nil || e.DB.Users == nil {
		k.skip("the database was not read (no DSN)")
		return k.done()
	}
	lost := map[string]bool{}
	for _, f := range e.InFlight {
		lost[f.User] = true
	}
	unannounced := 0
	var born []string
	for _, id := range sortedKeys(e.DB.Users) {
		if _, ok := e.Accepted[id]; ok {
			continue
		}
		user := e.DB.Users[id]
		if lost[user] {
			unannounced++
			continue
		}
		if e.DB.BornCancelled[id] {
			born = append(born, id+" (user "+user+")")
			continue
		}
		answers := "none recorded"
		if a := e.UserAnswers[user]; len(a) > 0 {
			answers = strings.Join(a, ", ")
		}
		k.fail("order %s (user %s, %s) exists, but no buy of that user was answered 202 or failed in flight (its answers: %s)", id, user, e.DB.States[id], answers)
	}
	if unannounced > 0 {
		k.note("%d orders exist that no received 202 announced, each of a buyer whose buy failed in flight: the gateway took it before it died", unannounced)
	}
	if len(born) > 0 {
		if len(born) > 10 {
			born = append(born[:10], "...")
		}
		k.note("%d orders of buyers who were only refused were written already cancelled (the reservation was released: no unit held, but the buyer is told of a cancelled order it never got): %s",
			len(born), strings.Join(born, ", "))
	}
	return k.done()
}

// deadLetters: a dead-lettered order message is a 202 without an order; a
// dead-lettered cancel a unit that may not have come back. Each one of
// the run is listed with why it was given up.
func deadLetters(e Evidence) Check {
	k := newExtra(NameDeadLetters)
	if e.DeadLetters == nil {
		why := e.DeadLettersSkipped
		if why == "" {
			why = "the dead letters were not read"
		}
		k.skip(why)
		return k.done()
	}
	for _, t := range e.DeadLetters {
		for _, m := range t.Messages {
			k.fail("%s: seq %d, message %s, key %s, %s attempts, stored %s: %s", t.Topic, m.Seq, m.ID, m.Key, m.Attempts, m.StoredAt.Format("15:04:05.000"), m.Reason)
		}
		if older := t.Count - len(t.Messages); older > 0 {
			k.note("%s: %d older dead letters, from before this run", t.Topic, older)
		}
	}
	return k.done()
}

func cancellations(e Evidence) Check {
	k := newCheck(6)
	if !e.Lifecycle {
		k.skip("the gateway has no pay endpoint, so no order was paid or timed out")
		return k.done()
	}
	r := e.Resale
	if r == nil && e.Queue != nil && e.Final.OrdersCancelled > 0 {
		k.skip(fmt.Sprintf("%d orders were cancelled; behind a waiting room their units go to the next people in the queue, so no resale phase ran to check them here", e.Final.OrdersCancelled))
		return k.done()
	}
	if r == nil || r.Before.OrdersCancelled == 0 {
		k.skip("no order was cancelled in this run")
		return k.done()
	}
	b := r.Before
	// Every unit not held by a live order came back: exactly one per
	// cancellation, on both sides.
	if want := e.Stock - b.Live(); b.DBAvailable != want {
		k.fail("after %d cancellations the database has %d units available, want stock %d - live %d = %d", b.OrdersCancelled, b.DBAvailable, e.Stock, b.Live(), want)
	}
	if e.Mode == Pipeline {
		if want := e.Stock - (b.Queued + b.Live()); b.Remaining != want {
			k.fail("after %d cancellations Redis has %d units, want stock %d - (queued %d + live %d) = %d", b.OrdersCancelled, b.Remaining, e.Stock, b.Queued, b.Live(), want)
		}
	}
	// And the returned units sell again.
	if want := min(int64(r.Users), b.DBAvailable); int64(r.Accepted) != want {
		k.fail("%d units came back and %d fresh users tried, but %d orders were accepted (want %d)", b.DBAvailable, r.Users, r.Accepted, want)
	}
	k.note("%d cancellations by the time the run settled; the %d units then back on sale (the others were bought again during the spike) went to %d of %d fresh users",
		b.OrdersCancelled, b.DBAvailable, r.Accepted, r.Users)
	return k.done()
}

func payRace(e Evidence) Check {
	k := newCheck(7)
	if !e.Lifecycle {
		k.skip("the gateway has no pay endpoint")
		return k.done()
	}
	paid := 0
	for _, id := range sortedKeys(e.Pays) {
		final := e.FinalStates[id]
		switch e.Pays[id] {
		case PayOK:
			paid++
			if final != StatePaid {
				k.fail("order %s: pay answered 200 paid, but the order ended %q", id, final)
			}
		case PayCancelled:
			if final != StateCancelled {
				k.fail("order %s: pay answered ORDER_CANCELLED, but the order ended %q", id, final)
			}
		}
	}
	for _, id := range sortedKeys(e.FinalStates) {
		if e.FinalStates[id] == StatePaid && e.Pays[id] != PayOK && e.Pays[id] != PayUnknown {
			k.fail("order %s ended paid, but no pay was answered 200", id)
		}
	}
	unknown := countPays(e.Pays, PayUnknown)
	if e.Final.OrdersPaid < int64(paid) || e.Final.OrdersPaid > int64(paid+unknown) {
		k.fail("stats count %d paid orders; %d pays were answered 200 (and %d got no definite answer)", e.Final.OrdersPaid, paid, unknown)
	}
	if len(e.Pays) == 0 {
		k.skip("no order was paid")
	}
	k.note("%d orders paid, %d pays answered ORDER_CANCELLED", paid, countPays(e.Pays, PayCancelled))
	return k.done()
}

func countPays(m map[string]PayAnswer, a PayAnswer) int {
	n := 0
	for _, v := range m {
		if v == a {
			n++
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
