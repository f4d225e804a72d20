package httpapi

// How the gateway reads activities without making the database its hot
// path: the buy path reads activity rows through a short cache, and the
// storefront's list (GET /api/v1/activities) is cached for a second, so a
// crowd opening the page reads the database once.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/singleflight"

	"github.com/flashsale/seckill/order"
)

// Bounds of the storefront's list.
const (
	activityListTTL = time.Second
	activityListMax = 50
)

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

// activityList is the storefront's list as last read, shared by every
// request for activityListTTL.
type activityList struct {
	mu    sync.Mutex
	at    time.Time
	list  []activityJSON
	loads singleflight.Group // one database read for a crowd of page loads
}

// fresh returns the list if it was read less than activityListTTL before now.
func (l *activityList) fresh(now time.Time) ([]activityJSON, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.list, l.list != nil && now.Sub(l.at) < activityListTTL
}

func (l *activityList) store(list []activityJSON, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list, l.at = list, now
}

// listActivities is GET /api/v1/activities: the activities a storefront
// shows (not ended more than a day ago), newest first, at most 50.
func (s *Server) listActivities(c *gin.Context) {
	now := s.now()
	list, err := s.storefront(c.Request.Context(), now)
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"activities": list, "server_time": now.UTC()})
}

// storefront returns the cached list, or reads it once for every request
// waiting on it.
func (s *Server) storefront(ctx context.Context, now time.Time) ([]activityJSON, error) {
	if list, ok := s.list.fresh(now); ok {
		return list, nil
	}
	v, err, _ := s.list.loads.Do("list", func() (any, error) {
		// Shared by every waiting request: bounded, not tied to one.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return s.loadActivityList(ctx, now)
	})
	if err != nil {
		return nil, err
	}
	return v.([]activityJSON), nil
}

// loadActivityList reads the storefront's list and caches it.
func (s *Server) loadActivityList(ctx context.Context, now time.Time) ([]activityJSON, error) {
	acts, err := s.cfg.Store.ListActivities(ctx)
	if err != nil {
		return nil, errBusy("could not list the activities: database unavailable", fmt.Errorf("list activities: %w", err))
	}
	sort.Slice(acts, func(i, j int) bool { return acts[i].ID > acts[j].ID })
	out := make([]activityJSON, 0, min(len(acts), activityListMax))
	for i := range acts {
		a := &acts[i]
		if a.EndsAt.Before(now.Add(-24 * time.Hour)) {
			continue
		}
		remaining, found, err := s.cfg.Inventory.Remaining(ctx, a.ID)
		if err != nil {
			return nil, errBusy("could not list the activities: inventory unavailable", fmt.Errorf("list activities: %w", err))
		}
		if !found {
			remaining = a.Available
		}
		out = append(out, activityView(a, remaining, now))
		if len(out) == activityListMax {
			break
		}
	}
	s.list.store(out, now)
	return out, nil
}
