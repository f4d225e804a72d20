package config

import (
	"strings"
	"testing"
	"time"
)

func TestRedisBatch(t *testing.T) {
	for _, tc := range []struct {
		batch, wait string
		want        int
		wantWait    time.Duration
		bad         string // the variable the error must name
	}{
		{"", "", DefaultRedisBatch, DefaultRedisBatchWait, ""},
		{"1", "", 1, DefaultRedisBatchWait, ""},
		{"128", "500us", 128, 500 * time.Microsecond, ""},
		{" 1000 ", "10ms", 1000, 10 * time.Millisecond, ""},
		{"0", "", 0, 0, "SECKILL_REDIS_BATCH"},
		{"-3", "", 0, 0, "SECKILL_REDIS_BATCH"},
		{"many", "", 0, 0, "SECKILL_REDIS_BATCH"},
		{"1001", "", 0, 0, "SECKILL_REDIS_BATCH"},
		{"", "0s", 0, 0, "SECKILL_REDIS_BATCH_WAIT"},
		{"", "-1ms", 0, 0, "SECKILL_REDIS_BATCH_WAIT"},
		{"", "200", 0, 0, "SECKILL_REDIS_BATCH_WAIT"},
		{"", "11ms", 0, 0, "SECKILL_REDIS_BATCH_WAIT"},
	} {
		t.Run(tc.batch+"/"+tc.wait, func(t *testing.T) {
			c, err := Load(vars(map[string]string{"SECKILL_REDIS_BATCH": tc.batch, "SECKILL_REDIS_BATCH_WAIT": tc.wait}))
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad+" ") {
					t.Fatalf("err = %v; want an error naming %s", err, tc.bad)
				}
				return
			}
			if err != nil || c.RedisBatch != tc.want || c.RedisBatchWait != tc.wantWait {
				t.Fatalf("RedisBatch %d, RedisBatchWait %v, err %v; want %d, %v", c.RedisBatch, c.RedisBatchWait, err, tc.want, tc.wantWait)
			}
		})
	}
}
