package inventory

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The waiting room of an activity with queue admission: who waits, in what
// order, who is admitted and until when. It lives in the activity's slot
// beside its stock, is changed only by the wr_*.lua scripts (lua/wr_lib.lua
// says what each key holds), and so any number of gateways serve one queue
// and a gateway's crash loses nothing. The inlet needs no leader: every
// call moves it by the time elapsed since the last one, atomically.

var (
	//go:embed lua/wr_lib.lua
	luaWRLib string
	//go:embed lua/wr_setup.lua
	luaWRSetup string
	//go:embed lua/wr_join.lua
	luaWRJoin string
	//go:embed lua/wr_state.lua
	luaWRState string
	//go:embed lua/wr_resolve.lua
	luaWRResolve string
)

// ErrQueueNotConfigured means the activity has no waiting room in Redis:
// it was never set up (SetupQueue), or Redis lost it.
var ErrQueueNotConfigured = errors.New("inventory: the activity's waiting room is not set up in redis")

// statusNotConfigured (NOT_CONFIGURED in wr_lib.lua).
const statusNotConfigured scriptStatus = -4

// QueueStatus is a place's state, as the waiting room's scripts answer it.
type QueueStatus int

// Queue statuses (wr_lib.lua).
const (
	QueuePrequeue  QueueStatus = 1 // joined before the start: the order is drawn at the start
	QueueWaiting   QueueStatus = 2
	QueueAdmitted  QueueStatus = 3 // holds a pass until PassExpires
	QueueBought    QueueStatus = 4
	QueueExpired   QueueStatus = 5 // admitted, the pass lapsed unused: the place was passed over
	QueueSoldOut   QueueStatus = 6
	QueueNotJoined QueueStatus = 7
	QueueTooEarly  QueueStatus = 8 // the pre-queue is not open yet
)

func (s QueueStatus) String() string {
	switch s {
	case QueuePrequeue:
		return "prequeue"
	case QueueWaiting:
		return "waiting"
	case QueueAdmitted:
		return "admitted"
	case QueueBought:
		return "bought"
	case QueueExpired:
		return "expired"
	case QueueSoldOut:
		return "sold_out"
	case QueueNotJoined:
		return "not_joined"
	case QueueTooEarly:
		return "too_early"
	}
	return "queue_status(" + strconv.Itoa(int(s)) + ")"
}

// QueueSettings set up an activity's waiting room.
type QueueSettings struct {
	StartsAt time.Time
	// Prequeue is how long before StartsAt people may join the pre-queue
	// (SECKILL_QUEUE_PREQUEUE).
	Prequeue time.Duration
	// Rate admits at most this many people per second; 0 is no rate
	// bound (SECKILL_QUEUE_RATE).
	Rate float64
	// Active bounds the admitted people who have not bought yet, nor let
	// their pass expire; 0 bounds it by the units left
	// (SECKILL_QUEUE_ACTIVE).
	Active int64
	// Pass is how long an admitted person's pass lasts.
	Pass time.Duration
}

// QueuePlace is a person's place in a waiting room.
type QueuePlace struct {
	Status QueueStatus
	// Rank is the place, 0 first: fixed from the start.
	Rank int64
	// Waiting is how many joined (QueuePrequeue), Head how many places
	// the inlet reached, Active how many admitted hold a pass (QueueWaiting).
	Waiting, Head, Total, Active int64
	// PassExpires is when the pass of a QueueAdmitted place lapses;
	// OpensAt when the pre-queue opens (QueueTooEarly).
	PassExpires, OpensAt time.Time
	// Epoch is the set-up the place belongs to (QueueInlet.Epoch): a
	// place remembered from another epoch is void.
	Epoch int64
}

// QueueInlet is a waiting room's inlet as a whole: Head places admitted
// (Skipped of them passed over when their pass lapsed unused), Active of
// them holding a pass, Total places.
type QueueInlet struct {
	Head, Total, Active, Skipped int64
	SoldOut                      bool
	StartsAt                     time.Time
	// Epoch names the set-up: a waiting room lost with Redis and set up
	// again has another, and every place learned before is void.
	Epoch int64
}

// wrScripts are the waiting room's scripts, each prepended with lib.lua
// and wr_lib.lua.
type wrScripts struct{ setup, join, state, resolve *redis.Script }

func newWRScripts() wrScripts {
	mk := func(body string) *redis.Script { return redis.NewScript(luaLib + "\n" + luaWRLib + "\n" + body) }
	return wrScripts{setup: mk(luaWRSetup), join: mk(luaWRJoin), state: mk(luaWRState), resolve: mk(luaWRResolve)}
}

// roomKeys are the keys of an activity's waiting room (wr_lib.lua).
type roomKeys struct{ wr, wrq, wru, wrp string }

// wrKeys are the activity's keys followed by its waiting room's
// (KEYS[7..10]); shared, read-only.
func (s *Store) wrKeys(id int64) []string { return s.keys(id).roomScript }

func (s *Store) runWR(ctx context.Context, sc *redis.Script, c scriptCall, args ...any) (reply, error) {
	v, err := sc.Run(ctx, s.rdb, s.wrKeys(c.activity), args...).Slice()
	if err != nil {
		return reply{}, unavailable(c.op, c.activity, err)
	}
	if len(v) > 0 {
		if st, ok := v[0].(int64); ok && scriptStatus(st) == statusNotConfigured {
			return reply{}, fmt.Errorf("%w: %s activity %d", ErrQueueNotConfigured, c.op, c.activity)
		}
	}
	return decodeReply(c, v)
}

// SetupQueue makes activity id's waiting room unless it exists (a racing
// gateway's set-up wins, with its secret). It reports whether it made it.
func (s *Store) SetupQueue(ctx context.Context, id int64, q QueueSettings) (bool, error) {
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	var epoch [6]byte // below 2^48: exact in a Lua number
	_, _ = rand.Read(epoch[:])
	c := scriptCall{op: "queue setup", activity: id}
	r, err := s.runWR(ctx, s.sc.wr.setup, c, q.StartsAt.UnixMilli(), q.StartsAt.Add(-q.Prequeue).UnixMilli(),
		strconv.FormatFloat(q.Rate, 'f', -1, 64), q.Active, q.Pass.Milliseconds(), hex.EncodeToString(secret[:]),
		int64(binary.BigEndian.Uint64(append([]byte{0, 0}, epoch[:]...)))+1)
	if err != nil {
		return false, err
	}
	v, ok := r.ints()
	if !ok || len(v) != 1 {
		return false, c.unexpected(r)
	}
	return v[0] == 1, nil
}

// JoinQueue puts user in activity id's queue (once: a second join answers
// the first one's place) and answers the place.
func (s *Store) JoinQueue(ctx context.Context, id int64, user string, now time.Time) (QueuePlace, error) {
	c := scriptCall{op: "queue join", activity: id}
	r, err := s.runWR(ctx, s.sc.wr.join, c, user, now.UnixMilli())
	if err != nil {
		return QueuePlace{}, err
	}
	return queuePlace(c, r)
}

// QueueState moves activity id's inlet and answers user's place.
func (s *Store) QueueState(ctx context.Context, id int64, user string, now time.Time) (QueuePlace, error) {
	if user == "" {
		return QueuePlace{}, invalid("queue state", id, "empty user")
	}
	c := scriptCall{op: "queue state", activity: id}
	r, err := s.runWR(ctx, s.sc.wr.state, c, user, now.UnixMilli())
	if err != nil {
		return QueuePlace{}, err
	}
	return queuePlace(c, r)
}

// QueueInlet moves activity id's inlet and answers it.
func (s *Store) QueueInlet(ctx context.Context, id int64, now time.Time) (QueueInlet, error) {
	c := scriptCall{op: "queue inlet", activity: id}
	r, err := s.runWR(ctx, s.sc.wr.state, c, "", now.UnixMilli())
	if err != nil {
		return QueueInlet{}, err
	}
	v, ok := r.ints()
	if !ok || r.status != statusOK || len(v) != 7 {
		return QueueInlet{}, c.unexpected(r)
	}
	return QueueInlet{Head: v[0], Total: v[1], Active: v[2], SoldOut: v[3] == 1, StartsAt: time.UnixMilli(v[4]),
		Skipped: v[5], Epoch: v[6]}, nil
}

// ResolveQueue records that admitted user's buy was answered (bought:
// accepted or already holding one; else sold out), freeing its share of
// the inlet before its pass expires. It reports whether user held a pass.
func (s *Store) ResolveQueue(ctx context.Context, id int64, user string, bought bool, now time.Time) (bool, error) {
	how := "S"
	if bought {
		how = "B"
	}
	c := scriptCall{op: "queue resolve", activity: id}
	r, err := s.runWR(ctx, s.sc.wr.resolve, c, user, now.UnixMilli(), how)
	if err != nil {
		return false, err
	}
	v, ok := r.ints()
	if !ok || len(v) != 1 {
		return false, c.unexpected(r)
	}
	return v[0] == 1, nil
}

// queuePlace decodes a user's place (wr_lib.lua's user_state).
func queuePlace(c scriptCall, r reply) (QueuePlace, error) {
	v, ok := r.ints()
	if !ok {
		return QueuePlace{}, c.unexpected(r)
	}
	p := QueuePlace{Status: QueueStatus(r.status)}
	want := map[QueueStatus]int{QueuePrequeue: 1, QueueWaiting: 4, QueueAdmitted: 2, QueueBought: 1, QueueExpired: 1,
		QueueSoldOut: 1, QueueNotJoined: 0, QueueTooEarly: 1}
	n, known := want[p.Status]
	if !known || len(v) != n+1 {
		return QueuePlace{}, c.unexpected(r)
	}
	p.Epoch, v = v[n], v[:n]
	switch p.Status {
	case QueuePrequeue:
		p.Waiting = v[0]
	case QueueWaiting:
		p.Rank, p.Head, p.Total, p.Active = v[0], v[1], v[2], v[3]
	case QueueAdmitted:
		p.Rank, p.PassExpires = v[0], time.UnixMilli(v[1])
	case QueueBought, QueueExpired, QueueSoldOut:
		p.Rank = v[0]
	case QueueTooEarly:
		p.OpensAt = time.UnixMilli(v[0])
	}
	return p, nil
}

// QueueMember is one place of a waiting room as an audit reads it.
type QueueMember struct {
	User  string
	Rank  int64
	State string // W, A:<admitted_ms>:<expires_ms>, B:<ms>, X:<ms>, S:<ms> (wr_lib.lua)
	Key   float64
}

// QueueMembers reads activity id's whole queue in rank order, and the
// secret of its pre-queue draw (for an audit to replay it): plain reads,
// for after the sale.
func (s *Store) QueueMembers(ctx context.Context, id int64) ([]QueueMember, string, error) {
	rk := s.keys(id).room
	wr, wrq, wru := rk.wr, rk.wrq, rk.wru
	secret, err := s.rdb.HGet(ctx, wr, "secret").Result()
	if errors.Is(err, redis.Nil) {
		return nil, "", fmt.Errorf("%w: queue members activity %d", ErrQueueNotConfigured, id)
	}
	if err != nil {
		return nil, "", unavailable("queue members", id, err)
	}
	zs, err := s.rdb.ZRangeWithScores(ctx, wrq, 0, -1).Result()
	if err != nil {
		return nil, "", unavailable("queue members", id, err)
	}
	out := make([]QueueMember, len(zs))
	users := make([]string, len(zs))
	for i, z := range zs {
		users[i] = z.Member.(string)
		out[i] = QueueMember{User: users[i], Rank: int64(i), Key: z.Score}
	}
	for start := 0; start < len(users); start += 1000 {
		end := min(start+1000, len(users))
		vals, err := s.rdb.HMGet(ctx, wru, users[start:end]...).Result()
		if err != nil {
			return nil, "", unavailable("queue members", id, err)
		}
		for i, v := range vals {
			st, _ := v.(string)
			out[start+i].State = st
		}
	}
	return out, secret, nil
}

// PrequeueKey is the place key of user in a pre-queue drawn with secret:
// what wr_join.lua computes, for an audit that replays the draw.
func PrequeueKey(secret, user string) (uint64, error) {
	sum := sha1Hex(secret + ":" + user)
	return strconv.ParseUint(strings.ToLower(sum[:13]), 16, 64)
}

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
