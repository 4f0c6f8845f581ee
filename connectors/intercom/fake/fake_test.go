package fake_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/synchub/synchub/connectors/intercom/fake"
)

const specPath = "../../../../shared/specs/intercom/api.intercom.io.yaml"

func do(t *testing.T, f *fake.Server, method, path, version, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.Token())
	if version != "" {
		req.Header.Set("Intercom-Version", version)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestSpecChecks(t *testing.T) {
	f := fake.New(fake.WithSpecFile(specPath))
	defer f.Close()
	for _, tc := range []struct {
		name, method, path, version, body string
		want                              int
	}{
		{"valid create", "POST", "/contacts", "2.14", `{"role":"user","external_id":"u-1","email":"a@example.com","name":"A B"}`, 200},
		{"conflict", "POST", "/contacts", "2.14", `{"role":"user","external_id":"u-1"}`, 409},
		{"wrong type", "POST", "/contacts", "2.14", `{"external_id":"u-2","signed_up_at":"yesterday"}`, 400},
		{"anyOf unmet", "POST", "/contacts", "2.14", `{"name":"Nobody"}`, 400},
		{"unknown version", "POST", "/contacts", "9.9", `{"external_id":"u-3"}`, 400},
		{"unknown operation", "PATCH", "/contacts", "2.14", `{}`, 400},
		{"find by external id", "GET", "/contacts/find_by_external_id/u-1", "2.14", "", 200},
	} {
		status, body := do(t, f, tc.method, tc.path, tc.version, tc.body)
		if status != tc.want {
			t.Errorf("%s: HTTP %d %v, want %d", tc.name, status, body, tc.want)
		}
		if status >= 400 && body["type"] != "error.list" {
			t.Errorf("%s: body %v is not an error.list", tc.name, body)
		}
	}
	if got := len(f.SpecErrors()); got != 4 {
		t.Errorf("%d spec errors recorded, want 4: %v", got, f.SpecErrors())
	}
}

func TestRecordsEndpointAndThrottle(t *testing.T) {
	f := fake.New()
	defer f.Close()
	f.ThrottleNext(1)
	req, _ := http.NewRequest("POST", f.URL()+"/contacts", strings.NewReader(`{"external_id":"u-1"}`))
	req.Header.Set("Authorization", "Bearer "+f.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("X-RateLimit-Reset") == "" || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("throttle: HTTP %d, headers %v", resp.StatusCode, resp.Header)
	}
	if status, _ := do(t, f, "POST", "/contacts", "", `{"external_id":"u-1","email":"a@example.com"}`); status != 200 {
		t.Fatalf("create: HTTP %d", status)
	}
	resp, err = http.Get(f.URL() + "/__records")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var recs map[string]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&recs); err != nil || recs["u-1"]["email"] != "a@example.com" {
		t.Errorf("/__records: %v %v", recs, err)
	}
}
