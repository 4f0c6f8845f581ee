package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/synchub/synchub/event"
	"github.com/synchub/synchub/kafka"
)

// Publisher is what the handler publishes snapshots and rejected events with.
type Publisher interface {
	Publish(topic string, msgs ...*message.Message) error
}

// ChangelogReader reads one partition of an entity topic up to its current
// end, as kafka.ReadPartition does.
type ChangelogReader func(ctx context.Context, topic string, partition int32, fn func(value []byte) error) error

// Outcomes counted per raw event.
const (
	OutcomeApplied     = "applied"
	OutcomeDuplicate   = "duplicate"
	OutcomeInvalid     = "invalid"
	OutcomeUnknownType = "unknown_type"
	OutcomeOtherEntity = "other_entity"
)

// Handler is the user aggregator: it owns the users of the partitions of
// events assigned to this instance, applies each event with ApplyUser and
// publishes the new snapshot to entity.user on the event's partition number.
type Handler struct {
	pub     Publisher
	read    ChangelogReader
	log     *zap.Logger
	events  *prometheus.CounterVec
	topic   string
	maxSize int

	mu    sync.Mutex
	parts map[int32]*partition
}

// partition is the state of one owned partition. Messages of different
// entities of a partition are handled concurrently (the subscriber keeps
// one key's messages in order), so the map is locked and an entity being
// folded is marked busy.
type partition struct {
	mu    sync.Mutex
	users map[string]*User
	busy  map[string]bool
}

// errBusy means another message of the same entity is being folded, which
// happens only when a producer keys events by something other than their
// entity_id. The message is retried in place.
var errBusy = errors.New("entity busy: its events are not keyed by entity_id")

// NewHandler returns a user aggregator. Its metrics are registered on reg.
func NewHandler(pub Publisher, read ChangelogReader, reg prometheus.Registerer, log *zap.Logger) (*Handler, error) {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "synchub", Subsystem: "aggregate", Name: "events_total",
		Help: "Raw events seen by the aggregator, by outcome.",
	}, []string{"outcome"})
	if err := reg.Register(events); err != nil {
		return nil, fmt.Errorf("registering aggregator metrics: %w", err)
	}
	return &Handler{
		pub: pub, read: read, log: log, events: events,
		topic: kafka.EntityTopic(EntityUser), maxSize: event.DefaultMaxBytes,
		parts: make(map[int32]*partition),
	}, nil
}

// Assign restores the users of the given partitions from entity.user. It is
// the subscriber's OnAssign hook, so no event of those partitions is handled
// before their state is back.
func (h *Handler) Assign(ctx context.Context, _ string, partitions []int32) error {
	for _, p := range partitions {
		users := make(map[string]*User)
		err := h.read(ctx, h.topic, p, func(value []byte) error {
			var u User
			if err := json.Unmarshal(value, &u); err != nil || u.ID == "" {
				h.log.Warn("skipping undecodable snapshot in changelog", zap.String("topic", h.topic), zap.Int32("partition", p), zap.Error(err))
				return nil
			}
			users[u.ID] = &u
			return nil
		})
		if err != nil {
			return fmt.Errorf("restoring users of partition %d: %w", p, err)
		}
		h.mu.Lock()
		h.parts[p] = &partition{users: users, busy: map[string]bool{}}
		h.mu.Unlock()
		h.log.Info("restored partition", zap.String("entity", EntityUser), zap.Int32("partition", p), zap.Int("users", len(users)))
	}
	return nil
}

// Revoke drops the state of partitions this instance no longer owns; their
// next owner restores it from the changelog.
func (h *Handler) Revoke(_ string, partitions []int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range partitions {
		delete(h.parts, p)
	}
}

// Users returns the number of users held, for tests and metrics.
func (h *Handler) Users() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, p := range h.parts {
		p.mu.Lock()
		n += len(p.users)
		p.mu.Unlock()
	}
	return n
}

// Handle applies one raw event. It returns an error only for failures worth
// retrying in place (publishing); anything wrong with the event itself goes
// to events.invalid and the event is acknowledged.
func (h *Handler) Handle(msg *message.Message) (err error) {
	rec, ok := kafka.RecordFromContext(msg.Context())
	if !ok {
		return errors.New("message without Kafka coordinates")
	}
	// A panic on some input is a bug, but redelivering that input forever
	// would stall the partition: set the event aside with the panic as its
	// reason instead.
	defer func() {
		if r := recover(); r != nil {
			err = h.reject(msg, rec, fmt.Sprintf("aggregator panicked on this event: %v", r))
		}
	}()
	env, err := event.DecodeLimit(msg.Payload, h.maxSize)
	var inv *event.InvalidError
	switch {
	case errors.As(err, &inv):
		return h.reject(msg, rec, inv.Reason)
	case errors.Is(err, event.ErrUnknownType):
		h.events.WithLabelValues(OutcomeUnknownType).Inc()
		h.log.Debug("skipping unknown event type", zap.String("event_type", env.Type), zap.Int32("partition", rec.Partition), zap.Int64("offset", rec.Offset))
		return nil
	case err != nil:
		return err
	}
	if !IsUserEvent(env.Type) {
		h.events.WithLabelValues(OutcomeOtherEntity).Inc()
		return nil
	}

	h.mu.Lock()
	part, owned := h.parts[rec.Partition]
	h.mu.Unlock()
	if !owned {
		return fmt.Errorf("partition %d is not assigned to this instance", rec.Partition)
	}
	prev, err := part.acquire(env.EntityID)
	if err != nil {
		return err
	}
	var next *User
	defer func() { part.release(env.EntityID, next) }()
	next, err = h.apply(msg, rec, prev, env)
	return err
}

// apply folds env into prev and publishes the result. It returns the new
// state, or nil when the state did not change.
func (h *Handler) apply(msg *message.Message, rec kafka.Record, prev *User, env event.Envelope) (*User, error) {
	if prev != nil && rec.Offset <= prev.Source.Offset {
		h.events.WithLabelValues(OutcomeDuplicate).Inc()
		return nil, nil
	}
	next, err := ApplyUser(prev, env, Source{Partition: rec.Partition, Offset: rec.Offset})
	if err != nil {
		return nil, h.reject(msg, rec, err.Error())
	}
	if err := h.publish(next, rec.Partition); err != nil {
		return nil, err
	}
	h.events.WithLabelValues(OutcomeApplied).Inc()
	return next, nil
}

func (p *partition) acquire(id string) (*User, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[id] {
		return nil, errBusy
	}
	p.busy[id] = true
	return p.users[id], nil
}

// release ends a fold of id, storing next unless it is nil.
func (p *partition) release(id string, next *User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.busy, id)
	if next != nil {
		p.users[id] = next
	}
}

func (h *Handler) publish(u *User, partition int32) error {
	payload, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encoding user %s: %w", u.ID, err)
	}
	out := message.NewMessage(fmt.Sprintf("%s/%s/v%d", EntityUser, u.ID, u.Version), payload)
	out.Metadata.Set(kafka.HeaderEntityType, EntityUser)
	out.Metadata.Set(kafka.HeaderVersion, strconv.FormatInt(u.Version, 10))
	out.Metadata.Set(kafka.HeaderOrganizationID, u.OrganizationID)
	kafka.SetKey(out, []byte(u.ID))
	kafka.SetPartition(out, partition)
	if err := h.pub.Publish(h.topic, out); err != nil {
		return fmt.Errorf("publishing user %s v%d: %w", u.ID, u.Version, err)
	}
	return nil
}

// reject sends the original record, bytes and headers untouched, to
// events.invalid with the reason in synchub.error.
func (h *Handler) reject(msg *message.Message, rec kafka.Record, reason string) error {
	out := message.NewMessage(msg.UUID, msg.Payload)
	for k, v := range msg.Metadata {
		out.Metadata.Set(k, v)
	}
	out.Metadata.Set(kafka.HeaderError, reason)
	if rec.Key != nil {
		kafka.SetKey(out, rec.Key)
	}
	if err := h.pub.Publish(kafka.TopicEventsInvalid, out); err != nil {
		return fmt.Errorf("dead-lettering invalid event %s/%d/%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	h.events.WithLabelValues(OutcomeInvalid).Inc()
	h.log.Debug("invalid event", zap.String("reason", reason), zap.Int32("partition", rec.Partition), zap.Int64("offset", rec.Offset))
	return nil
}
