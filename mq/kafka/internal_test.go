package kafka

import (
	"strings"
	"testing"
	"time"
)

func TestLevelName(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Second, "1s"},
		{30 * time.Second, "30s"},
		{2 * time.Minute, "2m"},
		{90 * time.Second, "90s"},
		{time.Hour, "1h"},
		{250 * time.Millisecond, "250ms"},
	}
	for _, tc := range tests {
		if got := levelName(tc.d); got != tc.want {
			t.Errorf("levelName(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestRetryTopic(t *testing.T) {
	tests := []struct {
		name, topic, group string
		want               string // exact, or "" to check validity only
	}{
		{"plain group", "orders", "order-workers", "orders.retry.order-workers"},
		{"invalid characters", "orders", "team a/workers", ""},
		{"very long group", "orders", strings.Repeat("g", 300), ""},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := retryTopic(tc.topic, tc.group)
			if tc.want != "" && got != tc.want {
				t.Errorf("retryTopic(%q, %q) = %q, want %q", tc.topic, tc.group, got, tc.want)
			}
			if err := validTopic(got); err != nil {
				t.Errorf("retryTopic(%q, %q) = %q: %v", tc.topic, tc.group, got, err)
			}
			if other, dup := seen[got]; dup {
				t.Errorf("groups %q and %q share the retry topic %q", other, tc.group, got)
			}
			seen[got] = tc.group
		})
	}
	if a, b := retryTopic("t", "a/b"), retryTopic("t", "a_b"); a == b {
		t.Errorf("groups a/b and a_b share the retry topic %q", a)
	}
}

func TestLevelFor(t *testing.T) {
	b := &Broker{}
	for _, d := range []time.Duration{time.Second, 5 * time.Second, time.Minute} {
		b.levels = append(b.levels, delayLevel{d: d, topic: levelName(d)})
	}
	tests := []struct {
		remaining time.Duration
		want      string // "" = deliver to the target
	}{
		{500 * time.Millisecond, ""},
		{time.Second, "1s"},
		{4 * time.Second, "1s"},
		{59 * time.Second, "5s"},
		{24 * time.Hour, "1m"},
	}
	for _, tc := range tests {
		l, ok := b.levelFor(tc.remaining)
		if got := l.topic; ok != (tc.want != "") || got != tc.want {
			t.Errorf("levelFor(%v) = %q, %v; want %q", tc.remaining, got, ok, tc.want)
		}
	}
}
