package spike

import (
	"context"
	"fmt"
	"strconv"

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
	var rows []struct {
		ID     string
		UserID string
		State  string
	}
	if err := db.Model(&order.Order{}).Select("id", "user_id", "state").Where("activity_id = ?", id).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("database audit: read orders of activity %d: %w", id, err)
	}
	f := &audit.DBFacts{Stock: a.Stock, Available: a.Available, ByState: map[string]int64{}, States: make(map[string]string, len(rows))}
	live := map[string]int{}
	for _, o := range rows {
		f.ByState[o.State]++
		f.States[o.ID] = o.State
		if o.State == order.StateCreated || o.State == order.StatePaid {
			live[o.UserID]++
		}
	}
	for u, n := range live {
		if n > 1 {
			f.UsersWithTwoLive = append(f.UsersWithTwoLive, u)
		}
	}
	return f, nil
}
