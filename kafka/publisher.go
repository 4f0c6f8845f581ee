package kafka

import (
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Metadata keys the Marshaler turns into record coordinates instead of
// headers. They are internal to the hub and never reach Kafka as headers.
const (
	metaKey       = "_synchub_key"
	metaPartition = "_synchub_partition"
)

// SetKey makes msg be produced with key as its Kafka record key.
func SetKey(msg *message.Message, key []byte) { msg.Metadata.Set(metaKey, string(key)) }

// SetPartition pins msg to partition p of its topic.
func SetPartition(msg *message.Message, p int32) {
	msg.Metadata.Set(metaPartition, strconv.FormatInt(int64(p), 10))
}

// Marshaler turns a Watermill message into a record: payload as value,
// metadata as headers, with the key and partition set by SetKey and
// SetPartition. Unlike watermill-kafka's DefaultMarshaler it carries no
// _watermill_message_uuid header: records are identified by their
// coordinates, and outside consumers see only the hub's own headers.
type Marshaler struct{}

// Marshal implements wmkafka.Marshaler.
func (Marshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	pm := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(msg.Payload)}
	for k, v := range msg.Metadata {
		switch k {
		case metaKey:
			pm.Key = sarama.StringEncoder(v)
		case metaPartition:
			p, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("partition metadata %q: %w", v, err)
			}
			pm.Metadata = explicitPartition(p)
		default:
			pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
	}
	return pm, nil
}

// NewPublisher is a watermill-kafka publisher using SaramaConfig and
// Marshaler.
func NewPublisher(brokers []string, clientID string, logger watermill.LoggerAdapter) (*wmkafka.Publisher, error) {
	pub, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{
		Brokers:               brokers,
		Marshaler:             Marshaler{},
		OverwriteSaramaConfig: SaramaConfig(clientID),
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("creating Kafka publisher: %w", err)
	}
	return pub, nil
}
