// Package connectors holds what every vendor connector shares: the record a
// mapping produces, the gate every HTTP attempt passes, and the retry policy.
// Each vendor lives in its own subpackage with its client and a fake server
// that behaves like the vendor.
package connectors

import (
	"context"
	"time"
)

// Record is one entity mapped for a vendor.
type Record struct {
	// Key is the vendor's upsert key for the record: an email, an external
	// id. Two records with the same Key are the same vendor object.
	Key string
	// Fields are the vendor's field names and values, after mapping.
	Fields map[string]any
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
