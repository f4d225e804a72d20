package inventory

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// lossyScripts is a go-redis hook that fails chosen scripts the way a
// network does: lose runs a script in Redis and then loses its reply,
// fail fails it before it is sent. Scripts are told apart by their SHA, so
// everything else goes through untouched.
type lossyScripts struct {
	lostErr error // what the client sees instead of a lost reply

	mu   sync.Mutex
	lose map[string]int // SHA -> replies still to lose
	fail map[string]bool
}

func (h *lossyScripts) loseNext(sc *redis.Script, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lose[sc.Hash()] += n
}

func (h *lossyScripts) failAll(sc *redis.Script) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail[sc.Hash()] = true
}

func (h *lossyScripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *lossyScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *lossyScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		sha := scriptSHA(cmd)
		h.mu.Lock()
		fail := h.fail[sha]
		h.mu.Unlock()
		if fail {
			return &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
		}
		if err := next(ctx, cmd); err != nil {
			return err // NOSCRIPT (then EVAL) or a real failure: not the test's
		}
		h.mu.Lock()
		lose := h.lose[sha] > 0
		if lose {
			h.lose[sha]--
		}
		h.mu.Unlock()
		if lose {
			return h.lostErr // Redis ran it; the client never hears
		}
		return nil
	}
}

// scriptSHA is the SHA of the script cmd runs, "" when it runs none.
func scriptSHA(cmd redis.Cmder) string {
	args := cmd.Args()
	if len(args) < 2 {
		return ""
	}
	switch cmd.Name() {
	case "evalsha":
		s, _ := args[1].(string)
		return s
	case "eval":
		src, _ := args[1].(string)
		sum := sha1.Sum([]byte(src))
		return hex.EncodeToString(sum[:])
	}
	return ""
}

// reserveScript is the script a reserve of cfg runs: the single one with
// coalescing off, the batch one with it on.
func reserveScript(s *Store, cfg CoalesceConfig) *redis.Script {
	if cfg.MaxBatch == 1 {
		return s.sc.reserve
	}
	return s.sc.reserveBatch
}

// A reserve's reply is lost after Redis ran the script (a deadline that
// ran out, a connection reset): the caller gets an error, and the
// Coalescer releases what the reserve took before it answers. With the
// release confirmed, the error is ErrUnavailable alone (nothing is held:
// the gateway may say so), the units and the users' marks are back, and a
// retry of each user (without a request id) is reserved, not refused as
// AlreadyPurchased.
func TestCoalescerReleasesAfterALostReply(t *testing.T) {
	modes := []struct {
		name    string
		cfg     CoalesceConfig
		callers int
	}{
		{"coalescing off", CoalesceConfig{MaxBatch: 1}, 1},
		{"one batch", CoalesceConfig{MaxBatch: 3, MaxWait: time.Minute}, 3}, // full, so sent at once
	}
	losses := []struct {
		name string
		err  error
	}{
		{"deadline exceeded", context.DeadlineExceeded},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}},
	}
	for _, mode := range modes {
		for _, loss := range losses {
			t.Run(mode.name+"/"+loss.name, func(t *testing.T) {
				eachBackend(t, func(t *testing.T, e env) {
					ctx := context.Background()
					const stock = 5
					id := e.load(t, stock)
					h := &lossyScripts{lostErr: loss.err, lose: map[string]int{}, fail: map[string]bool{}}
					h.loseNext(reserveScript(e.s, mode.cfg), 1)
					e.rdb.AddHook(h)
					inv := NewCoalescer(e.s, mode.cfg)

					errs := reserveAll(inv, id, mode.callers, "lost")
					for i, err := range errs {
						if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrMaybeReserved) {
							t.Errorf("caller %d: Reserve = %v; want ErrUnavailable, not ErrMaybeReserved", i, err)
						}
					}
					if st := e.stats(t, id); st.Remaining != stock || st.Reserved != 0 {
						t.Errorf("after the lost reply: %+v; want every unit back (remaining %d, nothing reserved)", st, stock)
					}
					for i := range mode.callers {
						user := "u" + strconv.Itoa(i)
						r, err := e.s.Reserve(ctx, id, user, "", "again-"+user, t0)
						if err != nil || r.Outcome != Reserved {
							t.Errorf("%s buys again: %+v, %v; want Reserved", user, r, err)
						}
					}
				})
			})
		}
	}
}

// The reply is lost and the release that follows fails too: nobody knows
// whether a unit is held, and the error says so (ErrMaybeReserved, with
// ErrUnavailable). It is: the reservation stays pending for the reaper.
func TestCoalescerMaybeReservedWhenTheReleaseFails(t *testing.T) {
	for _, cfg := range []CoalesceConfig{{MaxBatch: 1}, {MaxBatch: 3, MaxWait: time.Minute}} {
		t.Run("max batch "+strconv.Itoa(cfg.MaxBatch), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e env) {
				id := e.load(t, 5)
				h := &lossyScripts{lostErr: context.DeadlineExceeded, lose: map[string]int{}, fail: map[string]bool{}}
				h.loseNext(reserveScript(e.s, cfg), 1)
				h.failAll(e.s.sc.release)
				e.rdb.AddHook(h)
				inv := NewCoalescer(e.s, cfg)

				callers := cfg.MaxBatch
				for i, err := range reserveAll(inv, id, callers, "held") {
					if !errors.Is(err, ErrMaybeReserved) || !errors.Is(err, ErrUnavailable) {
						t.Errorf("caller %d: Reserve = %v; want ErrMaybeReserved and ErrUnavailable", i, err)
					}
				}
				if st := e.stats(t, id); st.Reserved != int64(callers) || st.Pending != int64(callers) {
					t.Errorf("after the failed release: %+v; want the %d reservations pending, for the reaper", st, callers)
				}
			})
		})
	}
}

// reserveAll has n users (u0, u1, ...) reserve at once, without request
// ids, and returns their errors.
func reserveAll(inv *Coalescer, id int64, n int, orderPrefix string) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := strconv.Itoa(i)
			_, errs[i] = inv.Reserve(context.Background(), id, "u"+s, "", orderPrefix+s, t0)
		})
	}
	wg.Wait()
	return errs
}
