package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	headerID        = "webhook-id"
	headerTimestamp = "webhook-timestamp"
	headerSignature = "webhook-signature"
)

const (
	secretPrefix = "whsec_"
	// redacted is how a Secret prints, whatever the verb or encoder.
	redacted = "whsec_****"
	// minSecretLen is the shortest key ParseSecret accepts (128 bits). The
	// Standard Webhooks spec recommends 24 to 64 bytes.
	minSecretLen = 16
	// DefaultTolerance is the timestamp tolerance Verify uses when given 0,
	// as the Standard Webhooks reference libraries do.
	DefaultTolerance = 5 * time.Minute
)

// Errors Verify returns (wrapped, with detail); test with errors.Is.
var (
	// ErrBadSignature means the headers are missing or no v1 signature in
	// them matches the body.
	ErrBadSignature = errors.New("webhook: no matching signature")
	// ErrBadTimestamp means webhook-timestamp is unparsable or further from
	// now than the tolerance (replay protection).
	ErrBadTimestamp = errors.New("webhook: timestamp outside tolerance")
)

// Secret is an endpoint's signing key: the decoded bytes of a
// "whsec_<base64>" string. It never prints, logs or marshals its value:
// every fmt verb, String, GoString and MarshalJSON give "whsec_****".
// The zero Secret is not usable; get one from ParseSecret.
type Secret struct{ key []byte }

// ParseSecret parses a "whsec_<standard base64>" secret (padding optional,
// surrounding white space ignored). The decoded key must be at least 16
// bytes. The error never contains s.
func ParseSecret(s string) (Secret, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), secretPrefix)
	if !ok {
		return Secret{}, errors.New(`webhook: secret must start with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil {
		return Secret{}, errors.New(`webhook: secret is not "whsec_" followed by standard base64`)
	}
	if len(key) < minSecretLen {
		return Secret{}, fmt.Errorf("webhook: secret key is %d bytes, want at least %d", len(key), minSecretLen)
	}
	return Secret{key: key}, nil
}

func (s Secret) isZero() bool { return len(s.key) == 0 }

// String returns "whsec_****".
func (Secret) String() string { return redacted }

// GoString returns "whsec_****".
func (Secret) GoString() string { return redacted }

// Format prints "whsec_****" for every verb, so %x or %+v cannot reach the key.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON returns the JSON string "whsec_****".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Sign returns the Standard Webhooks signature header value
// "v1,<base64 HMAC-SHA256 of "{id}.{ts}.{body}">" keyed with secret.
func Sign(secret Secret, id string, ts int64, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(secret, id, ts, body))
}

func mac(secret Secret, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, secret.key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a received webhook the way a receiver should: the
// webhook-id, webhook-timestamp and webhook-signature headers must be
// present, the timestamp within tolerance of now (either side; 0 means
// DefaultTolerance), and at least one of the space-separated "v1,<base64>"
// signatures (other versions are ignored) must match body, compared in
// constant time. Errors wrap ErrBadSignature or ErrBadTimestamp.
func Verify(secret Secret, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	if secret.isZero() {
		return fmt.Errorf("%w: no secret to verify with", ErrBadSignature)
	}
	id := header.Get(headerID)
	tsText := header.Get(headerTimestamp)
	sigs := strings.Join(header.Values(headerSignature), " ")
	if id == "" || tsText == "" || strings.TrimSpace(sigs) == "" {
		return fmt.Errorf("%w: missing %s, %s or %s header", ErrBadSignature, headerID, headerTimestamp, headerSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not unix seconds", ErrBadTimestamp, headerTimestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || -d > tolerance {
		return fmt.Errorf("%w: %s is %s away from now (tolerance %s)", ErrBadTimestamp, headerTimestamp, d.Abs().Round(time.Second), tolerance)
	}
	want := mac(secret, id, ts, body)
	for _, sig := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}
