package inventory

import (
	"context"
	_ "embed"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The scripts live in lua/ so they read as Lua; lib.lua is prepended to
// each, so the key names, the reply statuses, the reservation encoding and
// the release step are written once.
var (
	//go:embed lua/lib.lua
	luaLib string
	//go:embed lua/reserve.lua
	luaReserve string
	//go:embed lua/reserve_batch.lua
	luaReserveBatch string
	//go:embed lua/confirm.lua
	luaConfirm string
	//go:embed lua/confirm_batch.lua
	luaConfirmBatch string
	//go:embed lua/release.lua
	luaRelease string
	//go:embed lua/claim.lua
	luaClaim string
	//go:embed lua/reap.lua
	luaReap string
	//go:embed lua/restore.lua
	luaRestore string
	//go:embed lua/load.lua
	luaLoad string
	//go:embed lua/stats.lua
	luaStats string
	//go:embed lua/repair_meta.lua
	luaRepairMeta string
	//go:embed lua/lower.lua
	luaLower string
	//go:embed lua/redrive.lua
	luaRedrive string
	//go:embed lua/redrive_undo.lua
	luaRedriveUndo string
)

// scripts are the Store's Lua scripts, every one of them. Each takes the
// keys of one activity (activityKeys.forScript), so a Redis Cluster runs
// it in the activity's slot, and answers as lib.lua says (Store.run).
// Script.Run sends EVALSHA and falls back to EVAL once per server when the
// script is not cached there yet (a restart, a new cluster node).
type scripts struct {
	reserve, confirm, release, claim, reap, restore, load, stats *redis.Script
	// The waiting room's (waitroom.go).
	wr wrScripts
	// The Coalescer's (coalesce.go).
	reserveBatch, confirmBatch *redis.Script
	// The reconciler's (scan.go).
	repairMeta, lower, redrive, redriveUndo *redis.Script
}

func newScripts() scripts {
	mk := func(body string) *redis.Script { return redis.NewScript(luaLib + "\n" + body) }
	// The batch scripts run the single scripts' own code for each request:
	// reserve.lua and confirm.lua are wrapped as local functions of their
	// ARGV (a parameter named ARGV shadows the global one), after lib.lua,
	// so there is one copy of the per-request logic and a batch can only
	// answer what the single calls, made one by one in arrival order, would
	// have answered.
	batch := func(name, single, body string) *redis.Script {
		return mk("local function " + name + "(ARGV)\n" + single + "\nend\n" + body)
	}
	return scripts{
		reserve:      mk(luaReserve),
		confirm:      mk(luaConfirm),
		release:      mk(luaRelease),
		claim:        mk(luaClaim),
		reap:         mk(luaReap),
		restore:      mk(luaRestore),
		load:         mk(luaLoad),
		stats:        mk(luaStats),
		reserveBatch: batch("reserve_one", luaReserve, luaReserveBatch),
		confirmBatch: batch("confirm_one", luaConfirm, luaConfirmBatch),
		repairMeta:   mk(luaRepairMeta),
		lower:        mk(luaLower),
		redrive:      mk(luaRedrive),
		redriveUndo:  mk(luaRedriveUndo),
		wr:           newWRScripts(),
	}
}

// activityKeys are the keys of one activity. They share the hash tag
// {a<ID>}, so a Redis Cluster keeps them in one slot (see the package doc
// for what each holds).
type activityKeys struct {
	meta    string // hash: stock, remaining, starts_ms, ends_ms
	users   string // hash: user id -> order id
	res     string // hash: order id -> encoded reservation
	pending string // zset: order id -> reserved at (ms), pending ones only
	redrive string // hash: order id -> "<last re-drive ms>:<times>"
	loading string // string: the token of the Load in progress (Store.Load)
	room    roomKeys

	// script and roomScript are the KEYS of the activity's scripts and of
	// its waiting room's (forScript, waitroom.go's wrKeys), built once.
	// Shared and read-only: go-redis copies them into each command.
	script, roomScript []string
}

// keys returns the keys of activity id, built on its first use and kept
// (Store.keyCache): every script call of the buy path names them, and
// building them anew was a dozen string allocations per buy.
func (s *Store) keys(id int64) *activityKeys {
	if k, ok := s.keyCache.Load(id); ok {
		return k.(*activityKeys)
	}
	tag := s.prefix + ":{a" + strconv.FormatInt(id, 10) + "}:"
	k := &activityKeys{
		meta:    tag + "meta",
		users:   tag + "users",
		res:     tag + "res",
		pending: tag + "pending",
		redrive: tag + "redrive",
		loading: tag + "loading",
		room:    roomKeys{wr: tag + "wr", wrq: tag + "wrq", wru: tag + "wru", wrp: tag + "wrp"},
	}
	k.script = []string{k.meta, k.users, k.res, k.pending, k.redrive, k.loading}
	k.roomScript = append(slices.Clip(k.script), k.room.wr, k.room.wrq, k.room.wru, k.room.wrp)
	actual, _ := s.keyCache.LoadOrStore(id, k)
	return actual.(*activityKeys)
}

// forScript returns the KEYS of every script, in the order lib.lua names
// them:
//
//	KEYS[1] META     meta
//	KEYS[2] USERS    users
//	KEYS[3] RES      res
//	KEYS[4] PENDING  pending
//	KEYS[5] REDRIVE  redrive
//	KEYS[6] LOADING  loading
//
// Every script gets all six, used or not, so there is one order to keep
// in step; declaring a key a script does not touch costs nothing and,
// the keys sharing one slot, is accepted by a Cluster. The slice is
// shared: read it, never change it.
func (k *activityKeys) forScript() []string { return k.script }

// scriptStatus is the first element of every script's reply (lib.lua). A
// status >= 0 is the script's answer, decoded by its caller into the named
// type it documents (Outcome, ReleaseResult, MetaRepairOutcome,
// RedriveDecision) or a flag; a status < 0 is a failure any script may
// answer, the same number for the same failure everywhere, and becomes an
// error wrapping a sentinel (err). No script answers with an error reply or
// a string to say what happened, so nothing is decided by matching text:
// an error reply is Redis failing, and wraps ErrUnavailable.
type scriptStatus int64

// The statuses every script shares, named as in lib.lua.
const (
	// statusOK (OK): the answer of a script that answers only values.
	statusOK scriptStatus = 0

	// statusNotLoaded (NOT_LOADED): the activity's meta is missing
	// (never loaded, or Redis lost it). ErrNotLoaded.
	statusNotLoaded scriptStatus = -1
	// statusOrderIDTaken (ORDER_ID_TAKEN): the new order id already
	// names a reservation. ErrInvalid.
	statusOrderIDTaken scriptStatus = -2
	// statusBadArguments (BAD_ARGUMENTS): ARGV the script cannot take, a
	// bug in this package. ErrInvalid: nothing was changed.
	statusBadArguments scriptStatus = -3
)

// scriptCall names one script call in its errors.
type scriptCall struct {
	op       string // what the call does, e.g. "reserve"
	activity int64
	order    string // the order id the call is about; "" when none
}

// err returns the error of a failure status, nil for an answer.
func (c scriptCall) err(st scriptStatus) error {
	switch {
	case st >= 0:
		return nil
	case st == statusNotLoaded:
		return fmt.Errorf("%w: %s activity %d", ErrNotLoaded, c.op, c.activity)
	case st == statusOrderIDTaken:
		return invalid(c.op, c.activity, "order id %q already names a reservation", c.order)
	case st == statusBadArguments:
		return invalid(c.op, c.activity, "the script refused its arguments")
	}
	return c.unexpected(fmt.Sprintf("status %d", st))
}

// unexpected is the error of a reply that breaks lib.lua's convention or
// the script's documented shape.
func (c scriptCall) unexpected(reply any) error {
	return unavailable(c.op, c.activity, fmt.Errorf("unexpected reply %v", reply))
}

// reply is a script's answer: its status (>= 0) and the values after it.
type reply struct {
	status scriptStatus
	values []any
}

// ints returns the values as integers; false when one is not.
func (r reply) ints() ([]int64, bool) {
	out := make([]int64, len(r.values))
	for i, v := range r.values {
		n, ok := v.(int64)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// strings returns the values as strings; false when one is not.
func (r reply) strings() ([]string, bool) {
	out := make([]string, len(r.values))
	for i, v := range r.values {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

// flag reads the answer of a script whose status is 1 or 0 (done or not);
// false when the status is another number or values follow it.
func (r reply) flag() (done, ok bool) {
	return r.status == 1, (r.status == 0 || r.status == 1) && len(r.values) == 0
}

// run runs sc on the keys of c.activity and decodes its reply (decodeReply).
func (s *Store) run(ctx context.Context, sc *redis.Script, c scriptCall, args ...any) (reply, error) {
	v, err := s.eval(ctx, sc, c, args...)
	if err != nil {
		return reply{}, err
	}
	return decodeReply(c, v)
}

// eval runs sc on the keys of c.activity and returns its reply undecoded,
// for the callers that decode a reply and the same reply nested in a
// batch's with one function (reserveResult). A Redis error wraps
// ErrUnavailable.
func (s *Store) eval(ctx context.Context, sc *redis.Script, c scriptCall, args ...any) ([]any, error) {
	v, err := sc.Run(ctx, s.rdb, s.keys(c.activity).forScript(), args...).Slice()
	if err != nil {
		return nil, unavailable(c.op, c.activity, err)
	}
	return v, nil
}

// decodeReply reads v, a script's reply or one request's answer in a
// batch's, by lib.lua's convention {status, values...}: a failure status
// comes back as the error c.err gives it (errors.Is(err, ErrNotLoaded),
// ErrInvalid), a reply of another shape as an error wrapping
// ErrUnavailable.
func decodeReply(c scriptCall, v []any) (reply, error) {
	if len(v) == 0 {
		return reply{}, c.unexpected(v)
	}
	st, ok := v[0].(int64)
	if !ok {
		return reply{}, c.unexpected(v)
	}
	if err := c.err(scriptStatus(st)); err != nil {
		return reply{}, err
	}
	return reply{status: scriptStatus(st), values: v[1:]}, nil
}
