package kafka

import "github.com/IBM/sarama"

// explicitPartition rides in sarama.ProducerMessage.Metadata to pin a record
// to a partition.
type explicitPartition int32

// partitioner pins records that name a partition and hashes the key of all
// others with murmur2, as the Java client does, so keys land where every
// JVM-based tool expects them.
type partitioner struct{}

// NewPartitioner is a sarama.PartitionerConstructor for SaramaConfig.
func NewPartitioner(string) sarama.Partitioner { return partitioner{} }

func (partitioner) Partition(msg *sarama.ProducerMessage, numPartitions int32) (int32, error) {
	if p, ok := msg.Metadata.(explicitPartition); ok {
		if int32(p) >= numPartitions || p < 0 {
			return 0, sarama.ErrInvalidPartition
		}
		return int32(p), nil
	}
	if msg.Key == nil {
		return 0, nil
	}
	key, err := msg.Key.Encode()
	if err != nil {
		return 0, err
	}
	return JavaPartition(key, numPartitions), nil
}

func (partitioner) RequiresConsistency() bool { return true }

// JavaPartition is the Java client's default partition for a non-empty key:
// toPositive(murmur2(key)) % numPartitions.
func JavaPartition(key []byte, numPartitions int32) int32 {
	return int32(murmur2(key)&0x7fffffff) % numPartitions
}

// murmur2 is Kafka's variant of MurmurHash2 (seed 0x9747b28c).
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
