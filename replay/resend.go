package replay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/retry"
)

// Options tune Replay and Resync.
type Options struct {
	// DryRun reports what would be sent and sends nothing.
	DryRun bool `json:"dry_run"`
	// MaxReplays overrides the config's dlq.max_replays when positive.
	MaxReplays int `json:"max_replays,omitempty"`
	// Progress, when set, is told how many of total records were sent.
	Progress func(done, total int) `json:"-"`
}

// Summary is what a Replay or Resync did, or would do with DryRun.
type Summary struct {
	DryRun bool `json:"dry_run"`
	// Matched counts the dead-letter records the filter selected (Replay),
	// or the customer's current entities (Resync).
	Matched int `json:"matched"`
	// Replayed counts the entities sent: one current snapshot per entity,
	// however many of its records were dead-lettered.
	Replayed int `json:"replayed"`
	// Answered counts the matched records those snapshots answer.
	Answered int `json:"answered"`
	// Skipped counts the matched records not replayed, by reason.
	Skipped map[string]int `json:"skipped"`
	// Left are the records left in the dead-letter topic because they were
	// already replayed max_replays times.
	Left []Record `json:"left,omitempty"`
}

// Reasons a matched record is not replayed.
const (
	SkipReplayed   = "already replayed"
	SkipMaxReplays = "replayed max_replays times"
	SkipGone       = "entity not found in its entity topic"
	SkipMoved      = "entity now belongs to another customer"
	SkipDisabled   = "connector not enabled for the customer"
	SkipNotEntity  = "not an entity record"
)

// entity is one entity to send again and the dead-letter records it answers.
type entity struct {
	customer, entityType, key string
	partition                 int32 // of the entity topic, -1 when unknown
	answers                   []string
	replays                   int // the most any answered record was replayed
}

// Replay sends the current snapshot of every entity whose dead-letter
// records f selects to the connector's retry topic. f.Connector is required.
func (o *Ops) Replay(ctx context.Context, f Filter, opts Options) (Summary, error) {
	sum := Summary{DryRun: opts.DryRun, Skipped: map[string]int{}}
	if err := o.connector(f.Connector); err != nil {
		return sum, err
	}
	cfg := o.config()
	maxReplays := cmp.Or(opts.MaxReplays, cfg.DLQ.MaxReplays)
	byKey := map[string]*entity{}
	var order []*entity
	err := o.scan(ctx, f.Connector, func(r *Record) error {
		if !f.matches(r) {
			return nil
		}
		sum.Matched++
		switch {
		case r.Replayed:
			sum.Skipped[SkipReplayed]++
			return nil
		case r.ReplayCount >= maxReplays:
			sum.Skipped[SkipMaxReplays]++
			sum.Left = append(sum.Left, *r)
			return nil
		case r.EntityType == "" || r.Key == "":
			sum.Skipped[SkipNotEntity]++
			return nil
		}
		if !syncs(cfg, r.Customer, f.Connector, r.EntityType) {
			sum.Skipped[SkipDisabled]++
			return nil
		}
		id := r.Customer + "\x00" + r.EntityType + "\x00" + r.Key
		e, ok := byKey[id]
		if !ok {
			e = &entity{customer: r.Customer, entityType: r.EntityType, key: r.Key, partition: -1}
			// A record that failed on its way from the entity topic names the
			// partition its snapshot is in; one that failed again after a replay
			// may not, if the retry topic was created with another count.
			if r.Origin.Topic == kafka.EntityTopic(r.EntityType) {
				e.partition = r.Origin.Partition
			}
			byKey[id] = e
			order = append(order, e)
		}
		e.answers = append(e.answers, r.coordinate())
		e.replays = max(e.replays, r.ReplayCount)
		return nil
	})
	if err != nil {
		return sum, err
	}
	return o.resend(ctx, f.Connector, order, opts, sum)
}

// syncs says whether connector is enabled for customer and sends entityType.
func syncs(cfg *config.Config, customer, connector, entityType string) bool {
	c, ok := cfg.Customer(customer)
	if !ok {
		return false
	}
	entities, enabled := c.Connectors.EntitiesOf(connector)
	return enabled && slices.Contains(entities, entityType)
}

// Resync sends every current entity of customer to connector again, the
// way a replay does.
func (o *Ops) Resync(ctx context.Context, connector, customer string, opts Options) (Summary, error) {
	sum := Summary{DryRun: opts.DryRun, Skipped: map[string]int{}}
	if err := o.connector(connector); err != nil {
		return sum, err
	}
	c, ok := o.config().Customer(customer)
	if !ok {
		return sum, fmt.Errorf("%w: no customer %q in the config", ErrUsage, customer)
	}
	entities, enabled := c.Connectors.EntitiesOf(connector)
	if !enabled {
		return sum, fmt.Errorf("%w: connector %s is not enabled for customer %s", ErrUsage, connector, customer)
	}
	var order []*entity
	for _, entityType := range entities {
		current, err := o.snapshots(ctx, entityType, nil)
		if err != nil {
			return sum, err
		}
		for key, s := range current {
			if s.header(kafka.HeaderOrganizationID) == customer {
				order = append(order, &entity{customer: customer, entityType: entityType, key: key, partition: s.Partition})
			}
		}
	}
	slices.SortFunc(order, func(a, b *entity) int {
		return cmp.Or(cmp.Compare(a.entityType, b.entityType), cmp.Compare(a.partition, b.partition), cmp.Compare(a.key, b.key))
	})
	sum.Matched = len(order)
	return o.resend(ctx, connector, order, opts, sum)
}

// snapshot is the newest record of an entity in its topic.
type snapshot struct{ *sarama.ConsumerMessage }

func (s snapshot) header(name string) string {
	for _, h := range s.Headers {
		if string(h.Key) == name {
			return string(h.Value)
		}
	}
	return ""
}

// snapshots returns the current snapshot of every entity of entityType in
// the given partitions (all when nil), keyed by entity id. A deleted entity
// (tombstone) has none.
func (o *Ops) snapshots(ctx context.Context, entityType string, partitions map[int32]bool) (map[string]snapshot, error) {
	topic := kafka.EntityTopic(entityType)
	all, err := o.client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	current := map[string]snapshot{}
	for _, p := range all {
		if partitions != nil && !partitions[p] {
			continue
		}
		err := kafka.ReadPartition(ctx, o.client, topic, p, func(m *sarama.ConsumerMessage) error {
			if m.Value == nil {
				delete(current, string(m.Key))
			} else {
				current[string(m.Key)] = snapshot{m}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return current, nil
}

// sendBatch is how many records one produce request carries.
const sendBatch = 500

// resend looks up the current snapshot of each entity and sends it to the
// connector's retry topic, unless opts.DryRun.
func (o *Ops) resend(ctx context.Context, connector string, todo []*entity, opts Options, sum Summary) (Summary, error) {
	current := map[string]map[string]snapshot{} // entity type → id → snapshot
	for _, entityType := range entityTypes(todo) {
		var partitions map[int32]bool
		for _, e := range todo {
			if e.entityType != entityType {
				continue
			}
			if e.partition < 0 {
				partitions = nil
				break
			}
			if partitions == nil {
				partitions = map[int32]bool{}
			}
			partitions[e.partition] = true
		}
		snaps, err := o.snapshots(ctx, entityType, partitions)
		if err != nil {
			return sum, err
		}
		current[entityType] = snaps
	}
	retryPartitions, err := o.client.Partitions(kafka.RetryTopic(connector))
	if err != nil || len(retryPartitions) == 0 {
		return sum, fmt.Errorf("partitions of %s: %w", kafka.RetryTopic(connector), err)
	}
	var out []*sarama.ProducerMessage
	for _, e := range todo {
		s, ok := current[e.entityType][e.key]
		switch {
		case !ok:
			sum.Skipped[SkipGone] += max(len(e.answers), 1)
			continue
		case s.header(kafka.HeaderOrganizationID) != e.customer:
			sum.Skipped[SkipMoved] += max(len(e.answers), 1)
			continue
		}
		pm, err := retryRecord(connector, e, s, s.Partition%int32(len(retryPartitions)))
		if err != nil {
			return sum, err
		}
		out = append(out, pm)
		sum.Replayed++
		sum.Answered += len(e.answers)
	}
	if opts.DryRun {
		return sum, nil
	}
	if opts.Progress != nil {
		opts.Progress(0, len(out))
	}
	for start := 0; start < len(out); start += sendBatch {
		if err := ctx.Err(); err != nil {
			return sum, fmt.Errorf("interrupted after %d of %d (run it again to send the rest): %w", start, len(out), err)
		}
		batch := out[start:min(start+sendBatch, len(out))]
		if err := o.producer.SendMessages(batch); err != nil {
			return sum, fmt.Errorf("sending to %s after %d of %d (run it again to send the rest): %w", kafka.RetryTopic(connector), start, len(out), err)
		}
		if opts.Progress != nil {
			opts.Progress(start+len(batch), len(out))
		}
	}
	return sum, nil
}

// retryRecord is the retry-topic record of e: its current snapshot with the
// snapshot's headers, on the same partition number as in the entity topic,
// with the replay headers. The retry topic has as many partitions as the
// entity topic unless it was created otherwise; then partition wraps.
func retryRecord(connector string, e *entity, s snapshot, partition int32) (*sarama.ProducerMessage, error) {
	msg := message.NewMessage("", s.Value)
	for _, h := range s.Headers {
		msg.Metadata.Set(string(h.Key), string(h.Value))
	}
	msg.Metadata.Set(kafka.HeaderEntityType, e.entityType)
	msg.Metadata.Set(retry.HeaderCustomer, e.customer)
	if len(e.answers) > 0 {
		msg.Metadata.Set(HeaderReplayOf, strings.Join(e.answers, ","))
		msg.Metadata.Set(retry.HeaderReplayCount, strconv.Itoa(e.replays+1))
	} else {
		msg.Metadata.Set(HeaderResync, "true")
		msg.Metadata.Set(retry.HeaderReplayCount, "0")
	}
	kafka.SetKey(msg, s.Key)
	kafka.SetPartition(msg, partition)
	return kafka.Marshaler{}.Marshal(kafka.RetryTopic(connector), msg)
}

func entityTypes(todo []*entity) []string {
	var types []string
	for _, e := range todo {
		if !slices.Contains(types, e.entityType) {
			types = append(types, e.entityType)
		}
	}
	return types
}
