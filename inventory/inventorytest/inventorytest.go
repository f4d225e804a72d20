// Package inventorytest helps tests that share a real Redis: each test works
// under its own key prefix and deletes what it wrote, because a shared Redis
// is never flushed.
package inventorytest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// DeletePrefix deletes every key under prefix (prefix + ":*") and returns
// how many it found. Failures are logged, not fatal: it runs in cleanups.
func DeletePrefix(tb testing.TB, rdb redis.UniversalClient, prefix string) int {
	ctx := context.Background()
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Logf("scan %s:*: %v", prefix, err)
	}
	for _, k := range keys {
		if err := rdb.Unlink(ctx, k).Err(); err != nil {
			tb.Logf("unlink %s: %v", k, err)
		}
	}
	return len(keys)
}
