package app

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// deleteRedisPrefix deletes every key under prefix (the real Redis is
// shared and never flushed).
func deleteRedisPrefix(t testing.TB, rdb redis.UniversalClient, prefix string) int {
	ctx := context.Background()
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Logf("scan %s:*: %v", prefix, err)
	}
	for _, k := range keys {
		if err := rdb.Unlink(ctx, k).Err(); err != nil {
			t.Logf("unlink %s: %v", k, err)
		}
	}
	return len(keys)
}
