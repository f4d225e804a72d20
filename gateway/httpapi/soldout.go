package httpapi

import (
	"sync"
	"sync/atomic"
	"time"
)

// soldOutFlags remember, per activity, that Redis said "sold out", so the
// rest of the spike is answered 410 from memory. A flag lasts ttl; when it
// expires exactly one request (the probe) goes to Redis while the others
// keep the local answer, so units that come back (a failed publish, a
// cancelled order) are found within ttl without a thundering herd.
type soldOutFlags struct {
	ttl   time.Duration
	flags sync.Map // activity id -> *atomic.Int64 (unix nanoseconds until which the flag holds; 0 = clear)
}

func (f *soldOutFlags) flag(id int64) *atomic.Int64 {
	if v, ok := f.flags.Load(id); ok {
		return v.(*atomic.Int64)
	}
	v, _ := f.flags.LoadOrStore(id, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// shouldReject reports whether a buy for id can be answered 410 locally. When
// the flag has just expired, the one caller that wins the swap is told to go
// to Redis (false) and the flag is extended for everybody else.
func (f *soldOutFlags) shouldReject(id int64, now time.Time) bool {
	v, ok := f.flags.Load(id)
	if !ok {
		return false
	}
	fl := v.(*atomic.Int64)
	until := fl.Load()
	if until == 0 {
		return false
	}
	if now.UnixNano() < until {
		return true
	}
	return !fl.CompareAndSwap(until, now.Add(f.ttl).UnixNano())
}

// isSet reports the flag without probing (for reads such as GET activity).
func (f *soldOutFlags) isSet(id int64, now time.Time) bool {
	v, ok := f.flags.Load(id)
	return ok && now.UnixNano() < v.(*atomic.Int64).Load()
}

func (f *soldOutFlags) set(id int64, now time.Time) { f.flag(id).Store(now.Add(f.ttl).UnixNano()) }

func (f *soldOutFlags) clear(id int64) {
	if v, ok := f.flags.Load(id); ok {
		v.(*atomic.Int64).Store(0)
	}
}
