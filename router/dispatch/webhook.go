// Package dispatch is the connector stage: it takes entity snapshots, finds
// the customer they belong to and hands them to that customer's connector.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/synchub/synchub/connectors/webhook"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/retry"
)

// ConnectorWebhook is the webhook connector's name in topics and headers.
const ConnectorWebhook = "webhook"

// Deliverer sends one snapshot to one webhook endpoint.
type Deliverer interface {
	Deliver(ctx context.Context, ep webhook.Endpoint, p webhook.Policy, entityType string, snapshot []byte) error
}

// WebhookRoute is one customer's webhook.
type WebhookRoute struct {
	Endpoint webhook.Endpoint
	Policy   webhook.Policy
	// Entities are the entity types the customer subscribed to.
	Entities []string
}

// Webhook routes snapshots to their customers' webhooks.
type Webhook struct {
	client    Deliverer
	routes    map[string]WebhookRoute
	delivered *prometheus.CounterVec
}

// NewWebhook returns the webhook connector stage for routes, keyed by
// customer id (the events' organization_id).
func NewWebhook(client Deliverer, routes map[string]WebhookRoute, reg prometheus.Registerer) (*Webhook, error) {
	delivered := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "synchub", Subsystem: "connector", Name: "records_total",
		Help: "Records seen by a connector, by customer and outcome.",
	}, []string{"connector", "customer", "outcome"})
	if err := reg.Register(delivered); err != nil {
		return nil, fmt.Errorf("registering webhook metrics: %w", err)
	}
	return &Webhook{client: client, routes: routes, delivered: delivered}, nil
}

// Handle delivers one snapshot. A record of a customer without an enabled
// webhook for that entity type is acknowledged and skipped. Errors are
// classified (retry.Error) so the middleware can tell a dead letter from a
// shutdown.
func (w *Webhook) Handle(msg *message.Message) error {
	rec, ok := kafka.RecordFromContext(msg.Context())
	if !ok {
		return errors.New("message without Kafka coordinates")
	}
	entityType := strings.TrimPrefix(rec.Topic, "entity.")
	org := msg.Metadata.Get(kafka.HeaderOrganizationID)
	if org == "" {
		var snap struct {
			OrganizationID string `json:"organization_id"`
		}
		if err := json.Unmarshal(msg.Payload, &snap); err != nil {
			return &retry.Error{Class: retry.InvalidInput, Err: fmt.Errorf("decoding snapshot: %w", err)}
		}
		org = snap.OrganizationID
		msg.Metadata.Set(kafka.HeaderOrganizationID, org)
	}
	route, ok := w.routes[org]
	if !ok || !slices.Contains(route.Entities, entityType) {
		w.delivered.WithLabelValues(ConnectorWebhook, org, "skipped").Inc()
		return nil
	}
	if err := w.client.Deliver(msg.Context(), route.Endpoint, route.Policy, entityType, msg.Payload); err != nil {
		outcome := "failed"
		if retry.Terminal(err) {
			outcome = "dead_lettered"
		}
		w.delivered.WithLabelValues(ConnectorWebhook, org, outcome).Inc()
		return fmt.Errorf("webhook of %s: %w", org, err)
	}
	w.delivered.WithLabelValues(ConnectorWebhook, org, "delivered").Inc()
	return nil
}
