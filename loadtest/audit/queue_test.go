package audit

import (
	"strings"
	"testing"
)

// goodQueue is a consistent waiting room: a and b admitted and bought, c
// admitted and its pass lapsed (skipped), d admitted and still holding a
// pass, e admitted after d, f still waiting; every joiner heard a final
// answer; a and b hold the orders.
func goodQueue() *QueueEvidence {
	return &QueueEvidence{
		Members: []QueueMember{
			{User: "a", Rank: 0, State: "B:1000"},
			{User: "b", Rank: 1, State: "B:1100"},
			{User: "c", Rank: 2, State: "X:2000"},
			{User: "d", Rank: 3, State: "A:1500:3000"},
			{User: "e", Rank: 4, State: "A:1600:3100"},
			{User: "f", Rank: 5, State: "W"},
		},
		People: []QueuePerson{
			{User: "a", Joined: true, Admissions: 1, Final: "won"},
			{User: "b", Joined: true, Admissions: 1, Final: "won"},
			{User: "c", Joined: true, Admissions: 1, Final: "expired"},
			{User: "d", Joined: true, Admissions: 1, Final: "sold_out"},
			{User: "e", Joined: true, Admissions: 1, Final: "sold_out"},
			{User: "f", Joined: true, Final: "sold_out"},
			{User: "g", Joined: false}, // the join itself failed: never in the queue
		},
		Orders: map[string]string{"o1": "a", "o2": "b"},
	}
}

func TestQueueChecks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breakQ func(q *QueueEvidence)
		check  string // the check that must fail ("": none)
		detail string
	}{
		{"consistent", func(*QueueEvidence) {}, "", ""},
		{"a person with two places", func(q *QueueEvidence) {
			q.Members = append(q.Members, QueueMember{User: "a", Rank: 6, State: "W"})
		}, NameAdmittedOnce, "a holds two places"},
		{"a person given two passes", func(q *QueueEvidence) { q.People[3].Admissions = 2 }, NameAdmittedOnce, "d was admitted 2 times"},
		{"admitted past a waiting place", func(q *QueueEvidence) {
			q.Members[2].State = "W"
		}, NameQueueOrder, "ahead of it still waits"},
		{"admitted out of rank order", func(q *QueueEvidence) {
			q.Members[4].State = "A:1400:3100"
		}, NameQueueOrder, "before d ahead of it"},
		{"a joiner without a final answer", func(q *QueueEvidence) { q.People[5].Final = "" }, NameFinalAnswer, "f joined and never heard"},
		{"a unit sold to a waiting person", func(q *QueueEvidence) { q.Orders["o3"] = "f" }, NameSoldAdmitted, "never admitted"},
		{"a unit sold to someone not in the queue", func(q *QueueEvidence) { q.Orders["o3"] = "zed" }, NameSoldAdmitted, "never joined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := goodRun()
			e.Queue = goodQueue()
			tc.breakQ(e.Queue)
			r := Run(e)
			if len(r.Checks) != 13 {
				t.Fatalf("%d checks, want 9 and the waiting room's 4", len(r.Checks))
			}
			for _, c := range r.Checks[9:] {
				want := OK
				if c.Name == tc.check {
					want = Violated
				}
				if c.Status != want {
					t.Errorf("%s: %s %v, want %s", c.Name, c.Status, c.Details, want)
				}
				if want == Violated && !strings.Contains(strings.Join(c.Details, "; "), tc.detail) {
					t.Errorf("%s details %v do not say %q", c.Name, c.Details, tc.detail)
				}
			}
			if tc.check != "" && r.OK() {
				t.Error("the run passed the audit")
			}
		})
	}
}

func TestNoQueueChecksWithOpenAdmission(t *testing.T) {
	if n := len(Run(goodRun()).Checks); n != 9 {
		t.Fatalf("%d checks with open admission, want 9", n)
	}
}

// TestCancellationsBehindAWaitingRoom: with a waiting room the returned
// units go through the queue and no resale phase runs; invariant 6 says
// so, with the cancellations it did not check, rather than that none
// happened.
func TestCancellationsBehindAWaitingRoom(t *testing.T) {
	e := goodRun()
	e.Resale = nil
	e.Queue = goodQueue()
	e.Final.OrdersCancelled = 7
	c := cancellations(e)
	if c.Status != Skipped || len(c.Details) != 1 || !strings.Contains(c.Details[0], "7 orders were cancelled") {
		t.Errorf("invariant 6 behind a waiting room = %s %q, want not exercised, naming the 7 cancellations", c.Status, c.Details)
	}
	e.Final.OrdersCancelled = 0
	if c := cancellations(e); c.Status != Skipped || !strings.Contains(strings.Join(c.Details, " "), "no order was cancelled") {
		t.Errorf("invariant 6 with no cancellation = %s %q, want: no order was cancelled", c.Status, c.Details)
	}
}
