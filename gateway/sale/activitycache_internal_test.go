package sale

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/seckill/order"
)

// flakyStore answers GetActivity from a map, or with err when err is set.
type flakyStore struct {
	Store
	acts  map[int64]order.Activity
	err   error
	calls int
}

func (f *flakyStore) GetActivity(_ context.Context, id int64) (*order.Activity, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	a, ok := f.acts[id]
	if !ok {
		return nil, fmt.Errorf("activity %d: %w", id, order.ErrNotFound)
	}
	return &a, nil
}

// TestActivityCacheServesStaleWhileTheDatabaseIsDown: a database outage
// does not close the sale (the row is served from the cache, refreshed
// once per TTL), but an activity never seen is still an error, and a
// missing one is still not found.
func TestActivityCacheServesStaleWhileTheDatabaseIsDown(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := &flakyStore{acts: map[int64]order.Activity{1: {ID: 1, Name: "phone", Stock: 10}}}
	ac := activityCache{ttl: 2 * time.Second, store: st, now: func() time.Time { return now }}
	ctx := context.Background()
	if _, err := ac.get(ctx, 1); err != nil {
		t.Fatal(err)
	}

	st.err = errors.New("dial tcp 127.0.0.1:3306: connect: connection refused")
	now = now.Add(3 * time.Second) // past the TTL
	a, err := ac.get(ctx, 1)
	if err != nil || a.Name != "phone" {
		t.Fatalf("during the outage: %+v, %v; want the cached row", a, err)
	}
	calls := st.calls
	now = now.Add(time.Second) // within the renewed TTL: no new query
	if _, err := ac.get(ctx, 1); err != nil || st.calls != calls {
		t.Fatalf("within the TTL after a failed refresh: err %v, %d queries (want %d): the database must not be hit per request", err, st.calls, calls)
	}
	if _, err := ac.get(ctx, 2); err == nil {
		t.Fatal("an activity never read is served during the outage; want the database error")
	}

	st.err = nil
	delete(st.acts, 1)
	now = now.Add(3 * time.Second)
	if _, err := ac.get(ctx, 1); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("deleted activity after the outage: err %v, want ErrNotFound", err)
	}
}
