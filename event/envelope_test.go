package event_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/synchub/synchub/event"
)

func TestDecodeValid(t *testing.T) {
	env, err := event.Decode([]byte(`{"id":"evt_1","event_type":"userCreated","entity_id":"u_42","actor_id":"u_42",
		"timestamp":"2026-11-25T10:00:00+01:00","event":{"name":"Ann Lee","email":"ann@example.com","roles":["admin"],"organization_id":"org_acme","extra":1}}`))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	p, ok := env.Payload.(*event.UserCreatedPayload)
	if !ok {
		t.Fatalf("payload is %T", env.Payload)
	}
	if env.EntityID != "u_42" || env.ID != "evt_1" || p.Name != "Ann Lee" || p.Roles[0] != "admin" || env.OrganizationID() != "org_acme" {
		t.Fatalf("decoded %+v %+v", env, p)
	}
	if want := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC); !env.Timestamp.Equal(want) || env.Timestamp.Location() != time.UTC {
		t.Fatalf("timestamp %v, want %v in UTC", env.Timestamp, want)
	}
}

func TestDecodeUpdateKeepsAbsentFieldsNil(t *testing.T) {
	env, err := event.Decode([]byte(`{"event_type":"userUpdated","entity_id":"u","timestamp":"2026-11-25T10:00:00Z","event":{"email":"x@y"}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := env.Payload.(*event.UserUpdatedPayload)
	if p.Name != nil || p.Roles != nil || p.Email == nil || *p.Email != "x@y" {
		t.Fatalf("payload %+v", p)
	}
}

func TestDecodeInvalid(t *testing.T) {
	const ts = `"timestamp":"2026-11-25T10:00:00Z"`
	tests := []struct {
		name, in, reason string
	}{
		{"empty", ``, "empty record"},
		{"not json", `hello`, "not a JSON object"},
		{"array", `[1,2]`, "not a JSON object"},
		{"truncated", `{"event_type":"userCreated"`, "malformed JSON"},
		{"trailing garbage", `{"event_type":"userCreated"} x`, "malformed JSON"},
		{"missing type", `{"entity_id":"u",` + ts + `}`, "event_type is required"},
		{"missing entity", `{"event_type":"userLoggedIn",` + ts + `}`, "entity_id is required"},
		{"blank entity", `{"event_type":"userLoggedIn","entity_id":"  ",` + ts + `}`, "entity_id must not be empty"},
		{"missing timestamp", `{"event_type":"userLoggedIn","entity_id":"u"}`, "timestamp is required"},
		{"bad timestamp", `{"event_type":"userLoggedIn","entity_id":"u","timestamp":"yesterday"}`, `timestamp "yesterday" is not RFC 3339`},
		{"numeric entity", `{"event_type":"userLoggedIn","entity_id":42,` + ts + `}`, "entity_id must be a string, got number"},
		{"several at once", `{"event_type":7}`, "event_type must be a string, got number; entity_id is required; timestamp is required"},
		{"create without org", `{"event_type":"userCreated","entity_id":"u",` + ts + `,"event":{"name":"A"}}`, "event.organization_id is required"},
		{"create without event", `{"event_type":"userCreated","entity_id":"u",` + ts + `}`, "event is required"},
		{"event not object", `{"event_type":"userUpdated","entity_id":"u",` + ts + `,"event":"x"}`, "event must be an object, got string"},
		{"wrong field type", `{"event_type":"userUpdated","entity_id":"u",` + ts + `,"event":{"name":5}}`, "event.name must be a string, got number"},
		{"wrong roles type", `{"event_type":"userCreated","entity_id":"u",` + ts + `,"event":{"organization_id":"o","roles":"admin"}}`, "event.roles must be an array of strings, got string"},
		{"too large", `{"event_type":"userLoggedIn","entity_id":"u",` + ts + `,"event":{"ip":"` + strings.Repeat("x", event.DefaultMaxBytes) + `"}}`, "over the 262144-byte limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := event.Decode([]byte(tc.in))
			var inv *event.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want *InvalidError", err)
			}
			if !strings.Contains(inv.Reason, tc.reason) {
				t.Fatalf("reason %q does not contain %q", inv.Reason, tc.reason)
			}
		})
	}
}

func TestDecodeUnknownType(t *testing.T) {
	env, err := event.Decode([]byte(`{"event_type":"userTeleported","entity_id":"u","timestamp":"2026-11-25T10:00:00Z","event":{"to":"mars"}}`))
	if !errors.Is(err, event.ErrUnknownType) {
		t.Fatalf("err = %v, want ErrUnknownType", err)
	}
	if env.Type != "userTeleported" {
		t.Fatalf("type %q", env.Type)
	}
	var inv *event.InvalidError
	if errors.As(err, &inv) {
		t.Fatal("unknown type must not be invalid")
	}
}

// FuzzDecode checks that no input panics and that every input is classified
// exactly one way. Seeds live in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"event_type":"userCreated","entity_id":"u","timestamp":"2026-11-25T10:00:00Z","event":{"organization_id":"o"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := event.Decode(data)
		var inv *event.InvalidError
		switch {
		case err == nil:
			if env.Type == "" || env.EntityID == "" || env.Timestamp.IsZero() || env.Payload == nil {
				t.Fatalf("accepted an incomplete envelope %+v from %q", env, data)
			}
		case errors.As(err, &inv):
			if inv.Reason == "" {
				t.Fatalf("invalid without a reason for %q", data)
			}
		case errors.Is(err, event.ErrUnknownType):
		default:
			t.Fatalf("unclassified error %v for %q", err, data)
		}
	})
}
