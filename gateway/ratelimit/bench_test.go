package ratelimit

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// perUser is the default per-user family (SECKILL_RATE_PER_USER 2/s, burst 5),
// with room for every key so the figures are per key, not per eviction.
var perUser = Config{Rate: 2, Burst: 5, MaxKeys: 4_000_000}

// BenchmarkKeyedBytesPerKey: heap kept per distinct key after a spike of a
// million users, one request each, against the x/time/rate reference.
//
//	go test -run '^$' -bench BytesPerKey -benchtime 1x ./ratelimit/
func BenchmarkKeyedBytesPerKey(b *testing.B) {
	b.Run("gcra", func(b *testing.B) { bytesPerKey(b, func() func(string) { return allowFunc(NewKeyed(perUser)) }) })
	b.Run("xtimerate-reference", func(b *testing.B) {
		bytesPerKey(b, func() func(string) { return allowFunc(newRefKeyed(perUser)) })
	})
}

func allowFunc(k interface {
	Allow(string) (bool, time.Duration)
}) func(string) {
	return func(key string) { k.Allow(key) }
}

func bytesPerKey(b *testing.B, newLimiter func() func(string)) {
	const users = 1_000_000
	var sum float64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		allow := newLimiter()
		buf := make([]byte, 0, 32)
		for i := range users {
			// A fresh string per request, as a user id from a token would be:
			// a limiter that keeps the key keeps its bytes.
			buf = strconv.AppendInt(append(buf[:0], "user-"...), int64(i), 10)
			allow(string(buf))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(allow)
		sum += (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / users
	}
	b.ReportMetric(sum/float64(b.N), "B/key")
}

// BenchmarkKeyedAllowParallel: Allow under RunParallel over 65,536 known keys
// (most requests refused: 2/s, burst 5), against the x/time/rate reference.
func BenchmarkKeyedAllowParallel(b *testing.B) {
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	run := func(b *testing.B, allow func(string) (bool, time.Duration)) {
		for _, key := range keys {
			allow(key)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(keys))
			for pb.Next() {
				allow(keys[i&(len(keys)-1)])
				i++
			}
		})
	}
	b.Run("gcra", func(b *testing.B) { run(b, NewKeyed(perUser).Allow) })
	b.Run("xtimerate-reference", func(b *testing.B) { run(b, newRefKeyed(perUser).Allow) })
}
