package dispatch

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/mapping"
	"github.com/synchub/synchub/retry"
)

// Upserter is a vendor connector: it upserts records by their key and
// answers for each.
type Upserter interface {
	Upsert(ctx context.Context, gate connectors.Gate, recs []connectors.Record) []error
}

// MappedTarget is one customer's vendor connector: each snapshot goes
// through the customer's mapping and is upserted by KeyField.
type MappedTarget struct {
	Client   Upserter
	Mapping  *mapping.Mapping
	KeyField string
	// FormerKeys, when set, returns the record's former upsert keys
	// (connectors.Record.FormerKeys) from the decoded snapshot, its current
	// key and the version the endpoint is known to have (Prepare's
	// delivered).
	FormerKeys func(entity map[string]any, key string, delivered int64) []string
}

// Prepare maps the snapshot. A mapping that fails, or leaves the upsert
// key empty, fails the record as invalid_mapping.
func (t MappedTarget) Prepare(_ string, snapshot []byte, delivered int64) (any, error) {
	var entity map[string]any
	if err := json.Unmarshal(snapshot, &entity); err != nil {
		return nil, &retry.Error{Class: retry.InvalidInput, Err: fmt.Errorf("decoding snapshot: %w", err)}
	}
	fields, err := t.Mapping.Apply(entity)
	if err != nil {
		return nil, &retry.Error{Class: retry.InvalidMapping, Err: err}
	}
	key, _ := fields[t.KeyField].(string)
	if key == "" {
		return nil, &retry.Error{Class: retry.InvalidMapping, Err: fmt.Errorf("upsert key %s is empty", t.KeyField)}
	}
	rec := connectors.Record{Key: key, Fields: fields}
	if t.FormerKeys != nil {
		rec.FormerKeys = t.FormerKeys(entity, key, delivered)
	}
	return rec, nil
}

// Send upserts items in one call; the connector splits them within the
// vendor's limits and answers for each.
func (t MappedTarget) Send(ctx context.Context, gate connectors.Gate, _ string, items []any) []error {
	recs := make([]connectors.Record, len(items))
	for i, it := range items {
		recs[i] = it.(connectors.Record)
	}
	return t.Client.Upsert(ctx, gate, recs)
}
