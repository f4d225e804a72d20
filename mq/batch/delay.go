package batch

import (
	"strconv"

	"github.com/flashsale/seckill/mq"
)

// bucketDelayed replaces the delayed messages among msgs that share a
// DelayBucket with one envelope each, due at the latest of their times; it
// leaves the others (immediate ones too large for an envelope, a delayed
// message alone in its bucket) as they are.
func (p *Publisher) bucketDelayed(topic string, msgs []*mq.Message) []*mq.Message {
	type group struct {
		msgs []*mq.Message
		size int
	}
	var order []int64
	groups := map[int64]*group{}
	out := msgs[:0:0]
	for _, m := range msgs {
		size := recordSize(m)
		if m.DeliverAt.IsZero() || size+envelopeOverhead(1) > p.cfg.MaxBytes {
			out = append(out, m)
			continue
		}
		k := m.DeliverAt.UnixNano() / int64(p.cfg.DelayBucket)
		g := groups[k]
		if g == nil || g.size+size+envelopeOverhead(len(g.msgs)+1) > p.cfg.MaxBytes || len(g.msgs) >= p.cfg.MaxBatch {
			if g != nil {
				out = append(out, p.delayedEnvelope(g.msgs))
			}
			g = &group{}
			groups[k] = g
			order = append(order, k)
		}
		g.msgs = append(g.msgs, m)
		g.size += size
	}
	for _, k := range order {
		if g := groups[k]; len(g.msgs) > 0 {
			out = append(out, p.delayedEnvelope(g.msgs))
		}
	}
	return out
}

// delayedEnvelope is msgs as one message due at the latest of their times
// (msgs itself when there is one).
func (p *Publisher) delayedEnvelope(msgs []*mq.Message) *mq.Message {
	if len(msgs) == 1 {
		return msgs[0]
	}
	due, key := msgs[0].DeliverAt, msgs[0].Key
	for _, m := range msgs[1:] {
		if m.DeliverAt.After(due) {
			due = m.DeliverAt
		}
		if m.Key != key {
			key = ""
		}
	}
	return &mq.Message{
		ID: p.newID(), Key: key, DeliverAt: due,
		Headers: map[string]string{HeaderBatch: strconv.Itoa(len(msgs))},
		Payload: Encode(msgs),
	}
}
