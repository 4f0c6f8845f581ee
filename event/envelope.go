// Package event decodes and validates the raw event envelope of DESIGN §2.
// It never panics on input: anything a producer sends either decodes into an
// Envelope or yields an *InvalidError saying why, or ErrUnknownType.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event types of the seed.
const (
	UserCreated     = "userCreated"
	UserUpdated     = "userUpdated"
	UserLoggedIn    = "userLoggedIn"
	UserFailedLogin = "userFailedLogin"
	CampaignCreated = "campaignCreated"
	PageCreated     = "pageCreated"
	PageViewed      = "pageViewed"
)

// DefaultMaxBytes bounds a raw event. Events are small facts; anything larger
// is a producer bug, and rejecting it early keeps one record from inflating
// aggregator state.
const DefaultMaxBytes = 256 << 10

// ErrUnknownType marks a well-formed envelope whose event_type this hub does
// not know. Such events are counted and skipped, never dead-lettered, so a
// new producer cannot stall an older hub.
var ErrUnknownType = errors.New("unknown event type")

// InvalidError says why a record is not a valid event. Its message becomes
// the synchub.error header on events.invalid.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return e.Reason }

func invalid(format string, args ...any) *InvalidError {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// Envelope is a decoded, validated raw event.
type Envelope struct {
	ID        string
	Type      string
	EntityID  string
	ActorID   string
	Timestamp time.Time
	// Payload is the decoded "event" object, one of the *Payload types below.
	Payload any
}

// OrganizationID returns the customer named by a creating event, or "".
func (e Envelope) OrganizationID() string {
	switch p := e.Payload.(type) {
	case *UserCreatedPayload:
		return p.OrganizationID
	case *CampaignCreatedPayload:
		return p.OrganizationID
	case *PageCreatedPayload:
		return p.OrganizationID
	}
	return ""
}

// UserCreatedPayload starts a user.
type UserCreatedPayload struct {
	Name           string   `json:"name"`
	Email          string   `json:"email"`
	Roles          []string `json:"roles"`
	OrganizationID string   `json:"organization_id"`
}

// UserUpdatedPayload merges the fields given; a nil field is left alone.
type UserUpdatedPayload struct {
	Name  *string   `json:"name"`
	Email *string   `json:"email"`
	Roles *[]string `json:"roles"`
}

// UserLoggedInPayload records a successful login.
type UserLoggedInPayload struct {
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
}

// UserFailedLoginPayload records a failed login.
type UserFailedLoginPayload struct {
	IP     string `json:"ip"`
	Reason string `json:"reason"`
}

// CampaignCreatedPayload starts a campaign.
type CampaignCreatedPayload struct {
	Name           string `json:"name"`
	OrganizationID string `json:"organization_id"`
}

// PageCreatedPayload adds a page to a campaign.
type PageCreatedPayload struct {
	CampaignID     string `json:"campaign_id"`
	URL            string `json:"url"`
	Title          string `json:"title"`
	OrganizationID string `json:"organization_id"`
}

// PageViewedPayload records a visit.
type PageViewedPayload struct {
	PageID     string `json:"page_id"`
	CampaignID string `json:"campaign_id"`
	VisitorID  string `json:"visitor_id"`
	IP         string `json:"ip"`
	UserAgent  string `json:"user_agent"`
}

// newPayload returns an empty payload for a known type and what it requires.
func newPayload(eventType string) (p any, required []string, ok bool) {
	switch eventType {
	case UserCreated:
		return new(UserCreatedPayload), []string{"organization_id"}, true
	case UserUpdated:
		return new(UserUpdatedPayload), nil, true
	case UserLoggedIn:
		return new(UserLoggedInPayload), nil, true
	case UserFailedLogin:
		return new(UserFailedLoginPayload), nil, true
	case CampaignCreated:
		return new(CampaignCreatedPayload), []string{"organization_id"}, true
	case PageCreated:
		return new(PageCreatedPayload), []string{"campaign_id", "organization_id"}, true
	case PageViewed:
		return new(PageViewedPayload), []string{"page_id"}, true
	}
	return nil, nil, false
}

// rawEnvelope keeps every field raw so that type errors can be reported per
// field instead of as encoding/json's Go-flavoured messages.
type rawEnvelope struct {
	ID        json.RawMessage `json:"id"`
	Type      json.RawMessage `json:"event_type"`
	EntityID  json.RawMessage `json:"entity_id"`
	ActorID   json.RawMessage `json:"actor_id"`
	Timestamp json.RawMessage `json:"timestamp"`
	Event     json.RawMessage `json:"event"`
}

// Decode validates data against the envelope rules with DefaultMaxBytes.
func Decode(data []byte) (Envelope, error) { return DecodeLimit(data, DefaultMaxBytes) }

// DecodeLimit validates data against the envelope rules. It returns an
// *InvalidError for a record that breaks them and ErrUnknownType (wrapped,
// with the type) for a valid envelope of a type it does not know.
func DecodeLimit(data []byte, maxBytes int) (Envelope, error) {
	if len(data) > maxBytes {
		return Envelope{}, invalid("event is %d bytes, over the %d-byte limit", len(data), maxBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return Envelope{}, invalid("empty record")
	}
	if trimmed[0] != '{' {
		return Envelope{}, invalid("event is not a JSON object")
	}
	var raw rawEnvelope
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return Envelope{}, invalid("malformed JSON: %v", err)
	}
	var env Envelope
	var problems []string
	field := func(name string, v json.RawMessage, required bool, dst *string) {
		s, msg := stringField(v, required)
		if msg != "" {
			problems = append(problems, name+" "+msg)
		}
		*dst = s
	}
	field("event_type", raw.Type, true, &env.Type)
	field("entity_id", raw.EntityID, true, &env.EntityID)
	field("id", raw.ID, false, &env.ID)
	field("actor_id", raw.ActorID, false, &env.ActorID)
	var ts string
	field("timestamp", raw.Timestamp, true, &ts)
	if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			problems = append(problems, fmt.Sprintf("timestamp %q is not RFC 3339", ts))
		}
		env.Timestamp = t.UTC()
	}
	if len(problems) > 0 {
		return Envelope{}, invalid("%s", strings.Join(problems, "; "))
	}

	payload, required, known := newPayload(env.Type)
	if !known {
		return env, fmt.Errorf("%w %q", ErrUnknownType, env.Type)
	}
	if err := decodePayload(raw.Event, payload, required); err != nil {
		return Envelope{}, err
	}
	env.Payload = payload
	return env, nil
}

// stringField returns a non-empty problem message when v is not a string (or
// is missing/empty while required).
func stringField(v json.RawMessage, required bool) (string, string) {
	if len(v) == 0 || string(v) == "null" {
		if required {
			return "", "is required"
		}
		return "", ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", "must be a string, got " + jsonKind(v)
	}
	if required && strings.TrimSpace(s) == "" {
		return "", "must not be empty"
	}
	return s, ""
}

func decodePayload(v json.RawMessage, dst any, required []string) error {
	if len(v) == 0 || string(v) == "null" {
		if len(required) > 0 {
			return invalid("event is required (with %s)", strings.Join(required, ", "))
		}
		return nil
	}
	if v[0] != '{' {
		return invalid("event must be an object, got %s", jsonKind(v))
	}
	if err := json.Unmarshal(v, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalid("event.%s must be %s, got %s", te.Field, kindOfGo(te.Type.String()), te.Value)
		}
		return invalid("malformed event: %v", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(v, &fields); err != nil {
		return invalid("malformed event: %v", err)
	}
	for _, name := range required {
		if _, msg := stringField(fields[name], true); msg != "" {
			return invalid("event.%s %s", name, msg)
		}
	}
	return nil
}

func jsonKind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func kindOfGo(t string) string {
	switch {
	case strings.HasSuffix(t, "[]string"):
		return "an array of strings"
	case strings.HasSuffix(t, "string"):
		return "a string"
	default:
		return t
	}
}
