// Package aggregate folds raw events into entities: pure folds per entity
// type, and the handler that keeps their state per owned partition, restores
// it from the entity topic and publishes every new snapshot.
package aggregate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/synchub/synchub/event"
)

// RecentLimit bounds the recent_logins and recent_failed_logins lists: the
// counters keep the totals, the lists only the last few for context.
const RecentLimit = 10

// PreviousEmailsLimit bounds previous_emails: the addresses a user had
// before the current one, kept so connectors keyed by email can move the
// vendor's record to the new address (connectors.Record.FormerKeys).
//
// The list must reach back to the address the vendor last received, and
// that can be many changes ago: while a backlog waits (catch-up after an
// outage, a restart, a slow or open-circuited vendor) the dispatch stage
// coalesces every version of a user into one delivery, so all the changes
// made in the meantime arrive as one. Five was not enough there: a user
// with eight changes in a backlog still had its vendor record under the
// original address, which had already fallen out of the list.
//
// Twenty bounds how much every snapshot carries, and how many former keys
// a connector looks up. More changes than that between two deliveries of
// a user to a vendor lose the oldest addresses: a vendor still holding the
// record under one of them keeps that stale record, and the hub creates a
// second one under the current address.
const PreviousEmailsLimit = 20

// EntityUser is the user entity's type name (entity.user, "user.updated").
const EntityUser = "user"

// Source is the position of the last raw event applied to an entity. An
// event at or below it has been applied already.
type Source struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// User is the user entity snapshot of DESIGN §3. It is always whole, never a
// diff.
type User struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	OrganizationID string    `json:"organization_id"`
	Version        int64     `json:"version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	Source         Source    `json:"source"`
	Name           string    `json:"name"`
	Email          string    `json:"email"`
	// PreviousEmails are the addresses the user had before Email, most
	// recent last, distinct (case-insensitively), never Email itself, at
	// most PreviousEmailsLimit. Snapshots written before the field existed
	// lack it; the next fold fills it ([] when nothing is known).
	PreviousEmails []string `json:"previous_emails"`
	// EmailVersion is the version at which Email took its current value:
	// an endpoint that received this version or a later one has it, and
	// needs no move from a previous address.
	EmailVersion       int64         `json:"email_version"`
	Roles              []string      `json:"roles"`
	LoginsCount        int64         `json:"logins_count"`
	LoginsFailedCount  int64         `json:"logins_failed_count"`
	LastLoginAt        *time.Time    `json:"last_login_at"`
	RecentLogins       []Login       `json:"recent_logins"`
	RecentFailedLogins []FailedLogin `json:"recent_failed_logins"`
}

// Login is one successful login kept in RecentLogins.
type Login struct {
	Timestamp time.Time `json:"timestamp"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
}

// FailedLogin is one failed login kept in RecentFailedLogins.
type FailedLogin struct {
	Timestamp time.Time `json:"timestamp"`
	IP        string    `json:"ip,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}

// ErrUnknownEntity is returned for an event about a user that was never
// created: applying it would invent a user without a customer.
var ErrUnknownEntity = errors.New("unknown entity")

// ErrAlreadyExists is returned for a userCreated about an existing user.
var ErrAlreadyExists = errors.New("entity already exists")

// ApplyUser folds one event into prev (nil: no such user yet) and returns the
// next state. It never modifies prev, so a caller can publish the result and
// only then make it current. It returns an error wrapping ErrUnknownEntity or
// ErrAlreadyExists for events that do not fit the entity's history; those
// belong in events.invalid.
func ApplyUser(prev *User, ev event.Envelope, src Source) (*User, error) {
	if ev.Type == event.UserCreated {
		if prev != nil {
			return nil, fmt.Errorf("userCreated for user %q: %w", ev.EntityID, ErrAlreadyExists)
		}
		p := ev.Payload.(*event.UserCreatedPayload)
		return &User{
			ID:             ev.EntityID,
			Type:           EntityUser,
			OrganizationID: p.OrganizationID,
			Version:        1,
			CreatedAt:      ev.Timestamp,
			UpdatedAt:      ev.Timestamp,
			Source:         src,
			Name:           p.Name,
			Email:          p.Email,
			Roles:          nonNil(slices.Clone(p.Roles)),
			PreviousEmails: []string{},
			EmailVersion:   1,
			// Empty lists, not null: receivers iterate them without checks.
			RecentLogins:       []Login{},
			RecentFailedLogins: []FailedLogin{},
		}, nil
	}
	if prev == nil {
		return nil, fmt.Errorf("%s for user %q: %w", ev.Type, ev.EntityID, ErrUnknownEntity)
	}
	next := *prev
	next.Version++
	next.UpdatedAt = ev.Timestamp
	next.Source = src
	next.PreviousEmails = nonNil(prev.PreviousEmails)
	switch p := ev.Payload.(type) {
	case *event.UserUpdatedPayload:
		if p.Name != nil {
			next.Name = *p.Name
		}
		if p.Email != nil && *p.Email != prev.Email {
			next.Email = *p.Email
			next.PreviousEmails = rememberEmail(prev.PreviousEmails, prev.Email, next.Email)
			next.EmailVersion = next.Version
		}
		if p.Roles != nil {
			next.Roles = nonNil(slices.Clone(*p.Roles))
		}
	case *event.UserLoggedInPayload:
		next.LoginsCount++
		at := ev.Timestamp
		next.LastLoginAt = &at
		next.RecentLogins = appendBounded(prev.RecentLogins, Login{Timestamp: at, IP: p.IP, UserAgent: p.UserAgent})
	case *event.UserFailedLoginPayload:
		next.LoginsFailedCount++
		next.RecentFailedLogins = appendBounded(prev.RecentFailedLogins, FailedLogin{Timestamp: ev.Timestamp, IP: p.IP, Reason: p.Reason})
	default:
		return nil, fmt.Errorf("event type %s does not apply to users", ev.Type)
	}
	return &next, nil
}

// appendBounded returns a new slice with v appended and at most RecentLimit
// entries, leaving s untouched.
func appendBounded[T any](s []T, v T) []T {
	if len(s) >= RecentLimit {
		s = s[len(s)-RecentLimit+1:]
	}
	out := make([]T, 0, len(s)+1)
	return append(append(out, s...), v)
}

// rememberEmail returns a new list: prev with old appended as the most
// recent, without current or any earlier copy of old (compared
// case-insensitively, as vendors compare addresses), without empty
// addresses, and cut to the newest PreviousEmailsLimit. prev is untouched.
func rememberEmail(prev []string, old, current string) []string {
	out := make([]string, 0, len(prev)+1)
	for _, e := range prev {
		if e != "" && !strings.EqualFold(e, old) && !strings.EqualFold(e, current) {
			out = append(out, e)
		}
	}
	if old != "" && !strings.EqualFold(old, current) {
		out = append(out, old)
	}
	if len(out) > PreviousEmailsLimit {
		out = out[len(out)-PreviousEmailsLimit:]
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// IsUserEvent reports whether the user aggregator consumes this event type.
func IsUserEvent(eventType string) bool {
	switch eventType {
	case event.UserCreated, event.UserUpdated, event.UserLoggedIn, event.UserFailedLogin:
		return true
	}
	return false
}
