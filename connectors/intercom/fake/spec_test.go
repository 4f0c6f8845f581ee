package fake_test

import (
	"strings"
	"testing"

	"github.com/synchub/synchub/connectors/intercom/fake"
)

// TestSpecViolationNamed: a request the 2.14 description does not allow
// gets a 400 error.list whose message names the problem.
func TestSpecViolationNamed(t *testing.T) {
	spec, err := fake.LoadSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := fake.LoadSpec(specPath); again == nil {
		t.Fatal("second LoadSpec failed")
	}
	f := fake.New(fake.WithSpec(spec))
	defer f.Close()
	for _, tc := range []struct {
		name, method, path, version, body, want string
	}{
		{"wrong type", "POST", "/contacts", "2.14", `{"external_id":"u-2","signed_up_at":"yesterday"}`, "body.signed_up_at: value must be an integer"},
		{"unknown version", "POST", "/contacts", "9.9", `{"external_id":"u-3"}`, "header parameter Intercom-Version: value is not one of the allowed values"},
		{"unknown operation", "PATCH", "/contacts", "2.14", `{}`, "no such operation in the spec: PATCH /contacts"},
		{"event without created_at", "POST", "/events", "2.14", `{"event_name":"x","user_id":"u-1"}`, "body.created_at is required"},
	} {
		status, body := do(t, f, tc.method, tc.path, tc.version, tc.body)
		errs, _ := body["errors"].([]any)
		msg := ""
		if len(errs) > 0 {
			msg, _ = errs[0].(map[string]any)["message"].(string)
		}
		t.Logf("%s: %s", tc.name, msg)
		if status != 400 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: HTTP %d %v, want 400 naming %q", tc.name, status, body, tc.want)
		}
	}
	if got := len(f.SpecErrors()); got != 4 {
		t.Errorf("%d spec errors recorded, want 4: %q", got, f.SpecErrors())
	}
}
