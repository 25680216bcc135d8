package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// TopicConfig returns the topic configuration Ensure creates the ledger
// with: cleanup.policy=compact,delete (the newest record per ID is kept, and
// records older than the window are deleted) and retention.ms = window.
func TopicConfig(window time.Duration) map[string]*string {
	policy := "compact,delete"
	retention := strconv.FormatInt(window.Milliseconds(), 10)
	return map[string]*string{
		"cleanup.policy": &policy,
		"retention.ms":   &retention,
	}
}

// ensureAttempts bounds how often Ensure re-reads metadata that has not
// caught up yet (a topic just created by us or by a worker starting at the
// same time).
const (
	ensureAttempts = 20
	ensureBackoff  = 100 * time.Millisecond
)

// Ensure makes sure the ledger topic exists with one partition per source
// partition. If the topic is missing it is created with
// cleanup.policy=compact,delete, retention.ms = window and the given
// replication factor (-1 asks for the broker default, Kafka 2.4 or newer).
// If it exists with a different partition count, Ensure returns a
// *PartitionMismatchError (errors.Is(err, ErrPartitionMismatch)) whose
// message says how to fix it; the worker must not start then. An existing
// topic's configuration is left as the operator set it.
//
// Two workers may call Ensure at once: the loser of the creation race sees
// "topic already exists" and checks the partition count like any other
// caller. ctx bounds the whole call; sarama's admin requests themselves are
// bounded by Config.Admin.Timeout.
func Ensure(ctx context.Context, admin sarama.ClusterAdmin, topic string, partitions int32, window time.Duration, replication int16) error {
	switch {
	case topic == "":
		return fmt.Errorf("%w: empty ledger topic name", ErrInvalidArgument)
	case partitions < 1:
		return fmt.Errorf("%w: ledger topic %q: %d partitions, want at least 1", ErrInvalidArgument, topic, partitions)
	case window <= 0:
		return fmt.Errorf("%w: ledger topic %q: dedup window %v, want more than 0", ErrInvalidArgument, topic, window)
	case replication == 0 || replication < -1:
		return fmt.Errorf("%w: ledger topic %q: replication factor %d, want at least 1 or -1 for the broker default", ErrInvalidArgument, topic, replication)
	}

	created := false
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ledger: ensure topic %q: %w", topic, err)
		}
		have, exists, err := describePartitions(admin, topic)
		if err != nil {
			return fmt.Errorf("ledger: ensure topic %q: describe: %w", topic, err)
		}
		if exists {
			if have != partitions {
				return &PartitionMismatchError{Topic: topic, Have: have, Want: partitions}
			}
			return nil
		}
		if !created {
			err := admin.CreateTopic(topic, &sarama.TopicDetail{
				NumPartitions:     partitions,
				ReplicationFactor: replication,
				ConfigEntries:     TopicConfig(window),
			}, false)
			switch {
			case err == nil, errors.Is(err, sarama.ErrTopicAlreadyExists):
				// Created by us, or by a worker that won the race: either way
				// read the partition count back below.
				created = true
				continue
			default:
				return fmt.Errorf("ledger: create topic %q (%d partitions, replication %d): %w", topic, partitions, replication, err)
			}
		}
		// Created, but the metadata we read does not show it yet.
		if attempt >= ensureAttempts {
			return fmt.Errorf("ledger: topic %q was created but is still missing from the metadata after %d attempts", topic, attempt)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ledger: ensure topic %q: %w", topic, ctx.Err())
		case <-time.After(ensureBackoff):
		}
	}
}

// describePartitions returns the partition count of topic and whether it
// exists.
func describePartitions(admin sarama.ClusterAdmin, topic string) (int32, bool, error) {
	md, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return 0, false, err
	}
	for _, t := range md {
		if t.Name != topic {
			continue
		}
		switch {
		case errors.Is(t.Err, sarama.ErrNoError):
			return int32(len(t.Partitions)), true, nil
		case errors.Is(t.Err, sarama.ErrUnknownTopicOrPartition), errors.Is(t.Err, sarama.ErrLeaderNotAvailable):
			return 0, false, nil
		default:
			return 0, false, t.Err
		}
	}
	return 0, false, nil
}
