package audit

import (
	"slices"
	"strings"
	"testing"

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
		},
	}
}

func TestGoodRunPasses(t *testing.T) {
	r := Run(goodRun())
	if !r.OK() {
		t.Fatalf("a consistent run was flagged: %+v", r.Violations())
	}
	if len(r.Checks) != 7 {
		t.Fatalf("%d checks, want the 7 invariants", len(r.Checks))
	}
	for i, c := range r.Checks {
		if c.Invariant != i+1 || c.Status != OK {
			t.Errorf("check %d = %+v, want invariant %d ok", i, c, i+1)
		}
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
