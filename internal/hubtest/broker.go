package hubtest

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/synchub/synchub/kafka"
)

// Broker is an in-process Kafka broker (kfake) for one test, with the
// given topics created and a Sarama client and producer on it. Everything
// stops when the test ends.
type Broker struct {
	t        testing.TB
	Addr     string
	Client   sarama.Client
	Producer sarama.SyncProducer
}

// StartBroker starts a broker with topics of partitions partitions.
func StartBroker(t testing.TB, partitions int32, topics []kafka.TopicSpec) *Broker {
	t.Helper()
	embedded, err := kafka.StartEmbedded("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(embedded.Close)
	client, err := sarama.NewClient([]string{embedded.Addr()}, kafka.SaramaConfig("test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopics(admin, partitions, topics); err != nil {
		t.Fatal(err)
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = producer.Close() })
	return &Broker{t: t, Addr: embedded.Addr(), Client: client, Producer: producer}
}

// Send produces a record to partition p of topic, the way the hub does
// (the partitioner's explicit partition), and returns its offset. A nil
// value is a tombstone; a zero at leaves the producer's clock.
func (b *Broker) Send(topic, key string, value []byte, p int32, headers map[string]string, at time.Time) int64 {
	b.t.Helper()
	msg := message.NewMessage("", value)
	for k, v := range headers {
		msg.Metadata.Set(k, v)
	}
	kafka.SetKey(msg, []byte(key))
	kafka.SetPartition(msg, p)
	pm, err := kafka.Marshaler{}.Marshal(topic, msg)
	if err != nil {
		b.t.Fatal(err)
	}
	if value == nil {
		pm.Value = nil
	}
	pm.Timestamp = at
	_, off, err := b.Producer.SendMessage(pm)
	if err != nil {
		b.t.Fatal(err)
	}
	return off
}

// Read returns every record of topic, partition by partition, up to its
// current end.
func (b *Broker) Read(topic string) []*sarama.ConsumerMessage {
	b.t.Helper()
	parts, err := b.Client.Partitions(topic)
	if err != nil {
		b.t.Fatal(err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		if err := kafka.ReadPartition(context.Background(), b.Client, topic, p, func(m *sarama.ConsumerMessage) error {
			out = append(out, m)
			return nil
		}); err != nil {
			b.t.Fatal(err)
		}
	}
	return out
}

// CaughtUp says whether group has committed every record topic holds now.
func (b *Broker) CaughtUp(group, topic string) bool {
	b.t.Helper()
	return CaughtUp(b.t, b.Client, group, topic)
}

// CaughtUp says whether group has committed every record topic holds now,
// asking through client.
func CaughtUp(t testing.TB, client sarama.Client, group, topic string) bool {
	t.Helper()
	// Not admin.Close: it would close the shared client.
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return false
	}
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return false
		}
		committed := int64(-1)
		if b := resp.GetBlock(topic, p); b != nil && b.Err == sarama.ErrNoError {
			committed = b.Offset
		}
		if end > 0 && committed != end {
			return false
		}
	}
	return true
}
