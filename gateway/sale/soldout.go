package sale

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// soldOutFlags remember, per activity, that Redis said "sold out", so the
// rest of the spike is answered 410 from memory. A flag lasts ttl; when it
// expires exactly one request (the probe) goes to Redis while the others
// keep the local answer, so units that come back (a failed publish, a
// cancelled order) are found within ttl without a thundering herd.
//
// A buy that carries a request_id may be the retry of an order its user
// already won, which only Redis can answer (Existing, 202 with that order
// id). So with the flag each activity keeps a snapshot of its holders
// (user id -> order id, the users hash of inventory.Store.Holders, at most
// stock entries), read in the background after Redis said sold out: a
// request_id buy from a user outside the snapshot is answered 410 from
// memory, and only a holder goes to Redis. Why this cannot be wrong in a
// way that matters:
//
//   - The snapshot is read while the flag holds Redis's SoldOut answer:
//     first right after that answer, then again whenever it is half its
//     ttl old and buys with a request_id keep coming (holdersAging).
//     Everyone who reserved before a read is in that snapshot; nobody can
//     reserve after it without a unit coming back first (a release, a
//     meta rebuild), and every such return is announced and clears the
//     flag and the snapshot (clear). A later read only adds what an
//     earlier one could have missed.
//   - clear bumps a generation the snapshot carries, so a fetch that was in
//     flight across a clear is never used, whichever finishes first.
//   - An announcement can be lost (Redis pub/sub during an outage): then a
//     user who bought the returned unit is outside the snapshot and their
//     retry gets 410 instead of their order until the next read, at most
//     ttl after the snapshot was read, because a snapshot is only used for
//     ttl after it was read (the flag's own TTL bounds the same loss for
//     buys without a request_id). The order stands; a retry after that
//     finds it.
//   - Every gateway keeps its own flags and snapshots. A unit is only ever
//     taken by the Redis script, so whatever a stale local answer is, it is
//     a 410 (to a user who could have bought a returned unit within ttl),
//     never a second unit: nothing can be oversold.
type soldOutFlags struct {
	ttl   time.Duration
	flags sync.Map // activity id -> *soldOutState
}

// soldOutState is one activity's flag and holder snapshot.
type soldOutState struct {
	until atomic.Int64 // unix nanoseconds until which the flag holds; 0 = clear
	// gen counts clears; a snapshot is valid only for the generation it was
	// fetched in.
	gen      atomic.Uint64
	holders  atomic.Pointer[holderSnapshot]
	fetching atomic.Bool // one snapshot fetch per activity at a time
}

// holderSnapshot is the activity's holders as read after a sold-out answer.
type holderSnapshot struct {
	gen   uint64
	read  int64             // unix nanoseconds when the read started
	until int64             // read + ttl: used no longer than the flag's TTL
	users map[string]string // user id -> order id
}

// maxHolderSnapshot bounds the snapshot of one activity (about 100 bytes an
// entry). A larger activity keeps sending request_id buys to Redis once
// sold out, as it did before snapshots.
const maxHolderSnapshot = 200_000

// lookup is id's state, nil if no flag was ever set for it.
func (f *soldOutFlags) lookup(id int64) *soldOutState {
	if v, ok := f.flags.Load(id); ok {
		return v.(*soldOutState)
	}
	return nil
}

// state is id's state, created on first use.
func (f *soldOutFlags) state(id int64) *soldOutState {
	if st := f.lookup(id); st != nil {
		return st
	}
	v, _ := f.flags.LoadOrStore(id, new(soldOutState))
	return v.(*soldOutState)
}

// shouldReject reports whether a buy for id can be answered 410 locally. When
// the flag has just expired, the one caller that wins the swap is told to go
// to Redis (false) and the flag is extended for everybody else.
func (f *soldOutFlags) shouldReject(id int64, now time.Time) bool {
	st := f.lookup(id)
	if st == nil {
		return false
	}
	until := st.until.Load()
	if until == 0 {
		return false
	}
	if now.UnixNano() < until {
		return true
	}
	return !st.until.CompareAndSwap(until, now.Add(f.ttl).UnixNano())
}

// shouldRejectNonHolder reports whether a buy with a request_id by user can
// be answered 410 locally: the flag is set, this generation's snapshot is
// loaded and younger than ttl, and user holds nothing in it. When the flag
// has just expired, the one caller that wins the swap goes to Redis (the
// probe, as in shouldReject) and the others keep the local answer; a
// SoldOut answer sets the flag and refreshes the snapshot.
func (f *soldOutFlags) shouldRejectNonHolder(id int64, user string, now time.Time) bool {
	st := f.lookup(id)
	if st == nil {
		return false
	}
	until := st.until.Load()
	if until == 0 {
		return false
	}
	n := now.UnixNano()
	snap := st.holders.Load()
	// Read gen after the snapshot: a clear that bumped it meanwhile makes
	// the snapshot unusable, whichever order the clear stored things in.
	if snap == nil || snap.gen != st.gen.Load() || n >= snap.until {
		return false
	}
	if _, holds := snap.users[user]; holds {
		return false
	}
	if n < until {
		return true
	}
	return !st.until.CompareAndSwap(until, now.Add(f.ttl).UnixNano())
}

// holdersAging reports whether id's snapshot is usable but half its ttl
// old, with no read running: the time to read the next one in the
// background while this one still answers, so that the request_id buys of
// a long sold-out spike never find the snapshot expired and all go to
// Redis at once until a new one is read.
func (f *soldOutFlags) holdersAging(id int64, now time.Time) bool {
	st := f.lookup(id)
	if st == nil {
		return false
	}
	snap := st.holders.Load()
	return snap != nil && snap.gen == st.gen.Load() && now.UnixNano()-snap.read >= int64(f.ttl/2) && !st.fetching.Load()
}

// isSet reports the flag without probing (for reads such as GET activity).
func (f *soldOutFlags) isSet(id int64, now time.Time) bool {
	st := f.lookup(id)
	return st != nil && now.UnixNano() < st.until.Load()
}

// generation is id's count of clears, read before a Redis call whose
// SoldOut answer may set the flag: setSince then refuses to set it if a
// clear happened in between.
func (f *soldOutFlags) generation(id int64) uint64 {
	if st := f.lookup(id); st != nil {
		return st.gen.Load()
	}
	return 0
}

// setSince sets id's flag from a SoldOut answer to a call that started at
// generation gen, unless a clear happened since: units came back after
// Redis answered (a cancel announced on another gateway), and the answer
// is stale. It reports whether it set the flag; a caller that was told no
// must not read a holder snapshot either, since it would miss whoever
// bought the returned unit.
func (f *soldOutFlags) setSince(id int64, now time.Time, gen uint64) bool {
	st := f.state(id)
	if st.gen.Load() != gen {
		return false
	}
	st.until.Store(now.Add(f.ttl).UnixNano())
	// A clear between the check and the store zeroes until after it, or
	// bumps gen before it: in the second case undo the store.
	if st.gen.Load() != gen {
		st.until.CompareAndSwap(now.Add(f.ttl).UnixNano(), 0)
		return false
	}
	return true
}

// clear drops the flag and the holder snapshot, and makes any snapshot
// still being fetched unusable: units came back, so the holders may change.
func (f *soldOutFlags) clear(id int64) {
	// The state is made if missing: a buy that read generation 0 before
	// the first flag of id must still see that a clear happened.
	st := f.state(id)
	st.gen.Add(1)
	st.until.Store(0)
	st.holders.Store(nil)
}

// refreshHolders starts, in the background, a read of the holders of id
// after Redis answered SoldOut at seen (a time taken after that answer, or
// now while the flag holds it), unless a read is already running or the
// current snapshot was read after seen. onlyIfHeld refreshes only a
// snapshot this generation already has (a SoldOut answer to a buy without
// a request_id: nobody asked for one yet; an aging snapshot). In a sold-out
// spike this is one read when the first request_id buy is told sold out
// and about one per half ttl after that, never one per request. now gives the snapshot's clock (the server's, as for the flag);
// log reports a failed read, after which buys with a request_id keep going
// to Redis until the next SoldOut answer tries again.
func (f *soldOutFlags) refreshHolders(id int64, gen uint64, seen time.Time, onlyIfHeld bool, hl HolderLister, timeout time.Duration,
	now func() time.Time, log func(err error)) {
	st := f.state(id)
	if st.gen.Load() != gen {
		return // cleared since the answer that asked for it: holders may have changed
	}
	snap := st.holders.Load()
	valid := snap != nil && snap.gen == st.gen.Load()
	if valid && snap.read >= seen.UnixNano() || !valid && onlyIfHeld {
		return
	}
	if !st.fetching.CompareAndSwap(false, true) {
		return
	}
	// gen is the generation before the read: a clear from here on voids
	// the result.
	go func() {
		defer st.fetching.Store(false)
		read := now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		users, ok, err := hl.Holders(ctx, id, maxHolderSnapshot)
		switch {
		case err != nil:
			log(err)
			return
		case !ok:
			return // too many holders for a snapshot: request_id buys go to Redis
		}
		if st.gen.Load() != gen {
			return // cleared meanwhile: holders may have changed (checked again by readers)
		}
		st.holders.Store(&holderSnapshot{gen: gen, read: read.UnixNano(), until: read.Add(f.ttl).UnixNano(), users: users})
	}()
}
