package notifier

// The second half of the notifier's delivery: a send that failed is not
// retried in the handler (the queue would redeliver the whole event); its
// ledger entry is due again after a backoff, and the retrier, one loop per
// notifier, sends what is due, dead-letters what can never be sent, keeps
// the backlog gauge and purges old entries.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/flashsale/seckill/notifier/ledger"
	"github.com/flashsale/seckill/order/ordermsg"
)

// backoff is the delay before attempt number attempt+1 after attempt
// failures: RetryMin doubled per failure, capped at RetryMax, with jitter
// over its upper half (so retries of a burst spread out but never come
// sooner than half the schedule).
func (n *Notifier) backoff(failures int) time.Duration {
	d := n.opts.RetryMin
	for i := 1; i < failures && d < n.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, n.opts.RetryMax)
	return d/2 + time.Duration(n.opts.Jitter()*float64(d/2))
}

// Start runs the retrier in the background until Close.
func (n *Notifier) Start(ctx context.Context) {
	n.startOne.Do(func() {
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		n.stop = cancel
		n.done.Go(func() { n.retryLoop(ctx) })
	})
}

// Close stops the retrier and waits for its attempts in flight. Stop the
// subscription first (mq Close), so no handler runs after it. A nil
// Notifier is closed already.
func (n *Notifier) Close() error {
	if n == nil {
		return nil
	}
	n.stopOne.Do(func() {
		if n.stop != nil {
			n.stop()
		}
	})
	n.done.Wait()
	return nil
}

func (n *Notifier) retryLoop(ctx context.Context) {
	t := time.NewTicker(n.opts.PollInterval)
	defer t.Stop()
	var lastPurge, lastBacklog time.Time
	for {
		n.retryDue(ctx)
		if time.Since(lastBacklog) >= max(5*time.Second, n.opts.PollInterval) {
			lastBacklog = time.Now()
			n.updateBacklog(ctx)
		}
		if time.Since(lastPurge) >= time.Hour {
			lastPurge = time.Now()
			n.purge(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retryDue claims and sends due notifications, batch by batch, until none
// is due.
func (n *Notifier) retryDue(ctx context.Context) {
	batch := n.opts.Concurrency * 4
	sem := make(chan struct{}, n.opts.Concurrency)
	for ctx.Err() == nil {
		due, err := n.ledger.Due(ctx, batch)
		if err != nil {
			if ctx.Err() == nil {
				n.log.WarnContext(ctx, "notifier: retrier", "err", err)
			}
			return
		}
		var wg sync.WaitGroup
		for i := range due {
			e := &due[i]
			s := n.byName[e.Channel]
			ev, derr := ordermsg.DecodeEvent(e.Payload)
			if s == nil || derr != nil {
				n.deadLetterUnsendable(ctx, e, s == nil, derr)
				continue
			}
			ok, err := n.ledger.Claim(ctx, e, n.lease)
			if err != nil || !ok {
				continue // another replica took it, or the database is away
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				_, _ = n.ledger.Release(context.WithoutCancel(ctx), e, time.Now())
				continue
			}
			wg.Go(func() {
				defer func() { <-sem }()
				n.attempt(ctx, s, e, ev)
			})
		}
		wg.Wait()
		if len(due) < batch {
			return
		}
	}
}

// deadLetterUnsendable settles a row this process cannot send: its channel
// is not configured here, or its payload does not decode.
func (n *Notifier) deadLetterUnsendable(ctx context.Context, e *ledger.Entry, noChannel bool, derr error) {
	ok, err := n.ledger.Claim(ctx, e, n.lease)
	if err != nil || !ok {
		return
	}
	reason := fmt.Sprintf("payload does not decode: %v", derr)
	if noChannel {
		reason = fmt.Sprintf("channel %q is not configured in this notifier", e.Channel)
	}
	n.metrics.count(e.Channel, ResultDeadLettered)
	if _, err := n.ledger.MarkDeadLettered(ctx, e, reason); err != nil {
		n.log.WarnContext(ctx, "notifier: dead-letter", "event_id", e.EventID, "err", err)
		return
	}
	n.log.WarnContext(ctx, "notifier: dead-lettered", "channel", e.Channel, "event_id", e.EventID, "reason", reason)
}

func (n *Notifier) updateBacklog(ctx context.Context) {
	counts, err := n.ledger.Backlog(ctx)
	if err != nil {
		return
	}
	for _, s := range n.senders {
		n.metrics.backlog.WithLabelValues(s.name).Set(float64(counts[s.name]))
	}
}

func (n *Notifier) purge(ctx context.Context) {
	cutoff := time.Now().Add(-n.opts.Retention)
	for ctx.Err() == nil {
		deleted, err := n.ledger.Purge(ctx, cutoff, 1000)
		if err != nil {
			n.log.WarnContext(ctx, "notifier: purge sent notifications", "err", err)
			return
		}
		if deleted < 1000 {
			return
		}
	}
}
