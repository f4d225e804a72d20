package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestDecodeReply: lib.lua's convention read in one place. A status >= 0
// is an answer with its values; each failure status becomes its sentinel,
// whatever script sent it; anything else is an unexpected reply, wrapping
// ErrUnavailable.
func TestDecodeReply(t *testing.T) {
	c := scriptCall{op: "reserve", activity: 7, order: "o-taken"}
	for _, tc := range []struct {
		name      string
		reply     []any
		want      reply
		wantErr   error
		errNaming string // a text the error must contain
	}{
		{name: "status only", reply: []any{int64(1)}, want: reply{status: 1, values: []any{}}},
		{name: "OK and values", reply: []any{int64(0), "o1", int64(3)}, want: reply{status: statusOK, values: []any{"o1", int64(3)}}},
		{name: "NOT_LOADED", reply: []any{int64(-1)}, wantErr: ErrNotLoaded, errNaming: "activity 7"},
		{name: "ORDER_ID_TAKEN", reply: []any{int64(-2), "o-taken", int64(0)}, wantErr: ErrInvalid, errNaming: `"o-taken"`},
		{name: "BAD_ARGUMENTS", reply: []any{int64(-3)}, wantErr: ErrInvalid, errNaming: "refused its arguments"},
		{name: "unknown failure status", reply: []any{int64(-9)}, wantErr: ErrUnavailable, errNaming: "-9"},
		{name: "empty", reply: []any{}, wantErr: ErrUnavailable, errNaming: "unexpected reply"},
		{name: "status not an integer", reply: []any{"1"}, wantErr: ErrUnavailable, errNaming: "unexpected reply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeReply(c, tc.reply)
			if tc.wantErr == nil {
				if err != nil || got.status != tc.want.status || !slices.Equal(got.values, tc.want.values) {
					t.Fatalf("decodeReply(%v) = %+v, %v; want %+v", tc.reply, got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errNaming) {
				t.Fatalf("decodeReply(%v) = %+v, %v; want an error wrapping %v naming %s", tc.reply, got, err, tc.wantErr, tc.errNaming)
			}
			for _, other := range []error{ErrNotLoaded, ErrInvalid, ErrUnavailable} {
				if other != tc.wantErr && errors.Is(err, other) {
					t.Errorf("decodeReply(%v) error %v also wraps %v", tc.reply, err, other)
				}
			}
		})
	}
}

// TestScriptFailureStatuses runs each script that can refuse into each
// refusal, on both backends: every one answers a failure status that Go
// reads as its sentinel (no error reply, no text), and changes nothing.
func TestScriptFailureStatuses(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		loaded := e.load(t, 3)
		e.mustReserve(t, loaded, "u1", "", "o1", t0)
		unloaded := randomID()
		before := e.stats(t, loaded)

		for _, tc := range []struct {
			name     string
			sc       *redis.Script
			activity int64
			args     []any
			want     error
		}{
			{name: "claim of an unloaded activity", sc: e.s.sc.claim, activity: unloaded, args: []any{"o1"}, want: ErrNotLoaded},
			{name: "stats of an unloaded activity", sc: e.s.sc.stats, activity: unloaded, want: ErrNotLoaded},
			{name: "lower of an unloaded activity", sc: e.s.sc.lower, activity: unloaded, want: ErrNotLoaded},
			{name: "reserve of an unloaded activity", sc: e.s.sc.reserve, activity: unloaded, args: []any{"u2", "", "o2", t0.UnixMilli(), "P0:2:u2"}, want: ErrNotLoaded},
			{name: "reserve with an order id in use", sc: e.s.sc.reserve, activity: loaded, args: []any{"u2", "", "o1", t0.UnixMilli(), "P0:2:u2"}, want: ErrInvalid},
			{name: "release with an unknown mode", sc: e.s.sc.release, activity: loaded, args: []any{"o1", "some"}, want: ErrInvalid},
			{name: "reserve batch not in groups of five", sc: e.s.sc.reserveBatch, activity: loaded, args: []any{"u2", "", "o2", t0.UnixMilli()}, want: ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r, err := e.s.run(ctx, tc.sc, scriptCall{op: tc.name, activity: tc.activity, order: "o1"}, tc.args...)
				if !errors.Is(err, tc.want) || errors.Is(err, ErrUnavailable) {
					t.Fatalf("run = %+v, %v; want an error wrapping %v, not ErrUnavailable", r, err, tc.want)
				}
			})
		}
		if st := e.stats(t, loaded); st != before {
			t.Errorf("refused scripts changed Stats %+v -> %+v", before, st)
		}
		if keys, err := scanKeys(ctx, e.rdb, e.prefix); err != nil || slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, fmt.Sprintf("{a%d}", unloaded)) }) {
			t.Errorf("refused scripts wrote keys of the unloaded activity: %v (%v)", keys, err)
		}
	})
}

// TestScriptsNeverAnswerErrorReplies: a script says what happened with a
// status, never with an error reply whose text Go would have to match.
func TestScriptsNeverAnswerErrorReplies(t *testing.T) {
	for name, src := range map[string]string{
		"lib": luaLib, "reserve": luaReserve, "reserve_batch": luaReserveBatch,
		"confirm": luaConfirm, "confirm_batch": luaConfirmBatch, "release": luaRelease,
		"claim": luaClaim, "reap": luaReap, "restore": luaRestore, "load": luaLoad,
		"stats": luaStats, "repair_meta": luaRepairMeta, "lower": luaLower,
		"redrive": luaRedrive, "redrive_undo": luaRedriveUndo,
	} {
		for _, banned := range []string{"error_reply", "redis.error", "status_reply", "error("} {
			if strings.Contains(src, banned) {
				t.Errorf("lua/%s.lua uses %s; answer a status from lib.lua instead", name, banned)
			}
		}
	}
}
