// Package connectors holds what every vendor connector shares: the record a
// mapping produces, the gate every HTTP attempt passes, and the retry policy.
// Each vendor lives in its own subpackage with its client and a fake server
// that behaves like the vendor.
package connectors

import (
	"context"
	"strings"
	"time"
)

// Record is one entity mapped for a vendor.
type Record struct {
	// Key is the vendor's upsert key for the record: an email, an external
	// id. Two records with the same Key are the same vendor object.
	Key string
	// Fields are the vendor's field names and values, after mapping.
	Fields map[string]any
	// FormerKeys are keys the same entity had before Key, newest first:
	// for a vendor keyed by email, the entity's previous addresses as the
	// mapping renders the key. A connector that can move a vendor record
	// from a former key to Key (rather than create a second record) does
	// so; the others ignore them. Empty for most records.
	FormerKeys []string
}

// Former returns r's former keys worth looking up: set, not Key, each once
// (keys are compared case-insensitively, as email-keyed vendors compare
// them; the first spelling is kept), newest first. It never cuts the list:
// how far back a record reaches is the entity's business (the user's
// previous_emails limit).
func (r Record) Former() []string {
	var out []string
	for _, k := range r.FormerKeys {
		if k == "" || strings.EqualFold(k, r.Key) || containsFold(out, k) {
			continue
		}
		out = append(out, k)
	}
	return out
}

func containsFold(s []string, v string) bool {
	for _, x := range s {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// Gate is consulted around every HTTP attempt a connector makes, retries
// included: the dispatch stage rate-limits and circuit-breaks through it.
type Gate interface {
	// Wait blocks until an attempt may be made or ctx ends.
	Wait(ctx context.Context) error
	// Done reports an attempt's outcome: the HTTP status (0 if none), the
	// delay the vendor asked for (0 if none) and the transport error if any.
	// A vendor's own throttle signal (Marketo 606/615/607, Salesforce 403
	// REQUEST_LIMIT_EXCEEDED) is reported as 429, and its own transient
	// failure codes as 503, so the stage slows or trips the pair alike.
	Done(status int, retryAfter time.Duration, err error)
}

// Policy bounds the retries of one Upsert call.
type Policy struct {
	MaxAttempts     int
	InitialInterval time.Duration
	MaxInterval     time.Duration
	MaxElapsed      time.Duration
	RequestTimeout  time.Duration
}

// OpenGate lets every attempt through; for tests and tools.
type OpenGate struct{}

// Wait returns at once unless ctx is done.
func (OpenGate) Wait(ctx context.Context) error { return ctx.Err() }

// Done ignores the outcome.
func (OpenGate) Done(int, time.Duration, error) {}

// Or returns p with every unset (zero or negative) field taken from d, and
// MaxInterval raised to at least InitialInterval, so backoff never shrinks.
func (p Policy) Or(d Policy) Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.InitialInterval <= 0 {
		p.InitialInterval = d.InitialInterval
	}
	if p.MaxInterval <= 0 {
		p.MaxInterval = d.MaxInterval
	}
	p.MaxInterval = max(p.MaxInterval, p.InitialInterval)
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = d.MaxElapsed
	}
	if p.RequestTimeout <= 0 {
		p.RequestTimeout = d.RequestTimeout
	}
	return p
}
