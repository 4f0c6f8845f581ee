// Package replay holds the operator's dead-letter operations: inspect a
// connector's dead-letter topic, send its records again, purge old ones, and
// resync a customer. Every operation reads its topics up to their end at the
// moment it starts and returns; none is a forever-consumer.
//
// Records sent again go to connector.<c>.retry, which only connector c reads,
// so no other connector sees them, and each carries its customer's
// organization_id, so no other customer does. A replayed entity record is
// sent as the entity's current snapshot, read from its entity topic, never as
// the stale copy kept in the dead-letter topic.
//
// The retry topic is also the ledger of what was replayed: every record sent
// names the dead-letter records it answers in its synchub.replay_of header,
// and a replay reads those first. So a run that was interrupted, or run
// twice, never replays a record twice. Two runs at the same moment are not
// guarded against; operators run one at a time.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/retry"
)

// Headers of the records this package writes to a retry topic.
const (
	// HeaderReplayOf lists the dead-letter records ("partition:offset",
	// comma-separated) a replayed record answers.
	HeaderReplayOf = "synchub.replay_of"
	// HeaderResync marks a record sent by a resync, with its start time.
	HeaderResync = "synchub.resync"
)

// ErrUsage marks a request that names something that does not exist, like an
// unknown connector or customer; the CLI exits 2 and the API answers 400.
var ErrUsage = errors.New("invalid request")

// Ops runs the operations against one Kafka cluster.
type Ops struct {
	client     sarama.Client
	producer   sarama.SyncProducer
	admin      sarama.ClusterAdmin
	config     func() *config.Config
	connectors []string
	now        func() time.Time
}

// Deps is what Ops needs.
type Deps struct {
	Brokers []string
	// Config returns the config in force; the hub's changes on reload.
	Config func() *config.Config
	// Connectors are the names of every connector the hub has.
	Connectors []string
	// Now is the clock for time filters and purges; default time.Now.
	Now func() time.Time
}

// New connects to the cluster.
func New(d Deps) (*Ops, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	client, err := sarama.NewClient(d.Brokers, kafka.SaramaConfig("synchub-replay"))
	if err != nil {
		return nil, fmt.Errorf("connecting to Kafka at %s: %w", strings.Join(d.Brokers, ","), err)
	}
	o := &Ops{client: client, config: d.Config, connectors: d.Connectors, now: d.Now}
	if o.producer, err = sarama.NewSyncProducerFromClient(client); err != nil {
		return nil, errors.Join(fmt.Errorf("creating producer: %w", err), client.Close())
	}
	if o.admin, err = sarama.NewClusterAdminFromClient(client); err != nil {
		return nil, errors.Join(fmt.Errorf("creating admin: %w", err), o.Close())
	}
	return o, nil
}

// Close releases the connections.
func (o *Ops) Close() error {
	// Not admin.Close: it would close the shared client.
	return errors.Join(o.producer.Close(), o.client.Close())
}

// Filter selects dead-letter records. Zero fields select everything.
type Filter struct {
	Connector  string `json:"connector,omitempty"`
	Customer   string `json:"customer,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`
	// Since and Until bound when the record was dead-lettered: at or after
	// Since, before Until.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Key is an entity id.
	Key string `json:"key,omitempty"`
}

func (f Filter) matches(r *Record) bool {
	return (f.Customer == "" || r.Customer == f.Customer) &&
		(f.ErrorClass == "" || r.ErrorClass == f.ErrorClass) &&
		(f.Since.IsZero() || !r.DeadLetteredAt.Before(f.Since)) &&
		(f.Until.IsZero() || r.DeadLetteredAt.Before(f.Until)) &&
		(f.Key == "" || r.Key == f.Key)
}

// Origin is where a dead-lettered record was read when it failed.
type Origin struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Record is one dead-lettered record with the reason it failed.
type Record struct {
	Connector      string    `json:"connector"`
	Partition      int32     `json:"partition"`
	Offset         int64     `json:"offset"`
	Key            string    `json:"key"`
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
	Customer       string    `json:"customer"`
	ErrorClass     string    `json:"error_class"`
	Reason         string    `json:"reason"`
	HTTPStatus     int       `json:"http_status,omitempty"`
	Attempts       int       `json:"attempts"`
	ReplayCount    int       `json:"replay_count"`
	Origin         Origin    `json:"origin"`
	EntityType     string    `json:"entity_type,omitempty"`
	Version        int64     `json:"version,omitempty"`
	// Replayed says a replay already sent this record's entity again.
	Replayed bool              `json:"replayed"`
	Headers  map[string]string `json:"headers"`
	// Payload is the record's value: JSON as is, anything else as a string.
	Payload any `json:"payload"`
}

func (r *Record) coordinate() string { return coordinate(r.Partition, r.Offset) }

func coordinate(partition int32, offset int64) string {
	return strconv.FormatInt(int64(partition), 10) + ":" + strconv.FormatInt(offset, 10)
}

// errEnough stops a read early: the caller has what it needs.
var errEnough = errors.New("read enough")

// connector checks that name is a connector the hub has.
func (o *Ops) connector(name string) error {
	if !slices.Contains(o.connectors, name) {
		return fmt.Errorf("%w: unknown connector %q (have %s)", ErrUsage, name, strings.Join(o.connectors, ", "))
	}
	return nil
}

// selected returns the connectors f names, or all of them.
func (o *Ops) selected(f Filter) ([]string, error) {
	if f.Connector == "" {
		return o.connectors, nil
	}
	return []string{f.Connector}, o.connector(f.Connector)
}

// scan calls fn for every record of connector's dead-letter topic, up to its
// end when scan starts, with Replayed filled from the ledger.
func (o *Ops) scan(ctx context.Context, connector string, fn func(*Record) error) error {
	replayed, err := o.ledger(ctx, connector)
	if err != nil {
		return err
	}
	return o.each(ctx, kafka.DLQTopic(connector), func(m *sarama.ConsumerMessage) error {
		r := decode(connector, m)
		r.Replayed = replayed[r.coordinate()]
		return fn(r)
	})
}

// each reads every partition of topic up to its current end.
func (o *Ops) each(ctx context.Context, topic string, fn func(*sarama.ConsumerMessage) error) error {
	partitions, err := o.client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("partitions of %s: %w", topic, err)
	}
	for _, p := range partitions {
		if err := kafka.ReadPartition(ctx, o.client, topic, p, fn); err != nil {
			return err
		}
	}
	return nil
}

// ledger returns the dead-letter coordinates that replays already answered.
func (o *Ops) ledger(ctx context.Context, connector string) (map[string]bool, error) {
	done := map[string]bool{}
	err := o.each(ctx, kafka.RetryTopic(connector), func(m *sarama.ConsumerMessage) error {
		for _, h := range m.Headers {
			if string(h.Key) != HeaderReplayOf {
				continue
			}
			for c := range strings.SplitSeq(string(h.Value), ",") {
				done[c] = true
			}
		}
		return nil
	})
	return done, err
}

func decode(connector string, m *sarama.ConsumerMessage) *Record {
	h := make(map[string]string, len(m.Headers))
	for _, rh := range m.Headers {
		if !sensitive(string(rh.Key)) {
			h[string(rh.Key)] = string(rh.Value)
		}
	}
	atoi := func(k string) int { n, _ := strconv.Atoi(h[k]); return n }
	r := &Record{
		Connector: connector, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key),
		DeadLetteredAt: m.Timestamp.UTC(),
		Customer:       h[retry.HeaderCustomer],
		ErrorClass:     h[retry.HeaderErrorClass],
		Reason:         h[retry.HeaderExceptionMsg],
		HTTPStatus:     atoi(retry.HeaderHTTPStatus),
		Attempts:       atoi(retry.HeaderAttempts),
		ReplayCount:    atoi(retry.HeaderReplayCount),
		Origin:         Origin{Topic: h[retry.HeaderTopic], Partition: int32(atoi(retry.HeaderPartition)), Offset: int64(atoi(retry.HeaderOffset))},
		EntityType:     h[kafka.HeaderEntityType],
		Headers:        h,
		Payload:        string(m.Value),
	}
	if r.Customer == "" {
		r.Customer = h[kafka.HeaderOrganizationID]
	}
	if r.EntityType == "" {
		r.EntityType, _ = strings.CutPrefix(r.Origin.Topic, "entity.")
	}
	r.Version, _ = strconv.ParseInt(h[kafka.HeaderVersion], 10, 64)
	if json.Valid(m.Value) {
		r.Payload = json.RawMessage(m.Value)
	}
	return r
}

// sensitive says a header might hold a credential. The hub never writes
// one; this keeps a record produced by something else from showing it.
func sensitive(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"authorization", "token", "secret", "password", "api_key", "apikey", "cookie"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
