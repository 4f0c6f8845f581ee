package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Record is where a message came from. The Subscriber puts it in every
// message's context.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Timestamp time.Time
}

type recordKey struct{}

// RecordFromContext returns the Kafka coordinates of the message whose
// context this is.
func RecordFromContext(ctx context.Context) (Record, bool) {
	r, ok := ctx.Value(recordKey{}).(Record)
	return r, ok
}

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	Brokers []string
	// Group is the consumer group; every Subscribe call joins it.
	Group string
	// ClientID names the client in broker logs; default "synchub".
	ClientID string
	// NackResendSleep is how long a Nacked message waits before it is sent
	// again (default 500ms). Its key waits with it: order is kept.
	NackResendSleep time.Duration
	// MaxInFlight is how many messages of one partition may be out at once
	// (default 1: strictly one after another). Two messages with the same
	// key are never out together, and a key's messages go out in offset
	// order.
	MaxInFlight int
	// MaxPending bounds the records of one partition read but not yet out
	// (default 10000); when reached, the partition stops reading.
	MaxPending int
	// Coalesce is for topics of whole snapshots keyed by entity: a record
	// waiting behind one of its key is replaced by a newer record of that
	// key, and the older is acknowledged unseen. A claim also reads up to
	// the partition's end before emitting anything, so records redelivered
	// after a crash or rebalance go out only as each key's newest: an older
	// version is never emitted after a newer one was.
	Coalesce bool
	// LaneHeader names a header that splits a partition's records into
	// lanes (e.g. the customer); MaxInFlightPerLane then bounds each lane's
	// share of MaxInFlight, so one slow lane cannot hold every slot.
	LaneHeader         string
	MaxInFlightPerLane int
	// RevokeGrace is how long a claim that is ending waits for its
	// messages' outcomes before it gives them up (default 5s); their
	// records are then delivered again by the partition's next owner.
	RevokeGrace time.Duration
	// OnAssign is called with the partitions of topic this member owns,
	// before any of their messages is emitted; an error fails the session
	// and it is retried. OnRevoke is called when the claims end, after
	// their messages' outcomes are in or RevokeGrace has passed.
	OnAssign func(ctx context.Context, topic string, partitions []int32) error
	OnRevoke func(topic string, partitions []int32)
}

func (c *SubscriberConfig) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = "synchub"
	}
	if c.NackResendSleep == 0 {
		c.NackResendSleep = 500 * time.Millisecond
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 1
	}
	if c.MaxPending == 0 {
		c.MaxPending = 10000
	}
	if c.MaxInFlightPerLane == 0 {
		c.MaxInFlightPerLane = c.MaxInFlight
	}
	if c.RevokeGrace == 0 {
		c.RevokeGrace = 5 * time.Second
	}
}

// Validate reports every problem with the configuration.
func (c SubscriberConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("no consumer group"))
	}
	if c.NackResendSleep < 0 {
		errs = append(errs, errors.New("negative NackResendSleep"))
	}
	if c.MaxInFlight < 0 || c.MaxPending < 0 || c.MaxInFlightPerLane < 0 {
		errs = append(errs, errors.New("negative MaxInFlight, MaxPending or MaxInFlightPerLane"))
	}
	return errors.Join(errs...)
}

// Subscriber is a Watermill subscriber over a Sarama consumer group. Unlike
// watermill-kafka's it reports partition assignment and revocation
// (aggregators restore and drop per-partition state there) and emits many
// messages of a partition at once, ordered per key: see claim.go. Offsets
// are committed only below the lowest unfinished message, so a crash never
// leaves a gap. A Nacked message is sent again after NackResendSleep.
type Subscriber struct {
	cfg    SubscriberConfig
	logger watermill.LoggerAdapter

	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewSubscriber checks cfg and returns a Subscriber.
func NewSubscriber(cfg SubscriberConfig, logger watermill.LoggerAdapter) (*Subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid subscriber config: %w", err)
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Subscriber{cfg: cfg, logger: logger, closing: make(chan struct{})}, nil
}

// Subscribe joins the group for topic and returns its messages. The channel
// closes when ctx is done or the Subscriber is closed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, errors.New("subscriber closed")
	default:
	}
	client, err := sarama.NewClient(s.cfg.Brokers, SaramaConfig(s.cfg.ClientID))
	if err != nil {
		return nil, fmt.Errorf("connecting consumer group %s: %w", s.cfg.Group, err)
	}
	group, err := sarama.NewConsumerGroupFromClient(s.cfg.Group, client)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("joining consumer group %s: %w", s.cfg.Group, err), client.Close())
	}
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *message.Message)
	h := &groupHandler{s: s, topic: topic, out: out, ctx: ctx, client: client}
	fields := watermill.LogFields{"topic": topic, "group": s.cfg.Group}

	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		select {
		case <-s.closing:
		case <-ctx.Done():
		}
		cancel()
	}()
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer func() {
			if err := errors.Join(group.Close(), client.Close()); err != nil {
				s.logger.Error("Closing consumer group", err, fields)
			}
		}()
		go func() {
			for err := range group.Errors() {
				s.logger.Error("Consumer group error", err, fields)
			}
		}()
		for ctx.Err() == nil {
			// Consume returns at every rebalance; join again.
			if err := group.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				s.logger.Error("Consuming, will rejoin", err, fields)
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
			}
		}
	}()
	return out, nil
}

// Close stops every subscription and waits for them to leave their groups.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

type groupHandler struct {
	s      *Subscriber
	topic  string
	out    chan<- *message.Message
	client sarama.Client
	// ctx is the subscription's context: handlers keep it across rebalances
	// so a revocation does not abort a delivery halfway.
	ctx context.Context
}

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	parts := sess.Claims()[h.topic]
	h.s.logger.Info("Partitions assigned", watermill.LogFields{"topic": h.topic, "group": h.s.cfg.Group, "partitions": fmt.Sprint(parts)})
	if h.s.cfg.OnAssign != nil && len(parts) > 0 {
		if err := h.s.cfg.OnAssign(sess.Context(), h.topic, parts); err != nil {
			return fmt.Errorf("assigning %s %v: %w", h.topic, parts, err)
		}
	}
	return nil
}

func (h *groupHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	if h.s.cfg.OnRevoke != nil {
		if parts := sess.Claims()[h.topic]; len(parts) > 0 {
			h.s.cfg.OnRevoke(h.topic, parts)
		}
	}
	return nil
}

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	holdUntil := int64(-1)
	if h.s.cfg.Coalesce {
		end, err := h.client.GetOffset(claim.Topic(), claim.Partition(), sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("end offset of %s/%d: %w", claim.Topic(), claim.Partition(), err)
		}
		if end > claim.InitialOffset() {
			holdUntil = end - 1
		}
	}
	return newClaimLoop(h, sess, claim, holdUntil).run()
}

func newMessage(ctx context.Context, rec *sarama.ConsumerMessage) *message.Message {
	meta := make(message.Metadata, len(rec.Headers))
	for _, hd := range rec.Headers {
		if hd != nil {
			meta[string(hd.Key)] = string(hd.Value)
		}
	}
	uuid := rec.Topic + "/" + strconv.FormatInt(int64(rec.Partition), 10) + "/" + strconv.FormatInt(rec.Offset, 10)
	msg := message.NewMessage(uuid, rec.Value)
	msg.Metadata = meta
	msg.SetContext(context.WithValue(ctx, recordKey{}, Record{
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Timestamp: rec.Timestamp,
	}))
	return msg
}
