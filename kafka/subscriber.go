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
	// again (default 500ms). The partition waits with it: order is kept.
	NackResendSleep time.Duration
	// CommitOnAck commits the offset synchronously on every Ack instead of
	// on the auto-commit interval. After a crash at most the message in
	// flight is delivered again, never an older one after a newer one.
	CommitOnAck bool
	// OnAssign is called with the partitions of topic this member owns,
	// before any of their messages is emitted; an error fails the session
	// and it is retried. OnRevoke is called once no message of those
	// partitions is in flight any more.
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
	return errors.Join(errs...)
}

// Subscriber is a Watermill subscriber over a Sarama consumer group that,
// unlike watermill-kafka's, reports partition assignment and revocation
// (aggregators restore and drop per-partition state there) and can commit
// synchronously on Ack. Messages of one partition are emitted one at a time,
// in offset order; a Nacked message is sent again after NackResendSleep.
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
	group, err := sarama.NewConsumerGroup(s.cfg.Brokers, s.cfg.Group, SaramaConfig(s.cfg.ClientID))
	if err != nil {
		return nil, fmt.Errorf("joining consumer group %s: %w", s.cfg.Group, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *message.Message)
	h := &groupHandler{s: s, topic: topic, out: out, ctx: ctx}
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
			if err := group.Close(); err != nil {
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
	s     *Subscriber
	topic string
	out   chan<- *message.Message
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
	for {
		select {
		case rec, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if !h.deliver(sess, rec) {
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// deliver emits rec until it is Acked, and reports whether to go on. Once a
// message is out, it waits for its outcome even if the session ends, so
// OnRevoke never runs while a handler still uses the partition.
func (h *groupHandler) deliver(sess sarama.ConsumerGroupSession, rec *sarama.ConsumerMessage) bool {
	for {
		msg := newMessage(h.ctx, rec)
		select {
		case h.out <- msg:
		case <-sess.Context().Done():
			return false
		}
		select {
		case <-msg.Acked():
			h.mark(sess, rec)
			return sess.Context().Err() == nil
		case <-msg.Nacked():
			select {
			case <-time.After(h.s.cfg.NackResendSleep):
			case <-sess.Context().Done():
				return false
			}
		case <-h.ctx.Done():
			// Closing: keep an Ack that raced with the close.
			select {
			case <-msg.Acked():
				h.mark(sess, rec)
			default:
			}
			return false
		}
	}
}

// mark records rec as done. It is safe after the session context ends:
// Sarama commits marked offsets when the session is released, before this
// member rejoins, so no other member can have moved past rec yet.
func (h *groupHandler) mark(sess sarama.ConsumerGroupSession, rec *sarama.ConsumerMessage) {
	sess.MarkMessage(rec, "")
	if h.s.cfg.CommitOnAck {
		sess.Commit()
	}
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
