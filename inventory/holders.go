package inventory

import (
	"context"
	"fmt"
)

// holdersScanCount is the COUNT hint of one HSCAN step of Holders. A users
// hash this small is listpack-encoded and comes back whole in one reply
// (one round trip); a larger one is read in steps this size, so Redis is
// never blocked for long by one activity's holders.
const holdersScanCount = 1000

// Holders returns the holders of an activity: user id -> order id, the
// users hash that Reserve fills and a release empties (one entry per held
// unit, so never more than the activity's stock). It returns false and no
// map when there are more than limit holders (limit <= 0: no limit), so a
// caller that only wants a small snapshot pays for at most limit entries.
// An activity that is not loaded has no holders (an empty map, true).
//
// It is one HSCAN (several for a hash above holdersScanCount entries), not
// a script and not atomic: every holder present for the whole scan is
// returned, and one added or removed during it may or may not be. The
// gateway reads it only once the activity is sold out, when no holder can
// be added without a release, and a release invalidates the snapshot
// (gateway/httpapi/soldout.go), so for it the scan is exact.
func (s *Store) Holders(ctx context.Context, activityID int64, limit int) (map[string]string, bool, error) {
	key := s.keys(activityID).users
	holders := make(map[string]string)
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, key, cursor, "*", holdersScanCount).Result()
		if err != nil {
			return nil, false, unavailable("holders of", activityID, err)
		}
		if len(kv)%2 != 0 {
			return nil, false, unavailable("holders of", activityID, fmt.Errorf("HSCAN replied %d fields and values", len(kv)))
		}
		for i := 0; i < len(kv); i += 2 {
			holders[kv[i]] = kv[i+1]
		}
		if limit > 0 && len(holders) > limit {
			return nil, false, nil
		}
		if next == 0 {
			return holders, true, nil
		}
		cursor = next
	}
}
