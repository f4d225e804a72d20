package kafka

import (
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
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

func TestEnvelopeFailuresRoundTrip(t *testing.T) {
	now := time.Now()
	for _, failures := range []int{0, 1, 7} {
		in := envelope{id: "m-1", key: "k", payload: []byte("p"), attempt: 9, failures: failures}
		out, _, err := decode(encode("orders", "", in, now))
		if err != nil || out.attempt != 9 || out.failures != failures {
			t.Errorf("failures %d: decoded attempt %d failures %d err %v, want 9, %d, nil", failures, out.attempt, out.failures, err, failures)
		}
	}
	// A caller's header of the reserved name does not override the count.
	in := envelope{id: "m-2", headers: map[string]string{HeaderFailures: "99"}, attempt: 2, failures: 1}
	if out, _, _ := decode(encode("orders", "", in, now)); out.failures != 1 || out.headers[HeaderFailures] != "" {
		t.Errorf("decoded failures %d headers %v, want 1 and no caller x-failures", out.failures, out.headers)
	}
}

func TestDecodeFailuresWithoutHeader(t *testing.T) {
	rec := func(hs ...string) kafkago.Message {
		m := kafkago.Message{Topic: "orders", Offset: 4}
		for i := 0; i < len(hs); i += 2 {
			m.Headers = append(m.Headers, kafkago.Header{Key: hs[i], Value: []byte(hs[i+1])})
		}
		return m
	}
	tests := []struct {
		name         string
		rec          kafkago.Message
		wantFailures int
		wantErr      bool
	}{
		{"stock producer", rec(), 0, false},
		{"fresh publish", rec(HeaderAttempt, "1", HeaderFailures, "0"), 0, false},
		{"retry written before x-failures existed", rec(HeaderAttempt, "4"), 3, false},
		{"transient retries", rec(HeaderAttempt, "12", HeaderFailures, "1"), 1, false},
		{"malformed", rec(HeaderAttempt, "3", HeaderFailures, "-1"), 2, true},
		{"not a number", rec(HeaderAttempt, "3", HeaderFailures, "x"), 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _, err := decode(tc.rec)
			if e.failures != tc.wantFailures || (err != nil) != tc.wantErr {
				t.Errorf("decode: failures %d err %v, want %d and error %v", e.failures, err, tc.wantFailures, tc.wantErr)
			}
		})
	}
}
