package inventory

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrInvalid is returned for arguments that can never succeed (a bad
// activity, an empty order id, an order id already in use): the caller's
// fault, not Redis's, so it maps to 400 (or a fresh order id) rather than
// 503. Nothing is changed.
var ErrInvalid = errors.New("inventory: invalid argument")

// DefaultPrefix starts every key when Options.Prefix is empty.
const DefaultPrefix = "seckill"

// restoreChunk is how many reservations one restore script call writes.
// A Redis script blocks the server while it runs, so 100k restored
// reservations go in many short calls instead of one long one.
const restoreChunk = 1000

// Options configure a Store.
type Options struct {
	// Prefix starts every key ("<Prefix>:{a<ID>}:meta"); DefaultPrefix when
	// empty. It lets several deployments or test runs share one Redis.
	// It must not contain '{' or '}', which would move the hash tag.
	Prefix string
}

// Store is the Redis side of every activity. It is safe for concurrent use;
// all state lives in Redis, so any number of gateways may each hold one.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	sc     scripts
	// keyCache maps an activity id to its *activityKeys (keys).
	keyCache sync.Map
}

// New returns a Store on rdb. It panics when opts.Prefix contains a brace,
// a programming error that would otherwise spread an activity's keys over
// several cluster slots and make every script fail there.
func New(rdb redis.UniversalClient, opts Options) *Store {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		panic(fmt.Sprintf("inventory: key prefix %q must not contain '{' or '}'", prefix))
	}
	return &Store{rdb: rdb, prefix: prefix, sc: newScripts()}
}

func unavailable(op string, id int64, err error) error {
	return fmt.Errorf("%w: %s activity %d: %w", ErrUnavailable, op, id, err)
}

func invalid(op string, id int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s activity %d: %s", ErrInvalid, op, id, fmt.Sprintf(format, args...))
}

// Load preloads an activity unless its meta key exists, in which case it
// returns false and changes nothing: another gateway, or an earlier start
// against the same Redis, loaded it and its live counters win.
//
// existing are the reservations the database still holds (the embedded
// Redis restarted, the orders did not); they are written first, in chunks,
// each chunk refusing to write once meta exists, and meta is written last
// with a set-if-absent script, so Reserve never sees a half-restored
// activity. remaining must leave room for them: len(existing) <= Stock -
// remaining. A Load interrupted half-way leaves restored reservations
// without meta; the next Load writes them again and completes it.
//
// Redis may restart empty between two of those calls (it lost the
// activity once already): the chunks before the restart are gone, and a
// meta written after it would count their units as held, losing them for
// good. So the first chunk leaves a token (the activity's loading key,
// which a restart wipes too), every later call checks it, and a Load that
// finds it gone fails with ErrUnavailable, writing no meta: the next call
// restores again. A token replaced by another Load's means that Load took
// over: this one returns false, as when meta exists.
func (s *Store) Load(ctx context.Context, a Activity, remaining int64, existing []Reservation) (bool, error) {
	const op = "load"
	switch {
	case a.Stock <= 0:
		return false, invalid(op, a.ID, "stock %d must be positive", a.Stock)
	case remaining < 0 || remaining > a.Stock:
		return false, invalid(op, a.ID, "remaining %d must be within 0..%d", remaining, a.Stock)
	case !a.EndsAt.After(a.StartsAt):
		return false, invalid(op, a.ID, "ends at %s, not after its start %s", a.EndsAt.Format(time.RFC3339), a.StartsAt.Format(time.RFC3339))
	case int64(len(existing)) > a.Stock-remaining:
		return false, invalid(op, a.ID, "%d reservations restored but stock %d - remaining %d leaves room for %d", len(existing), a.Stock, remaining, a.Stock-remaining)
	}
	users := make(map[string]struct{}, len(existing))
	orders := make(map[string]struct{}, len(existing))
	for i, r := range existing {
		switch {
		case r.OrderID == "" || r.UserID == "":
			return false, invalid(op, a.ID, "reservation %d has an empty order or user id", i)
		case r.Status != StatusPending && r.Status != StatusQueued && r.Status != StatusClaimed:
			return false, invalid(op, a.ID, "reservation %q has unknown status %q", r.OrderID, r.Status)
		}
		if _, dup := users[r.UserID]; dup {
			return false, invalid(op, a.ID, "user %q holds two reservations", r.UserID)
		}
		if _, dup := orders[r.OrderID]; dup {
			return false, invalid(op, a.ID, "order %q restored twice", r.OrderID)
		}
		users[r.UserID] = struct{}{}
		orders[r.OrderID] = struct{}{}
	}

	n, err := s.rdb.Exists(ctx, s.keys(a.ID).meta).Result()
	if err != nil {
		return false, unavailable(op, a.ID, err)
	}
	if n > 0 {
		return false, nil
	}
	c := scriptCall{op: op, activity: a.ID}
	token := ""
	if len(existing) > 0 {
		token = strconv.FormatUint(rand.Uint64(), 36)
	}
	for start := 0; start < len(existing); start += restoreChunk {
		chunk := existing[start:min(start+restoreChunk, len(existing))]
		first := "0"
		if start == 0 {
			first = "1"
		}
		args := make([]any, 0, 3+4*len(chunk))
		args = append(args, token, loadTokenTTL.Milliseconds(), first)
		for _, r := range chunk {
			score := ""
			if r.Status == StatusPending {
				score = strconv.FormatInt(r.ReservedAt.UnixMilli(), 10)
			}
			args = append(args, r.OrderID, r.UserID, encodeReservation(r), score)
		}
		r, err := s.run(ctx, s.sc.restore, c, args...)
		if err != nil {
			return false, err
		}
		if done, err := loadStep(c, r, start); done || err != nil {
			return false, err
		}
	}
	r, err := s.run(ctx, s.sc.load, c, a.Stock, remaining, a.StartsAt.UnixMilli(), a.EndsAt.UnixMilli(), token)
	if err != nil {
		return false, err
	}
	if done, err := loadStep(c, r, len(existing)); done || err != nil {
		return false, err
	}
	return true, nil
}

// loadTokenTTL bounds how long a Load's token outlives a Load that died
// half-way; a Load slower than this fails and the next one starts again.
const loadTokenTTL = 2 * time.Minute

// loadStep reads the answer of one of Load's script calls, made after
// written reservations: done when another Load won (meta exists, or it
// took over), an error when Redis lost what this one wrote.
func loadStep(c scriptCall, r reply, written int) (done bool, err error) {
	switch {
	case len(r.values) != 0:
		return false, c.unexpected(r)
	case r.status == 1:
		return false, nil
	case r.status == 0:
		return true, nil
	case r.status == 2:
		return true, fmt.Errorf("%w: %s activity %d: the %d reservations restored so far are gone (Redis restarted while loading); restore again",
			ErrUnavailable, c.op, c.activity, written)
	}
	return false, c.unexpected(r)
}

// Reserve takes one unit for userID in one atomic script, or says why not
// (see Outcome). now is the gateway's clock, compared with the activity's
// window at millisecond precision; using it rather than Redis TIME keeps
// the gateway's window check and this one in agreement. requestID may be
// empty; a non-empty one makes a retried request find its own order again
// (Existing or Pending) instead of AlreadyPurchased. orderID must be new:
// the script refuses an id that already names a reservation.
func (s *Store) Reserve(ctx context.Context, activityID int64, userID, requestID, orderID string, now time.Time) (ReserveResult, error) {
	const op = "reserve"
	if userID == "" || orderID == "" {
		return ReserveResult{}, invalid(op, activityID, "empty user or order id")
	}
	nowMS := now.UnixMilli()
	enc := encodeReservation(Reservation{UserID: userID, RequestID: requestID, ReservedAt: now, Status: StatusPending})
	c := scriptCall{op: op, activity: activityID, order: orderID}
	v, err := s.eval(ctx, s.sc.reserve, c, userID, requestID, orderID, nowMS, enc)
	if err != nil {
		return ReserveResult{}, err
	}
	return reserveResult(c, v)
}

// reserveResult decodes one answer of reserve.lua, {status, order id,
// remaining}: the reply of Reserve, or one request's three values in the
// reply of reserve_batch.lua, so both are read by the same code. An
// activity that is not loaded is the outcome UnknownActivity, not an
// error: the gateway loads it and asks again.
func reserveResult(c scriptCall, v []any) (ReserveResult, error) {
	r, err := decodeReply(c, v)
	switch {
	case errors.Is(err, ErrNotLoaded):
		return ReserveResult{Outcome: UnknownActivity}, nil
	case err != nil:
		return ReserveResult{}, err
	}
	if len(r.values) != 2 || r.status < scriptStatus(Reserved) || r.status > scriptStatus(Ended) {
		return ReserveResult{}, c.unexpected(v)
	}
	id, ok1 := r.values[0].(string)
	rem, ok2 := r.values[1].(int64)
	if !ok1 || !ok2 {
		return ReserveResult{}, c.unexpected(v)
	}
	return ReserveResult{Outcome: Outcome(r.status), OrderID: id, Remaining: rem}, nil
}

// Confirm marks a pending reservation queued once the queue acknowledged
// its order message, which takes it out of ReapPending's reach. It returns
// false when the reservation is gone (reaped or released meanwhile: the
// caller must not count on the unit); queued and claimed ones stay as they
// are and return true, so a repeated Confirm is harmless.
func (s *Store) Confirm(ctx context.Context, activityID int64, orderID string) (bool, error) {
	c := scriptCall{op: "confirm", activity: activityID, order: orderID}
	r, err := s.run(ctx, s.sc.confirm, c, orderID)
	if err != nil {
		return false, err
	}
	queued, ok := r.flag()
	if !ok {
		return false, c.unexpected(r)
	}
	return queued, nil
}

// ReleaseResult says what Release or ReleaseCancelled did. Only Released
// changed anything.
type ReleaseResult int

const (
	// Released: the reservation is gone, its unit is back on sale (never
	// above stock) and its user may buy again.
	Released ReleaseResult = iota + 1
	// NotReleasedClaimed: an order worker claimed the reservation, so its
	// order went through (or is being written) and keeps the unit; nothing
	// changed. Only the order's cancellation returns the unit
	// (ReleaseCancelled).
	NotReleasedClaimed
	// NotReleasedAbsent: there is no such reservation (released, reaped or
	// cancelled already, or never made); nothing changed.
	NotReleasedAbsent
)

// String names the result, for logs and test failures.
func (r ReleaseResult) String() string {
	switch r {
	case Released:
		return "released"
	case NotReleasedClaimed:
		return "not released: claimed"
	case NotReleasedAbsent:
		return "not released: absent"
	}
	return "ReleaseResult(" + strconv.Itoa(int(r)) + ")"
}

// Release undoes a reservation that no order worker has claimed yet: a
// pending or queued one loses its unit back to stock (never above it), the
// reservation goes, and the user's mark goes if it still points at this
// order, so the user may buy again. A claimed reservation is left as it is
// (NotReleasedClaimed): its order is being written, and releasing it would
// sell the unit twice and let the user buy a second one. This is what the
// gateway calls after a publish that reported an error, which may still
// have reached the queue. It is idempotent: Released only on the call that
// released. A release is announced to SubscribeReleases. A reservation
// found without its activity's meta (a restore half-way) is left as it is
// and the error wraps ErrNotLoaded: the meta the restore writes next counts
// its unit as held.
func (s *Store) Release(ctx context.Context, activityID int64, orderID string) (ReleaseResult, error) {
	return s.release(ctx, "release", activityID, orderID, "unclaimed")
}

// ReleaseCancelled gives back the unit of an order the database cancelled
// (its pay deadline passed), whatever its reservation's status, which is
// normally claimed: the unit returns, the reservation and the user's mark
// go, as in Release. It returns true only on the call that released, so a
// cancel that is retried or redelivered returns one unit, not two. Only a
// committed cancellation may call it; anything else calls Release.
func (s *Store) ReleaseCancelled(ctx context.Context, activityID int64, orderID string) (bool, error) {
	r, err := s.release(ctx, "release cancelled order of", activityID, orderID, "any")
	return r == Released, err
}

func (s *Store) release(ctx context.Context, op string, activityID int64, orderID, mode string) (ReleaseResult, error) {
	c := scriptCall{op: op, activity: activityID, order: orderID}
	rep, err := s.run(ctx, s.sc.release, c, orderID, mode)
	if err != nil {
		return 0, err
	}
	r := ReleaseResult(rep.status)
	switch {
	case len(rep.values) != 0:
		return 0, c.unexpected(rep)
	case r == Released:
		s.announce(ctx, activityID)
	case r == NotReleasedClaimed, r == NotReleasedAbsent:
	default:
		return 0, c.unexpected(rep)
	}
	return r, nil
}

// Claim marks reservations claimed in one script call, for an order worker
// about to write their rows: ok[i] is true when orderIDs[i] is still
// reserved (now claimed, out of ReapPending's reach) and false when it was
// reaped or released, in which case the worker records the order as
// cancelled instead of selling the unit twice.
func (s *Store) Claim(ctx context.Context, activityID int64, orderIDs []string) ([]bool, error) {
	if len(orderIDs) == 0 {
		return []bool{}, nil
	}
	args := make([]any, len(orderIDs))
	for i, id := range orderIDs {
		args[i] = id
	}
	c := scriptCall{op: "claim", activity: activityID}
	r, err := s.run(ctx, s.sc.claim, c, args...) // ErrNotLoaded when Redis lost the activity
	if err != nil {
		return nil, err
	}
	v, ok := r.ints()
	if !ok || r.status != statusOK {
		return nil, c.unexpected(r)
	}
	if len(v) != len(orderIDs) {
		return nil, unavailable(c.op, activityID, fmt.Errorf("%d answers for %d order ids", len(v), len(orderIDs)))
	}
	claimed := make([]bool, len(v))
	for i, n := range v {
		claimed[i] = n == 1
	}
	return claimed, nil
}

// ReapPending releases, as Release does, up to limit pending reservations
// reserved before olderThan, oldest first, and returns their order ids.
// It is the safety net for a gateway that died between Reserve and
// Confirm; olderThan should sit well beyond the longest publish, because a
// reaped reservation's order is cancelled when a worker meets it (Claim).
// Queued and claimed reservations are never reaped.
func (s *Store) ReapPending(ctx context.Context, activityID int64, olderThan time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		return []string{}, nil
	}
	c := scriptCall{op: "reap pending", activity: activityID}
	r, err := s.run(ctx, s.sc.reap, c, olderThan.UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	ids, ok := r.strings()
	if !ok || r.status != statusOK {
		return nil, c.unexpected(r)
	}
	if len(ids) > 0 {
		s.announce(ctx, activityID)
	}
	return ids, nil
}

// Lookup returns the reservation of orderID; false when there is none.
func (s *Store) Lookup(ctx context.Context, activityID int64, orderID string) (Reservation, bool, error) {
	v, err := s.rdb.HGet(ctx, s.keys(activityID).res, orderID).Result()
	if errors.Is(err, redis.Nil) {
		return Reservation{}, false, nil
	}
	if err != nil {
		return Reservation{}, false, unavailable("lookup", activityID, err)
	}
	r, err := decodeReservation(v)
	if err != nil {
		return Reservation{}, false, unavailable("lookup", activityID, err)
	}
	r.OrderID = orderID
	return r, true, nil
}

// Remaining returns the units left; false when the activity is not loaded.
// It is one HGET because it sits on the hot path of GET activity.
func (s *Store) Remaining(ctx context.Context, activityID int64) (int64, bool, error) {
	n, err := s.rdb.HGet(ctx, s.keys(activityID).meta, "remaining").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, unavailable("remaining", activityID, err)
	}
	return n, true, nil
}

// Stats returns the Redis side of an activity, read in one script so the
// four numbers belong to the same instant; false when the activity is not
// loaded.
func (s *Store) Stats(ctx context.Context, activityID int64) (Stats, bool, error) {
	c := scriptCall{op: "stats", activity: activityID}
	r, err := s.run(ctx, s.sc.stats, c)
	if errors.Is(err, ErrNotLoaded) {
		return Stats{}, false, nil
	}
	if err != nil {
		return Stats{}, false, err
	}
	v, ok := r.ints()
	if !ok || r.status != statusOK || len(v) != 4 {
		return Stats{}, false, c.unexpected(r)
	}
	return Stats{Stock: v[0], Remaining: v[1], Reserved: v[2], Pending: v[3]}, true, nil
}

// Ping checks that Redis answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: ping: %w", ErrUnavailable, err)
	}
	return nil
}

// String names the outcome. The names are the outcome label of the
// gateway's seckill_reserve_total, which dashboards and alerts match, so
// they do not change.
func (o Outcome) String() string {
	switch o {
	case Reserved:
		return "reserved"
	case Existing:
		return "existing"
	case Pending:
		return "pending"
	case AlreadyPurchased:
		return "already_purchased"
	case SoldOut:
		return "sold_out"
	case NotStarted:
		return "not_started"
	case Ended:
		return "ended"
	case UnknownActivity:
		return "unknown_activity"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}
