package sale

// How the sale reads activities without making the database its hot path:
// the buy path reads activity rows through a short cache, and the
// storefront's list is cached for a second, so a crowd opening the page
// reads the database once.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/flashsale/seckill/order"
)

// Bounds of the storefront's list.
const (
	activityListTTL = time.Second
	activityListMax = 50
)

// Activity states as the API shows them.
const (
	StateUpcoming = "upcoming"
	StateActive   = "active"
	StateSoldOut  = "sold_out"
	StateEnded    = "ended"
)

// ActivityView is an activity as a buyer sees it: the row, the units left
// and the server's clock for the countdown.
type ActivityView struct {
	Activity   order.Activity
	Remaining  int64
	State      string
	ServerTime time.Time
}

// View is a's view with remaining units left at now.
func View(a *order.Activity, remaining int64, now time.Time) ActivityView {
	state := StateActive
	switch {
	case now.Before(a.StartsAt):
		state = StateUpcoming
	case !now.Before(a.EndsAt):
		state = StateEnded
	case remaining <= 0:
		state = StateSoldOut
	}
	return ActivityView{Activity: *a, Remaining: remaining, State: state, ServerTime: now.UTC()}
}

// activityCache keeps activity rows for a short while: the buy path must not
// read the database, and an activity's window and price do not change.
type activityCache struct {
	ttl   time.Duration
	store Store
	now   func() time.Time
	mu    sync.RWMutex
	m     map[int64]cachedActivity
	// loads coalesces the refreshes of one activity: when an entry expires
	// under a spike, one query goes to the database, not one per request.
	loads singleflight.Group
}

type cachedActivity struct {
	a       order.Activity
	fetched time.Time
}

func (ac *activityCache) get(ctx context.Context, id int64) (*order.Activity, error) {
	now := ac.now()
	ac.mu.RLock()
	e, ok := ac.m[id]
	ac.mu.RUnlock()
	if ok && now.Sub(e.fetched) < ac.ttl {
		a := e.a
		return &a, nil
	}
	v, err, _ := ac.loads.Do(strconv.FormatInt(id, 10), func() (any, error) {
		// Shared by every waiting request: not tied to the first one's
		// context, but bounded.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		a, err := ac.store.GetActivity(lctx, id)
		if err != nil {
			// Stale if error: while the database is away the last row
			// read keeps the sale open (Redis decides every unit, and
			// the queue holds the orders until the database is back);
			// it is tried again after another TTL.
			if ok && !errors.Is(err, order.ErrNotFound) {
				ac.mu.Lock()
				ac.m[id] = cachedActivity{a: e.a, fetched: now}
				ac.mu.Unlock()
				return e.a, nil
			}
			return nil, err
		}
		ac.mu.Lock()
		if ac.m == nil {
			ac.m = make(map[int64]cachedActivity)
		}
		ac.m[id] = cachedActivity{a: *a, fetched: now}
		ac.mu.Unlock()
		return *a, nil
	})
	if err != nil {
		return nil, err
	}
	a := v.(order.Activity)
	return &a, nil
}

// activity reads activity id from the cache.
func (s *Service) activity(ctx context.Context, id int64) (*order.Activity, error) {
	if id <= 0 {
		return nil, notFoundf("activity %d not found", id)
	}
	a, err := s.acts.get(ctx, id)
	switch {
	case errors.Is(err, order.ErrNotFound):
		return nil, notFoundf("activity %d not found", id)
	case err != nil:
		return nil, busy("database unavailable: could not read the activity", err)
	}
	return a, nil
}

// CachedActivity is activity id as the buy path sees it (the short cache),
// for ports that only need its existence and window (the dashboard).
func (s *Service) CachedActivity(ctx context.Context, id int64) (*order.Activity, error) {
	return s.activity(ctx, id)
}

// Activity is an activity with its remaining stock, which a local sold-out
// flag answers without Redis. An activity Redis lost is restored first.
func (s *Service) Activity(ctx context.Context, id int64) (ActivityView, error) {
	a, err := s.activity(ctx, id)
	if err != nil {
		return ActivityView{}, err
	}
	now := s.now()
	var remaining int64
	if !s.soldOut.isSet(a.ID, now) {
		r, found, err := s.deps.Inventory.Remaining(ctx, a.ID)
		if err == nil && !found {
			if err := s.restore(ctx, a, "could not read remaining stock, try again"); err != nil {
				return ActivityView{}, err
			}
			r, _, err = s.deps.Inventory.Remaining(ctx, a.ID)
		}
		if err != nil {
			return ActivityView{}, busy("inventory unavailable: could not read remaining stock", err)
		}
		remaining = r
	}
	return View(a, remaining, now), nil
}

// activityList is the storefront's list as last read, shared by every
// request for activityListTTL.
type activityList struct {
	mu    sync.Mutex
	at    time.Time
	list  []ActivityView
	loads singleflight.Group // one database read for a crowd of page loads
}

// fresh returns the list if it was read less than activityListTTL before now.
func (l *activityList) fresh(now time.Time) ([]ActivityView, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.list, l.list != nil && now.Sub(l.at) < activityListTTL
}

func (l *activityList) store(list []ActivityView, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list, l.at = list, now
}

// Storefront is the activities a storefront shows (not ended more than a
// day ago), newest first, at most 50, and the time it was read at: the
// cached list, or one read for every request waiting on it.
func (s *Service) Storefront(ctx context.Context) ([]ActivityView, time.Time, error) {
	now := s.now()
	if list, ok := s.list.fresh(now); ok {
		return list, now, nil
	}
	v, err, _ := s.list.loads.Do("list", func() (any, error) {
		// Shared by every waiting request: bounded, not tied to one.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return s.loadStorefront(ctx, now)
	})
	if err != nil {
		return nil, now, err
	}
	return v.([]ActivityView), now, nil
}

// loadStorefront reads the storefront's list and caches it.
func (s *Service) loadStorefront(ctx context.Context, now time.Time) ([]ActivityView, error) {
	acts, err := s.deps.Store.ListActivities(ctx)
	if err != nil {
		return nil, busy("could not list the activities: database unavailable", fmt.Errorf("list activities: %w", err))
	}
	sort.Slice(acts, func(i, j int) bool { return acts[i].ID > acts[j].ID })
	out := make([]ActivityView, 0, min(len(acts), activityListMax))
	for i := range acts {
		a := &acts[i]
		if a.EndsAt.Before(now.Add(-24 * time.Hour)) {
			continue
		}
		remaining, found, err := s.deps.Inventory.Remaining(ctx, a.ID)
		if err != nil {
			return nil, busy("could not list the activities: inventory unavailable", fmt.Errorf("list activities: %w", err))
		}
		if !found {
			remaining = a.Available
		}
		out = append(out, View(a, remaining, now))
		if len(out) == activityListMax {
			break
		}
	}
	s.list.store(out, now)
	return out, nil
}

// restore puts activity a back into Redis, which lost it, waiting at most
// RestoreWait: a caller that would wait longer gets a busy error saying
// so, and the restore goes on for the callers after it (Restorer runs one
// per activity, on none of its callers' contexts). then ends the busy
// message: what the caller should know and do.
func (s *Service) restore(ctx context.Context, a *order.Activity, then string) error {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RestoreWait)
	defer cancel()
	err := s.deps.Restorer.Restore(rctx, a)
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		return busy("the activity's stock is being restored after a Redis failure; "+then,
			fmt.Errorf("restore activity %d: not done within %s: %w", a.ID, s.cfg.RestoreWait, err))
	}
	return busy("inventory unavailable; "+then, fmt.Errorf("load activity %d: %w", a.ID, err))
}
