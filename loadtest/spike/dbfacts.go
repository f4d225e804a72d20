package spike

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/flashsale/seckill/loadtest/audit"
	"github.com/flashsale/seckill/order"
)

// dbFacts reads the activity and its orders straight from the database:
// the audit's second witness, independent of the gateway's stats.
func dbFacts(ctx context.Context, store *order.Store, activity string) (*audit.DBFacts, error) {
	id, err := strconv.ParseInt(activity, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("activity id %q: %w", activity, err)
	}
	db := store.DB().WithContext(ctx)
	var a order.Activity
	if err := db.Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, fmt.Errorf("database audit: read activity %d: %w", id, err)
	}
	var rows []dbOrder
	if err := db.Model(&order.Order{}).Select("id", "user_id", "state", "created_at", "updated_at").Where("activity_id = ?", id).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("database audit: read orders of activity %d: %w", id, err)
	}
	f := &audit.DBFacts{Stock: a.Stock, Available: a.Available, ByState: map[string]int64{},
		States: make(map[string]string, len(rows)), Users: make(map[string]string, len(rows)), BornCancelled: map[string]bool{}}
	live := map[string]int{}
	byUser := map[string][]dbOrder{}
	for _, o := range rows {
		f.ByState[o.State]++
		f.States[o.ID] = o.State
		f.Users[o.ID] = o.UserID
		if o.neverLive() {
			f.BornCancelled[o.ID] = true
			continue // it held no unit: it overlaps nothing
		}
		byUser[o.UserID] = append(byUser[o.UserID], o)
		if o.State == order.StateCreated || o.State == order.StatePaid {
			live[o.UserID]++
		}
	}
	for u, n := range live {
		if n > 1 {
			f.UsersWithTwoLive = append(f.UsersWithTwoLive, u)
		}
	}
	sort.Strings(f.UsersWithTwoLive)
	f.LiveAtOnce = liveAtOnce(byUser)
	return f, nil
}

// dbOrder is the part of an order row the audit reads.
type dbOrder struct {
	ID        string
	UserID    string
	State     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// liveUntil is when the order stopped holding its unit: a cancelled one at
// its cancellation (the last update of its row: cancelled is final), any
// other never.
func (o dbOrder) liveUntil() (time.Time, bool) {
	if o.State == order.StateCancelled {
		return o.UpdatedAt, true
	}
	return time.Time{}, false
}

// neverLive: written already cancelled (a worker found the reservation
// gone), so it never held a unit.
func (o dbOrder) neverLive() bool {
	return o.State == order.StateCancelled && o.UpdatedAt.Equal(o.CreatedAt)
}

// liveAtOnce finds, for each user with several orders, two that held a
// unit at the same time: the second created before the first was
// cancelled.
func liveAtOnce(byUser map[string][]dbOrder) []string {
	var out []string
	for _, u := range slices.Sorted(maps.Keys(byUser)) {
		os := byUser[u]
		if len(os) < 2 {
			continue
		}
		slices.SortFunc(os, func(a, b dbOrder) int { return a.CreatedAt.Compare(b.CreatedAt) })
		for i, a := range os {
			end, ends := a.liveUntil()
			for _, b := range os[i+1:] {
				if !ends || b.CreatedAt.Before(end) {
					out = append(out, fmt.Sprintf("user %s: orders %s and %s were live at once", u, describe(a), describe(b)))
				}
			}
		}
	}
	return out
}

func describe(o dbOrder) string {
	const ts = "15:04:05.000"
	if end, ok := o.liveUntil(); ok {
		return fmt.Sprintf("%s (created at %s, cancelled at %s)", o.ID, o.CreatedAt.Format(ts), end.Format(ts))
	}
	return fmt.Sprintf("%s (created at %s, now %s)", o.ID, o.CreatedAt.Format(ts), o.State)
}
