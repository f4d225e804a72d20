package kafka

// The pipeline's topics: created at start with the configured partitions
// and replication (so a misconfigured cluster fails at start, naming Kafka),
// and checked to be listed by the brokers before the first publish.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/flashsale/seckill/mq"
)

// EnsureTopics creates each topic with Partitions partitions, its
// dead-letter topic and the delay-level topics (AuxPartitions each), and
// waits until the cluster's metadata lists them. Topics that already exist
// are left as they are.
func (b *Broker) EnsureTopics(ctx context.Context, topics ...string) error {
	var specs []kafkago.TopicConfig
	for _, t := range topics {
		specs = append(specs, b.topicSpec(t, b.cfg.Partitions), b.topicSpec(mq.DeadLetterTopic(t), b.cfg.AuxPartitions))
	}
	for _, l := range b.levels {
		specs = append(specs, b.topicSpec(l.topic, b.cfg.AuxPartitions))
	}
	return b.createTopics(ctx, specs)
}

func (b *Broker) topicSpec(name string, partitions int) kafkago.TopicConfig {
	return kafkago.TopicConfig{Topic: name, NumPartitions: partitions, ReplicationFactor: b.cfg.ReplicationFactor}
}

// createTopics creates the topics of specs not yet known to exist.
func (b *Broker) createTopics(ctx context.Context, specs []kafkago.TopicConfig) error {
	specs = slices.DeleteFunc(slices.Clone(specs), func(s kafkago.TopicConfig) bool {
		_, ok := b.created.Load(s.Topic)
		return ok
	})
	if len(specs) == 0 {
		return nil
	}
	for _, s := range specs {
		if err := validTopic(s.Topic); err != nil {
			return err
		}
	}
	res, err := b.client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: specs})
	if err != nil {
		return fmt.Errorf("kafka: create topics: %w", err)
	}
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		if err := res.Errors[s.Topic]; err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %q: %w", s.Topic, err)
		}
		names = append(names, s.Topic)
	}
	// A new topic reaches every broker's metadata a moment later; a group
	// that joined before would be assigned none of its partitions.
	for {
		meta, err := b.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: names})
		if err == nil && allListed(meta, names) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: waiting for new topics %v in metadata: %w", names, errors.Join(ctx.Err(), err))
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, n := range names {
		b.created.Store(n, struct{}{})
	}
	return nil
}

func allListed(meta *kafkago.MetadataResponse, names []string) bool {
	ok := make(map[string]bool, len(meta.Topics))
	for _, t := range meta.Topics {
		ok[t.Name] = t.Error == nil && len(t.Partitions) > 0
	}
	for _, n := range names {
		if !ok[n] {
			return false
		}
	}
	return true
}

// validTopic applies Kafka's topic name rules, so a bad name fails with a
// clear error instead of a protocol code.
func validTopic(name string) error {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return fmt.Errorf("kafka: invalid topic name %q (1 to 249 characters, not . or ..)", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("kafka: invalid topic name %q (only [a-zA-Z0-9._-])", name)
		}
	}
	return nil
}

// ensure creates topics on first use unless SkipTopicCreation is set.
func (b *Broker) ensure(ctx context.Context, specs ...kafkago.TopicConfig) error {
	if b.cfg.SkipTopicCreation {
		return nil
	}
	return b.createTopics(ctx, specs)
}
