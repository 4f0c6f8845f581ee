package fake_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/synchub/synchub/connectors/salesforce/fake"
)

// TestSpecViolationNamed: a request openapi.yaml does not allow gets a 400
// naming the problem (SPEC_VIOLATION on the API, invalid_request on the
// token endpoint) and is kept for Violations.
func TestSpecViolationNamed(t *testing.T) {
	f := fake.New()
	defer f.Close()

	resp, err := http.PostForm(f.URL()+"/services/oauth2/token", url.Values{
		"grant_type": {"refresh_token"}, "client_id": {fake.ClientID}, "client_secret": {fake.ClientSecret},
	})
	if err != nil {
		t.Fatal(err)
	}
	var oauth map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&oauth)
	resp.Body.Close()
	if resp.StatusCode != 400 || oauth["error"] != "invalid_request" || !strings.Contains(oauth["error_description"], "body.refresh_token is required") {
		t.Errorf("token without refresh_token: HTTP %d %v", resp.StatusCode, oauth)
	}

	_, tok := token(t, f, fake.RefreshToken)
	for _, tc := range []struct{ name, path, body, want string }{
		{"no attributes", upsertPath, `{"records":[{"Hub_Id__c":"x","LastName":"L"}]}`, "body.records.0.attributes is required"},
		{"unknown property", upsertPath, `{"records":[{"attributes":{"type":"Contact"}}],"extra":1}`, "body: property \"extra\" is unsupported"},
	} {
		code, body := patch(t, f, tok["access_token"], tc.path, tc.body)
		if code != 400 || !strings.Contains(body, "SPEC_VIOLATION") || !strings.Contains(body, strings.ReplaceAll(tc.want, `"`, `\"`)) {
			t.Errorf("%s: %d %s, want 400 SPEC_VIOLATION naming %q", tc.name, code, body, tc.want)
		}
	}
	if got := len(f.Violations()); got != 3 {
		t.Errorf("%d violations, want 3: %q", got, f.Violations())
	}
}
