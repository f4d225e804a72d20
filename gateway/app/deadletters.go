package app

import (
	"context"
	"maps"

	"github.com/flashsale/seckill/gateway/httpapi"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/natsjs"
	"github.com/flashsale/seckill/order/service"
)

// natsDeadLetters serves the admin dead-letter routes from the NATS queue.
type natsDeadLetters struct{ b *natsjs.Broker }

func (d natsDeadLetters) Topics() []string { return service.DeadLetterTopics }

func (d natsDeadLetters) List(ctx context.Context, topic string, limit int) ([]httpapi.DeadLetter, int, error) {
	dlq := mq.DeadLetterTopic(topic)
	total, err := d.b.Len(ctx, dlq)
	if err != nil {
		return nil, 0, err
	}
	stored, err := d.b.Stored(ctx, dlq, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]httpapi.DeadLetter, 0, len(stored))
	for _, sm := range stored {
		h := maps.Clone(sm.Headers)
		reason, attempts := h[mq.HeaderDeadLetterReason], h[mq.HeaderDeadLetterAttempts]
		delete(h, mq.HeaderDeadLetterReason)
		delete(h, mq.HeaderDeadLetterAttempts)
		delete(h, mq.HeaderOriginalTopic)
		out = append(out, httpapi.DeadLetter{
			Seq: sm.Seq, ID: sm.ID, Key: sm.Key, Reason: reason, Attempts: attempts,
			StoredAt: sm.Stored.UTC(), Headers: h, Payload: string(sm.Payload),
		})
	}
	return out, total, nil
}

func (d natsDeadLetters) Replay(ctx context.Context, topic string, seqs []uint64) (int, error) {
	dlq := mq.DeadLetterTopic(topic)
	if len(seqs) == 0 {
		stored, err := d.b.Stored(ctx, dlq, 0)
		if err != nil {
			return 0, err
		}
		for _, sm := range stored {
			seqs = append(seqs, sm.Seq)
		}
	}
	return d.b.Replay(ctx, dlq, seqs...)
}

func (d natsDeadLetters) Discard(ctx context.Context, topic string, seqs []uint64) error {
	return d.b.Delete(ctx, mq.DeadLetterTopic(topic), seqs...)
}
