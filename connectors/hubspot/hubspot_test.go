package hubspot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/connectortest"
	"github.com/synchub/synchub/connectors/hubspot"
	"github.com/synchub/synchub/connectors/hubspot/fake"
	"github.com/synchub/synchub/mapping"
	"github.com/synchub/synchub/retry"
)

func fastPolicy() connectors.Policy {
	return connectors.Policy{
		MaxAttempts:     5,
		InitialInterval: time.Millisecond,
		MaxInterval:     20 * time.Millisecond,
		MaxElapsed:      10 * time.Second,
		RequestTimeout:  5 * time.Second,
	}
}

func oauthConfig(f *fake.Server) hubspot.Config {
	return hubspot.Config{
		BaseURL:      f.URL(),
		ClientID:     fake.ClientID,
		ClientSecret: fake.ClientSecret,
		RefreshToken: fake.RefreshToken,
		Policy:       fastPolicy(),
	}
}

func newFake(t *testing.T) *fake.Server {
	t.Helper()
	f := fake.New()
	t.Cleanup(f.Close)
	f.SetRateWindow(10 * time.Millisecond)
	return f
}

func newClient(t *testing.T, cfg hubspot.Config) *hubspot.Client {
	t.Helper()
	c, err := hubspot.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func sample(i int) connectors.Record {
	email := fmt.Sprintf("user%d@example.com", i)
	return connectors.Record{Key: email, Fields: map[string]any{
		"email": email, "firstname": "User", "lastname": fmt.Sprint(i),
	}}
}

func TestContract(t *testing.T) {
	connectortest.Run(t, func(t *testing.T) (connectortest.Fake, connectortest.Connector) {
		f := newFake(t)
		return f, newClient(t, oauthConfig(f))
	}, sample)
}

func TestContractPrivateApp(t *testing.T) {
	connectortest.Run(t, func(t *testing.T) (connectortest.Fake, connectortest.Connector) {
		f := newFake(t)
		return f, newClient(t, hubspot.Config{BaseURL: f.URL(), AccessToken: fake.PrivateAppToken, Policy: fastPolicy()})
	}, sample)
}

// TestContractFormerKeys runs the contract with HubSpot's two answers to
// a batch read of unknown ids: named in a 207, or left out of a 200.
func TestContractFormerKeys(t *testing.T) {
	for _, omit := range []bool{false, true} {
		t.Run(fmt.Sprintf("unknown ids omitted %v", omit), func(t *testing.T) {
			connectortest.RunFormerKeys(t, func(t *testing.T) (connectortest.Fake, connectortest.Connector) {
				f := newFake(t)
				f.OmitMissingOnRead(omit)
				return f, newClient(t, oauthConfig(f))
			}, sample)
		})
	}
}

// TestFormerKeyLookupFailureSettlesTheRecord: a batch read that keeps
// failing leaves whether the old contact exists unknown, so the record
// gets the error and no upsert creates a second contact; records without
// former keys are upserted as usual.
func TestFormerKeyLookupFailureSettlesTheRecord(t *testing.T) {
	f := newFake(t)
	cfg := oauthConfig(f)
	cfg.Policy.MaxAttempts = 2
	c := newClient(t, cfg)
	for _, err := range upsert(t, c, records(1)) {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.FailNext(2)
	errs := upsert(t, c, []connectors.Record{chained(0, 3), sample(1)})
	var re *retry.Error
	if !errors.As(errs[0], &re) || re.Class != retry.Exhausted {
		t.Errorf("record with former keys: %v, want Exhausted", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("plain record: %v", errs[1])
	}
	got := f.Records()
	if _, ok := got[sample(1000).Key]; ok {
		t.Errorf("%s created while its old contact may exist", sample(1000).Key)
	}
	if _, ok := got[sample(0).Key]; !ok {
		t.Errorf("old contact %s gone", sample(0).Key)
	}
}

// TestFormerKeyReadRefusedUpserts: an app HubSpot refuses the batch read
// (403 MISSING_SCOPES: no crm.objects.contacts.read) still gets its
// records upserted, unmoved, rather than failed.
func TestFormerKeyReadRefusedUpserts(t *testing.T) {
	f := newFake(t)
	var reads int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/batch/read") {
			mu.Lock()
			reads++
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","correlationId":"c-1","category":"MISSING_SCOPES","context":{"requiredGranularScopes":["crm.objects.contacts.read"]}}`)
			return
		}
		// The rest goes to the fake.
		req, _ := http.NewRequest(r.Method, f.URL()+r.URL.Path, r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer srv.Close()
	cfg := hubspot.Config{BaseURL: srv.URL, AccessToken: fake.PrivateAppToken, Policy: fastPolicy()}
	c := newClient(t, cfg)
	for i, err := range upsert(t, c, []connectors.Record{chained(0, 3)}) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if reads != 1 {
		t.Errorf("%d batch reads, want 1 (a refusal is not retried)", reads)
	}
	if _, ok := f.Records()[sample(1000).Key]; !ok {
		t.Errorf("record not upserted after the read was refused")
	}
}

func TestOnlyRecordsWithFormerKeysPayTheUpdate(t *testing.T) {
	f := newFake(t)
	c := newClient(t, oauthConfig(f))
	for i, err := range upsert(t, c, records(10)) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if n := f.Requests(); n != 1 {
		t.Fatalf("%d requests for 10 plain records, want 1", n)
	}
	// Two move (one batch read finds their contacts, one update moves
	// them), one is new, eight stay (one upsert).
	recs := records(10)[2:]
	a, b := sample(50), sample(51)
	a.FormerKeys, b.FormerKeys = []string{sample(0).Key}, []string{"nobody@example.com", sample(1).Key}
	recs = append(recs, a, b, sample(52))
	for i, err := range upsert(t, c, recs) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	// b's newest former key is unknown: the read says so, no extra request.
	if n := f.Requests() - 1; n != 3 {
		t.Errorf("%d requests, want 3 (read, update, upsert)", n)
	}
	if n := f.ReadRequests(); n != 1 {
		t.Errorf("%d batch reads, want 1", n)
	}
	got := f.Records()
	if len(got) != 11 {
		t.Errorf("%d records, want 11", len(got))
	}
	for _, gone := range []string{sample(0).Key, sample(1).Key} {
		if _, ok := got[gone]; ok {
			t.Errorf("%s still held after its move", gone)
		}
	}
}

// chained is sample(1000+i) after a chain of changes from sample(i)'s key:
// chain former keys, newest first, the vendor's sample(i).Key the oldest.
func chained(i, chain int) connectors.Record {
	r := sample(1000 + i)
	for k := chain - 1; k >= 1; k-- {
		r.FormerKeys = append(r.FormerKeys, fmt.Sprintf("user%d.%d@example.com", i, k))
	}
	r.FormerKeys = append(r.FormerKeys, sample(i).Key)
	return r
}

// TestLongFormerKeyChainCostsBoundedRequests: the contact under the oldest
// of twenty former keys is found with one batch read and moved with one
// batch update, whatever the chain's length; many such records cost one
// read per 100 former keys and one update per BatchSize records.
func TestLongFormerKeyChainCostsBoundedRequests(t *testing.T) {
	const chain = 20
	t.Run("one record", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, oauthConfig(f))
		for i, err := range upsert(t, c, records(1)) {
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
		before := f.Requests()
		rec := chained(0, chain)
		for _, err := range upsert(t, c, []connectors.Record{rec}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		n := f.Requests() - before
		t.Logf("%d former keys: %d requests", len(rec.FormerKeys), n)
		if n != 2 {
			t.Errorf("%d requests for a chain of %d, want 2 (batch read, batch update)", n, chain)
		}
		got := f.Records()
		if _, ok := got[rec.Key]; !ok || len(got) != 1 {
			t.Errorf("vendor holds %v, want only %s (moved from %s)", keysOf(got), rec.Key, sample(0).Key)
		}
	})
	t.Run("many records", func(t *testing.T) {
		const n = 30
		f := newFake(t)
		c := newClient(t, oauthConfig(f))
		for i, err := range upsert(t, c, records(n)) {
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
		before := f.Requests()
		var recs []connectors.Record
		for i := range n {
			recs = append(recs, chained(i, chain))
		}
		for i, err := range upsert(t, c, recs) {
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
		reads := (n*chain + fake.MaxInputs - 1) / fake.MaxInputs
		got := f.Requests() - before
		t.Logf("%d records of %d former keys: %d requests", n, chain, got)
		if want := reads + 1; got != want {
			t.Errorf("%d requests, want %d (%d batch reads, one batch update)", got, want, reads)
		}
		if m := f.MaxBatch(); m > fake.MaxInputs {
			t.Errorf("a request carried %d inputs, over HubSpot's %d", m, fake.MaxInputs)
		}
		held := f.Records()
		if len(held) != n {
			t.Errorf("vendor holds %d records, want %d", len(held), n)
		}
		for _, r := range recs {
			if _, ok := held[r.Key]; !ok {
				t.Errorf("%s not moved", r.Key)
			}
		}
	})
}

func keysOf(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func upsert(t *testing.T, c *hubspot.Client, recs []connectors.Record) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Upsert(ctx, connectors.OpenGate{}, recs)
}

func records(n int) []connectors.Record {
	out := make([]connectors.Record, n)
	for i := range out {
		out[i] = sample(i)
	}
	return out
}

func TestBatchSplittingHonoursLimit(t *testing.T) {
	for _, size := range []int{0, 1, 37, 100, 500} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f := newFake(t)
			cfg := oauthConfig(f)
			cfg.BatchSize = size
			c := newClient(t, cfg)
			for i, err := range upsert(t, c, records(250)) {
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
			}
			limit := size
			if size == 0 || size > hubspot.MaxBatch {
				limit = hubspot.MaxBatch
			}
			if f.MaxBatch() > limit || f.MaxBatch() > fake.MaxInputs {
				t.Errorf("MaxBatch %d > limit %d", f.MaxBatch(), limit)
			}
			if want := (250 + limit - 1) / limit; f.Requests() != want {
				t.Errorf("%d requests, want %d", f.Requests(), want)
			}
		})
	}
}

func TestDuplicateKeysGoInSeparateRequests(t *testing.T) {
	f := newFake(t)
	c := newClient(t, oauthConfig(f))
	a, b := sample(1), sample(1)
	b.Fields = map[string]any{"email": b.Key, "firstname": "Later"}
	for i, err := range upsert(t, c, []connectors.Record{a, sample(2), b}) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if got := f.Records()[a.Key]["firstname"]; got != "Later" {
		t.Errorf("firstname = %v, want the later record's", got)
	}
}

func TestFakeRejectsOverLimitBatch(t *testing.T) {
	f := newFake(t)
	var inputs []map[string]any
	for i := range fake.MaxInputs + 1 {
		inputs = append(inputs, map[string]any{"idProperty": "email", "id": fmt.Sprintf("u%d@x", i), "properties": map[string]string{}})
	}
	body, _ := json.Marshal(map[string]any{"inputs": inputs})
	req, _ := http.NewRequest(http.MethodPost, f.URL()+"/crm/v3/objects/contacts/batch/upsert", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+fake.PrivateAppToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusBadRequest || e["category"] != "VALIDATION_ERROR" || e["correlationId"] == nil {
		t.Errorf("over-limit batch: %d %v", resp.StatusCode, e)
	}
}

func TestFakeValidatesAgainstSpec(t *testing.T) {
	f := newFake(t)
	for name, body := range map[string]string{
		"no inputs":         `{}`,
		"input without id":  `{"inputs":[{"idProperty":"email","properties":{}}]}`,
		"non-string values": `{"inputs":[{"idProperty":"email","id":"a@x","properties":{"n":1}}]}`,
	} {
		req, _ := http.NewRequest(http.MethodPost, f.URL()+"/crm/v3/objects/contacts/batch/upsert", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+fake.PrivateAppToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", name, resp.StatusCode)
		}
	}
}

func TestTransientInputRetriedAlone(t *testing.T) {
	f := newFake(t)
	c := newClient(t, oauthConfig(f))
	recs := records(10)
	f.FailInput(recs[4].Key, 2)
	for i, err := range upsert(t, c, recs) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if f.Requests() != 3 {
		t.Errorf("%d requests, want 3 (one, then two re-sends of the failed input)", f.Requests())
	}
	if f.MaxBatch() != 10 {
		t.Errorf("MaxBatch = %d", f.MaxBatch())
	}
}

func TestErrorClassification(t *testing.T) {
	hubErr := func(status int, category, msg string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"status":"error","message":%q,"correlationId":"c-1","category":%q}`, msg, category)
		}
	}
	cases := []struct {
		name     string
		handler  http.HandlerFunc
		class    retry.Class
		status   int
		contains string
	}{
		{"400 validation", hubErr(400, "VALIDATION_ERROR", "Property values were not valid"), retry.Permanent, 400, "Property values were not valid"},
		{"403 scopes", hubErr(403, "MISSING_SCOPES", "missing crm.objects.contacts.write"), retry.Permanent, 403, "MISSING_SCOPES"},
		{"404", hubErr(404, "OBJECT_NOT_FOUND", "no such object type"), retry.Permanent, 404, "no such object type"},
		{"401 invalid (static token)", hubErr(401, "INVALID_AUTHENTICATION", "Authentication credentials not found"), retry.Permanent, 401, "INVALID_AUTHENTICATION"},
		{"401 expired (static token)", hubErr(401, "EXPIRED_AUTHENTICATION", "expired"), retry.Permanent, 401, "EXPIRED_AUTHENTICATION"},
		{"503 outage", hubErr(503, "INTERNAL_ERROR", "down"), retry.Exhausted, 503, "down"},
		{"502", hubErr(502, "INTERNAL_ERROR", "bad gateway"), retry.Exhausted, 502, "bad gateway"},
		{"429", hubErr(429, "RATE_LIMIT", "You have reached your daily limit."), retry.Exhausted, 429, "daily limit"},
		{"423 locked", hubErr(423, "LOCKED", "locked"), retry.Exhausted, 423, "locked"},
		{"501", hubErr(501, "NOT_IMPLEMENTED", "nope"), retry.Permanent, 501, "nope"},
		{"207 per-input", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(207)
			fmt.Fprint(w, `{"status":"COMPLETE","results":[],"numErrors":1,"errors":[{"status":"error","category":"VALIDATION_ERROR","message":"Email address a@x is invalid","context":{"ids":["a@x"]},"errors":[],"links":{}}]}`)
		}, retry.Permanent, 207, "Email address a@x is invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var n int
			var mu sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n++
				mu.Unlock()
				if r.Header.Get("Authorization") != "Bearer secret-token-value" {
					t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
				}
				tc.handler(w, r)
			}))
			defer srv.Close()
			p := fastPolicy()
			p.MaxAttempts = 3
			p.MaxInterval = 5 * time.Millisecond
			c := newClient(t, hubspot.Config{BaseURL: srv.URL, AccessToken: "secret-token-value", Policy: p})
			errs := upsert(t, c, []connectors.Record{{Key: "a@x", Fields: map[string]any{"email": "a@x"}}})
			var re *retry.Error
			if !errors.As(errs[0], &re) {
				t.Fatalf("got %v, want *retry.Error", errs[0])
			}
			if re.Class != tc.class || re.HTTPStatus != tc.status || !strings.Contains(re.Error(), tc.contains) {
				t.Errorf("got %s/%d %q, want %s/%d containing %q", re.Class, re.HTTPStatus, re, tc.class, tc.status, tc.contains)
			}
			if strings.Contains(re.Error(), "secret-token-value") {
				t.Errorf("error leaks the token: %s", re)
			}
			wantN := 1
			if tc.class == retry.Exhausted {
				wantN = 3
			}
			if n != wantN || re.Attempts != wantN {
				t.Errorf("%d requests, Attempts %d, want %d", n, re.Attempts, wantN)
			}
		})
	}
}

func TestFakeServesRecords(t *testing.T) {
	f := newFake(t)
	c := newClient(t, oauthConfig(f))
	upsert(t, c, records(2))
	resp, err := http.Get(f.URL() + "/__records")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || len(got) != 2 || got["user1@example.com"]["lastname"] != "1" {
		t.Errorf("GET /__records: %v %v", got, err)
	}
}

func TestInvalidInput(t *testing.T) {
	f := newFake(t)
	c := newClient(t, oauthConfig(f))
	errs := upsert(t, c, []connectors.Record{{Key: ""}, sample(1)})
	if retry.ClassOf(errs[0]) != retry.InvalidInput || errs[1] != nil {
		t.Errorf("got %v", errs)
	}
}

func TestAuthRefresh(t *testing.T) {
	t.Run("ahead of expiry", func(t *testing.T) {
		f := newFake(t)
		f.SetTokenTTL(2 * time.Second)
		cfg := oauthConfig(f)
		cfg.RefreshAhead = 1500 * time.Millisecond // capped at half the lifetime: 1 s
		c := newClient(t, cfg)
		upsert(t, c, records(1))
		if f.TokenRequests() != 1 {
			t.Fatalf("%d token requests", f.TokenRequests())
		}
		upsert(t, c, records(1))
		if f.TokenRequests() != 1 {
			t.Fatalf("token refreshed while fresh")
		}
		time.Sleep(1100 * time.Millisecond)
		upsert(t, c, records(1))
		if f.TokenRequests() != 2 {
			t.Errorf("%d token requests, want a refresh ahead of expiry", f.TokenRequests())
		}
		if f.Requests() != 3 {
			t.Errorf("%d API requests, want 3: no 401 on the way", f.Requests())
		}
	})
	t.Run("expired once: refresh and resend", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, oauthConfig(f))
		upsert(t, c, records(1))
		f.ExpireTokens()
		if errs := upsert(t, c, records(3)); errs[0] != nil {
			t.Fatal(errs[0])
		}
		if f.TokenRequests() != 2 || f.Requests() != 3 {
			t.Errorf("%d token, %d API requests; want 2 and 3", f.TokenRequests(), f.Requests())
		}
	})
	t.Run("bad credentials are permanent", func(t *testing.T) {
		f := newFake(t)
		cfg := oauthConfig(f)
		cfg.ClientSecret = "wrong-secret-value"
		c := newClient(t, cfg)
		errs := upsert(t, c, records(2))
		for _, err := range errs {
			if retry.ClassOf(err) != retry.Permanent || strings.Contains(err.Error(), "wrong-secret-value") {
				t.Errorf("got %v", err)
			}
		}
		if f.Requests() != 0 {
			t.Errorf("%d API requests without a token", f.Requests())
		}
	})
}

func TestConfigValidate(t *testing.T) {
	err := hubspot.Config{BaseURL: "ftp://x", AccessToken: "a", ClientID: "b", BatchSize: -1}.Validate()
	for _, want := range []string{"BaseURL", "not both", "BatchSize"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if err := (hubspot.Config{ClientID: "id"}).Validate(); err == nil || !strings.Contains(err.Error(), "ClientSecret") || !strings.Contains(err.Error(), "RefreshToken") {
		t.Errorf("partial OAuth: %v", err)
	}
	if err := (hubspot.Config{AccessToken: "x"}).Validate(); err != nil {
		t.Error(err)
	}
	s := fmt.Sprintf("%v %#v", hubspot.Config{AccessToken: "tok-secret", ClientSecret: "cs-secret"}, hubspot.Config{RefreshToken: "rt-secret"})
	if strings.Contains(s, "secret") {
		t.Errorf("Config prints secrets: %s", s)
	}
}

func TestDefaultMapping(t *testing.T) {
	if _, ok := hubspot.DefaultMapping()[hubspot.KeyField()]; !ok {
		t.Fatalf("key field %q not mapped", hubspot.KeyField())
	}
	entity := func(name string) map[string]any {
		return map[string]any{
			"id": "u1", "name": name, "email": "ann@example.com", "roles": []any{"admin"},
			"logins_count": 3, "organization_id": "o1", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z",
		}
	}
	m, err := mapping.Compile(hubspot.DefaultMapping(), entity("Ann Lee"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, first, last string }{
		{"Ann Lee", "Ann", "Lee"},
		{"Mary Ann van Dyke", "Mary Ann van", "Dyke"},
		{"  Cher  ", "", "Cher"},
		{"", "", ""},
	} {
		got, err := m.Apply(entity(tc.name))
		if err != nil {
			t.Fatalf("%q: %v", tc.name, err)
		}
		if got["firstname"] != tc.first || got["lastname"] != tc.last || got["email"] != "ann@example.com" {
			t.Errorf("%q: got %v, want firstname %q lastname %q", tc.name, got, tc.first, tc.last)
		}
	}
}

func TestGateSeesEveryAttempt(t *testing.T) {
	f := newFake(t)
	c := newClient(t, oauthConfig(f))
	f.FailNext(2)
	g := &countGate{}
	errs := c.Upsert(context.Background(), g, records(3))
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	if g.waits != 3 || g.dones != 3 || g.statuses[0] != 503 || g.statuses[2] != 200 {
		t.Errorf("waits %d dones %d statuses %v", g.waits, g.dones, g.statuses)
	}
}

func TestCancelIsNotRetryError(t *testing.T) {
	f := newFake(t)
	c := newClient(t, oauthConfig(f))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range c.Upsert(ctx, connectors.OpenGate{}, records(3)) {
		var re *retry.Error
		if !errors.Is(err, context.Canceled) || errors.As(err, &re) {
			t.Errorf("got %v", err)
		}
	}
}

type countGate struct {
	mu       sync.Mutex
	waits    int
	dones    int
	statuses []int
}

func (g *countGate) Wait(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waits++
	return ctx.Err()
}

func (g *countGate) Done(status int, _ time.Duration, _ error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dones++
	g.statuses = append(g.statuses, status)
}
