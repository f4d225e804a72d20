package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flashsale/seckill/mq"
)

// Subscribe makes this process a member of the consumer group opts.Group
// on topic (and on the group's retry topic) and returns once the member
// holds its first assignment, or fails after Config.JoinTimeout. The topic,
// its dead-letter and retry topics and the delay levels are created on
// first use unless Config.SkipTopicCreation is set. The first Subscribe
// also starts this process's delay forwarders (unless
// Config.DisableDelayForwarding).
//
// ctx only governs the registration: the subscription lasts until Close.
// Handlers receive a context that carries ctx's values and is cancelled
// when Close gives up waiting for them. A handler that panics counts as
// one that returned an error.
func (b *Broker) Subscribe(ctx context.Context, topic string, opts mq.SubscribeOptions, h mq.Handler) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka: subscribe %q: %w", topic, err)
	}
	if err := validTopic(topic); err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("kafka: subscribe %q: nil handler", topic)
	}
	if b.isClosing() {
		return fmt.Errorf("kafka: subscribe %q: %w", topic, mq.ErrClosed)
	}
	opts = opts.WithDefaults()
	sub := &subscription{topic: topic, retry: retryTopic(topic, opts.Group), opts: opts, h: h}
	specs := append(b.topicSpecs(topic), b.topicSpec(sub.retry, b.cfg.AuxPartitions))
	if err := b.ensure(ctx, specs...); err != nil {
		return fmt.Errorf("kafka: subscribe %q: %w", topic, err)
	}
	if err := b.startForwarders(ctx); err != nil {
		return fmt.Errorf("kafka: subscribe %q: %w", topic, err)
	}
	c, err := b.newConsumer(ctx, opts.Group, []string{topic, sub.retry}, sub)
	if err != nil {
		return fmt.Errorf("kafka: subscribe %q: %w", topic, err)
	}
	if !b.register(c) {
		_ = c.stop(0)
		return fmt.Errorf("kafka: subscribe %q: %w", topic, mq.ErrClosed)
	}

	timeout := time.NewTimer(b.cfg.JoinTimeout)
	defer timeout.Stop()
	var cause error
	select {
	case <-c.joined:
		return nil
	case <-c.done: // Close ran meanwhile
		return fmt.Errorf("kafka: subscribe %q: %w", topic, mq.ErrClosed)
	case <-ctx.Done():
		cause = ctx.Err()
	case <-timeout.C:
		cause = fmt.Errorf("no assignment after %v", b.cfg.JoinTimeout)
	}
	b.unregister(c)
	_ = c.stop(0)
	return fmt.Errorf("kafka: subscribe %q: joining group %q: %w", topic, opts.Group, errors.Join(cause, c.joinErr()))
}

// startForwarders starts this process's delay forwarders once.
func (b *Broker) startForwarders(ctx context.Context) error {
	if b.cfg.DisableDelayForwarding {
		return nil
	}
	b.mu.Lock()
	started := b.forwarding
	b.forwarding = true
	b.mu.Unlock()
	if started {
		return nil
	}
	topics := make([]string, len(b.levels))
	for i, l := range b.levels {
		topics[i] = l.topic
	}
	c, err := b.newConsumer(ctx, b.cfg.DelayTopicPrefix+".forwarder", topics, nil)
	if err == nil && !b.register(c) {
		_ = c.stop(0)
		err = mq.ErrClosed
	}
	if err != nil {
		b.mu.Lock()
		b.forwarding = false
		b.mu.Unlock()
		return fmt.Errorf("delay forwarders: %w", err)
	}
	return nil
}

func (b *Broker) isClosing() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closing
}

// register adds c to the consumers Close stops, unless Close has begun.
func (b *Broker) register(c *consumer) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.consumers = append(b.consumers, c)
	return true
}

func (b *Broker) unregister(c *consumer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.consumers = slices.DeleteFunc(b.consumers, func(x *consumer) bool { return x == c })
}
