package fake

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const specDir = "../../../../shared/specs/marketo"

func token(t *testing.T, s *Server) string {
	t.Helper()
	q := url.Values{"grant_type": {"client_credentials"}, "client_id": {"client-id"}, "client_secret": {"client-secret"}}
	resp, err := http.Get(s.URL() + "/identity/oauth/token?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.AccessToken == "" || v.ExpiresIn < 3590 {
		t.Fatalf("token answer %+v, %v", v, err)
	}
	return v.AccessToken
}

func post(t *testing.T, s *Server, tok, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/rest/v1/leads.json", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func errCode(v map[string]any) string {
	errs, _ := v["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	return errs[0].(map[string]any)["code"].(string)
}

func TestFakeBehaviour(t *testing.T) {
	s := New(WithSpecDir(specDir))
	defer s.Close()
	tok := token(t, s)
	if again := token(t, s); again != tok {
		t.Errorf("Identity issued a new token before expiry")
	}
	if v := post(t, s, tok, `{"action":"createOrUpdate","lookupField":"email","input":[{"email":"a@x.com","firstName":"A"},{"email":"b@x.com","foo":1}]}`); v["success"] != true {
		t.Fatalf("sync: %v", v)
	} else if res := v["result"].([]any); res[0].(map[string]any)["status"] != "created" || res[1].(map[string]any)["status"] != "skipped" {
		t.Errorf("results %v, want created then skipped (1006)", res)
	}
	if v := post(t, s, tok, `{"action":"sync","input":[]}`); errCode(v) != "609" {
		t.Errorf("bad action enum: %v, want 609", v)
	}
	if v := post(t, s, "nope", `{"input":[]}`); errCode(v) != "601" {
		t.Errorf("unknown token: %v, want 601", v)
	}
	s.ExpireTokens()
	if v := post(t, s, tok, `{"input":[]}`); errCode(v) != "602" {
		t.Errorf("expired token: %v, want 602", v)
	}
	if token(t, s) == tok {
		t.Errorf("Identity reissued an expired token")
	}
	tok = token(t, s)
	var b strings.Builder
	b.WriteString(`{"input":[`)
	for i := range 301 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"email":"u` + string(rune('a'+i%26)) + `@x.com"}`)
	}
	b.WriteString(`]}`)
	if v := post(t, s, tok, b.String()); v["success"] != false {
		t.Errorf("301 leads accepted")
	}
	s.ThrottleNext(1)
	if v := post(t, s, tok, `{"input":[]}`); errCode(v) != "606" {
		t.Errorf("throttle: %v, want 606", v)
	}
	resp, err := http.Get(s.URL() + "/__records")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var recs map[string]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&recs); err != nil || recs["a@x.com"]["firstName"] != "A" {
		t.Errorf("/__records: %v %v", recs, err)
	}
	if len(s.Violations()) != 2 {
		t.Errorf("violations %q, want the bad enum and the 301 leads", s.Violations())
	}
}
