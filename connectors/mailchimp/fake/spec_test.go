package fake_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/synchub/synchub/connectors/mailchimp/fake"
)

const specPath = "../../../../shared/specs/mailchimp/openapi.json"

// TestSpecViolationRefused: a request the OpenAPI description does not
// allow gets a 400 "Invalid Resource" naming the problem and is listed by
// SpecViolations; merge_fields values of any type pass (README quirk).
func TestSpecViolationRefused(t *testing.T) {
	f := fake.New(fake.WithSpec(fake.LoadSpec(specPath)))
	defer f.Close()
	sum := md5.Sum([]byte("a@b.c"))
	member := "/lists/" + f.ListID() + "/members/" + hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"merge fields of any type", "PUT", member, `{"email_address":"a@b.c","status_if_new":"subscribed","merge_fields":{"FNAME":"Ann","AGE":42,"ADDRESS":{"addr1":"1 Main St","city":"X"}}}`, 200, ""},
		{"no status_if_new", "PUT", member, `{"email_address":"a@b.c","merge_fields":{"FNAME":"Ann"}}`, 400, "body.status_if_new is required"},
		{"merge_fields not an object", "PUT", member, `{"email_address":"a@b.c","status_if_new":"subscribed","merge_fields":"Ann"}`, 400, "body.merge_fields: value must be an object"},
		{"bad enum", "PUT", member, `{"email_address":"a@b.c","status_if_new":"maybe"}`, 400, "body.status_if_new: value is not one of the allowed values"},
		{"unknown operation", "PATCH", "/lists/" + f.ListID() + "/nonsense", "{}", 400, "no such operation in the spec: PATCH /3.0/lists/"},
	} {
		req, _ := http.NewRequest(tc.method, f.URL()+tc.path, strings.NewReader(tc.body))
		req.SetBasicAuth("any", f.APIKey())
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		detail, _ := p["detail"].(string)
		if resp.StatusCode != tc.status || !strings.Contains(detail, tc.want) {
			t.Errorf("%s: HTTP %d %v, want %d naming %q", tc.name, resp.StatusCode, p, tc.status, tc.want)
		}
	}
	if v := f.SpecViolations(); len(v) != 4 {
		t.Errorf("%d violations recorded, want 4: %q", len(v), v)
	}
}
