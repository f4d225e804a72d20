package audit

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// QueueMember is one place of the waiting room as the admin audit route
// (GET /api/v1/admin/activities/{id}/queue) lists it, in rank order.
type QueueMember struct {
	User string `json:"user_id"`
	Rank int64  `json:"rank"`
	// State: W waiting, A:<admitted ms>:<pass expiry ms>, B:<ms> bought,
	// X:<ms> the pass lapsed unused (skipped), S:<ms> admitted and told
	// sold out.
	State string `json:"state"`
}

// QueuePerson is what one person who joined heard, as the generator
// recorded it.
type QueuePerson struct {
	User   string
	Joined bool
	// Admissions is the distinct passes (expiry instants) they were given.
	Admissions int
	// Final is their final answer ("" none).
	Final string
}

// QueueEvidence is what the waiting room checks need (queue admission).
type QueueEvidence struct {
	Members []QueueMember
	People  []QueuePerson
	// Orders maps every order of the activity to its user: the database
	// rows when at hand, else the 202s.
	Orders map[string]string
}

// Names of the waiting room's checks (queue admission).
const (
	NameAdmittedOnce = "waiting room: nobody admitted twice"
	NameQueueOrder   = "waiting room: admissions follow the queue order, except skipped places"
	NameFinalAnswer  = "waiting room: every person who joined got a final answer"
	NameSoldAdmitted = "waiting room: no unit sold to someone never admitted"
)

// queueChecks are the waiting room's checks; skipped without one.
func queueChecks(e Evidence) []Check {
	q := e.Queue
	if q == nil {
		return nil
	}
	return []Check{admittedOnce(q), queueOrder(q), finalAnswer(q), soldAdmitted(q)}
}

// admittedOnce: one place per person in the queue, and no person handed
// two passes.
func admittedOnce(q *QueueEvidence) Check {
	k := newExtra(NameAdmittedOnce)
	seen := map[string]int64{}
	for _, m := range q.Members {
		if r, ok := seen[m.User]; ok {
			k.fail("%s holds two places (ranks %d and %d)", m.User, r, m.Rank)
		}
		seen[m.User] = m.Rank
	}
	for _, p := range q.People {
		if p.Admissions > 1 {
			k.fail("%s was admitted %d times (distinct passes)", p.User, p.Admissions)
		}
	}
	return k.done()
}

// admittedAt is the admission instant of a place in state A (ok false
// otherwise: the others keep only when they were resolved).
func admittedAt(state string) (int64, bool) {
	f := strings.Split(state, ":")
	if len(f) != 3 || f[0] != "A" {
		return 0, false
	}
	v, err := strconv.ParseInt(f[1], 10, 64)
	return v, err == nil
}

// queueOrder: the admitted places (A, B, X, S) are a prefix of the queue
// in rank order: no place still waiting ahead of an admitted one, and the
// places still holding a pass were admitted in rank order. A skipped
// place (X) is one the inlet passed over, allowed anywhere in the prefix.
func queueOrder(q *QueueEvidence) Check {
	k := newExtra(NameQueueOrder)
	ms := append([]QueueMember(nil), q.Members...)
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Rank < ms[j].Rank })
	firstWaiting := -1
	var lastAt int64 = -1
	lastUser := ""
	skipped := 0
	for i, m := range ms {
		kind := ""
		if m.State != "" {
			kind = m.State[:1]
		}
		switch kind {
		case "W":
			if firstWaiting < 0 {
				firstWaiting = i
			}
			continue
		case "A", "B", "X", "S":
		default:
			k.fail("%s (rank %d) has an unknown state %q", m.User, m.Rank, m.State)
			continue
		}
		if kind == "X" {
			skipped++
		}
		if firstWaiting >= 0 {
			w := ms[firstWaiting]
			k.fail("%s (rank %d, %s) was admitted while %s (rank %d) ahead of it still waits", m.User, m.Rank, m.State, w.User, w.Rank)
		}
		if at, ok := admittedAt(m.State); ok {
			if at < lastAt {
				k.fail("%s (rank %d) was admitted at %d, before %s ahead of it (at %d)", m.User, m.Rank, at, lastUser, lastAt)
			}
			lastAt, lastUser = at, m.User
		}
	}
	k.note("%d places, %d admitted, %d of them skipped (pass lapsed unused)", len(ms), admittedCount(ms), skipped)
	return k.done()
}

func admittedCount(ms []QueueMember) int {
	n := 0
	for _, m := range ms {
		if m.State != "" && m.State[0] != 'W' {
			n++
		}
	}
	return n
}

// finalAnswer: everyone whose join was answered heard a final answer.
func finalAnswer(q *QueueEvidence) Check {
	k := newExtra(NameFinalAnswer)
	joined, none := 0, 0
	for _, p := range q.People {
		if !p.Joined {
			continue
		}
		joined++
		if p.Final == "" {
			none++
			k.fail("%s joined and never heard a final answer", p.User)
		}
	}
	if none > 0 {
		k.note("%d of %d people who joined got no final answer", none, joined)
	}
	return k.done()
}

// soldAdmitted: every order's user was admitted by the waiting room.
func soldAdmitted(q *QueueEvidence) Check {
	k := newExtra(NameSoldAdmitted)
	state := make(map[string]string, len(q.Members))
	for _, m := range q.Members {
		if st, ok := state[m.User]; !ok || st == "" || st[0] == 'W' {
			state[m.User] = m.State // a second place is admittedOnce's finding
		}
	}
	for _, id := range sortedKeys(q.Orders) {
		user := q.Orders[id]
		st, ok := state[user]
		switch {
		case !ok:
			k.fail("order %s went to %s, who never joined the waiting room", id, user)
		case st == "" || st[0] == 'W':
			k.fail("order %s went to %s, who was never admitted (state %q)", id, user, st)
		}
	}
	if k.c.Status == OK {
		k.note("%d orders, each to an admitted person", len(q.Orders))
	}
	return k.done()
}

// String describes the evidence in one line (for logs).
func (q *QueueEvidence) String() string {
	return fmt.Sprintf("%d places, %d people, %d orders", len(q.Members), len(q.People), len(q.Orders))
}
