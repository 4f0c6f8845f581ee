package kafka

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"
)

// ReadPartition calls fn for every record of topic/partition from the oldest
// up to the high watermark taken when it starts. It is how state is rebuilt
// from a compacted changelog: records appended while it runs belong to
// whoever appends them.
func ReadPartition(ctx context.Context, client sarama.Client, topic string, partition int32, fn func(*sarama.ConsumerMessage) error) error {
	end, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("end offset of %s/%d: %w", topic, partition, err)
	}
	start, err := client.GetOffset(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("start offset of %s/%d: %w", topic, partition, err)
	}
	if start >= end {
		return nil
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("reading %s/%d: %w", topic, partition, err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, partition, start)
	if err != nil {
		return fmt.Errorf("reading %s/%d from %d: %w", topic, partition, start, err)
	}
	defer pc.AsyncClose()
	for {
		select {
		case rec, ok := <-pc.Messages():
			if !ok {
				return fmt.Errorf("reading %s/%d: consumer closed at offset below %d", topic, partition, end)
			}
			if err := fn(rec); err != nil {
				return err
			}
			if rec.Offset >= end-1 {
				return nil
			}
		case cerr := <-pc.Errors():
			return fmt.Errorf("reading %s/%d: %w", topic, partition, cerr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
