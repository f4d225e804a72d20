package kafka

import (
	"context"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// delayLevel is one delay-level topic: records wait d in it.
type delayLevel struct {
	d     time.Duration
	topic string
}

// levelFor returns the largest level not longer than remaining, if any.
func (b *Broker) levelFor(remaining time.Duration) (delayLevel, bool) {
	for i := len(b.levels) - 1; i >= 0; i-- {
		if b.levels[i].d <= remaining {
			return b.levels[i], true
		}
	}
	return delayLevel{}, false
}

func (b *Broker) levelOf(topic string) (delayLevel, bool) {
	for _, l := range b.levels {
		if l.topic == topic {
			return l, true
		}
	}
	return delayLevel{}, false
}

// levelName is d in the shortest unit that is exact: 1s, 30s, 2m, 1h,
// 100ms.
func levelName(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

// retryTopic is the topic holding the retries of one group: only that
// group reads it, so a retry never reaches the topic's other groups. Group
// ids may hold any character; those a topic name cannot are replaced, and
// a hash of the id keeps replaced or shortened names distinct.
func retryTopic(topic, group string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, group)
	prefix := topic + ".retry."
	if safe != group || len(prefix)+len(safe) > 249 {
		h := fnv.New32a()
		_, _ = h.Write([]byte(group))
		sum := strconv.FormatUint(uint64(h.Sum32()), 16)
		if room := 249 - len(prefix) - len(sum) - 1; len(safe) > room {
			safe = safe[:max(room, 0)]
		}
		safe += "-" + sum
	}
	return prefix + safe
}

// forwardPartition moves the records of one partition of a delay level
// towards their targets. The partition is FIFO by hop time (every record
// waits the level's duration from its timestamp), so it waits for the head
// only, then forwards the head and every record behind it that is due too
// in one acknowledged write, then commits them.
func (c *consumer) forwardPartition(ctx context.Context, p *partState, r *kafkago.Reader) {
	b := c.b
	level, ok := b.levelOf(p.topic)
	if !ok {
		b.log.Error("mq: forwarder assigned a topic that is no delay level", "topic", p.topic)
		return
	}
	fetched := make(chan kafkago.Message, 256)
	go func() {
		defer close(fetched)
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				b.log.Warn("mq: delay fetch failed", "topic", p.topic, "partition", p.partition, "error", err.Error())
				if !sleep(ctx, time.Second) {
					return
				}
				continue
			}
			p.fetched(m)
			select {
			case fetched <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		for range fetched { // let the fetcher exit
		}
	}()

	const maxBatch = 500
	var next *kafkago.Message
	for {
		head := next
		next = nil
		if head == nil {
			m, ok := recv(ctx, fetched)
			if !ok {
				return
			}
			head = &m
		}
		if !sleepUntil(ctx, head.Time.Add(level.d)) {
			return
		}
		batch := []kafkago.Message{*head}
	collect:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-fetched:
				if !ok {
					break collect
				}
				if m.Time.Add(level.d).After(time.Now()) {
					next = &m
					break collect
				}
				batch = append(batch, m)
			default:
				break collect
			}
		}
		now := time.Now()
		out := make([]kafkago.Message, 0, len(batch))
		for _, m := range batch {
			e, target, err := decode(m)
			if err != nil || target == "" {
				b.log.Error("mq: dropping malformed delay record", "topic", m.Topic, "partition", m.Partition,
					"offset", m.Offset, "delay_target", target, "error", errString(err))
				continue
			}
			out = append(out, b.route(target, e, now))
		}
		if len(out) > 0 {
			if err := b.write(ctx, "forward delayed messages from "+p.topic, out...); err != nil {
				return // not committed: the next owner forwards them again
			}
		}
		p.handledThrough(batch[len(batch)-1].Offset)
		c.commitSoon()
	}
}

func recv[T any](ctx context.Context, ch <-chan T) (T, bool) {
	select {
	case v, ok := <-ch:
		return v, ok
	case <-ctx.Done():
		var zero T
		return zero, false
	}
}

// sleepUntil waits until t or ctx ends; it reports whether t was reached.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	return sleep(ctx, d)
}

func sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
