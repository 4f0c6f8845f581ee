package kafka_test

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/synchub/synchub/kafka"
)

// The Java client's partition for a key is what franz-go's sticky key
// partitioner computes (both murmur2); ours must agree on every key.
func TestJavaPartitionMatchesFranzGo(t *testing.T) {
	ref := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, n := range []int{1, 3, 8, 64} {
		for i := range 2000 {
			key := []byte(fmt.Sprintf("u_%d-%x", i, i*7919))
			want := ref.Partition(&kgo.Record{Key: key}, n)
			if got := kafka.JavaPartition(key, int32(n)); int(got) != want {
				t.Fatalf("key %q over %d partitions: got %d, want %d", key, n, got, want)
			}
		}
	}
}

func TestPartitionerPinsExplicitPartitions(t *testing.T) {
	p := kafka.NewPartitioner("t")
	msg, err := kafka.Marshaler{}.Marshal("t", pinned(5))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Partition(msg, 8); err != nil || got != 5 {
		t.Fatalf("pinned to 5: got %d, %v", got, err)
	}
	if _, err := p.Partition(msg, 4); err == nil {
		t.Fatal("partition 5 of 4 accepted")
	}
	keyed := &sarama.ProducerMessage{Key: sarama.StringEncoder("u_42")}
	if got, _ := p.Partition(keyed, 8); got != kafka.JavaPartition([]byte("u_42"), 8) {
		t.Fatalf("keyed record on %d", got)
	}
}
