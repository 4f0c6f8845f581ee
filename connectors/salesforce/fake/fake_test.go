package fake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/synchub/synchub/connectors/salesforce/fake"
)

func token(t *testing.T, f *fake.Server, refresh string) (int, map[string]string) {
	t.Helper()
	resp, err := http.PostForm(f.URL()+"/services/oauth2/token", url.Values{
		"grant_type": {"refresh_token"}, "client_id": {fake.ClientID},
		"client_secret": {fake.ClientSecret}, "refresh_token": {refresh},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func patch(t *testing.T, f *fake.Server, tok, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, f.URL()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const upsertPath = "/services/data/v60.0/composite/sobjects/Contact/Hub_Id__c"

func recs(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `{"attributes":{"type":"Contact"},"Hub_Id__c":"k` + string(rune('a'+i%26)) + `","LastName":"L"}`
	}
	return `{"allOrNone":false,"records":[` + strings.Join(parts, ",") + `]}`
}

func TestFake(t *testing.T) {
	f := fake.New()
	defer f.Close()

	if code, out := token(t, f, "wrong"); code != 400 || out["error"] != "invalid_grant" {
		t.Errorf("bad refresh token: %d %v", code, out)
	}
	code, tok := token(t, f, fake.RefreshToken)
	if code != 200 || tok["access_token"] == "" || tok["instance_url"] != f.URL() || tok["expires_in"] != "" {
		t.Fatalf("token: %d %v", code, tok)
	}
	at := tok["access_token"]

	for _, tc := range []struct {
		name, tok, path, body string
		code                  int
		want                  string
	}{
		{"no session", "", upsertPath, recs(1), 401, `"errorCode":"INVALID_SESSION_ID"`},
		{"over the limit", at, upsertPath, recs(201), 400, `"errorCode":"EXCEEDED_ID_LIMIT"`},
		{"outside the spec", at, upsertPath, `{"records":[{"Hub_Id__c":"x","LastName":"L"}]}`, 400, `SPEC_VIOLATION`},
		{"unknown external id field", at, "/services/data/v60.0/composite/sobjects/Contact/Nope__c", recs(1), 400, `INVALID_FIELD`},
		{"missing LastName", at, upsertPath, `{"allOrNone":false,"records":[{"attributes":{"type":"Contact"},"Hub_Id__c":"z"}]}`, 200, `REQUIRED_FIELD_MISSING`},
		{"ok", at, upsertPath, recs(3), 200, `"success":true`},
	} {
		code, body := patch(t, f, tc.tok, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, code, body, tc.code, tc.want)
		}
	}
	if f.MaxBatch() != 201 {
		t.Errorf("MaxBatch %d, want 201 (refused requests count)", f.MaxBatch())
	}
	if len(f.Violations()) != 1 {
		t.Errorf("violations %q", f.Violations())
	}

	f.ThrottleNext(1)
	if code, body := patch(t, f, at, upsertPath, recs(1)); code != 403 || !strings.Contains(body, "REQUEST_LIMIT_EXCEEDED") {
		t.Errorf("throttle: %d %s", code, body)
	}
	f.FailNext(1)
	if code, _ := patch(t, f, at, upsertPath, recs(1)); code != 503 {
		t.Errorf("outage: %d", code)
	}
	f.Reject("ka", "nope")
	if _, body := patch(t, f, at, upsertPath, recs(2)); !strings.Contains(body, `"statusCode":"FIELD_CUSTOM_VALIDATION_EXCEPTION","message":"nope"`) || !strings.Contains(body, `"success":true`) {
		t.Errorf("partial: %s", body)
	}

	resp, err := http.Get(f.URL() + "/__records")
	if err != nil {
		t.Fatal(err)
	}
	var held map[string]map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&held)
	resp.Body.Close()
	if len(held) != 3 || held["kb"]["LastName"] != "L" {
		t.Errorf("/__records: %v", held)
	}

	f.SetSessionTimeout(50 * time.Millisecond)
	_, tok = token(t, f, fake.RefreshToken)
	time.Sleep(60 * time.Millisecond)
	if code, _ := patch(t, f, tok["access_token"], upsertPath, recs(1)); code != 401 {
		t.Errorf("timed-out session: %d", code)
	}
}
