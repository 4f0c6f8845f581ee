package fake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/synchub/synchub/connectors/hubspot/fake"
	"github.com/synchub/synchub/internal/openapicheck"
)

// post sends body to the fake's path with the private-app token, and
// returns the response and its body, read.
func post(t *testing.T, f *fake.Server, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.URL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fake.PrivateAppToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, got
}

// TestSpecViolationRefused: a request openapi.yaml does not allow gets a
// 400 VALIDATION_ERROR naming the problem; a conforming one goes through.
func TestSpecViolationRefused(t *testing.T) {
	f := fake.New()
	defer f.Close()
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"valid", "/crm/v3/objects/contacts/batch/upsert", `{"inputs":[{"idProperty":"email","id":"a@x.io","properties":{"firstname":"A"}}]}`, 200, ""},
		{"missing id", "/crm/v3/objects/contacts/batch/upsert", `{"inputs":[{"idProperty":"email","properties":{}}]}`, 400, "body.inputs.0.id is required"},
		{"non-string value", "/crm/v3/objects/contacts/batch/upsert", `{"inputs":[{"idProperty":"email","id":"a@x.io","properties":{"n":1}}]}`, 400, "body.inputs.0.properties.n: value must be a string"},
		{"unknown object type", "/crm/v3/objects/tickets/batch/upsert", `{"inputs":[]}`, 400, "path parameter objectType"},
	} {
		resp, body := post(t, f, tc.path, tc.body)
		var e map[string]any
		_ = json.Unmarshal(body, &e)
		msg, _ := e["message"].(string)
		if resp.StatusCode != tc.status || tc.want != "" && (e["category"] != "VALIDATION_ERROR" || !strings.Contains(msg, tc.want)) {
			t.Errorf("%s: HTTP %d %v, want %d naming %q", tc.name, resp.StatusCode, e, tc.status, tc.want)
		}
	}
}

// TestResponsesMatchSpec: the fake's answers, HubSpot's 429 (which has no
// category) and the batch read's 200 and 207 among them, are what
// openapi.yaml says HubSpot answers.
func TestResponsesMatchSpec(t *testing.T) {
	f := fake.New()
	defer f.Close()
	data, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapicheck.Load(data, openapicheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = openapi3.Servers{{URL: f.URL()}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	call := func(name, path, body string, want int) {
		t.Helper()
		resp, got := post(t, f, path, body)
		if resp.StatusCode != want {
			t.Fatalf("%s: HTTP %d %s, want %d", name, resp.StatusCode, got, want)
		}
		check, _ := http.NewRequest(http.MethodPost, f.URL()+path, strings.NewReader(body))
		check.Header.Set("Content-Type", "application/json")
		route, params, err := router.FindRoute(check)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route},
			Status:                 resp.StatusCode,
			Header:                 resp.Header,
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		in.SetBodyBytes(got)
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s: HTTP %d %s does not match openapi.yaml: %v", name, resp.StatusCode, got, err)
		}
	}
	const upsert, read = "/crm/v3/objects/contacts/batch/upsert", "/crm/v3/objects/contacts/batch/read"
	call("upsert", upsert, `{"inputs":[{"idProperty":"email","id":"a@x.io","properties":{"email":"a@x.io"}}]}`, 200)
	readBody := `{"idProperty":"email","properties":["email"],"propertiesWithHistory":[],"inputs":[{"id":"a@x.io"},{"id":"b@x.io"}]}`
	call("read, one missing", read, readBody, 207)
	f.OmitMissingOnRead(true)
	call("read, missing omitted", read, readBody, 200)
	for _, p := range []string{upsert, read, "/crm/v3/objects/contacts/batch/update"} {
		f.ThrottleNext(1)
		call("429 on "+p, p, `{"idProperty":"email","properties":[],"propertiesWithHistory":[],"inputs":[{"id":"a@x.io","properties":{}}]}`, 429)
	}
}

// TestBatchRead: found contacts come back with the properties asked for;
// unknown ids are named in one OBJECT_NOT_FOUND error of a 207.
func TestBatchRead(t *testing.T) {
	f := fake.New()
	defer f.Close()
	postJSON := func(path, body string) (int, map[string]any) {
		resp, got := post(t, f, path, body)
		var m map[string]any
		_ = json.Unmarshal(got, &m)
		return resp.StatusCode, m
	}
	postJSON("/crm/v3/objects/contacts/batch/upsert", `{"inputs":[{"idProperty":"email","id":"a@x.io","properties":{"firstname":"A"}}]}`)
	status, m := postJSON("/crm/v3/objects/contacts/batch/read",
		`{"idProperty":"email","properties":["email","firstname"],"propertiesWithHistory":[],"inputs":[{"id":"a@x.io"},{"id":"b@x.io"},{"id":"c@x.io"}]}`)
	if status != http.StatusMultiStatus {
		t.Fatalf("HTTP %d %v, want 207", status, m)
	}
	results, _ := m["results"].([]any)
	if len(results) != 1 {
		t.Fatalf("results %v, want a@x.io alone", results)
	}
	props := results[0].(map[string]any)["properties"].(map[string]any)
	if props["email"] != "a@x.io" || props["firstname"] != "A" {
		t.Errorf("properties %v", props)
	}
	errs, _ := m["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("errors %v, want one", errs)
	}
	e := errs[0].(map[string]any)
	ids := fmt.Sprint(e["context"].(map[string]any)["ids"])
	if e["category"] != "OBJECT_NOT_FOUND" || ids != "[b@x.io c@x.io]" {
		t.Errorf("error %v, want OBJECT_NOT_FOUND for b@x.io and c@x.io", e)
	}
	if status, m := postJSON("/crm/v3/objects/contacts/batch/read", `{"idProperty":"email","properties":["email"],"inputs":[{"id":"a@x.io"}]}`); status != 400 {
		t.Errorf("read without propertiesWithHistory: HTTP %d %v, want 400 (HubSpot's schema requires it)", status, m)
	}
}
