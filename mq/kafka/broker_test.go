package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/kafka"
)

// recorder collects deliveries from any number of handlers.
type recorder struct {
	mu  sync.Mutex
	got []delivery
}

type delivery struct {
	msg mq.Message
	at  time.Time
}

func (r *recorder) handler(next mq.Handler) mq.Handler {
	return func(ctx context.Context, m *mq.Message) error {
		r.mu.Lock()
		r.got = append(r.got, delivery{msg: *m, at: time.Now()})
		r.mu.Unlock()
		if next != nil {
			return next(ctx, m)
		}
		return nil
	}
}

func (r *recorder) all() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) count() int { return len(r.all()) }

func subscribe(t *testing.T, b *kafka.Broker, topic string, opts mq.SubscribeOptions, h mq.Handler) {
	t.Helper()
	if err := b.Subscribe(t.Context(), topic, opts, h); err != nil {
		t.Fatalf("Subscribe(%q, group %q): %v", topic, opts.Group, err)
	}
}

func publish(t *testing.T, b *kafka.Broker, topic string, msgs ...*mq.Message) {
	t.Helper()
	if err := b.Publish(t.Context(), topic, msgs...); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

// stockClient is franz-go's kgo, an independent Kafka client, reading
// topics from their start.
func stockClient(t *testing.T, brokers []string, topics ...string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// pollRecords reads with cl until n records arrived.
func pollRecords(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kgo read %d of %d records before timing out", len(recs), n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("kgo fetch %s/%d: %v", topic, p, err)
		})
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func headers(r *kgo.Record) map[string]string {
	h := make(map[string]string, len(r.Headers))
	for _, kv := range r.Headers {
		h[kv.Key] = string(kv.Value)
	}
	return h
}

// TestGroupMembersSplitPartitions: two processes (two Brokers) in one
// group share the topic's partitions: both handle some messages, and every
// message is handled exactly once in total.
func TestGroupMembersSplitPartitions(t *testing.T) {
	brokers := newCluster(t)
	b1, b2 := newBroker(t, testConfig(brokers)), newBroker(t, testConfig(brokers))
	var r1, r2 recorder
	subscribe(t, b1, "orders", mq.SubscribeOptions{Group: "workers", Concurrency: 2}, r1.handler(nil))
	subscribe(t, b2, "orders", mq.SubscribeOptions{Group: "workers", Concurrency: 2}, r2.handler(nil))

	const n = 60
	for i := range n {
		publish(t, b1, "orders", &mq.Message{Key: "user-" + strconv.Itoa(i), Payload: []byte(strconv.Itoa(i))})
	}
	waitUntil(t, "every message handled by the group", func() bool { return r1.count()+r2.count() >= n })
	// A duplicate would come from a rebalance; closing both settles it.
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}

	if r1.count() == 0 || r2.count() == 0 {
		t.Errorf("member 1 handled %d, member 2 handled %d: want both to own some partitions", r1.count(), r2.count())
	}
	seen := map[string]int{}
	for _, d := range append(r1.all(), r2.all()...) {
		seen[string(d.msg.Payload)]++
	}
	for i := range n {
		if c := seen[strconv.Itoa(i)]; c != 1 {
			t.Errorf("message %d handled %d times in the group, want exactly once", i, c)
		}
	}
}

// TestUncommittedRedeliveredToAnotherMember: a member whose handler never
// finished (it is force-stopped by Close) does not commit the message, so
// the group's next member gets it, as the same attempt.
func TestUncommittedRedeliveredToAnotherMember(t *testing.T) {
	brokers := newCluster(t)
	cfg := testConfig(brokers)
	cfg.CloseTimeout = 50 * time.Millisecond
	dying := newBroker(t, cfg)
	started := make(chan *mq.Message, 1)
	subscribe(t, dying, "orders", mq.SubscribeOptions{Group: "workers"}, func(ctx context.Context, m *mq.Message) error {
		started <- m
		<-ctx.Done() // stuck until Close gives up on it
		return ctx.Err()
	})
	publish(t, dying, "orders", &mq.Message{ID: "order-1", Key: "user-1", Payload: []byte("buy")})
	var first *mq.Message
	select {
	case first = <-started:
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for the first member to get the message")
	}
	if err := dying.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	var rec recorder
	subscribe(t, newBroker(t, testConfig(brokers)), "orders", mq.SubscribeOptions{Group: "workers"}, rec.handler(nil))
	waitUntil(t, "the uncommitted message at the next member", func() bool { return rec.count() >= 1 })
	got := rec.all()[0].msg
	if got.ID != first.ID || string(got.Payload) != "buy" || got.Attempt != 1 {
		t.Errorf("redelivered ID %q payload %q attempt %d, want %q \"buy\" attempt 1", got.ID, got.Payload, got.Attempt, first.ID)
	}
}

// TestPoisonMessageDeadLettered: a message that always fails is retried
// through the delay levels (its backoffs exceed the smallest level), then
// lands on the dead-letter topic with the reason, attempts, original topic
// and message id, as a stock client reads them.
func TestPoisonMessageDeadLettered(t *testing.T) {
	brokers := newCluster(t)
	b := newBroker(t, testConfig(brokers))
	var rec recorder
	subscribe(t, b, "orders", mq.SubscribeOptions{Group: "workers", MaxAttempts: 3, MinBackoff: 300 * time.Millisecond},
		rec.handler(func(context.Context, *mq.Message) error { return errors.New("unknown activity 42") }))
	publish(t, b, "orders", &mq.Message{ID: "order-9", Key: "user-9", Headers: map[string]string{"trace": "t9"}, Payload: []byte("poison")})

	dlq := pollRecords(t, stockClient(t, brokers, mq.DeadLetterTopic("orders")), 1)[0]
	h := headers(dlq)
	if !strings.Contains(h[mq.HeaderDeadLetterReason], "unknown activity 42") {
		t.Errorf("%s = %q, want the handler error", mq.HeaderDeadLetterReason, h[mq.HeaderDeadLetterReason])
	}
	for k, want := range map[string]string{
		mq.HeaderDeadLetterAttempts: "3", mq.HeaderOriginalTopic: "orders", kafka.HeaderMessageID: "order-9", "trace": "t9",
	} {
		if h[k] != want {
			t.Errorf("dead letter header %s = %q, want %q", k, h[k], want)
		}
	}
	if string(dlq.Key) != "user-9" || string(dlq.Value) != "poison" {
		t.Errorf("dead letter key %q value %q, want \"user-9\" \"poison\"", dlq.Key, dlq.Value)
	}
	got := rec.all()
	if len(got) != 3 {
		t.Fatalf("handler called %d times, want MaxAttempts = 3", len(got))
	}
	for i, d := range got {
		if d.msg.Attempt != i+1 {
			t.Errorf("call %d: Attempt %d, want %d", i+1, d.msg.Attempt, i+1)
		}
		if i > 0 {
			if wait, min := d.at.Sub(got[i-1].at), 300*time.Millisecond<<(i-1); wait < min {
				t.Errorf("attempt %d came %v after attempt %d, want at least the backoff %v", i+1, wait, i, min)
			}
		}
	}
}

// TestFailureCountSurvivesRestart: the count of failures not marked
// transient travels with the message, so a consumer restarted mid-outage
// (a new process in the same group) neither resets nor loses it: two
// permanent failures before the restart and one after reach MaxAttempts = 3,
// however many transient failures came between.
func TestFailureCountSurvivesRestart(t *testing.T) {
	brokers := newCluster(t)
	opts := mq.SubscribeOptions{Group: "workers", MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	first := newBroker(t, testConfig(brokers))
	var calls atomic.Int64
	outage := make(chan struct{})
	var outageOnce sync.Once
	subscribe(t, first, "orders", opts, func(context.Context, *mq.Message) error {
		switch n := calls.Add(1); {
		case n <= 2:
			return errors.New("unknown activity 42")
		case n < 5:
			return mq.Transient(errors.New("database unreachable"))
		default:
			outageOnce.Do(func() { close(outage) })
			return mq.Transient(errors.New("database unreachable"))
		}
	})
	publish(t, first, "orders", &mq.Message{ID: "order-3", Key: "user-3", Payload: []byte("buy")})
	select {
	case <-outage:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for the outage; %d handler calls", calls.Load())
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := calls.Load(); n < 5 {
		t.Fatalf("first process handled %d deliveries, want at least 5", n)
	}

	var rec recorder
	second := newBroker(t, testConfig(brokers))
	subscribe(t, second, "orders", opts, rec.handler(func(context.Context, *mq.Message) error {
		return errors.New("unknown activity 42")
	}))
	dlq := pollRecords(t, stockClient(t, brokers, mq.DeadLetterTopic("orders")), 1)[0]
	if err := second.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := rec.all()
	if len(got) != 1 {
		t.Fatalf("restarted process handled %d deliveries, want 1: the third permanent failure reaches MaxAttempts", len(got))
	}
	m := got[0].msg
	if m.ID != "order-3" || m.Attempt <= 5 {
		t.Errorf("restarted process got ID %q attempt %d, want order-3 and an attempt after the first process's 5+", m.ID, m.Attempt)
	}
	h := headers(dlq)
	if want := strconv.Itoa(m.Attempt); h[mq.HeaderDeadLetterAttempts] != want || h[kafka.HeaderMessageID] != "order-3" {
		t.Errorf("dead letter %s = %q, %s = %q, want %s and order-3",
			mq.HeaderDeadLetterAttempts, h[mq.HeaderDeadLetterAttempts], kafka.HeaderMessageID, h[kafka.HeaderMessageID], want)
	}
}

// TestDelayedDeliveryAcrossLevels: messages published latest-due first
// arrive in due order and never early, including ones that hop through
// both delay levels (1s then 250ms) before their target topic.
func TestDelayedDeliveryAcrossLevels(t *testing.T) {
	brokers := newCluster(t)
	b := newBroker(t, testConfig(brokers)) // levels 250ms and 1s
	var rec recorder
	subscribe(t, b, "cancels", mq.SubscribeOptions{Group: "cancellers", Concurrency: 4}, rec.handler(nil))

	now := time.Now()
	delays := []time.Duration{1700 * time.Millisecond, 1300 * time.Millisecond, 900 * time.Millisecond, 500 * time.Millisecond, 100 * time.Millisecond}
	due := map[string]time.Time{}
	for i, d := range delays {
		id := "d" + strconv.Itoa(i)
		due[id] = now.Add(d)
		publish(t, b, "cancels", &mq.Message{ID: id, Key: id, Payload: []byte(id), DeliverAt: due[id]})
	}
	waitUntil(t, "every delayed message", func() bool { return rec.count() >= len(delays) })

	got := rec.all()
	for i, d := range got {
		if d.at.Before(due[d.msg.ID]) {
			t.Errorf("%s arrived %v early", d.msg.ID, due[d.msg.ID].Sub(d.at))
		}
		if want := "d" + strconv.Itoa(len(delays)-1-i); d.msg.ID != want {
			t.Errorf("arrival %d is %s, want %s (order by due time)", i+1, d.msg.ID, want)
		}
		if !d.msg.DeliverAt.Equal(due[d.msg.ID]) || d.msg.Attempt != 1 {
			t.Errorf("%s: DeliverAt %v attempt %d, want %v and 1", d.msg.ID, d.msg.DeliverAt, d.msg.Attempt, due[d.msg.ID])
		}
	}
	// d0 (1.7s) went 1s level -> 250ms level -> target: both levels saw it.
	for _, level := range []string{"mq.delay.1s", "mq.delay.250ms"} {
		cl := stockClient(t, brokers, level)
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		var ids []string
		for !slices.Contains(ids, "d0") && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				if h := headers(r); h[kafka.HeaderDelayTarget] == "cancels" {
					ids = append(ids, h[kafka.HeaderMessageID])
				}
			})
		}
		cancel()
		if !slices.Contains(ids, "d0") {
			t.Errorf("delay level %s held %v, want d0 among them", level, ids)
		}
	}
}

// TestPublishReturnsAfterAck: once Publish returns, the records are part of
// the log: the partitions' end offsets, asked through another client at
// once, already count them.
func TestPublishReturnsAfterAck(t *testing.T) {
	brokers := newCluster(t)
	b := newBroker(t, testConfig(brokers))
	if err := b.EnsureTopics(t.Context(), "orders"); err != nil {
		t.Fatal(err)
	}
	cl := stockClient(t, brokers)
	for i := range 5 {
		var batch []*mq.Message
		for j := range 10 {
			batch = append(batch, &mq.Message{Key: strconv.Itoa(i*10 + j), Payload: []byte("x")})
		}
		publish(t, b, "orders", batch...)
		if got, want := endOffsets(t, cl, "orders", 3), int64((i+1)*10); got != want {
			t.Fatalf("after Publish #%d returned the log holds %d records, want %d", i+1, got, want)
		}
	}
}

// endOffsets sums the end offsets of a topic's partitions.
func endOffsets(t *testing.T, cl *kgo.Client, topic string, partitions int32) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	var sum int64
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("ListOffsets %s/%d: error code %d", topic, rp.Partition, rp.ErrorCode)
			}
			sum += rp.Offset
		}
	}
	return sum
}

// TestStockClientReadsRecords: a stock Kafka client (kgo) decodes what the
// backend produced: key, value, caller headers and the documented message
// id, attempt and deliver-at headers.
func TestStockClientReadsRecords(t *testing.T) {
	brokers := newCluster(t)
	b := newBroker(t, testConfig(brokers))
	deliverAt := time.Now().Add(100 * time.Millisecond) // under the smallest level: straight to the topic
	publish(t, b, "orders",
		&mq.Message{ID: "order-1", Key: "user-7", Headers: map[string]string{"trace": "abc"}, Payload: []byte(`{"a":1}`), DeliverAt: deliverAt},
		&mq.Message{Payload: []byte("no key, no id")},
	)
	recs := pollRecords(t, stockClient(t, brokers, "orders"), 2)
	byValue := map[string]*kgo.Record{}
	for _, r := range recs {
		byValue[string(r.Value)] = r
	}

	r := byValue[`{"a":1}`]
	if r == nil {
		t.Fatalf("record with value {\"a\":1} not read; got %d records", len(recs))
	}
	h := headers(r)
	if string(r.Key) != "user-7" || h["trace"] != "abc" || h[kafka.HeaderMessageID] != "order-1" || h[kafka.HeaderAttempt] != "1" {
		t.Errorf("key %q headers %v, want key user-7, trace=abc, %s=order-1, %s=1",
			r.Key, h, kafka.HeaderMessageID, kafka.HeaderAttempt)
	}
	at, err := time.Parse(time.RFC3339Nano, h[kafka.HeaderDeliverAt])
	if err != nil || !at.Equal(deliverAt) {
		t.Errorf("%s = %q (%v), want RFC 3339 of %v", kafka.HeaderDeliverAt, h[kafka.HeaderDeliverAt], err, deliverAt)
	}

	r = byValue["no key, no id"]
	if r == nil {
		t.Fatal("record without key not read")
	}
	h = headers(r)
	if r.Key != nil || h[kafka.HeaderMessageID] == "" || h[kafka.HeaderAttempt] != "1" {
		t.Errorf("key %q headers %v, want no key, an assigned %s and %s=1", r.Key, h, kafka.HeaderMessageID, kafka.HeaderAttempt)
	}
	if _, ok := h[kafka.HeaderDeliverAt]; ok {
		t.Errorf("undelayed record carries %s", kafka.HeaderDeliverAt)
	}
}

// TestStockProducerRecordsDelivered: records another client produced,
// without the backend's headers, are delivered as attempt 1 with an ID.
func TestStockProducerRecordsDelivered(t *testing.T) {
	brokers := newCluster(t)
	b := newBroker(t, testConfig(brokers))
	var rec recorder
	subscribe(t, b, "orders", mq.SubscribeOptions{Group: "workers"}, rec.handler(nil))
	cl := stockClient(t, brokers)
	r := &kgo.Record{Topic: "orders", Key: []byte("k"), Value: []byte("from kgo"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}
	if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
		t.Fatalf("kgo produce: %v", err)
	}
	waitUntil(t, "the kgo record", func() bool { return rec.count() >= 1 })
	m := rec.all()[0].msg
	if m.Key != "k" || string(m.Payload) != "from kgo" || m.Headers["h"] != "v" || m.Attempt != 1 || m.ID == "" {
		t.Errorf("delivered %+v, want key k, payload \"from kgo\", header h=v, attempt 1 and an ID", m)
	}
}

// TestNewUnreachableBroker: New fails, naming kafka and the address, when
// no broker answers.
func TestNewUnreachableBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now

	cfg := testConfig([]string{addr})
	cfg.DialTimeout = 2 * time.Second
	b, err := kafka.New(t.Context(), cfg)
	if err == nil {
		_ = b.Close()
		t.Fatal("New succeeded with no broker listening")
	}
	if msg := err.Error(); !strings.Contains(msg, "kafka") || !strings.Contains(msg, addr) {
		t.Errorf("error %q, want it to name kafka and %s", msg, addr)
	}
}

// TestPing: Ping answers nil while the cluster runs and an error once it
// is gone.
func TestPing(t *testing.T) {
	c := newKfake(t)
	b := newBroker(t, testConfig(c.ListenAddrs()))
	if err := b.Ping(t.Context()); err != nil {
		t.Fatalf("Ping on a running cluster: %v", err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := b.Ping(ctx); err == nil || !strings.Contains(err.Error(), "kafka") {
		t.Errorf("Ping after the cluster stopped: %v, want an error naming kafka", err)
	}
}

// TestLag: Lag counts the records fetched but not committed, and returns
// to zero once they are handled.
func TestLag(t *testing.T) {
	b := newBroker(t, testConfig(newCluster(t)))
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	var handled atomic.Int64
	subscribe(t, b, "orders", mq.SubscribeOptions{Group: "workers"}, func(ctx context.Context, _ *mq.Message) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		handled.Add(1)
		return nil
	})
	for i := range 5 {
		publish(t, b, "orders", &mq.Message{Key: "one-partition", Payload: []byte(strconv.Itoa(i))})
	}
	waitUntil(t, "a lag of 5", func() bool { return b.Lag() == 5 })
	unblock()
	waitUntil(t, "every message handled", func() bool { return handled.Load() == 5 })
	waitUntil(t, "the lag back to 0", func() bool { return b.Lag() == 0 })
}

// TestEnsureTopics: EnsureTopics creates the topic, its dead-letter topic
// and the delay levels with the configured partition counts, and a second
// call (topics already exist) succeeds.
func TestEnsureTopics(t *testing.T) {
	brokers := newCluster(t)
	for i := range 2 { // the second Broker finds them existing
		b := newBroker(t, testConfig(brokers))
		if err := b.EnsureTopics(t.Context(), "orders", "payments"); err != nil {
			t.Fatalf("EnsureTopics (Broker %d): %v", i+1, err)
		}
	}
	cl := stockClient(t, brokers)
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, tp := range resp.Topics {
		got[*tp.Topic] = len(tp.Partitions)
	}
	want := map[string]int{"orders": 3, "orders.dlq": 1, "payments": 3, "payments.dlq": 1, "mq.delay.250ms": 1, "mq.delay.1s": 1}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("topic %s has %d partitions, want %d (all topics: %v)", name, got[name], n, got)
		}
	}
}

// TestClosed: Publish and Subscribe after Close fail with mq.ErrClosed,
// and Close is idempotent.
func TestClosed(t *testing.T) {
	b := newBroker(t, testConfig(newCluster(t)))
	for range 2 {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if err := b.Publish(context.Background(), "orders", &mq.Message{}); !errors.Is(err, mq.ErrClosed) {
		t.Errorf("Publish after Close: %v, want mq.ErrClosed", err)
	}
	err := b.Subscribe(context.Background(), "orders", mq.SubscribeOptions{}, func(context.Context, *mq.Message) error { return nil })
	if !errors.Is(err, mq.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want mq.ErrClosed", err)
	}
}

func Example() {
	ctx := context.Background()
	b, err := kafka.New(ctx, kafka.Config{Brokers: []string{"127.0.0.1:9092"}})
	if err != nil {
		fmt.Println(err) // e.g. kafka: no broker reachable at 127.0.0.1:9092: ...
		return
	}
	defer b.Close()
	_ = b.Subscribe(ctx, "orders", mq.SubscribeOptions{Group: "order-workers", Concurrency: 16},
		func(ctx context.Context, m *mq.Message) error { return nil })
	_ = b.Publish(ctx, "orders", &mq.Message{Key: "user-1", Payload: []byte("order-1")})
}

// TestCommitsOnlyHandledPrefix: with several handlers at work on one
// partition, a record that never finishes holds back the commit of the
// records behind it, though they were handled; the next member gets it and
// them again (at-least-once, nothing skipped), and not the record before it.
func TestCommitsOnlyHandledPrefix(t *testing.T) {
	brokers := newCluster(t)
	cfg := testConfig(brokers)
	cfg.CloseTimeout = 50 * time.Millisecond
	first := newBroker(t, cfg)
	var rec recorder
	subscribe(t, first, "orders", mq.SubscribeOptions{Group: "workers", Concurrency: 3},
		rec.handler(func(ctx context.Context, m *mq.Message) error {
			if string(m.Payload) == "stuck" {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}))
	for _, p := range []string{"a", "stuck", "c", "d"} { // one key: one partition, in this order
		publish(t, first, "orders", &mq.Message{Key: "user-1", Payload: []byte(p)})
	}
	waitUntil(t, "all four handler calls", func() bool { return rec.count() >= 4 })
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	var next recorder
	subscribe(t, newBroker(t, testConfig(brokers)), "orders", mq.SubscribeOptions{Group: "workers"}, next.handler(nil))
	waitUntil(t, "the uncommitted records at the next member", func() bool { return next.count() >= 3 })
	// A wrongly redelivered "a" would arrive first (offset order), before
	// the three awaited here.
	var got []string
	for _, d := range next.all() {
		got = append(got, string(d.msg.Payload))
	}
	if want := []string{"stuck", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("next member got %v, want %v: the handled prefix (a) committed, nothing after the stuck record", got, want)
	}
}
