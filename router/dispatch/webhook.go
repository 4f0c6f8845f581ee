// Package dispatch is the connector stage: it takes entity snapshots, finds
// the customer they belong to and hands them to that customer's connector,
// batched, coalesced, rate-limited and circuit-broken per customer.
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

	"github.com/synchub/synchub/connectors/webhook"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/retry"
)

// ConnectorWebhook is the webhook connector's name in topics and headers.
const ConnectorWebhook = "webhook"

// Deliverer sends snapshots of one entity type to one webhook endpoint in
// one request.
type Deliverer interface {
	DeliverBatch(ctx context.Context, ep webhook.Endpoint, p webhook.Policy, gate webhook.Gate, entityType string, snapshots [][]byte) error
}

// WebhookRoute is one customer's webhook.
type WebhookRoute struct {
	Endpoint webhook.Endpoint
	Policy   webhook.Policy
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

// Webhook routes snapshots to their customers' webhooks.
type Webhook struct {
	client Deliverer
	routes atomic.Pointer[map[string]WebhookRoute]
	linger time.Duration
	clock  clock
	ctx    context.Context
	cancel context.CancelFunc

	records  *prometheus.CounterVec
	requests *prometheus.CounterVec

	mu    sync.Mutex
	pairs map[string]*pair
}

// NewWebhook returns the webhook connector stage for routes, keyed by
// customer id (the events' organization_id). A batch waits at most linger
// to fill up.
func NewWebhook(client Deliverer, routes map[string]WebhookRoute, linger time.Duration, reg prometheus.Registerer) (*Webhook, error) {
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "synchub", Subsystem: "connector", Name: "records_total",
		Help: "Records seen by a connector, by customer and outcome.",
	}, []string{"connector", "customer", "outcome"})
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "synchub", Subsystem: "connector", Name: "requests_total",
		Help: "Deliveries (requests, not counting retries) made by a connector, by customer.",
	}, []string{"connector", "customer"})
	for _, c := range []prometheus.Collector{records, requests} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering webhook metrics: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhook{
		client: client, linger: linger, clock: realClock{}, ctx: ctx, cancel: cancel,
		records: records, requests: requests, pairs: map[string]*pair{},
	}
	w.routes.Store(&routes)
	return w, nil
}

// SetRoutes replaces every customer's route while the stage runs: a
// customer whose webhook was enabled, disabled or changed gets the new
// route from its next record on. Deliveries already under way finish with
// the route they started with.
func (w *Webhook) SetRoutes(routes map[string]WebhookRoute) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, p := range w.pairs {
		org, _, _ := strings.Cut(key, "\x00")
		if r, ok := routes[org]; !ok || !reflect.DeepEqual(r, p.route) {
			delete(w.pairs, key)
		}
	}
	w.routes.Store(&routes)
}

// Close abandons deliveries in progress; their records are redelivered by
// Kafka after a restart.
func (w *Webhook) Close() { w.cancel() }

// Handle delivers one snapshot. A record of a customer without an enabled
// webhook for that entity type is acknowledged and skipped. Errors are
// classified (retry.Error) so the middleware can tell a dead letter from a
// held record or a shutdown.
func (w *Webhook) Handle(msg *message.Message) error {
	rec, ok := kafka.RecordFromContext(msg.Context())
	if !ok {
		return errors.New("message without Kafka coordinates")
	}
	entityType := strings.TrimPrefix(rec.Topic, "entity.")
	org := msg.Metadata.Get(kafka.HeaderOrganizationID)
	route, ok := (*w.routes.Load())[org]
	if !ok || !slices.Contains(route.Entities, entityType) {
		w.records.WithLabelValues(ConnectorWebhook, org, "skipped").Inc()
		return nil
	}
	version, err := strconv.ParseInt(msg.Metadata.Get(kafka.HeaderVersion), 10, 64)
	if err != nil || len(rec.Key) == 0 {
		return &retry.Error{Class: retry.InvalidInput, Attempts: 0, Err: fmt.Errorf("entity record without key or %s header", kafka.HeaderVersion)}
	}
	err = w.pair(org, entityType, route).submit(msg.Context(), &record{
		id: string(rec.Key), version: version, payload: msg.Payload, done: make(chan error, 1),
	})
	switch {
	case err == nil:
		w.records.WithLabelValues(ConnectorWebhook, org, "delivered").Inc()
		return nil
	case retry.Terminal(err):
		w.records.WithLabelValues(ConnectorWebhook, org, "dead_lettered").Inc()
	case errors.Is(err, ErrHeld):
		w.records.WithLabelValues(ConnectorWebhook, org, "held").Inc()
	}
	return fmt.Errorf("webhook of %s: %w", org, err)
}

func (w *Webhook) pair(org, entityType string, route WebhookRoute) *pair {
	key := org + "\x00" + entityType
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.pairs[key]
	if !ok {
		requests := w.requests.WithLabelValues(ConnectorWebhook, org)
		p = &pair{
			route: route, entityType: entityType, client: w.client,
			gate:   newGate(ConnectorWebhook+"/"+org, route.RateLimit, route.Circuit, w.clock),
			linger: w.linger, sem: make(chan struct{}, max(route.MaxConcurrency, 1)), ctx: w.ctx,
			requests:  func(n int) { requests.Add(float64(n)) },
			delivered: map[string]int64{},
		}
		w.pairs[key] = p
	}
	return p
}
