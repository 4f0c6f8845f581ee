package dispatch

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/retry"
)

// Target is where one customer's records of one connector go.
type Target interface {
	// Prepare turns an entity snapshot into what Send takes (the snapshot
	// itself, or the vendor record its mapping makes). delivered is the
	// newest version of the entity this stage delivered to the endpoint
	// since it started, 0 when none: what the endpoint is known to have.
	// An error is the record's own: it is dead-lettered.
	Prepare(entityType string, snapshot []byte, delivered int64) (any, error)
	// Send delivers items in one go as far as the vendor allows and
	// returns one outcome per item, classified with retry.Error.
	Send(ctx context.Context, gate connectors.Gate, entityType string, items []any) []error
}

// Route is one customer's connector.
type Route struct {
	Target Target
	// Entities are the entity types the customer subscribed to.
	Entities []string
	// BatchSize is the most records one request carries (1: one each).
	BatchSize int
	// RateLimit bounds requests; nil: unlimited.
	RateLimit *RateLimit
	// MaxConcurrency bounds requests in flight.
	MaxConcurrency int
	// Circuit says when the endpoint counts as down.
	Circuit Circuit
}

// Metrics are the connector stages' counters, shared by every stage of a
// hub.
type Metrics struct {
	records  *prometheus.CounterVec
	requests *prometheus.CounterVec
}

// NewMetrics registers the connector metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "synchub", Subsystem: "connector", Name: "records_total",
			Help: "Records seen by a connector, by customer and outcome.",
		}, []string{"connector", "customer", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "synchub", Subsystem: "connector", Name: "requests_total",
			Help: "Deliveries (requests, not counting retries) made by a connector, by customer.",
		}, []string{"connector", "customer"}),
	}
	for _, c := range []prometheus.Collector{m.records, m.requests} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering connector metrics: %w", err)
		}
	}
	return m, nil
}

// Stage routes entity snapshots to one connector of their customers.
type Stage struct {
	connector string
	// OnCircuit, when set, hears every circuit state change of a customer.
	OnCircuit func(customer, from, to string)
	routes    atomic.Pointer[map[string]Route]
	linger    time.Duration
	clock     clock
	ctx       context.Context
	cancel    context.CancelFunc
	metrics   *Metrics

	mu    sync.Mutex
	pairs map[string]*pair
}

// NewStage returns the stage of connector with routes keyed by customer id
// (the events' organization_id). A batch waits at most linger to fill up.
func NewStage(connector string, routes map[string]Route, linger time.Duration, m *Metrics) *Stage {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stage{
		connector: connector, linger: linger, clock: realClock{}, ctx: ctx, cancel: cancel,
		metrics: m, pairs: map[string]*pair{},
	}
	s.routes.Store(&routes)
	return s
}

// Close abandons deliveries in progress; their records are redelivered by
// Kafka after a restart.
func (s *Stage) Close() { s.cancel() }

// SetRoutes replaces every customer's route while the stage runs: a
// customer whose connector was enabled, disabled or changed gets the new
// route from its next record on. Deliveries already under way finish with
// the route they started with.
func (s *Stage) SetRoutes(routes map[string]Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, p := range s.pairs {
		org, _, _ := strings.Cut(key, "\x00")
		if r, ok := routes[org]; !ok || !reflect.DeepEqual(r, p.route) {
			delete(s.pairs, key)
		}
	}
	s.routes.Store(&routes)
}

// Handle delivers one snapshot. A record of a customer without this
// connector enabled for its entity type is acknowledged and skipped. Errors
// are classified (retry.Error) so the middleware can tell a dead letter
// from a held record or a shutdown.
func (s *Stage) Handle(msg *message.Message) error {
	rec, ok := kafka.RecordFromContext(msg.Context())
	if !ok {
		return errors.New("message without Kafka coordinates")
	}
	// A record from the connector's retry topic was sent again by a replay
	// or resync: its entity type is in a header, and it is delivered even
	// if this version already was, since sending it again is the point.
	entityType, fromEntityTopic := strings.CutPrefix(rec.Topic, "entity.")
	resend := !fromEntityTopic
	if resend {
		entityType = msg.Metadata.Get(kafka.HeaderEntityType)
	}
	org := msg.Metadata.Get(kafka.HeaderOrganizationID)
	route, ok := (*s.routes.Load())[org]
	if !ok || !slices.Contains(route.Entities, entityType) {
		s.count(org, "skipped")
		return nil
	}
	version, err := strconv.ParseInt(msg.Metadata.Get(kafka.HeaderVersion), 10, 64)
	if err != nil || len(rec.Key) == 0 {
		return &retry.Error{Class: retry.InvalidInput, Err: fmt.Errorf("entity record without key or %s header", kafka.HeaderVersion)}
	}
	p := s.pair(org, entityType, route)
	item, err := route.Target.Prepare(entityType, msg.Payload, p.deliveredVersion(string(rec.Key)))
	if err != nil {
		s.count(org, "dead_lettered")
		return fmt.Errorf("%s of %s: %w", s.connector, org, err)
	}
	err = p.submit(msg.Context(), &record{
		id: string(rec.Key), version: version, item: item, resend: resend, done: make(chan error, 1),
	})
	switch {
	case err == nil:
		s.count(org, "delivered")
		return nil
	case retry.Terminal(err):
		s.count(org, "dead_lettered")
	case errors.Is(err, ErrHeld):
		s.count(org, "held")
	}
	return fmt.Errorf("%s of %s: %w", s.connector, org, err)
}

func (s *Stage) count(org, outcome string) {
	s.metrics.records.WithLabelValues(s.connector, org, outcome).Inc()
}

func (s *Stage) pair(org, entityType string, route Route) *pair {
	key := org + "\x00" + entityType
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pairs[key]
	if !ok {
		requests := s.metrics.requests.WithLabelValues(s.connector, org)
		p = &pair{
			route: route, entityType: entityType,
			gate: newGate(s.connector+"/"+org, route.RateLimit, route.Circuit, s.clock, func(from, to string) {
				if s.OnCircuit != nil {
					s.OnCircuit(org, from, to)
				}
			}),
			linger: s.linger, sem: make(chan struct{}, max(route.MaxConcurrency, 1)), ctx: s.ctx,
			requests:  func(n int) { requests.Add(float64(n)) },
			delivered: map[string]int64{},
		}
		s.pairs[key] = p
	}
	return p
}
