package marketo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/expr-lang/expr"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/connectortest"
	"github.com/synchub/synchub/connectors/marketo"
	"github.com/synchub/synchub/connectors/marketo/fake"
	"github.com/synchub/synchub/retry"
)

const specDir = "../../../shared/specs/marketo"

func fastPolicy() connectors.Policy {
	return connectors.Policy{MaxAttempts: 5, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
		MaxElapsed: 10 * time.Second, RequestTimeout: 5 * time.Second}
}

func newPair(t *testing.T, mod func(*marketo.Config)) (*fake.Server, *marketo.Client) {
	t.Helper()
	f := fake.New(fake.WithSpecDir(specDir))
	t.Cleanup(func() {
		if v := f.Violations(); len(v) > 0 {
			t.Errorf("requests broke the spec or the API's rules: %q", v)
		}
		f.Close()
	})
	cfg := marketo.Config{BaseURL: f.URL(), ClientID: "client-id", ClientSecret: "client-secret",
		Policy: fastPolicy(), ThrottleBackoff: 10 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := marketo.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func sample(i int) connectors.Record {
	email := fmt.Sprintf("user%03d@example.com", i)
	first, last := marketo.SplitName(fmt.Sprintf("User %d", i))
	return connectors.Record{Key: email, Fields: map[string]any{"email": email, "firstName": first, "lastName": last}}
}

func samples(n int) []connectors.Record {
	out := make([]connectors.Record, n)
	for i := range out {
		out[i] = sample(i)
	}
	return out
}

func TestContract(t *testing.T) {
	connectortest.Run(t, func(t *testing.T) (connectortest.Fake, connectortest.Connector) {
		return newPair(t, nil)
	}, sample)
}

func TestContractFormerKeys(t *testing.T) {
	connectortest.RunFormerKeys(t, func(t *testing.T) (connectortest.Fake, connectortest.Connector) {
		return newPair(t, nil)
	}, sample)
}

func TestOnlyRecordsWithFormerKeysPayTheLookup(t *testing.T) {
	f, c := newPair(t, nil)
	ctx := context.Background()
	for i, err := range c.Upsert(ctx, connectors.OpenGate{}, samples(10)) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if n := f.Requests(); n != 1 {
		t.Fatalf("%d calls for 10 plain records, want 1", n)
	}
	recs := samples(10)[2:]
	a, b := sample(50), sample(51)
	a.FormerKeys = []string{sample(0).Key}
	b.FormerKeys = []string{"nobody@example.com", sample(1).Key}
	recs = append(recs, a, b)
	for i, err := range c.Upsert(ctx, connectors.OpenGate{}, recs) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if n := f.Requests() - 1; n != 3 {
		t.Errorf("%d calls, want 3 (lookup, update by id, createOrUpdate)", n)
	}
	got := f.Records()
	if len(got) != 10 {
		t.Errorf("%d leads, want 10: %v", len(got), got)
	}
	for _, gone := range []string{sample(0).Key, sample(1).Key} {
		if _, ok := got[gone]; ok {
			t.Errorf("%s still held after its move", gone)
		}
	}
}

func TestBatchSplittingHonoursLimit(t *testing.T) {
	for _, size := range []int{0, 7, 300} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f, c := newPair(t, func(cfg *marketo.Config) { cfg.BatchSize = size })
			for i, err := range c.Upsert(context.Background(), connectors.OpenGate{}, samples(650)) {
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
			}
			limit := size
			if limit == 0 {
				limit = marketo.MaxBatch
			}
			if f.MaxBatch() > limit || f.MaxBatch() != limit {
				t.Errorf("largest call had %d leads, want %d", f.MaxBatch(), limit)
			}
			if want := (650 + limit - 1) / limit; f.Requests() != want {
				t.Errorf("%d calls, want %d", f.Requests(), want)
			}
		})
	}
}

// TestDefaultMappingEvaluates runs the mapping through expr-lang, which
// the mapping stage will use, and checks it splits names as SplitName.
func TestDefaultMappingEvaluates(t *testing.T) {
	for _, name := range []string{"Ann Lee", "Cher", " Mary Ann van Dyke "} {
		env := map[string]any{"id": "u1", "name": name, "email": "ann@example.com"}
		got := map[string]any{}
		for field, e := range marketo.DefaultMapping() {
			v, err := expr.Eval(e, env)
			if err != nil {
				t.Fatalf("%s = %s: %v", field, e, err)
			}
			got[field] = v
		}
		first, last := marketo.SplitName(name)
		var wantLast any = last
		if last == "" {
			wantLast = nil
		}
		if got["firstName"] != first || got["lastName"] != wantLast || got["email"] != "ann@example.com" {
			t.Errorf("%q mapped to %v", name, got)
		}
	}
}

func TestNameSplitting(t *testing.T) {
	for _, tc := range []struct{ name, first, last string }{
		{"Ann Lee", "Ann", "Lee"},
		{"Cher", "Cher", ""},
		{"  Mary Ann van Dyke ", "Mary", "Ann van Dyke"},
		{"", "", ""},
	} {
		first, last := marketo.SplitName(tc.name)
		if first != tc.first || last != tc.last {
			t.Errorf("SplitName(%q) = %q, %q; want %q, %q", tc.name, first, last, tc.first, tc.last)
		}
	}
	m := marketo.DefaultMapping()
	if _, ok := m[marketo.KeyField()]; !ok {
		t.Errorf("DefaultMapping lacks the key field %s", marketo.KeyField())
	}
	for _, f := range []string{"email", "firstName", "lastName"} {
		if m[f] == "" {
			t.Errorf("DefaultMapping lacks %s", f)
		}
	}
}

// countingGate checks the Wait/Done pairing.
type countingGate struct {
	mu          sync.Mutex
	waits, done int
	statuses    []int
}

func (g *countingGate) Wait(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waits != g.done {
		panic("Wait without Done for the previous attempt")
	}
	g.waits++
	return ctx.Err()
}

func (g *countingGate) Done(status int, _ time.Duration, _ error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done++
	g.statuses = append(g.statuses, status)
}

func TestAuthRefresh(t *testing.T) {
	f, c := newPair(t, nil)
	g := &countingGate{}
	for _, err := range c.Upsert(context.Background(), g, samples(3)) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.TokenRequests() != 1 {
		t.Errorf("%d token requests for the first call, want 1", f.TokenRequests())
	}
	for _, err := range c.Upsert(context.Background(), g, samples(3)) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.TokenRequests() != 1 {
		t.Errorf("the cached token was not reused: %d token requests", f.TokenRequests())
	}
	f.ExpireTokens()
	for _, err := range c.Upsert(context.Background(), g, samples(3)) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.TokenRequests() != 2 || f.Requests() != 4 {
		t.Errorf("after expiry: %d token requests, %d calls; want 2 and 4 (one 602, one resend)", f.TokenRequests(), f.Requests())
	}
	if g.waits != 4 || g.done != 4 {
		t.Errorf("gate: %d waits, %d dones; want 4 each", g.waits, g.done)
	}
}

func TestBadCredentialsArePermanent(t *testing.T) {
	_, c := newPair(t, func(cfg *marketo.Config) { cfg.ClientSecret = "wrong-secret" })
	for _, err := range c.Upsert(context.Background(), connectors.OpenGate{}, samples(2)) {
		var re *retry.Error
		if !errors.As(err, &re) || re.Class != retry.Permanent || re.HTTPStatus != http.StatusUnauthorized {
			t.Fatalf("got %v, want Permanent HTTP 401", err)
		}
		if strings.Contains(err.Error(), "wrong-secret") {
			t.Fatalf("error leaks the secret: %v", err)
		}
	}
}

// scripted answers Sync Leads calls with canned bodies, for the
// classification table.
func scripted(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/identity/oauth/token" {
			fmt.Fprint(w, `{"access_token":"tok:int","token_type":"bearer","expires_in":3599}`)
			return
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		class  retry.Class // "" = success
		substr string
	}{
		{"created", 200, `{"success":true,"result":[{"id":1,"status":"created"}]}`, "", ""},
		{"updated", 200, `{"success":true,"result":[{"id":1,"status":"updated"}]}`, "", ""},
		{"record skipped", 200, `{"success":true,"result":[{"status":"skipped","reasons":[{"code":"1006","message":"Field 'foo' not found"}]}]}`, retry.Permanent, "1006 Field 'foo' not found"},
		{"access denied", 200, `{"success":false,"errors":[{"code":"603","message":"Access denied"}]}`, retry.Permanent, "603"},
		{"invalid json", 200, `{"success":false,"errors":[{"code":"609","message":"Invalid JSON"}]}`, retry.Permanent, "Invalid JSON"},
		{"rate limit", 200, `{"success":false,"errors":[{"code":"606","message":"Max rate limit '100' exceeded with in '20' secs"}]}`, retry.Exhausted, "606"},
		{"concurrency", 200, `{"success":false,"errors":[{"code":"615","message":"Concurrent access limit reached"}]}`, retry.Exhausted, "615"},
		{"daily quota", 200, `{"success":false,"errors":[{"code":"607","message":"Daily quota reached"}]}`, retry.Exhausted, "607"},
		{"lock wait", 200, `{"success":false,"errors":[{"code":"719","message":"Lock wait timeout"}]}`, retry.Exhausted, "719"},
		{"token expired twice", 200, `{"success":false,"errors":[{"code":"602","message":"Access token expired"}]}`, retry.Permanent, "602"},
		{"bad gateway", 502, `<html>bad gateway</html>`, retry.Exhausted, "HTTP 502"},
		{"too large", 413, `Request Entity Too Large`, retry.Permanent, "413"},
		{"garbage", 200, `<html>`, retry.Exhausted, "unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := marketo.New(marketo.Config{BaseURL: scripted(t, tc.status, tc.body), ClientID: "id", ClientSecret: "s",
				Policy: fastPolicy(), ThrottleBackoff: time.Millisecond}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Upsert(context.Background(), connectors.OpenGate{}, samples(1))[0]
			if tc.class == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			var re *retry.Error
			if !errors.As(err, &re) || re.Class != tc.class {
				t.Fatalf("got %v, want class %s", err, tc.class)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("%q lacks %q", err, tc.substr)
			}
			if tc.name == "daily quota" && (re.Attempts != 1 || re.RetryAfter <= 0) {
				t.Errorf("daily quota: %d attempts, RetryAfter %s; want 1 attempt and the wait until the reset", re.Attempts, re.RetryAfter)
			}
		})
	}
}

func TestInvalidInputAndCancel(t *testing.T) {
	f, c := newPair(t, nil)
	recs := []connectors.Record{{Key: ""}, {Key: "a@example.com", Fields: map[string]any{"email": "b@example.com"}}, sample(1)}
	errs := c.Upsert(context.Background(), connectors.OpenGate{}, recs)
	for i := range 2 {
		if retry.ClassOf(errs[i]) != retry.InvalidInput {
			t.Errorf("record %d: %v, want InvalidInput", i, errs[i])
		}
	}
	if errs[2] != nil {
		t.Errorf("record 2: %v", errs[2])
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.FailNext(1)
	for _, err := range c.Upsert(ctx, connectors.OpenGate{}, samples(2)) {
		var re *retry.Error
		if !errors.Is(err, context.Canceled) || errors.As(err, &re) {
			t.Fatalf("got %v, want a wrapped context.Canceled that is not a retry.Error", err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := marketo.Config{BaseURL: "ftp://x", BatchSize: 301, Action: "merge"}.Validate()
	for _, want := range []string{"BaseURL", "ClientID", "ClientSecret", "BatchSize", "Action"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, lacks %s", err, want)
		}
	}
}

// Marketo's throttle code arrives in an HTTP 200; the gate must hear it as
// a 429 so the dispatch stage slows the pair down.
func TestThrottleReachesTheGateAsA429(t *testing.T) {
	f, c := newPair(t, func(cfg *marketo.Config) { cfg.ThrottleBackoff = time.Millisecond })
	f.ThrottleNext(1)
	g := &countingGate{}
	for _, err := range c.Upsert(context.Background(), g, samples(2)) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(g.statuses) != "[429 200]" {
		t.Errorf("gate heard %v, want [429 200]", g.statuses)
	}
}
