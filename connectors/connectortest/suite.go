// Package connectortest is the contract every vendor connector must pass
// against its fake vendor: the same scenarios for all, so a connector that
// passes here behaves like the others in the dispatch stage.
package connectortest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/retry"
)

// Fake is a fake vendor server as the suite drives it.
type Fake interface {
	// URL is the base URL the connector is configured with.
	URL() string
	// Records returns what the vendor holds: upsert key → fields.
	Records() map[string]map[string]any
	// Requests counts the API requests received (token requests excluded).
	Requests() int
	// MaxBatch is the most records the vendor accepted in one request so far.
	MaxBatch() int
	// FailNext makes the next n API requests fail as an outage (5xx).
	FailNext(n int)
	// ThrottleNext makes the next n API requests get the vendor's throttle
	// signal (429, or its own codes).
	ThrottleNext(n int)
	// ExpireTokens invalidates every access token issued so far.
	ExpireTokens()
	// Reject makes the vendor refuse the record with this key permanently,
	// with a record-level error carrying message.
	Reject(key, message string)
}

// Connector is the connector under test.
type Connector interface {
	Upsert(ctx context.Context, gate connectors.Gate, recs []connectors.Record) []error
}

// Setup builds a fake and a connector configured against it.
type Setup func(t *testing.T) (Fake, Connector)

// Run runs the contract. sample returns the i-th record as the connector's
// default mapping would produce it (distinct keys for distinct i).
func Run(t *testing.T, setup Setup, sample func(i int) connectors.Record) {
	t.Helper()
	const n = 450 // more than any vendor's batch limit
	records := func(from, to int) []connectors.Record {
		var out []connectors.Record
		for i := from; i < to; i++ {
			out = append(out, sample(i))
		}
		return out
	}
	upsert := func(t *testing.T, c Connector, recs []connectors.Record) []error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		errs := c.Upsert(ctx, connectors.OpenGate{}, recs)
		if len(errs) != len(recs) {
			t.Fatalf("Upsert returned %d results for %d records", len(errs), len(recs))
		}
		return errs
	}
	allOK := func(t *testing.T, errs []error) {
		t.Helper()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
	}
	holds := func(t *testing.T, f Fake, recs []connectors.Record) {
		t.Helper()
		got := f.Records()
		for _, r := range recs {
			stored, ok := got[r.Key]
			if !ok {
				t.Fatalf("vendor does not hold %s", r.Key)
			}
			for k, v := range r.Fields {
				if fmt.Sprint(stored[k]) != fmt.Sprint(v) {
					t.Fatalf("%s.%s = %v, want %v", r.Key, k, stored[k], v)
				}
			}
		}
	}

	t.Run("happy path within the batch limit", func(t *testing.T) {
		f, c := setup(t)
		recs := records(0, n)
		allOK(t, upsert(t, c, recs))
		holds(t, f, recs)
		if got := len(f.Records()); got != n {
			t.Errorf("vendor holds %d records, want %d", got, n)
		}
		if f.Requests() < 2 {
			t.Errorf("%d records in %d request(s): the batch limit was not applied", n, f.Requests())
		}
	})
	t.Run("repeat is idempotent", func(t *testing.T) {
		f, c := setup(t)
		recs := records(0, 20)
		allOK(t, upsert(t, c, recs))
		changed := records(0, 20)
		allOK(t, upsert(t, c, changed))
		if got := len(f.Records()); got != 20 {
			t.Errorf("vendor holds %d records after a repeat, want 20", got)
		}
		holds(t, f, changed)
	})
	t.Run("partial batch failure", func(t *testing.T) {
		f, c := setup(t)
		recs := records(0, 30)
		f.Reject(recs[3].Key, "synthetic rejection of record 3")
		f.Reject(recs[17].Key, "synthetic rejection of record 17")
		errs := upsert(t, c, recs)
		for i, err := range errs {
			switch i {
			case 3, 17:
				var re *retry.Error
				if !errors.As(err, &re) || re.Class != retry.Permanent {
					t.Errorf("record %d: %v, want a permanent retry.Error", i, err)
				} else if !strings.Contains(err.Error(), fmt.Sprintf("record %d", i)) {
					t.Errorf("record %d: %q lacks the vendor's message", i, err)
				}
			default:
				if err != nil {
					t.Errorf("record %d: %v", i, err)
				}
			}
		}
		if got := len(f.Records()); got != 28 {
			t.Errorf("vendor holds %d records, want 28", got)
		}
	})
	t.Run("throttle is honoured and retried", func(t *testing.T) {
		f, c := setup(t)
		f.ThrottleNext(2)
		recs := records(0, 10)
		allOK(t, upsert(t, c, recs))
		holds(t, f, recs)
	})
	t.Run("token expiry mid-run costs no record", func(t *testing.T) {
		f, c := setup(t)
		allOK(t, upsert(t, c, records(0, 10)))
		f.ExpireTokens()
		recs := records(10, 20)
		allOK(t, upsert(t, c, recs))
		holds(t, f, recs)
	})
	t.Run("outage is retried", func(t *testing.T) {
		f, c := setup(t)
		f.FailNext(3)
		recs := records(0, 10)
		allOK(t, upsert(t, c, recs))
		holds(t, f, recs)
	})
}
