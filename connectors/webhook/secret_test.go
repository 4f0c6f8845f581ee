package webhook

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	refSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	refB64    = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

func mustSecret(t *testing.T, s string) Secret {
	t.Helper()
	sec, err := ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return sec
}

// assertNoSecret fails if text contains the reference secret in any form
// it could leak in.
func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	key, _ := base64.StdEncoding.DecodeString(refB64)
	for _, leak := range []string{refB64, hex.EncodeToString(key), strings.ToUpper(hex.EncodeToString(key)), string(key), fmt.Sprint(key)} {
		if strings.Contains(text, leak) {
			t.Errorf("%s leaks the secret: %q", what, text)
		}
	}
}

func TestSignReferenceVector(t *testing.T) {
	sec := mustSecret(t, refSecret)
	got := Sign(sec, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func signedHeader(sec Secret, id string, ts int64, body []byte) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", Sign(sec, id, ts, body))
	return h
}

func TestVerify(t *testing.T) {
	sec := mustSecret(t, refSecret)
	other := mustSecret(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("another-key-of-24-bytes!")))
	body := []byte(`{"type":"user.updated","data":{}}`)
	now := time.Unix(1_800_000_000, 0)
	ts := now.Unix()

	if err := Verify(sec, signedHeader(sec, "msg_1", ts, body), body, time.Minute, now); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	// Several signatures (key rotation), unknown versions ignored.
	h := signedHeader(sec, "msg_1", ts, body)
	h.Set("webhook-signature", "v2,AAAA "+Sign(other, "msg_1", ts, body)+" v1,notbase64! "+h.Get("webhook-signature"))
	if err := Verify(sec, h, body, time.Minute, now); err != nil {
		t.Fatalf("multiple signatures: %v", err)
	}

	cases := []struct {
		name   string
		header http.Header
		body   []byte
		want   error
	}{
		{"wrong secret", signedHeader(other, "msg_1", ts, body), body, ErrBadSignature},
		{"tampered body", signedHeader(sec, "msg_1", ts, body), []byte(`{"type":"user.updated","data":{"admin":true}}`), ErrBadSignature},
		{"other id", func() http.Header {
			h := signedHeader(sec, "msg_1", ts, body)
			h.Set("webhook-id", "msg_2")
			return h
		}(), body, ErrBadSignature},
		{"old timestamp", signedHeader(sec, "msg_1", ts-int64(6*time.Minute/time.Second), body), body, ErrBadTimestamp},
		{"future timestamp", signedHeader(sec, "msg_1", ts+int64(6*time.Minute/time.Second), body), body, ErrBadTimestamp},
		{"timestamp not a number", func() http.Header {
			h := signedHeader(sec, "msg_1", ts, body)
			h.Set("webhook-timestamp", "yesterday")
			return h
		}(), body, ErrBadTimestamp},
		{"no signature", func() http.Header {
			h := signedHeader(sec, "msg_1", ts, body)
			h.Del("webhook-signature")
			return h
		}(), body, ErrBadSignature},
		{"only unknown versions", func() http.Header {
			h := signedHeader(sec, "msg_1", ts, body)
			h.Set("webhook-signature", strings.Replace(h.Get("webhook-signature"), "v1,", "v1a,", 1))
			return h
		}(), body, ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// 0 tolerance means the 5-minute default.
			err := Verify(sec, tc.header, tc.body, 0, now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if err := Verify(Secret{}, signedHeader(sec, "msg_1", ts, body), body, 0, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("zero secret: %v", err)
	}
}

func TestParseSecretErrorsDoNotEchoInput(t *testing.T) {
	for _, in := range []string{
		refB64,                         // no prefix
		"whsec_" + refB64 + "*!sekret", // not base64
		"whsec_c2VrcmV0LXNob3J0",       // "sekret-short": too short
		"",
	} {
		_, err := ParseSecret(in)
		if err == nil {
			t.Fatalf("ParseSecret(%q) succeeded", in)
		}
		if in != "" && strings.Contains(err.Error(), strings.TrimPrefix(in, "whsec_")) || strings.Contains(err.Error(), "sekret") {
			t.Errorf("error echoes the secret: %v", err)
		}
	}
	// Unpadded base64 and surrounding white space (env files) are fine.
	raw := strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("0123456789abcdefXYZ")), "=")
	if _, err := ParseSecret(" whsec_" + raw + "\n"); err != nil {
		t.Fatalf("unpadded: %v", err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	sec := mustSecret(t, refSecret)
	ep := Endpoint{URL: "https://hooks.example/x", Secret: sec}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		for _, v := range []any{sec, &sec, ep, &ep, []Secret{sec}, map[string]Secret{"k": sec}} {
			out := fmt.Sprintf(verb, v)
			assertNoSecret(t, verb, out)
			if verb != "%T %v" && !strings.Contains(out, "whsec_****") {
				t.Errorf("%s of %T = %q, want whsec_****", verb, v, out)
			}
		}
	}
	if sec.String() != "whsec_****" || sec.GoString() != "whsec_****" {
		t.Errorf("String/GoString = %q/%q", sec.String(), sec.GoString())
	}
	b, err := json.Marshal(ep)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"URL":"https://hooks.example/x","Secret":"whsec_****"}`; string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
}
