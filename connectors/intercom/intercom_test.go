package intercom_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/connectortest"
	"github.com/synchub/synchub/connectors/intercom"
	"github.com/synchub/synchub/connectors/intercom/fake"
	"github.com/synchub/synchub/retry"
)

const specPath = "../../../shared/specs/intercom/api.intercom.io.yaml"

// fast is a policy quick enough for tests.
func fast() connectors.Policy {
	return connectors.Policy{MaxAttempts: 5, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond, MaxElapsed: 10 * time.Second, RequestTimeout: 2 * time.Second}
}

// env is what the tests share: the spec, parsed once because parsing
// 870 KB of YAML per fake would dominate the run.
type env struct{ spec *fake.Spec }

// TestIntercom runs every test against fakes checking the 2.14 spec.
func TestIntercom(t *testing.T) {
	spec, err := fake.LoadSpec(specPath)
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	e := env{spec}
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Contract", e.testContract},
		{"BatchLimit", e.testBatchLimit},
		{"ConflictUpdatesExisting", e.testConflictUpdatesExisting},
		{"ErrorClassification", e.testErrorClassification},
		{"UnauthorizedStopsTheCall", e.testUnauthorizedStopsTheCall},
		{"ExpireTokensIsANoOp", e.testExpireTokensIsANoOp},
		{"InvalidInput", e.testInvalidInput},
		{"CallerCancel", e.testCallerCancel},
		{"GateSeesEveryAttempt", e.testGateSeesEveryAttempt},
	} {
		t.Run(tc.name, tc.run)
	}
}

func (e env) newFake(t *testing.T) *fake.Server {
	t.Helper()
	f := fake.New(fake.WithSpec(e.spec))
	t.Cleanup(func() {
		f.Close()
		if errs := f.SpecErrors(); len(errs) > 0 {
			t.Errorf("requests failing the spec: %v", errs)
		}
	})
	return f
}

func newClient(t *testing.T, f *fake.Server, mod func(*intercom.Config)) *intercom.Client {
	t.Helper()
	cfg := intercom.Config{BaseURL: f.URL(), AccessToken: f.Token(), Policy: fast()}
	if mod != nil {
		mod(&cfg)
	}
	c, err := intercom.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func sample(i int) connectors.Record {
	return connectors.Record{Key: fmt.Sprintf("u-%d", i), Fields: map[string]any{
		"role":         "user",
		"external_id":  fmt.Sprintf("u-%d", i),
		"email":        fmt.Sprintf("user%d@example.com", i),
		"name":         fmt.Sprintf("User %d Lee", i),
		"signed_up_at": int64(1700000000 + i),
	}}
}

func (e env) testContract(t *testing.T) {
	connectortest.Run(t, func(t *testing.T) (connectortest.Fake, connectortest.Connector) {
		f := e.newFake(t)
		return f, newClient(t, f, nil)
	}, sample)
}

func upsert(t *testing.T, c *intercom.Client, recs ...connectors.Record) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Upsert(ctx, connectors.OpenGate{}, recs)
}

func (e env) testBatchLimit(t *testing.T) {
	f := e.newFake(t)
	c := newClient(t, f, func(cfg *intercom.Config) { cfg.BatchSize = 500 })
	var recs []connectors.Record
	for i := range 30 {
		recs = append(recs, sample(i))
	}
	for _, err := range upsert(t, c, recs...) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.MaxBatch(); got > intercom.MaxBatch {
		t.Errorf("MaxBatch %d > limit %d", got, intercom.MaxBatch)
	}
	if got := f.Requests(); got != 30 {
		t.Errorf("%d requests for 30 new contacts, want 30", got)
	}
}

func (e env) testConflictUpdatesExisting(t *testing.T) {
	f := e.newFake(t)
	// A first client creates; a second, with no memory of the ids, must
	// resolve the 409 into a PUT.
	if errs := upsert(t, newClient(t, f, nil), sample(1)); errs[0] != nil {
		t.Fatal(errs[0])
	}
	r := sample(1)
	r.Fields["name"] = "Renamed Person"
	before := f.Requests()
	if errs := upsert(t, newClient(t, f, nil), r); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if got := f.Requests() - before; got != 2 {
		t.Errorf("%d requests, want POST + PUT", got)
	}
	if got := f.Records()["u-1"]["name"]; got != "Renamed Person" {
		t.Errorf("name = %v", got)
	}
}

func (e env) testErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prep      func(*fake.Server)
		token     string
		policy    connectors.Policy
		class     retry.Class
		status    int
		substring string
	}{
		{name: "rejected record", prep: func(f *fake.Server) { f.Reject("u-1", "Email is invalid") },
			class: retry.Permanent, status: 400, substring: "parameter_invalid: Email is invalid"},
		{name: "bad token", token: "wrong", class: retry.Permanent, status: 401, substring: "unauthorized"},
		{name: "revoked token", prep: func(f *fake.Server) { f.Revoke() }, token: fake.Token, class: retry.Permanent, status: 401, substring: "Access Token Invalid"},
		{name: "outage outlasts attempts", prep: func(f *fake.Server) { f.FailNext(10) },
			class: retry.Exhausted, status: 500, substring: "server_error"},
		{name: "throttle beyond max elapsed", prep: func(f *fake.Server) { f.ThrottleNext(10) },
			policy: connectors.Policy{MaxAttempts: 5, InitialInterval: time.Millisecond, MaxElapsed: 100 * time.Millisecond},
			class:  retry.Exhausted, status: 429, substring: "rate_limit_exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := e.newFake(t)
			if tc.prep != nil {
				tc.prep(f)
			}
			c := newClient(t, f, func(cfg *intercom.Config) {
				if tc.token != "" {
					cfg.AccessToken = tc.token
				}
				if tc.policy != (connectors.Policy{}) {
					cfg.Policy = tc.policy
				}
			})
			err := upsert(t, c, sample(1))[0]
			var re *retry.Error
			if !errors.As(err, &re) {
				t.Fatalf("%v, want a *retry.Error", err)
			}
			if re.Class != tc.class || re.HTTPStatus != tc.status || !strings.Contains(err.Error(), tc.substring) {
				t.Errorf("%v (class %s, status %d), want %s, %d, containing %q", err, re.Class, re.HTTPStatus, tc.class, tc.status, tc.substring)
			}
			if strings.Contains(err.Error(), f.Token()) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func (e env) testUnauthorizedStopsTheCall(t *testing.T) {
	f := e.newFake(t)
	c := newClient(t, f, func(cfg *intercom.Config) { cfg.AccessToken = "wrong"; cfg.Concurrency = 1 })
	var recs []connectors.Record
	for i := range 10 {
		recs = append(recs, sample(i))
	}
	errs := upsert(t, c, recs...)
	for i, err := range errs {
		if retry.ClassOf(err) != retry.Permanent {
			t.Errorf("record %d: %v", i, err)
		}
	}
	if got := f.Requests(); got != 1 {
		t.Errorf("%d requests with a bad token, want 1", got)
	}
}

func (e env) testExpireTokensIsANoOp(t *testing.T) {
	f := e.newFake(t)
	c := newClient(t, f, nil)
	f.ExpireTokens()
	if err := upsert(t, c, sample(1))[0]; err != nil {
		t.Fatal(err)
	}
}

func (e env) testInvalidInput(t *testing.T) {
	f := e.newFake(t)
	c := newClient(t, f, nil)
	bad := sample(1)
	bad.Fields["external_id"] = "someone-else"
	errs := upsert(t, c, connectors.Record{Fields: map[string]any{"email": "x@example.com"}}, bad)
	for i, err := range errs {
		if retry.ClassOf(err) != retry.InvalidInput {
			t.Errorf("record %d: %v, want InvalidInput", i, err)
		}
	}
	if f.Requests() != 0 {
		t.Errorf("%d requests for invalid input", f.Requests())
	}
}

func (e env) testCallerCancel(t *testing.T) {
	f := e.newFake(t)
	f.FailNext(100)
	c := newClient(t, f, func(cfg *intercom.Config) {
		cfg.Policy = connectors.Policy{MaxAttempts: 100, InitialInterval: 50 * time.Millisecond, MaxElapsed: time.Minute}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	err := c.Upsert(ctx, connectors.OpenGate{}, []connectors.Record{sample(1)})[0]
	var re *retry.Error
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &re) {
		t.Errorf("%v, want ctx's error and no *retry.Error", err)
	}
}

type countingGate struct {
	mu          sync.Mutex
	waits       int
	dones       int
	retryAfters []time.Duration
}

func (g *countingGate) Wait(ctx context.Context) error {
	g.mu.Lock()
	g.waits++
	g.mu.Unlock()
	return ctx.Err()
}

func (g *countingGate) Done(status int, ra time.Duration, _ error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dones++
	if status == 429 {
		g.retryAfters = append(g.retryAfters, ra)
	}
}

func (e env) testGateSeesEveryAttempt(t *testing.T) {
	f := e.newFake(t)
	f.ThrottleNext(1)
	f.FailNext(1)
	c := newClient(t, f, nil)
	g := &countingGate{}
	if err := c.Upsert(context.Background(), g, []connectors.Record{sample(1)})[0]; err != nil {
		t.Fatal(err)
	}
	if g.waits != 3 || g.dones != 3 {
		t.Errorf("waits %d, dones %d, want 3 each", g.waits, g.dones)
	}
	if len(g.retryAfters) != 1 || g.retryAfters[0] <= 0 || g.retryAfters[0] > 2*time.Second {
		t.Errorf("429 retry-after reported %v, want the X-RateLimit-Reset wait", g.retryAfters)
	}
}

func TestConfigValidate(t *testing.T) {
	err := intercom.Config{BaseURL: "ftp://x", BatchSize: -1, Policy: connectors.Policy{MaxAttempts: -1}}.Validate()
	for _, want := range []string{"BaseURL", "AccessToken", "BatchSize", "Policy"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a %s problem", err, want)
		}
	}
	cfg := intercom.Config{BaseURL: "https://api.intercom.io", AccessToken: "secret-token"}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	if s := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg); strings.Contains(s, "secret-token") {
		t.Errorf("Config prints its token: %s", s)
	}
}

func TestDefaultMapping(t *testing.T) {
	m := intercom.DefaultMapping()
	if m[intercom.KeyField()] != "id" {
		t.Errorf("key field %s maps to %q, want the user id", intercom.KeyField(), m[intercom.KeyField()])
	}
	// Intercom keeps the whole name in one field: no first/last split.
	if m["name"] != "name" {
		t.Errorf("name maps to %q", m["name"])
	}
	if m["role"] != `"user"` {
		t.Errorf("role maps to %q", m["role"])
	}
}
