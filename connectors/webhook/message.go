package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxIDPart is the longest escaped entity id written into a webhook-id;
// longer ones are replaced by a hash (see messageID).
const maxIDPart = 128

// message is one webhook ready to sign and send.
type message struct {
	id   string // webhook-id, stable per entity version
	body []byte
}

// newMessage builds the contract body
//
//	{"type":"<entityType>.created|updated","timestamp":"<updated_at>","data":<snapshot>}
//
// with the snapshot bytes verbatim (surrounding white space trimmed) and
// the updated_at string as the snapshot has it (it must be RFC 3339).
func newMessage(entityType string, snapshot []byte) (message, error) {
	if !validType(entityType) {
		return message{}, fmt.Errorf("webhook: entity type %q is not [a-z][a-z0-9_]*", entityType)
	}
	var s struct {
		ID        *string         `json:"id"`
		Type      *string         `json:"type"`
		Version   json.RawMessage `json:"version"`
		UpdatedAt *string         `json:"updated_at"`
	}
	snapshot = bytes.TrimSpace(snapshot)
	if len(snapshot) == 0 || snapshot[0] != '{' {
		return message{}, errors.New("webhook: snapshot is not a JSON object")
	}
	if err := json.Unmarshal(snapshot, &s); err != nil {
		return message{}, fmt.Errorf("webhook: snapshot does not decode: %w", err)
	}
	if s.ID == nil || *s.ID == "" {
		return message{}, errors.New("webhook: snapshot has no id")
	}
	if s.Type != nil && *s.Type != entityType {
		return message{}, fmt.Errorf("webhook: snapshot type %q is not %q", *s.Type, entityType)
	}
	if len(s.Version) == 0 || string(s.Version) == "null" {
		return message{}, errors.New("webhook: snapshot has no version")
	}
	version, err := strconv.ParseUint(string(s.Version), 10, 64)
	if err != nil || version == 0 {
		return message{}, fmt.Errorf("webhook: snapshot version %s is not a positive integer", s.Version)
	}
	if s.UpdatedAt == nil {
		return message{}, errors.New("webhook: snapshot has no updated_at")
	}
	if _, err := time.Parse(time.RFC3339Nano, *s.UpdatedAt); err != nil {
		return message{}, fmt.Errorf("webhook: snapshot updated_at %q is not RFC 3339", *s.UpdatedAt)
	}

	eventType := entityType + ".updated"
	if version == 1 {
		eventType = entityType + ".created"
	}
	typeJSON, _ := json.Marshal(eventType)
	tsJSON, _ := json.Marshal(*s.UpdatedAt)
	var b bytes.Buffer
	b.Grow(len(snapshot) + len(typeJSON) + len(tsJSON) + 32)
	b.WriteString(`{"type":`)
	b.Write(typeJSON)
	b.WriteString(`,"timestamp":`)
	b.Write(tsJSON)
	b.WriteString(`,"data":`)
	b.Write(snapshot)
	b.WriteString(`}`)
	return message{id: messageID(entityType, *s.ID, version), body: b.Bytes()}, nil
}

// BatchInputError names the snapshot of a DeliverBatch call that cannot be
// turned into an event. It comes wrapped in a *retry.Error of Class
// InvalidInput; no request was made, so the caller can dead-letter that
// one record and send the others again.
type BatchInputError struct {
	Index int // into the snapshots given
	Err   error
}

func (e *BatchInputError) Error() string {
	return fmt.Sprintf("webhook: snapshot [%d] of the batch: %s", e.Index, strings.TrimPrefix(e.Err.Error(), "webhook: "))
}

func (e *BatchInputError) Unwrap() error { return e.Err }

// newBatchMessage builds the body for snapshots (at least one). One
// snapshot gives exactly newMessage's message; more give
//
//	{"type":"batch","data":[<event>,…]}
//
// each <event> being newMessage's body for that snapshot, in order, with
// the webhook-id batchID of their ids. A snapshot newMessage rejects is
// reported as a *BatchInputError; a bad entityType, which spoils every
// snapshot alike, as a plain error.
func newBatchMessage(entityType string, snapshots [][]byte) (message, error) {
	if !validType(entityType) {
		return message{}, fmt.Errorf("webhook: entity type %q is not [a-z][a-z0-9_]*", entityType)
	}
	if len(snapshots) == 1 {
		m, err := newMessage(entityType, snapshots[0])
		if err != nil {
			return message{}, &BatchInputError{Index: 0, Err: err}
		}
		return m, nil
	}
	ids := make([]string, len(snapshots))
	var b bytes.Buffer
	b.WriteString(`{"type":"batch","data":[`)
	for i, snap := range snapshots {
		m, err := newMessage(entityType, snap)
		if err != nil {
			return message{}, &BatchInputError{Index: i, Err: err}
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(m.body)
		ids[i] = m.id
	}
	b.WriteString(`]}`)
	return message{id: batchID(ids), body: b.Bytes()}, nil
}

// batchID is "msg_batch_" + the first 32 hex digits of the SHA-256 of the
// members' distinct webhook-ids, sorted and newline-separated: the same
// set of (entity, version) pairs gets the same id whatever the order, so
// a receiver can deduplicate a resent batch. It never equals a single
// event's id, which ends in "_v<version>".
func batchID(memberIDs []string) string {
	ids := slices.Clone(memberIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return "msg_batch_" + hex.EncodeToString(sum[:16])
}

// messageID is "msg_<type>_<escaped id>_v<version>". The escaped id keeps
// the bytes [A-Za-z0-9_-] and writes every other byte as %XX (upper-case
// hex), so it is injective and header-safe. If the escaped id is longer
// than 128 bytes it becomes "%h" + the first 32 hex digits of the id's
// SHA-256 (no escaped id starts with "%h", so the two forms never collide).
func messageID(entityType, entityID string, version uint64) string {
	return "msg_" + entityType + "_" + escapeID(entityID) + "_v" + strconv.FormatUint(version, 10)
}

func escapeID(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if safeByte(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() > maxIDPart {
		sum := sha256.Sum256([]byte(id))
		return "%h" + hex.EncodeToString(sum[:16])
	}
	return b.String()
}

func safeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func validType(t string) bool {
	if t == "" || t[0] < 'a' || t[0] > 'z' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
