// Package dispatch is the connector stage: it takes entity snapshots, finds
// the customer they belong to and hands them to that customer's connector,
// batched, coalesced, rate-limited and circuit-broken per customer.
package dispatch

import (
	"context"
	"errors"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/webhook"
)

// ConnectorWebhook is the webhook connector's name in topics and headers.
const ConnectorWebhook = "webhook"

// Deliverer sends snapshots of one entity type to one webhook endpoint in
// one request.
type Deliverer interface {
	DeliverBatch(ctx context.Context, ep webhook.Endpoint, p webhook.Policy, gate webhook.Gate, entityType string, snapshots [][]byte) error
}

// WebhookTarget is one customer's webhook endpoint.
type WebhookTarget struct {
	Client   Deliverer
	Endpoint webhook.Endpoint
	Policy   webhook.Policy
}

// Prepare sends the snapshot as it is.
func (t WebhookTarget) Prepare(_ string, snapshot []byte, _ int64) (any, error) {
	return snapshot, nil
}

// Send posts items in one request. A webhook answers for the whole batch,
// so every record shares its outcome, except a record the client could not
// encode: that one fails alone and the rest go again without it.
func (t WebhookTarget) Send(ctx context.Context, gate connectors.Gate, entityType string, items []any) []error {
	errs := make([]error, len(items))
	pending := make([]int, len(items))
	for i := range items {
		pending[i] = i
	}
	for len(pending) > 0 {
		snapshots := make([][]byte, len(pending))
		for j, i := range pending {
			snapshots[j] = items[i].([]byte)
		}
		err := t.Client.DeliverBatch(ctx, t.Endpoint, t.Policy, gate, entityType, snapshots)
		var bad *webhook.BatchInputError
		if errors.As(err, &bad) && len(pending) > 1 {
			errs[pending[bad.Index]] = err
			pending = append(pending[:bad.Index:bad.Index], pending[bad.Index+1:]...)
			continue
		}
		for _, i := range pending {
			errs[i] = err
		}
		break
	}
	return errs
}
