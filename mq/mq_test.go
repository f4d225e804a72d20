package mq

import (
	"testing"
	"time"
)

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   SubscribeOptions
		want SubscribeOptions
	}{
		{"zero", SubscribeOptions{}, SubscribeOptions{"default", 1, 5, 100 * time.Millisecond, 10 * time.Second}},
		{"set", SubscribeOptions{"g", 4, 3, time.Second, time.Minute}, SubscribeOptions{"g", 4, 3, time.Second, time.Minute}},
		{"max below min", SubscribeOptions{MinBackoff: time.Hour}, SubscribeOptions{"default", 1, 5, time.Hour, time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.WithDefaults(); got != tc.want {
				t.Errorf("WithDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	o := SubscribeOptions{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second}, // capped
		{50, time.Second},
	}
	for _, tc := range tests {
		if got := o.Backoff(tc.attempt); got != tc.want {
			t.Errorf("Backoff(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
}

func TestDeadLetterTopic(t *testing.T) {
	if got := DeadLetterTopic("orders"); got != "orders.dlq" {
		t.Errorf("DeadLetterTopic(orders) = %q, want orders.dlq", got)
	}
}
