package inventory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// What a reconciler needs from Redis: read every reservation of an
// activity without blocking the server (HSCAN, decoded here rather than in
// a script), ask which orders still hold one, and the few repairs whose
// cause is known, each one script so it is one atomic step however many
// reconcilers run at once.

// ReservationPage is one page of Reservations.
type ReservationPage struct {
	// Reservations of the page, OrderID set.
	Reservations []Reservation
	// Malformed are the order ids whose stored value does not decode (a
	// manual edit or a bug): reported, never acted on.
	Malformed []string
	// Next is the cursor of the next page; 0 once the scan is complete.
	Next uint64
}

// Reservations reads one page of the reservations of an activity with
// HSCAN: start with cursor 0 and pass each page's Next until it is 0.
// count is a hint (Redis may answer more, or all of a small hash at once).
// A reservation may show up twice in one scan, and one made or released
// during the scan may be missed: callers act on each one idempotently. An
// activity that is not loaded has no reservations.
func (s *Store) Reservations(ctx context.Context, activityID int64, cursor uint64, count int64) (ReservationPage, error) {
	kv, next, err := s.rdb.HScan(ctx, s.keys(activityID).res, cursor, "", count).Result()
	if err != nil {
		return ReservationPage{}, unavailable("scan reservations of", activityID, err)
	}
	p := ReservationPage{Reservations: make([]Reservation, 0, len(kv)/2), Next: next}
	for i := 0; i+1 < len(kv); i += 2 {
		r, err := decodeReservation(kv[i+1])
		if err != nil {
			p.Malformed = append(p.Malformed, kv[i])
			continue
		}
		r.OrderID = kv[i]
		p.Reservations = append(p.Reservations, r)
	}
	return p, nil
}

// Held reports, for each of orderIDs, whether it holds a reservation of
// the activity (any status), in one HMGET.
func (s *Store) Held(ctx context.Context, activityID int64, orderIDs []string) ([]bool, error) {
	if len(orderIDs) == 0 {
		return []bool{}, nil
	}
	v, err := s.rdb.HMGet(ctx, s.keys(activityID).res, orderIDs...).Result()
	if err != nil {
		return nil, unavailable("look up reservations of", activityID, err)
	}
	if len(v) != len(orderIDs) {
		return nil, unavailable("look up reservations of", activityID, fmt.Errorf("%d answers for %d order ids", len(v), len(orderIDs)))
	}
	out := make([]bool, len(v))
	for i, x := range v {
		out[i] = x != nil
	}
	return out, nil
}

// MetaRepairOutcome says what RepairMeta found.
type MetaRepairOutcome int

const (
	// MetaPresent: the activity's meta exists; nothing was changed.
	MetaPresent MetaRepairOutcome = iota + 1
	// MetaRebuilt: meta was missing while other keys of the activity
	// survived, and was written again.
	MetaRebuilt
	// ActivityAbsent: no key of the activity exists (Redis lost all of
	// it, or it was never loaded); nothing was changed. Load restores it
	// from the database.
	ActivityAbsent
)

// String names the outcome, for logs and test failures.
func (o MetaRepairOutcome) String() string {
	switch o {
	case MetaPresent:
		return "meta present"
	case MetaRebuilt:
		return "meta rebuilt"
	case ActivityAbsent:
		return "activity absent"
	}
	return "MetaRepairOutcome(" + strconv.Itoa(int(o)) + ")"
}

// MetaRepair is the answer of RepairMeta.
type MetaRepair struct {
	Outcome   MetaRepairOutcome
	Remaining int64 // the remaining written (MetaRebuilt only)
}

// RepairMeta rebuilds the meta hash (stock, remaining, window) of an
// activity that lost it while its reservations survived: an eviction or a
// manual delete of that one key. Every surviving reservation keeps its
// unit, so remaining = Stock - reservations, and never more than
// maxRemaining: the caller's bound from the database (its available units
// less the reservations not written there yet), so a reservation lost
// together with meta never lets a unit be sold twice. It is set-if-absent
// and one script: with meta present it changes nothing (MetaPresent), and
// with no key of the activity left it leaves the activity to Load
// (ActivityAbsent). A rebuilt activity with units left is announced to
// SubscribeReleases, so gateways drop their sold-out flags.
//
// A Load interrupted half-way also leaves reservations without meta; call
// RepairMeta only once that state has lasted longer than a Load takes.
func (s *Store) RepairMeta(ctx context.Context, a Activity, maxRemaining int64) (MetaRepair, error) {
	const op = "repair meta of"
	switch {
	case a.Stock <= 0:
		return MetaRepair{}, invalid(op, a.ID, "stock %d must be positive", a.Stock)
	case !a.EndsAt.After(a.StartsAt):
		return MetaRepair{}, invalid(op, a.ID, "ends at %s, not after its start %s", a.EndsAt.Format(time.RFC3339), a.StartsAt.Format(time.RFC3339))
	}
	c := scriptCall{op: op, activity: a.ID}
	r, err := s.run(ctx, s.sc.repairMeta, c, a.Stock, a.StartsAt.UnixMilli(), a.EndsAt.UnixMilli(), max(maxRemaining, 0))
	if err != nil {
		return MetaRepair{}, err
	}
	v, ok := r.ints()
	o := MetaRepairOutcome(r.status)
	switch {
	case ok && o == MetaRebuilt && len(v) == 1:
		if v[0] > 0 {
			s.announce(ctx, a.ID)
		}
		return MetaRepair{Outcome: MetaRebuilt, Remaining: v[0]}, nil
	case ok && (o == MetaPresent || o == ActivityAbsent) && len(v) == 0:
		return MetaRepair{Outcome: o}, nil
	}
	return MetaRepair{}, c.unexpected(r)
}

// LowerRemaining restores remaining + reservations <= stock, which every
// script keeps, by taking units off sale (never by adding any): when
// remaining is above stock - reservations (meta was rebuilt from the
// database while reservations it did not know about survived), Redis
// would sell units that are held, so remaining drops to stock -
// reservations (not below 0). It returns the units taken off sale and
// false when the activity is not loaded.
func (s *Store) LowerRemaining(ctx context.Context, activityID int64) (int64, bool, error) {
	c := scriptCall{op: "lower remaining of", activity: activityID}
	r, err := s.run(ctx, s.sc.lower, c)
	if errors.Is(err, ErrNotLoaded) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	v, ok := r.ints()
	if !ok || r.status != statusOK || len(v) != 1 {
		return 0, false, c.unexpected(r)
	}
	return v[0], true, nil
}

// RedriveDecision is the answer of MarkRedrive.
type RedriveDecision int

const (
	// RedriveNow: marked; publish the order message again now.
	RedriveNow RedriveDecision = iota + 1
	// RedriveGone: the reservation is no longer queued or claimed and
	// reserved before the cutoff (released, reaped, or newer); nothing
	// to do.
	RedriveGone
	// RedriveThrottled: re-driven less than the gap ago, by this or
	// another process.
	RedriveThrottled
	// RedriveExhausted: re-driven the most times allowed already; the
	// order needs an operator (its messages are on the dead-letter topic,
	// with the reason).
	RedriveExhausted
)

// String names the decision, for logs and test failures.
func (d RedriveDecision) String() string {
	switch d {
	case RedriveNow:
		return "redrive now"
	case RedriveGone:
		return "gone"
	case RedriveThrottled:
		return "throttled"
	case RedriveExhausted:
		return "exhausted"
	}
	return "RedriveDecision(" + strconv.Itoa(int(d)) + ")"
}

// MarkRedrive decides, for every reconciler of every process at once,
// whether the order message of a reservation may be published again, and
// records it when so (RedriveNow): the reservation must still be queued or
// claimed and reserved before reservedBefore, must not have been re-driven
// in the last gap, and must have been re-driven fewer than maxTimes times.
// The marks live in the activity's "redrive" hash (no TTL, one small
// field per order ever re-driven; dropped when its reservation is gone).
func (s *Store) MarkRedrive(ctx context.Context, activityID int64, orderID string, reservedBefore, now time.Time, gap time.Duration, maxTimes int) (RedriveDecision, error) {
	const op = "mark re-drive of"
	if orderID == "" {
		return 0, invalid(op, activityID, "empty order id")
	}
	c := scriptCall{op: op, activity: activityID, order: orderID}
	r, err := s.run(ctx, s.sc.redrive, c, orderID, reservedBefore.UnixMilli(), now.UnixMilli(), gap.Milliseconds(), maxTimes)
	if err != nil {
		return 0, err
	}
	d := RedriveDecision(r.status)
	if d < RedriveNow || d > RedriveExhausted || len(r.values) != 0 {
		return 0, c.unexpected(r)
	}
	return d, nil
}

// UnmarkRedrive takes back the last MarkRedrive of orderID when its
// publish failed: one re-drive fewer and no gap to wait, so a queue that
// was down does not use up an order's re-drives.
func (s *Store) UnmarkRedrive(ctx context.Context, activityID int64, orderID string) error {
	c := scriptCall{op: "unmark re-drive of", activity: activityID, order: orderID}
	r, err := s.run(ctx, s.sc.redriveUndo, c, orderID)
	if err != nil {
		return err
	}
	if _, ok := r.flag(); !ok { // whether there was a mark does not matter
		return c.unexpected(r)
	}
	return nil
}
