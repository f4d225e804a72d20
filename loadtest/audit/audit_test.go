package audit

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
)

// goodRun is a consistent run of 4 units: u1 and u2 paid (u2 at the
// deadline, winning the race), u3 paid too late (ORDER_CANCELLED), u4 never
// paid; the two returned units were resold to r1 and r2, who paid.
func goodRun() Evidence {
	return Evidence{
		Mode:  Pipeline,
		Stock: 4,
		Samples: []api.Stats{
			{Stock: 4, Remaining: 0, Reserved: 4, Queued: 4, DBAvailable: 4},
			{Stock: 4, Remaining: 0, Reserved: 4, Queued: 0, OrdersCreated: 4, DBAvailable: 0},
		},
		Final:      api.Stats{Stock: 4, Remaining: 0, Reserved: 4, OrdersPaid: 4, OrdersCancelled: 2, DBAvailable: 0},
		UsersTried: 9,
		Accepted:   map[string]string{"o1": "u1", "o2": "u2", "o3": "u3", "o4": "u4", "o5": "r1", "o6": "r2"},
		RequestOrders: map[string][]string{
			"u1/click": {"o1"}, "u2/click": {"o2"}, "u3/click": {"o3"}, "u4/click": {"o4"}, "r1/x": {"o5"}, "r2/x": {"o6"},
		},
		FinalStates: map[string]string{"o1": "paid", "o2": "paid", "o3": "cancelled", "o4": "cancelled", "o5": "paid", "o6": "paid"},
		Pays:        map[string]PayAnswer{"o1": PayOK, "o2": PayOK, "o3": PayCancelled, "o5": PayOK, "o6": PayOK},
		Lifecycle:   true,
		Resale: &Resale{
			Before: api.Stats{Stock: 4, Remaining: 2, Reserved: 2, OrdersPaid: 2, OrdersCancelled: 2, DBAvailable: 2},
			Users:  3, Accepted: 2,
		},
		DB: &DBFacts{
			Stock: 4, Available: 0, ByState: map[string]int64{"paid": 4, "cancelled": 2},
			States: map[string]string{"o1": "paid", "o2": "paid", "o3": "cancelled", "o4": "cancelled", "o5": "paid", "o6": "paid"},
			Users:  map[string]string{"o1": "u1", "o2": "u2", "o3": "u3", "o4": "u4", "o5": "r1", "o6": "r2"},
		},
		UserAnswers: map[string][]string{"u1": {"202"}, "u5": {"503 BUSY", "410 SOLD_OUT"}},
		DeadLetters: []api.DeadLetterTopic{{Topic: "orders"}, {Topic: "order-timeouts"}},
	}
}

func TestGoodRunPasses(t *testing.T) {
	r := Run(goodRun())
	if !r.OK() {
		t.Fatalf("a consistent run was flagged: %+v", r.Violations())
	}
	if len(r.Checks) != 9 {
		t.Fatalf("%d checks, want the 7 invariants and 2 more", len(r.Checks))
	}
	for i, c := range r.Checks[:7] {
		if c.Invariant != i+1 || c.Status != OK {
			t.Errorf("check %d = %+v, want invariant %d ok", i, c, i+1)
		}
	}
	for i, name := range []string{NamePromised, NameDeadLetters} {
		if c := r.Checks[7+i]; c.Invariant != 0 || c.Name != name || c.Status != OK || c.Label() != "+" {
			t.Errorf("check %d = %+v, want %q ok", 7+i, c, name)
		}
	}
}

func check(r Result, name string) Check {
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	return Check{}
}

// The checks of a chaos run: only a received 202 is a promise, and a
// buy refused outright must leave nothing behind.
func TestPromisesAndDeadLetters(t *testing.T) {
	inFlight := func(e *Evidence) {
		e.InFlight = append(e.InFlight, InFlight{User: "u5", RequestID: "click-u5", Outcome: "502"})
	}
	// An order of u5 exists that no 202 announced.
	unannounced := func(e *Evidence) {
		e.DB.States["o9"], e.DB.Users["o9"] = "cancelled", "u5"
		e.DB.ByState["cancelled"]++
		e.Final.OrdersCancelled++
	}
	for _, tc := range []struct {
		name   string
		check  string
		status Status
		detail string
		change func(e *Evidence)
	}{
		{"a received 202 missing from the database is a breach", Name(5), Violated, "order o7 (user u7) was answered 202 but does not exist", func(e *Evidence) {
			e.Accepted["o7"] = "u7"
		}},
		{"an in-flight failure promises nothing", Name(5), OK, "1 buys failed in flight (502 1): not promises", inFlight},
		{"an in-flight failure is not a missing order either", NamePromised, OK, "", inFlight},
		{"the order of a buy lost in flight is noted, not a breach", NamePromised, OK, "1 orders exist that no received 202 announced", func(e *Evidence) {
			inFlight(e)
			unannounced(e)
		}},
		{"an order for a buyer who was only refused is a breach", NamePromised, Violated,
			"order o9 (user u5, cancelled) exists, but no buy of that user was answered 202 or failed in flight (its answers: 503 BUSY, 410 SOLD_OUT)", unannounced},
		{"an order of a refused buy written already cancelled held nothing: noted", NamePromised, OK,
			"1 orders of buyers who were only refused were written already cancelled", func(e *Evidence) {
				unannounced(e)
				e.DB.BornCancelled = map[string]bool{"o9": true}
			}},
		{"without the database the promises are not checked", NamePromised, Skipped, "the database was not read", func(e *Evidence) {
			unannounced(e)
			e.DB = nil
		}},
		{"a dead letter of the run is listed with its cause", NameDeadLetters, Violated, "orders: seq 7, message m1, key 42, 10 attempts, stored 00:00:05.000: write failed", func(e *Evidence) {
			e.DeadLetters[0] = api.DeadLetterTopic{Topic: "orders", Count: 3, Messages: []api.DeadLetter{
				{Seq: 7, ID: "m1", Key: "42", Attempts: "10", Reason: "write failed", StoredAt: time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)}}}
		}},
		{"dead letters from before the run are only noted", NameDeadLetters, OK, "order-timeouts: 2 older dead letters", func(e *Evidence) {
			e.DeadLetters[1].Count = 2
		}},
		{"dead letters not read", NameDeadLetters, Skipped, "the queue keeps none", func(e *Evidence) {
			e.DeadLetters, e.DeadLettersSkipped = nil, "the queue keeps none"
		}},
		{"two orders of a user live at once, one cancelled since", Name(4), Violated, "database: user u1: orders o1", func(e *Evidence) {
			e.DB.LiveAtOnce = []string{"user u1: orders o1 (created 10:00:01.000, paid) and o9 (created 10:00:02.000, cancelled 10:00:12.000) were live at once"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := goodRun()
			tc.change(&e)
			c := check(Run(e), tc.check)
			if c.Status != tc.status {
				t.Fatalf("%s = %s %q, want %s", tc.check, c.Status, c.Details, tc.status)
			}
			if tc.detail != "" && !slices.ContainsFunc(c.Details, func(d string) bool { return strings.Contains(d, tc.detail) }) {
				t.Errorf("details %q do not say %q", c.Details, tc.detail)
			}
		})
	}
}

// TestEachInvariantCatchesItsViolation breaks the good run in one way at a
// time and expects the audit to name the invariant it breaks.
func TestEachInvariantCatchesItsViolation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		invariant int
		detail    string
		breakIt   func(e *Evidence)
	}{
		{"oversold at some instant", 1, "sample 2: 5 created", func(e *Evidence) {
			e.Samples[1].OrdersCreated = 5
		}},
		{"Redis went negative", 1, "Redis remaining is -1", func(e *Evidence) { e.Samples[0].Remaining = -1 }},
		{"oversold in the database", 1, "database: 5 live orders", func(e *Evidence) { e.DB.ByState["created"] = 1 }},
		{"undersold", 2, "3 paid orders exist", func(e *Evidence) {
			e.Final.OrdersPaid, e.Final.DBAvailable, e.Final.Remaining = 3, 1, 1
		}},
		{"Redis remaining drifts", 3, "Redis remaining 1 != stock 4", func(e *Evidence) { e.Final.Remaining = 1 }},
		{"queue not drained", 3, "1 orders still queued", func(e *Evidence) { e.Final.Queued, e.Final.Remaining = 1, -1 }},
		{"database available drifts", 3, "database available 1 != stock 4", func(e *Evidence) { e.Final.DBAvailable = 1 }},
		{"rows disagree with stats", 3, "disagree with the stats", func(e *Evidence) { e.DB.ByState["cancelled"] = 3 }},
		{"database rows not conserved", 3, "database rows: available 1", func(e *Evidence) { e.DB.Available = 1 }},
		{"two live orders of one user", 4, "user u1 holds 2 live orders", func(e *Evidence) {
			e.Accepted["o7"] = "u1"
			e.FinalStates["o7"] = "created"
		}},
		{"double click answered two orders", 4, "request u1/click was answered with 2 order ids", func(e *Evidence) {
			e.RequestOrders["u1/click"] = []string{"o1", "o9"} // o9 was never read back: not cancelled
		}},
		{"database has a duplicate user", 4, "database: user u1", func(e *Evidence) { e.DB.UsersWithTwoLive = []string{"u1"} }},
		{"202 order never written", 5, "order o8 (user u8) was answered 202 but does not exist", func(e *Evidence) { e.Accepted["o8"] = "u8" }},
		{"202 order stuck in the queue", 5, "still queued", func(e *Evidence) {
			e.Accepted["o8"] = "u8"
			e.FinalStates["o8"] = "queued"
		}},
		{"no database row", 5, "has no database row", func(e *Evidence) { delete(e.DB.States, "o4") }},
		{"API and row disagree", 5, "the database row says created", func(e *Evidence) { e.DB.States["o4"] = "created" }},
		{"fewer orders than 202s", 5, "only 5 exist", func(e *Evidence) { e.Final.OrdersCancelled = 1 }},
		{"a cancellation kept its unit", 6, "database has 1 units available", func(e *Evidence) { e.Resale.Before.DBAvailable = 1 }},
		{"Redis did not get the unit back", 6, "Redis has 1 units", func(e *Evidence) { e.Resale.Before.Remaining = 1 }},
		{"returned unit not sold again", 6, "2 units came back and 3 fresh users tried, but 1 orders", func(e *Evidence) { e.Resale.Accepted = 1 }},
		{"pay won but the order was cancelled", 7, "order o2: pay answered 200 paid, but the order ended \"cancelled\"", func(e *Evidence) {
			e.FinalStates["o2"] = "cancelled"
		}},
		{"cancel won but the order was paid", 7, "pay answered ORDER_CANCELLED, but the order ended \"paid\"", func(e *Evidence) {
			e.FinalStates["o3"] = "paid"
		}},
		{"paid without a 200", 7, "order o4 ended paid, but no pay was answered 200", func(e *Evidence) { e.FinalStates["o4"] = "paid" }},
		{"stats count more paid than answered", 7, "stats count 5 paid orders", func(e *Evidence) { e.Final.OrdersPaid = 5 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := goodRun()
			tc.breakIt(&e)
			r := Run(e)
			if r.OK() {
				t.Fatal("the audit passed a broken run")
			}
			c := r.Checks[tc.invariant-1]
			if c.Status != Violated {
				t.Fatalf("invariant %d (%s) = %s, want VIOLATED; violations: %+v", tc.invariant, c.Name, c.Status, r.Violations())
			}
			if !slices.ContainsFunc(c.Details, func(d string) bool { return strings.Contains(d, tc.detail) }) {
				t.Errorf("invariant %d details %q do not say %q", tc.invariant, c.Details, tc.detail)
			}
		})
	}
}

// A retry after the order was cancelled at its pay deadline is a new
// purchase, not a second answer to one click.
func TestRetryAfterCancellationIsANewPurchase(t *testing.T) {
	e := goodRun()
	e.RequestOrders["u4/click"] = []string{"o4", "o7"}
	e.Accepted["o7"] = "u4"
	e.FinalStates["o7"], e.DB.States["o7"] = "cancelled", "cancelled"
	e.Final.OrdersCancelled, e.DB.ByState["cancelled"] = 3, 3
	if r := Run(e); !r.OK() {
		t.Fatalf("flagged: %+v", r.Violations())
	}
}

func TestNaiveModeIgnoresRedis(t *testing.T) {
	e := goodRun()
	e.Mode = Naive
	// Redis keeps the stock it was loaded with: naive mode never touches it.
	e.Final.Remaining, e.Final.Reserved = 4, 0
	e.Resale.Before.Remaining = 4
	for i := range e.Samples {
		e.Samples[i].Remaining, e.Samples[i].Queued = 4, -e.Samples[i].OrdersCreated
	}
	if r := Run(e); !r.OK() {
		t.Fatalf("naive run flagged for Redis: %+v", r.Violations())
	}
	e.Final.DBAvailable = 1
	if r := Run(e); r.Checks[2].Status != Violated {
		t.Fatal("naive run: database drift not caught")
	}
}

func TestNotExercised(t *testing.T) {
	e := goodRun()
	e.Lifecycle = false
	e.Pays, e.Resale = nil, nil
	e.Final = api.Stats{Stock: 4, Reserved: 4, OrdersCreated: 4}
	e.FinalStates = map[string]string{"o1": "created", "o2": "created", "o3": "created", "o4": "created"}
	e.Accepted = map[string]string{"o1": "u1", "o2": "u2", "o3": "u3", "o4": "u4"}
	e.DB = nil
	e.UsersTried = 3
	r := Run(e)
	if !r.OK() {
		t.Fatalf("violations: %+v", r.Violations())
	}
	for _, n := range []int{2, 6, 7} {
		if c := r.Checks[n-1]; c.Status != Skipped || len(c.Details) == 0 {
			t.Errorf("invariant %d = %+v, want not exercised with a reason", n, c)
		}
	}
}
