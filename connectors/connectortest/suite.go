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

// RunFormerKeys runs the contract of a connector keyed by a value that can
// change (an email): a record whose FormerKeys name the key the vendor
// holds it under moves that vendor record to its Key instead of creating a
// second one. sample is as for Run; a record with sample(j)'s Key and
// FormerKeys [sample(i).Key] is the entity of sample(i) after its key
// changed to sample(j)'s.
func RunFormerKeys(t *testing.T, setup Setup, sample func(i int) connectors.Record) {
	t.Helper()
	upsert := func(t *testing.T, c Connector, recs ...connectors.Record) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		errs := c.Upsert(ctx, connectors.OpenGate{}, recs)
		if len(errs) != len(recs) {
			t.Fatalf("Upsert returned %d results for %d records", len(errs), len(recs))
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("record %d (%s): %v", i, recs[i].Key, err)
			}
		}
	}
	movedTo := func(to int, from ...int) connectors.Record {
		r := sample(to)
		for _, i := range from {
			r.FormerKeys = append(r.FormerKeys, sample(i).Key)
		}
		return r
	}
	// holdsExactly checks that the vendor holds exactly recs, field by field.
	holdsExactly := func(t *testing.T, f Fake, recs ...connectors.Record) {
		t.Helper()
		got := f.Records()
		want := map[string]bool{}
		for _, r := range recs {
			want[r.Key] = true
			stored, ok := got[r.Key]
			if !ok {
				t.Errorf("vendor does not hold %s", r.Key)
				continue
			}
			for k, v := range r.Fields {
				if fmt.Sprint(stored[k]) != fmt.Sprint(v) {
					t.Errorf("%s.%s = %v, want %v", r.Key, k, stored[k], v)
				}
			}
		}
		for k := range got {
			if !want[k] {
				t.Errorf("vendor holds %s, which it should not (a stale record?)", k)
			}
		}
	}

	t.Run("rename of an existing record", func(t *testing.T) {
		f, c := setup(t)
		var first []connectors.Record
		for i := range 10 {
			first = append(first, sample(i))
		}
		upsert(t, c, first...)
		// Five move, five stay as they are, one is new: in one call.
		var second []connectors.Record
		for i := range 5 {
			second = append(second, movedTo(100+i, i))
		}
		for i := 5; i < 10; i++ {
			second = append(second, sample(i))
		}
		second = append(second, sample(200))
		upsert(t, c, second...)
		holdsExactly(t, f, second...)
		// A repeat (a redelivery after the move) finds nothing under the
		// former key and is a plain upsert.
		upsert(t, c, second...)
		holdsExactly(t, f, second...)
		// A second change, the vendor still at the first address.
		upsert(t, c, movedTo(300, 100, 0))
		holdsExactly(t, f, append([]connectors.Record{sample(300)}, second[1:]...)...)
	})
	t.Run("rename survives an outage and a throttle", func(t *testing.T) {
		f, c := setup(t)
		upsert(t, c, sample(0), sample(1))
		f.FailNext(2)
		f.ThrottleNext(1)
		upsert(t, c, movedTo(10, 0), movedTo(11, 1))
		holdsExactly(t, f, sample(10), sample(11))
	})
	t.Run("former key unknown to the vendor", func(t *testing.T) {
		f, c := setup(t)
		upsert(t, c, movedTo(1, 90))
		holdsExactly(t, f, sample(1))
		// An unknown newer former key, then a known older one: the record
		// under the older one moves.
		upsert(t, c, sample(2))
		upsert(t, c, movedTo(3, 91, 2))
		holdsExactly(t, f, sample(1), sample(3))
	})
	t.Run("new key already taken", func(t *testing.T) {
		f, c := setup(t)
		upsert(t, c, sample(0), sample(1))
		// The entity of sample(0) now has sample(1)'s key, which another
		// vendor record holds: that record is updated, the one under the
		// former key left alone, and no error.
		upsert(t, c, movedTo(1, 0))
		holdsExactly(t, f, sample(0), sample(1))
	})
}
