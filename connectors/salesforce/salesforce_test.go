package salesforce_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/expr-lang/expr"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/connectortest"
	"github.com/synchub/synchub/connectors/salesforce"
	"github.com/synchub/synchub/connectors/salesforce/fake"
	"github.com/synchub/synchub/retry"
)

func fastPolicy() connectors.Policy {
	return connectors.Policy{
		MaxAttempts:     6,
		InitialInterval: time.Millisecond,
		MaxInterval:     5 * time.Millisecond,
		MaxElapsed:      10 * time.Second,
		RequestTimeout:  5 * time.Second,
	}
}

func config(url string) salesforce.Config {
	return salesforce.Config{
		LoginURL:        url,
		ClientID:        fake.ClientID,
		ClientSecret:    fake.ClientSecret,
		RefreshToken:    fake.RefreshToken,
		ExternalIDField: fake.ExternalIDField,
		Policy:          fastPolicy(),
	}
}

func newPair(t *testing.T, mod func(*salesforce.Config)) (*fake.Server, *salesforce.Client) {
	t.Helper()
	f := fake.New()
	t.Cleanup(func() {
		if v := f.Violations(); len(v) > 0 {
			t.Errorf("requests outside openapi.yaml: %q", v)
		}
		f.Close()
	})
	cfg := config(f.URL())
	if mod != nil {
		mod(&cfg)
	}
	c, err := salesforce.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return f, c
}

func sample(i int) connectors.Record {
	return connectors.Record{
		Key: fmt.Sprintf("u-%04d", i),
		Fields: map[string]any{
			"FirstName": "Ann",
			"LastName":  fmt.Sprintf("Lee%d", i),
			"Email":     fmt.Sprintf("ann%d@example.com", i),
		},
	}
}

func TestContract(t *testing.T) {
	connectortest.Run(t, func(t *testing.T) (connectortest.Fake, connectortest.Connector) {
		return newPair(t, nil)
	}, sample)
}

func upsert(t *testing.T, c *salesforce.Client, gate connectors.Gate, recs []connectors.Record) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := c.Upsert(ctx, gate, recs)
	if len(errs) != len(recs) {
		t.Fatalf("%d results for %d records", len(errs), len(recs))
	}
	return errs
}

func records(n int) []connectors.Record {
	out := make([]connectors.Record, n)
	for i := range out {
		out[i] = sample(i)
	}
	return out
}

func TestBatchSplittingHonoursTheLimit(t *testing.T) {
	for _, tc := range []struct {
		batch, n, wantReqs int
	}{
		{0, 401, 3}, // default: the vendor's 200
		{200, 200, 1},
		{50, 120, 3},
		{1, 3, 3},
	} {
		t.Run(fmt.Sprintf("batch=%d n=%d", tc.batch, tc.n), func(t *testing.T) {
			f, c := newPair(t, func(c *salesforce.Config) { c.BatchSize = tc.batch })
			for i, err := range upsert(t, c, connectors.OpenGate{}, records(tc.n)) {
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
			}
			limit := tc.batch
			if limit == 0 {
				limit = salesforce.MaxBatchSize
			}
			if f.MaxBatch() > limit || f.MaxBatch() > fake.MaxRecords {
				t.Errorf("MaxBatch = %d, limit %d", f.MaxBatch(), limit)
			}
			if f.Requests() != tc.wantReqs {
				t.Errorf("%d requests, want %d", f.Requests(), tc.wantReqs)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	t.Run("one token for many calls", func(t *testing.T) {
		f, c := newPair(t, nil)
		for range 3 {
			upsert(t, c, connectors.OpenGate{}, records(5))
		}
		if n := f.TokenRequests(); n != 1 {
			t.Errorf("%d token requests, want 1", n)
		}
	})
	t.Run("expired session refreshed once and resent", func(t *testing.T) {
		f, c := newPair(t, nil)
		upsert(t, c, connectors.OpenGate{}, records(1))
		f.ExpireTokens()
		before := f.Requests()
		for i, err := range upsert(t, c, connectors.OpenGate{}, records(3)) {
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
		if f.TokenRequests() != 2 || f.Requests()-before != 2 {
			t.Errorf("token requests %d (want 2), API requests %d (want 2)", f.TokenRequests(), f.Requests()-before)
		}
	})
	t.Run("refresh ahead of the session timeout", func(t *testing.T) {
		f, c := newPair(t, func(c *salesforce.Config) { c.SessionTimeout = 200 * time.Millisecond })
		f.SetSessionTimeout(200 * time.Millisecond)
		upsert(t, c, connectors.OpenGate{}, records(1))
		time.Sleep(160 * time.Millisecond) // past timeout - timeout/4
		for i, err := range upsert(t, c, connectors.OpenGate{}, records(1)) {
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
		if f.TokenRequests() != 2 || f.Requests() != 2 {
			t.Errorf("token requests %d, API requests %d; want 2 and 2 (refreshed before, not after, a 401)", f.TokenRequests(), f.Requests())
		}
	})
	t.Run("bad refresh token is permanent", func(t *testing.T) {
		f, _ := newPair(t, nil)
		cfg := config(f.URL())
		cfg.RefreshToken = "revoked-secret-value"
		c, err := salesforce.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		errs := upsert(t, c, connectors.OpenGate{}, records(2))
		var re *retry.Error
		if !errors.As(errs[0], &re) || re.Class != retry.Permanent || !strings.Contains(errs[0].Error(), "invalid_grant") {
			t.Fatalf("%v, want permanent invalid_grant", errs[0])
		}
		if strings.Contains(errs[0].Error(), "revoked-secret-value") || strings.Contains(errs[0].Error(), fake.ClientSecret) {
			t.Errorf("secret leaked: %v", errs[0])
		}
		if f.Requests() != 0 {
			t.Errorf("%d API requests without a token", f.Requests())
		}
	})
}

// stub answers every API request with a fixed status and body, after a
// working token.
func stub(t *testing.T, status int, body string) (*salesforce.Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/services/oauth2/token" {
			fmt.Fprintf(w, `{"access_token":"t","instance_url":%q,"id":"x","issued_at":"1","signature":"s","token_type":"Bearer"}`, srv.URL)
			return
		}
		calls.Add(1)
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	cfg := config(srv.URL)
	cfg.Policy.MaxAttempts = 3
	c, err := salesforce.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls
}

func TestClassification(t *testing.T) {
	ok1 := `[{"id":"003A","success":true,"errors":[]}]`
	for _, tc := range []struct {
		name   string
		status int
		body   string
		class  retry.Class // "" = success
		calls  int32
		msg    string
	}{
		{"ok", 200, ok1, "", 1, ""},
		{"required field", 200, `[{"id":null,"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [LastName]","fields":["LastName"]}]}]`, retry.Permanent, 1, "REQUIRED_FIELD_MISSING"},
		{"lock row retried", 200, `[{"id":null,"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access","fields":[]}]}]`, retry.Exhausted, 3, "UNABLE_TO_LOCK_ROW"},
		{"duplicate retried once", 200, `[{"id":null,"success":false,"errors":[{"statusCode":"DUPLICATE_VALUE","message":"duplicate value found","fields":[]}]}]`, retry.Permanent, 2, "duplicate value found"},
		{"throttle", 403, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, retry.Exhausted, 3, "REQUEST_LIMIT_EXCEEDED"},
		{"other 403", 403, `[{"message":"insufficient access","errorCode":"INSUFFICIENT_ACCESS"}]`, retry.Permanent, 1, "INSUFFICIENT_ACCESS"},
		{"unavailable", 503, `[{"message":"down","errorCode":"SERVER_UNAVAILABLE"}]`, retry.Exhausted, 3, "SERVER_UNAVAILABLE"},
		{"500 non-json", 500, `oops`, retry.Exhausted, 3, "oops"},
		{"bad field", 400, `[{"message":"No such column 'Foo'","errorCode":"INVALID_FIELD"}]`, retry.Permanent, 1, "No such column"},
		{"not found", 404, `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`, retry.Permanent, 1, "NOT_FOUND"},
		{"multiple matches", 300, `["/services/data/v60.0/sobjects/Contact/003A","/services/data/v60.0/sobjects/Contact/003B"]`, retry.Permanent, 1, "300"},
		{"session twice", 401, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, retry.Permanent, 2, "INVALID_SESSION_ID"},
		{"200 wrong count", 200, `[]`, retry.Exhausted, 3, "BAD_RESPONSE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, calls := stub(t, tc.status, tc.body)
			err := upsert(t, c, connectors.OpenGate{}, records(1))[0]
			if tc.class == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				var re *retry.Error
				if !errors.As(err, &re) || re.Class != tc.class {
					t.Fatalf("%v, want class %s", err, tc.class)
				}
				if !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("%q lacks %q", err, tc.msg)
				}
				if re.Attempts != int(tc.calls) {
					t.Errorf("Attempts = %d, want %d", re.Attempts, tc.calls)
				}
			}
			if calls.Load() != tc.calls {
				t.Errorf("%d requests, want %d", calls.Load(), tc.calls)
			}
		})
	}
}

func TestRequiredLastNameFromTheFake(t *testing.T) {
	f, c := newPair(t, nil)
	recs := []connectors.Record{
		{Key: "u-1", Fields: map[string]any{"FirstName": "Ann", "Email": "a@example.com"}},
		{Key: "u-2", Fields: map[string]any{"LastName": "Lee"}},
		{Key: "", Fields: map[string]any{"LastName": "Lee"}},
	}
	errs := upsert(t, c, connectors.OpenGate{}, recs)
	var re *retry.Error
	if !errors.As(errs[0], &re) || re.Class != retry.Permanent || !strings.Contains(errs[0].Error(), "REQUIRED_FIELD_MISSING") {
		t.Errorf("no LastName: %v", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("u-2: %v", errs[1])
	}
	if retry.ClassOf(errs[2]) != retry.InvalidInput {
		t.Errorf("empty key: %v", errs[2])
	}
	if len(f.Records()) != 1 {
		t.Errorf("fake holds %d, want 1", len(f.Records()))
	}
}

type countingGate struct {
	waits, dones atomic.Int32
	statuses     []int
}

func (g *countingGate) Wait(ctx context.Context) error { g.waits.Add(1); return ctx.Err() }
func (g *countingGate) Done(status int, _ time.Duration, _ error) {
	g.dones.Add(1)
	g.statuses = append(g.statuses, status)
}

func TestGateSeesEveryAttempt(t *testing.T) {
	f, c := newPair(t, nil)
	f.FailNext(1)
	f.ThrottleNext(1)
	g := &countingGate{}
	for i, err := range upsert(t, c, g, records(5)) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if g.waits.Load() != 3 || g.dones.Load() != 3 || int(g.waits.Load()) != f.Requests() {
		t.Errorf("waits %d dones %d requests %d", g.waits.Load(), g.dones.Load(), f.Requests())
	}
	// The throttle (403 REQUEST_LIMIT_EXCEEDED) reaches the gate as a 429.
	if fmt.Sprint(g.statuses) != "[503 429 200]" {
		t.Errorf("statuses %v", g.statuses)
	}
}

type refusingGate struct{}

func (refusingGate) Wait(context.Context) error     { return errors.New("circuit open") }
func (refusingGate) Done(int, time.Duration, error) {}

func TestCancellationIsNotARetryError(t *testing.T) {
	_, c := newPair(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range c.Upsert(ctx, connectors.OpenGate{}, records(2)) {
		var re *retry.Error
		if !errors.Is(err, context.Canceled) || errors.As(err, &re) {
			t.Errorf("%v: want context.Canceled, not a retry.Error", err)
		}
	}
	for _, err := range upsert(t, c, refusingGate{}, records(2)) {
		var re *retry.Error
		if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "circuit open") {
			t.Errorf("%v: want the gate's refusal", err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := salesforce.Config{APIVersion: "v60", BatchSize: 201, Object: "1x"}.Validate()
	for _, want := range []string{"LoginURL", "ClientID", "ClientSecret", "RefreshToken", "APIVersion", "Object", "BatchSize"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, lacks %s", err, want)
		}
	}
	if err := config("https://login.salesforce.com").Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestDefaultMapping(t *testing.T) {
	m := salesforce.DefaultMapping()
	if _, ok := m[salesforce.KeyField()]; !ok {
		t.Fatalf("KeyField %s not mapped", salesforce.KeyField())
	}
	for _, tc := range []struct {
		name, first, last string
	}{
		{"Ann Lee", "Ann", "Lee"},
		{"Cher", "<nil>", "Cher"},
		{"Mary Ann van Dyke", "Mary Ann van", "Dyke"},
		{"  Ann Lee  ", "Ann", "Lee"},
		{"", "<nil>", "ann"},
	} {
		env := map[string]any{"id": "u-1", "name": tc.name, "email": "ann@example.com", "roles": []string{"admin"},
			"logins_count": 3, "organization_id": "o-1", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z"}
		got := map[string]string{}
		for field, src := range m {
			out, err := expr.Eval(src, env)
			if err != nil {
				t.Fatalf("%s = %s: %v", field, src, err)
			}
			got[field] = fmt.Sprint(out)
		}
		if got["FirstName"] != tc.first || got["LastName"] != tc.last || got[salesforce.KeyField()] != "u-1" {
			t.Errorf("%q: %v", tc.name, got)
		}
	}
}
