// Package retry classifies delivery failures, carries the facts the
// dead-letter headers need, and names those headers.
package retry

import (
	"errors"
	"fmt"
	"time"
)

// Class says what a failed delivery should become.
type Class string

const (
	// Transient failures (timeouts, 408, 429, 5xx, connection errors) are
	// worth another attempt.
	Transient Class = "transient"
	// Permanent failures (other 4xx, a body the vendor rejects) will fail the
	// same way again, so the record is dead-lettered at once.
	Permanent Class = "permanent"
	// Exhausted failures were transient but ran out of attempts or time.
	Exhausted Class = "exhausted"
	// InvalidInput is a record the connector could not even turn into a
	// request (undecodable snapshot, missing fields).
	InvalidInput Class = "invalid_input"
	// InvalidMapping is a record the customer's mapping could not turn into
	// a vendor record (an expression failed, the upsert key is empty); it
	// goes again after the mapping is fixed, by replay.
	InvalidMapping Class = "invalid_mapping"
)

// Error is a delivery failure with the facts the dead-letter headers need.
type Error struct {
	Class Class
	// HTTPStatus is the last status the endpoint answered, 0 if none.
	HTTPStatus int
	// Attempts is how many requests were made.
	Attempts int
	// FirstFailedAt is when the first attempt failed.
	FirstFailedAt time.Time
	// RetryAfter is the delay the endpoint asked for, 0 if none.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("%s after %d attempt(s), HTTP %d: %v", e.Class, e.Attempts, e.HTTPStatus, e.Err)
	}
	return fmt.Sprintf("%s after %d attempt(s): %v", e.Class, e.Attempts, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err: the Class of the first *Error in its
// chain, or Transient for anything unclassified (a broker hiccup is worth
// another try; only a classifier can call a failure permanent).
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return Transient
}

// Terminal reports whether err should leave the pipeline for the
// dead-letter topic rather than be retried in place.
func Terminal(err error) bool {
	switch ClassOf(err) {
	case Permanent, Exhausted, InvalidInput, InvalidMapping:
		return true
	default:
		return false
	}
}
