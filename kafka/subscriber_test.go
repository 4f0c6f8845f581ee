package kafka_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/synchub/synchub/kafka"
)

func pinned(p int32) *message.Message {
	msg := message.NewMessage("id", []byte("v"))
	kafka.SetPartition(msg, p)
	kafka.SetKey(msg, []byte("k"))
	msg.Metadata.Set("h", "1")
	return msg
}

func startBroker(t *testing.T) *kafka.Embedded {
	t.Helper()
	b, err := kafka.StartEmbedded("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func ensure(t *testing.T, addr string, topic string, partitions int32) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{addr}, kafka.SaramaConfig("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := kafka.EnsureTopics(admin, partitions, []kafka.TopicSpec{{Name: topic, CoPartitioned: true}}); err != nil {
		t.Fatal(err)
	}
}

func TestPublisherWritesKeyPartitionAndHeadersOnly(t *testing.T) {
	b := startBroker(t)
	ensure(t, b.Addr(), "t", 8)
	pub, err := kafka.NewPublisher([]string{b.Addr()}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish("t", pinned(6)); err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient([]string{b.Addr()}, kafka.SaramaConfig("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var got []*sarama.ConsumerMessage
	if err := kafka.ReadPartition(context.Background(), client, "t", 6, func(m *sarama.ConsumerMessage) error {
		got = append(got, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0].Key) != "k" || string(got[0].Value) != "v" {
		t.Fatalf("partition 6 holds %v", got)
	}
	if len(got[0].Headers) != 1 || string(got[0].Headers[0].Key) != "h" {
		t.Fatalf("headers %v: want only the message's metadata", got[0].Headers)
	}
}

// The subscriber must restore before it emits, keep offset order within a
// partition through Nacks, and resume after the last committed offset.
func TestSubscriberAssignsInOrderAndResumesAfterCommit(t *testing.T) {
	b := startBroker(t)
	ensure(t, b.Addr(), "t", 2)
	producer, err := sarama.NewSyncProducer([]string{b.Addr()}, kafka.SaramaConfig("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	for i := range 20 {
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: "t", Key: sarama.StringEncoder("k" + strconv.Itoa(i%4)), Value: sarama.StringEncoder(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	assigned := map[int32]bool{}
	var events []string
	cfg := kafka.SubscriberConfig{
		Brokers: []string{b.Addr()}, Group: "g", NackResendSleep: time.Millisecond,
		OnAssign: func(_ context.Context, topic string, parts []int32) error {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range parts {
				assigned[p] = true
			}
			events = append(events, "assign")
			return nil
		},
		OnRevoke: func(string, []int32) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, "revoke")
		},
	}
	consume := func(n int, nackEvery int) map[int32][]int64 {
		sub, err := kafka.NewSubscriber(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := sub.Subscribe(context.Background(), "t")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int32][]int64{}
		for i := 0; i < n; {
			msg := <-msgs
			rec, ok := kafka.RecordFromContext(msg.Context())
			if !ok {
				t.Fatal("no record in context")
			}
			mu.Lock()
			if !assigned[rec.Partition] {
				t.Errorf("message of partition %d before its assignment", rec.Partition)
			}
			mu.Unlock()
			if nackEvery > 0 && rec.Offset%int64(nackEvery) == 0 && !slices.Contains(seen[-1-rec.Partition], rec.Offset) {
				seen[-1-rec.Partition] = append(seen[-1-rec.Partition], rec.Offset)
				msg.Nack()
				continue
			}
			seen[rec.Partition] = append(seen[rec.Partition], rec.Offset)
			msg.Ack()
			i++
		}
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
		return seen
	}

	first := consume(12, 3)
	total := 0
	for p, offs := range first {
		if p < 0 {
			continue
		}
		total += len(offs)
		for i := 1; i < len(offs); i++ {
			if offs[i] != offs[i-1]+1 {
				t.Errorf("partition %d delivered offsets %v: not in order without gaps", p, offs)
			}
		}
	}
	second := consume(20-total, 0)
	for p, offs := range second {
		prev := first[p]
		if len(prev) > 0 && offs[0] != prev[len(prev)-1]+1 {
			t.Errorf("partition %d resumed at %d after committing %d", p, offs[0], prev[len(prev)-1])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) < 4 || events[0] != "assign" || events[len(events)-1] != "revoke" {
		t.Errorf("hook sequence %v", events)
	}
}

func TestSubscriberConfigValidateReportsEveryProblem(t *testing.T) {
	_, err := kafka.NewSubscriber(kafka.SubscriberConfig{NackResendSleep: -1}, nil)
	for _, want := range []string{"no brokers", "no consumer group", "negative NackResendSleep"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
