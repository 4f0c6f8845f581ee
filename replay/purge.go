package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/synchub/synchub/kafka"
)

// PurgeSummary is what a Purge removed, or would remove with dry run.
type PurgeSummary struct {
	DryRun    bool      `json:"dry_run"`
	Connector string    `json:"connector"`
	Before    time.Time `json:"before"`
	Purged    int64     `json:"purged"`
	// Partitions is, per partition, the offset the topic now starts at.
	Partitions map[int32]int64 `json:"partitions"`
}

// Purge deletes the records of connector's dead-letter topic that were
// dead-lettered more than olderThan ago, for every customer: Kafka deletes a
// partition's records only from its start up to an offset, so a purge
// cannot single out one customer's records. The deletion is by record time,
// so it stops at the first record of each partition that is newer.
func (o *Ops) Purge(ctx context.Context, connector string, olderThan time.Duration, dryRun bool) (PurgeSummary, error) {
	before := o.now().Add(-olderThan).UTC()
	sum := PurgeSummary{DryRun: dryRun, Connector: connector, Before: before, Partitions: map[int32]int64{}}
	if err := o.connector(connector); err != nil {
		return sum, err
	}
	if olderThan <= 0 {
		return sum, fmt.Errorf("%w: --older-than must be positive", ErrUsage)
	}
	topic := kafka.DLQTopic(connector)
	partitions, err := o.client.Partitions(topic)
	if err != nil {
		return sum, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	cut := map[int32]int64{}
	for _, p := range partitions {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		start, err := o.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return sum, fmt.Errorf("start of %s/%d: %w", topic, p, err)
		}
		end, err := o.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return sum, fmt.Errorf("end of %s/%d: %w", topic, p, err)
		}
		first, err := o.firstAtOrAfter(ctx, topic, p, before, end)
		if err != nil {
			return sum, err
		}
		sum.Partitions[p] = max(start, first)
		if first > start {
			cut[p] = first
			sum.Purged += first - start
		}
	}
	if dryRun || len(cut) == 0 {
		return sum, nil
	}
	if err := o.admin.DeleteRecords(topic, cut); err != nil {
		return sum, fmt.Errorf("deleting from %s: %w", topic, err)
	}
	return sum, nil
}

// firstAtOrAfter is the offset of the first record of topic/p stamped at or
// after t, or end when there is none. It reads the records rather than ask
// the broker's time index: that index rests on each batch's max timestamp,
// which Sarama leaves unset and brokers that trust the client (kfake) then
// never match.
func (o *Ops) firstAtOrAfter(ctx context.Context, topic string, p int32, t time.Time, end int64) (int64, error) {
	first := end
	err := kafka.ReadPartition(ctx, o.client, topic, p, func(m *sarama.ConsumerMessage) error {
		if !m.Timestamp.Before(t) {
			first = m.Offset
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return 0, err
	}
	return first, nil
}
