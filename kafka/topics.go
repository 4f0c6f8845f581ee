package kafka

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// Topic names of DESIGN §3.
const (
	TopicEvents         = "events"
	TopicEventsInvalid  = "events.invalid"
	TopicEventsEnriched = "events.enriched"
)

// EntityTopic is the compacted topic of an entity type, e.g. entity.user.
func EntityTopic(entityType string) string { return "entity." + entityType }

// DLQTopic is a connector's dead-letter topic.
func DLQTopic(connector string) string { return "connector." + connector + ".dlq" }

// RetryTopic is a connector's replay topic, read only by that connector.
func RetryTopic(connector string) string { return "connector." + connector + ".retry" }

// TopicSpec describes a topic the hub needs.
type TopicSpec struct {
	Name      string
	Compacted bool
	// CoPartitioned topics must have exactly the configured partition count:
	// the aggregator writes an entity to the partition number of its events.
	CoPartitioned bool
}

// HubTopics lists the topics for the given entity types and connectors.
func HubTopics(entityTypes, connectors []string) []TopicSpec {
	specs := []TopicSpec{
		{Name: TopicEvents, CoPartitioned: true},
		{Name: TopicEventsInvalid},
		{Name: TopicEventsEnriched},
	}
	for _, e := range entityTypes {
		specs = append(specs, TopicSpec{Name: EntityTopic(e), Compacted: true, CoPartitioned: true})
	}
	for _, c := range connectors {
		specs = append(specs, TopicSpec{Name: DLQTopic(c)}, TopicSpec{Name: RetryTopic(c)})
	}
	return specs
}

// EnsureTopics creates the missing topics with partitions partitions and
// checks that existing co-partitioned ones have that many. It reports every
// mismatch, not just the first.
func EnsureTopics(admin sarama.ClusterAdmin, partitions int32, specs []TopicSpec) error {
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	var errs []error
	for _, spec := range specs {
		if detail, ok := existing[spec.Name]; ok {
			if spec.CoPartitioned && detail.NumPartitions != partitions {
				errs = append(errs, fmt.Errorf("topic %s has %d partitions, kafka.partitions is %d: co-partitioned topics must match",
					spec.Name, detail.NumPartitions, partitions))
			}
			continue
		}
		detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1}
		if spec.Compacted {
			compact := "compact"
			detail.ConfigEntries = map[string]*string{"cleanup.policy": &compact}
		}
		err := admin.CreateTopic(spec.Name, detail, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("creating topic %s: %w", spec.Name, err))
		}
	}
	return errors.Join(errs...)
}
