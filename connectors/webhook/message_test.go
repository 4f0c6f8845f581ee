package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func snapshot(id string, version int) []byte {
	return fmt.Appendf(nil, `{"id": %s, "type": "user", "organization_id": "org_acme", "version": %d,`+
		` "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:05:00.5+01:00",`+
		` "name": "Ann <Lee> & co", "roles": ["admin"], "source": {"partition": 3, "offset": 42}}`,
		must(json.Marshal(id)), version)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type event struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

func TestMessageBody(t *testing.T) {
	for _, tc := range []struct {
		version  int
		wantType string
		wantID   string
	}{
		{1, "user.created", "msg_user_u_42_v1"},
		{2, "user.updated", "msg_user_u_42_v2"},
		{17, "user.updated", "msg_user_u_42_v17"},
	} {
		snap := snapshot("u_42", tc.version)
		msg, err := newMessage("user", append([]byte("\n  "), snap...))
		if err != nil {
			t.Fatalf("v%d: %v", tc.version, err)
		}
		if msg.id != tc.wantID {
			t.Errorf("v%d: id = %s, want %s", tc.version, msg.id, tc.wantID)
		}
		var ev event
		dec := json.NewDecoder(bytes.NewReader(msg.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("v%d: body %s: %v", tc.version, msg.body, err)
		}
		if ev.Type != tc.wantType || ev.Timestamp != "2026-11-25T10:05:00.5+01:00" {
			t.Errorf("v%d: type, timestamp = %s, %s", tc.version, ev.Type, ev.Timestamp)
		}
		if !bytes.Equal(ev.Data, snap) {
			t.Errorf("v%d: data not verbatim:\n got %s\nwant %s", tc.version, ev.Data, snap)
		}
	}
}

func TestMessageID(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"u_42", "msg_user_u_42_v3"},
		{"ann@example.com", "msg_user_ann%40example%2Ecom_v3"},
		{"a b/ü%", "msg_user_a%20b%2F%C3%BC%25_v3"},
		{"x_v3", "msg_user_x_v3_v3"},
	} {
		if got := messageID("user", tc.id, 3); got != tc.want {
			t.Errorf("messageID(%q) = %s, want %s", tc.id, got, tc.want)
		}
	}
	long := strings.Repeat("é", 100)
	got := messageID("user", long, 3)
	if !strings.HasPrefix(got, "msg_user_%h") || len(got) > 64 || got != messageID("user", long, 3) {
		t.Errorf("long id = %s", got)
	}
	if got == messageID("user", long+"x", 3) {
		t.Error("different long ids share a webhook-id")
	}
	for _, r := range got {
		if !safeByte(byte(r)) && r != '%' {
			t.Errorf("unsafe char %q in %s", r, got)
		}
	}
}

func TestMessageRejectsBadSnapshots(t *testing.T) {
	const ts = `"updated_at": "2026-11-25T10:05:00Z"`
	for name, snap := range map[string]string{
		"not json":        `{"id": "u_1", `,
		"array":           `[{"id": "u_1", "version": 1, ` + ts + `}]`,
		"null":            `null`,
		"empty":           ``,
		"no id":           `{"version": 1, ` + ts + `}`,
		"empty id":        `{"id": "", "version": 1, ` + ts + `}`,
		"numeric id":      `{"id": 1, "version": 1, ` + ts + `}`,
		"no version":      `{"id": "u_1", ` + ts + `}`,
		"version 0":       `{"id": "u_1", "version": 0, ` + ts + `}`,
		"negative":        `{"id": "u_1", "version": -2, ` + ts + `}`,
		"fraction":        `{"id": "u_1", "version": 1.5, ` + ts + `}`,
		"string version":  `{"id": "u_1", "version": "2", ` + ts + `}`,
		"no updated_at":   `{"id": "u_1", "version": 1}`,
		"bad updated_at":  `{"id": "u_1", "version": 1, "updated_at": "yesterday"}`,
		"type mismatch":   `{"id": "u_1", "type": "campaign", "version": 1, ` + ts + `}`,
		"trailing object": `{"id": "u_1", "version": 1, ` + ts + `} {}`,
	} {
		if _, err := newMessage("user", []byte(snap)); err == nil {
			t.Errorf("%s: accepted %s", name, snap)
		}
	}
	for _, typ := range []string{"", "User", "user.x", "1user", "us er"} {
		if _, err := newMessage(typ, snapshot("u_1", 1)); err == nil {
			t.Errorf("entity type %q accepted", typ)
		}
	}
}
