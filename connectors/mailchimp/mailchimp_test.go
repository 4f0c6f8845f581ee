package mailchimp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/expr-lang/expr"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/connectortest"
	"github.com/synchub/synchub/connectors/mailchimp"
	"github.com/synchub/synchub/connectors/mailchimp/fake"
	"github.com/synchub/synchub/retry"
)

// specPath is the copied Mailchimp spec, relative to this package.
const specPath = "../../../shared/specs/mailchimp/openapi.json"

// fast keeps retry tests quick.
var fast = connectors.Policy{MaxAttempts: 5, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond, MaxElapsed: 5 * time.Second, RequestTimeout: 2 * time.Second}

// newPair starts a fake checking requests against spec and a client for it;
// the test fails if any request departed from the spec.
func newPair(t *testing.T, spec *fake.Spec) (*fake.Server, *mailchimp.Client) {
	t.Helper()
	f := fake.New(fake.WithSpec(spec))
	t.Cleanup(func() {
		for _, v := range f.SpecViolations() {
			t.Errorf("spec violation: %s", v)
		}
		f.Close()
	})
	c, err := mailchimp.New(mailchimp.Config{BaseURL: f.URL(), APIKey: f.APIKey(), ListID: f.ListID(), Policy: fast}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// mapEntity applies DefaultMapping to entity with expr, as the mapping
// stage will.
func mapEntity(t testing.TB, entity map[string]any) map[string]any {
	t.Helper()
	out := map[string]any{}
	for field, src := range mailchimp.DefaultMapping() {
		prog, err := expr.Compile(src, expr.Env(entity))
		if err != nil {
			t.Fatalf("%s: %v", field, err)
		}
		v, err := expr.Run(prog, entity)
		if err != nil {
			t.Fatalf("%s: %v", field, err)
		}
		out[field] = v
	}
	return out
}

func entity(i int) map[string]any {
	return map[string]any{
		"id": fmt.Sprintf("u%d", i), "name": fmt.Sprintf("Ann Marie Lee%d", i),
		"email": fmt.Sprintf("User%03d@Example.com", i), "roles": []any{"admin"},
		"logins_count": i, "organization_id": "org1",
		"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z",
	}
}

func sample(t testing.TB) func(i int) connectors.Record {
	return func(i int) connectors.Record {
		f := mapEntity(t, entity(i))
		return connectors.Record{Key: f[mailchimp.KeyField()].(string), Fields: f}
	}
}

func TestContract(t *testing.T) {
	spec := fake.LoadSpec(specPath)
	connectortest.Run(t, func(t *testing.T) (connectortest.Fake, connectortest.Connector) {
		return newPair(t, spec)
	}, sample(t))
}

func TestContractFormerKeys(t *testing.T) {
	spec := fake.LoadSpec(specPath)
	connectortest.RunFormerKeys(t, func(t *testing.T) (connectortest.Fake, connectortest.Connector) {
		return newPair(t, spec)
	}, sample(t))
}

func TestMoveRequests(t *testing.T) {
	f, c := newPair(t, fake.LoadSpec(specPath))
	rec := sample(t)
	ctx := context.Background()
	if errs := c.Upsert(ctx, connectors.OpenGate{}, []connectors.Record{rec(0), rec(1)}); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if n := f.Requests(); n != 2 {
		t.Fatalf("%d requests for two plain records, want 2", n)
	}
	// A case-only change is the same member: no PATCH.
	same := rec(0)
	same.FormerKeys = []string{strings.ToLower(same.Key)}
	// Moved: one PATCH per former address tried (an unknown one first).
	moved := rec(10)
	moved.FormerKeys = []string{"nobody@example.com", rec(1).Key}
	if errs := c.Upsert(ctx, connectors.OpenGate{}, []connectors.Record{same, moved}); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if n := f.Requests() - 2; n != 3 {
		t.Errorf("%d requests, want 3 (PUT, PATCH 404, PATCH)", n)
	}
	got := f.Records()
	if _, ok := got[rec(1).Key]; ok || len(got) != 2 {
		t.Errorf("records %v, want %s and %s only", got, rec(0).Key, rec(10).Key)
	}
}

func TestDefaultMappingSplitsNames(t *testing.T) {
	for _, tc := range []struct{ name, first, last string }{
		{"Ann Lee", "Ann", "Lee"},
		{"Ann Marie  Lee", "Ann Marie", "Lee"},
		{"Madonna", "Madonna", ""},
		{"  ", "", ""},
		{"", "", ""},
	} {
		got := mapEntity(t, map[string]any{"name": tc.name, "email": "a@b.c"})
		if got["FNAME"] != tc.first || got["LNAME"] != tc.last || got["email_address"] != "a@b.c" {
			t.Errorf("%q → %v, want FNAME %q LNAME %q", tc.name, got, tc.first, tc.last)
		}
	}
	if _, ok := mailchimp.DefaultMapping()[mailchimp.KeyField()]; !ok {
		t.Errorf("KeyField %q is not mapped", mailchimp.KeyField())
	}
}

func TestErrorClassification(t *testing.T) {
	const problemJSON = "application/problem+json"
	pd := func(status int, title, detail string) string {
		b, _ := json.Marshal(map[string]any{"type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": title, "status": status, "detail": detail, "instance": "x"})
		return string(b)
	}
	for _, tc := range []struct {
		name     string
		status   int
		ctype    string
		body     string
		class    retry.Class
		attempts int
		contains string
	}{
		{"member exists", 400, problemJSON, pd(400, "Member Exists", "a@b.c is already a list member."), retry.Permanent, 1, "Member Exists: a@b.c is already"},
		{"forgotten email", 400, problemJSON, pd(400, "Forgotten Email Not Subscribed", "was permanently deleted"), retry.Permanent, 1, "Forgotten Email Not Subscribed"},
		{"compliance", 400, problemJSON, pd(400, "Member In Compliance State", "is in a compliance state"), retry.Permanent, 1, "Member In Compliance State"},
		{"bad key", 401, problemJSON, pd(401, "API Key Invalid", "Your API key may be invalid"), retry.Permanent, 1, "API Key Invalid"},
		{"forbidden with json", 403, problemJSON, pd(403, "Forbidden", "User disabled"), retry.Permanent, 1, "User disabled"},
		{"not found", 404, problemJSON, pd(404, "Resource Not Found", "The requested resource could not be found."), retry.Permanent, 1, "Resource Not Found"},
		{"edge block", 403, "text/html", "<html>Request Blocked</html>", retry.Exhausted, 3, "Request Blocked"},
		{"throttled", 429, problemJSON, pd(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections."), retry.Exhausted, 3, "Too Many Requests"},
		{"outage", 503, "text/plain", "", retry.Exhausted, 3, "HTTP 503"},
		{"not implemented", 501, problemJSON, pd(501, "Not Implemented", "nope"), retry.Permanent, 1, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			p := fast
			p.MaxAttempts = 3
			c, err := mailchimp.New(mailchimp.Config{BaseURL: srv.URL + "/3.0", APIKey: "secretkey-us1", ListID: "L1", Policy: p}, nil)
			if err != nil {
				t.Fatal(err)
			}
			errs := c.Upsert(context.Background(), connectors.OpenGate{}, []connectors.Record{{Key: "a@b.c"}})
			var re *retry.Error
			if !errors.As(errs[0], &re) {
				t.Fatalf("got %v, want a *retry.Error", errs[0])
			}
			if re.Class != tc.class || re.Attempts != tc.attempts || re.HTTPStatus != tc.status || int(hits.Load()) != tc.attempts {
				t.Errorf("got class %s, %d attempts (%d hits), HTTP %d; want %s, %d, %d", re.Class, re.Attempts, hits.Load(), re.HTTPStatus, tc.class, tc.attempts, tc.status)
			}
			if !strings.Contains(re.Error(), tc.contains) {
				t.Errorf("%q lacks %q", re.Error(), tc.contains)
			}
			if strings.Contains(re.Error(), "secretkey") {
				t.Errorf("%q leaks the key", re.Error())
			}
		})
	}
}

func TestInvalidInputMakesNoRequest(t *testing.T) {
	f, c := newPair(t, nil)
	errs := c.Upsert(context.Background(), connectors.OpenGate{}, []connectors.Record{
		{Key: "not-an-email"},
		{Key: "a@b.c", Fields: map[string]any{"email_address": "other@b.c"}},
		{Key: "ok@b.c", Fields: map[string]any{"FNAME": "Ok", "LNAME": nil}},
	})
	for i := range 2 {
		if retry.ClassOf(errs[i]) != retry.InvalidInput {
			t.Errorf("record %d: %v, want invalid input", i, errs[i])
		}
	}
	if errs[2] != nil {
		t.Errorf("record 2: %v", errs[2])
	}
	if f.Requests() != 1 {
		t.Errorf("%d requests, want 1", f.Requests())
	}
	if got := f.Records()["ok@b.c"]; got["FNAME"] != "Ok" || got["LNAME"] != "" || got["status"] != "subscribed" {
		t.Errorf("stored %v", got)
	}
}

// Mailchimp keys never expire: there is nothing to refresh, ExpireTokens
// costs nothing, and a revoked key fails at once rather than retrying.
func TestAuth(t *testing.T) {
	f, c := newPair(t, nil)
	recs := []connectors.Record{sample(t)(1)}
	f.ExpireTokens()
	if err := c.Upsert(context.Background(), connectors.OpenGate{}, recs)[0]; err != nil {
		t.Fatalf("after ExpireTokens: %v", err)
	}
	if f.Requests() != 1 {
		t.Errorf("%d requests after ExpireTokens, want 1", f.Requests())
	}
	f.RevokeKey()
	err := c.Upsert(context.Background(), connectors.OpenGate{}, recs)[0]
	var re *retry.Error
	if !errors.As(err, &re) || re.Class != retry.Permanent || re.HTTPStatus != 401 || re.Attempts != 1 {
		t.Fatalf("revoked key: %v, want permanent 401 after 1 attempt", err)
	}
	if !strings.Contains(err.Error(), "API Key Invalid") || strings.Contains(err.Error(), f.APIKey()) {
		t.Errorf("revoked key: %q", err)
	}

	// A wrong key is refused by the fake, as by Mailchimp.
	c2, _ := mailchimp.New(mailchimp.Config{BaseURL: f.URL(), APIKey: "wrong-us7", ListID: f.ListID(), Policy: fast}, nil)
	if err := c2.Upsert(context.Background(), connectors.OpenGate{}, recs)[0]; retry.ClassOf(err) != retry.Permanent {
		t.Errorf("wrong key: %v", err)
	}
}

func TestRequestsHonourLimits(t *testing.T) {
	f, c := newPair(t, fake.LoadSpec(specPath))
	var recs []connectors.Record
	for i := range 200 {
		recs = append(recs, sample(t)(i))
	}
	for i, err := range c.Upsert(context.Background(), connectors.OpenGate{}, recs) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if f.MaxBatch() > mailchimp.MaxBatch {
		t.Errorf("max batch %d > %d", f.MaxBatch(), mailchimp.MaxBatch)
	}
	if f.MaxInFlight() > mailchimp.MaxConcurrency {
		t.Errorf("%d requests in flight > %d", f.MaxInFlight(), mailchimp.MaxConcurrency)
	}
	if f.Requests() != len(recs) {
		t.Errorf("%d requests for %d records: something was retried", f.Requests(), len(recs))
	}
}

// countingGate checks Wait and Done pair up.
type countingGate struct {
	mu          sync.Mutex
	waits, done int
	statuses    []int
}

func (g *countingGate) Wait(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waits++
	return ctx.Err()
}

func (g *countingGate) Done(status int, _ time.Duration, _ error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done++
	g.statuses = append(g.statuses, status)
}

func TestGateSeesEveryAttempt(t *testing.T) {
	f, c := newPair(t, nil)
	f.ThrottleNext(1)
	f.FailNext(1)
	g := &countingGate{}
	if err := c.Upsert(context.Background(), g, []connectors.Record{sample(t)(1)})[0]; err != nil {
		t.Fatal(err)
	}
	if g.waits != 3 || g.done != 3 || fmt.Sprint(g.statuses) != "[429 500 200]" {
		t.Errorf("waits %d, done %d, statuses %v; want 3, 3, [429 500 200]", g.waits, g.done, g.statuses)
	}
}

func TestCancelIsNotAFailure(t *testing.T) {
	f, c := newPair(t, nil)
	f.FailNext(1000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := c.Upsert(ctx, connectors.OpenGate{}, []connectors.Record{sample(t)(1)})[0]
	var re *retry.Error
	if errors.As(err, &re) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want an error wrapping ctx.Err() that is not a *retry.Error", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := mailchimp.Config{BaseURL: "ftp://x", StatusIfNew: "maybe", BatchSize: -1, Concurrency: -1, Policy: connectors.Policy{MaxAttempts: -1}}.Validate()
	for _, want := range []string{"api key is required", "base URL", "list id is required", "status_if_new", "batch size", "concurrency", "retry policy"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, lacks %q", err, want)
		}
	}
	if err := (mailchimp.Config{APIKey: "abc", ListID: "L"}).Validate(); err == nil || !strings.Contains(err.Error(), "data centre") {
		t.Errorf("key without -usNN and no base URL: %v", err)
	}
	if err := (mailchimp.Config{APIKey: "abc-us21", ListID: "L", BatchSize: 500}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if _, err := mailchimp.New(mailchimp.Config{}, nil); err == nil {
		t.Error("New accepted an empty config")
	}
}

func TestFakeBatchSubscribeLimitAndRecords(t *testing.T) {
	f := fake.New(fake.WithSpec(fake.LoadSpec(specPath)))
	defer f.Close()
	post := func(n int) (int, map[string]any) {
		var members []map[string]any
		for i := range n {
			members = append(members, map[string]any{"email_address": fmt.Sprintf("m%d@x.io", i), "status": "subscribed"})
		}
		body, _ := json.Marshal(map[string]any{"members": members, "update_existing": true})
		req, _ := http.NewRequest(http.MethodPost, f.URL()+"/lists/"+f.ListID(), strings.NewReader(string(body)))
		req.SetBasicAuth("any", f.APIKey())
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, out := post(501); code != 400 || out["title"] != "Invalid Resource" {
		t.Errorf("501 members: %d %v, want 400 Invalid Resource", code, out)
	}
	if code, out := post(500); code != 200 || out["total_created"] != float64(500) {
		t.Errorf("500 members: %d %v", code, out["total_created"])
	}
	if f.MaxBatch() != 500 {
		t.Errorf("MaxBatch %d, want 500", f.MaxBatch())
	}
	if v := f.SpecViolations(); len(v) > 0 {
		t.Errorf("spec violations: %v", v)
	}
	resp, err := http.Get(strings.TrimSuffix(f.URL(), "/3.0") + "/__records")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var recs map[string]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&recs); err != nil || len(recs) != 500 || recs["m7@x.io"]["status"] != "subscribed" {
		t.Errorf("/__records: %d records, %v", len(recs), err)
	}
}

func TestFakeChecksSpec(t *testing.T) {
	f := fake.New(fake.WithSpec(fake.LoadSpec(specPath)))
	defer f.Close()
	req, _ := http.NewRequest(http.MethodPut, f.URL()+"/lists/"+f.ListID()+"/members/"+mailchimp.SubscriberHash("a@b.c"),
		strings.NewReader(`{"email_address":"a@b.c","merge_fields":{"FNAME":"Ann"}}`)) // no status_if_new
	req.SetBasicAuth("any", f.APIKey())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || len(f.SpecViolations()) != 1 || !strings.Contains(f.SpecViolations()[0], "status_if_new is required") {
		t.Errorf("HTTP %d, violations %v", resp.StatusCode, f.SpecViolations())
	}
}

// slowGate holds every attempt longer than the whole MaxElapsed budget.
type slowGate struct{ hold time.Duration }

func (g slowGate) Wait(ctx context.Context) error {
	select {
	case <-time.After(g.hold):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (slowGate) Done(int, time.Duration, error) {}

func TestGateHoldDoesNotCountTowardMaxElapsed(t *testing.T) {
	f := fake.New()
	defer f.Close()
	p := fast
	p.MaxElapsed = 80 * time.Millisecond
	c, err := mailchimp.New(mailchimp.Config{BaseURL: f.URL(), APIKey: f.APIKey(), ListID: f.ListID(), Policy: p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.FailNext(2)
	if err := c.Upsert(context.Background(), slowGate{hold: 60 * time.Millisecond}, []connectors.Record{sample(t)(1)})[0]; err != nil {
		t.Fatalf("held 180ms by the gate within an 80ms budget: %v", err)
	}
}
