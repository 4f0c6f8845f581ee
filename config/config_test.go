package config_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synchub/synchub/config"
)

const (
	examplePath = "../configs/synchub.yaml"
	testdata    = "../configs/testdata"
	acmePath    = "customers[0].connectors.webhook"
	adminToken  = "adm1n-t0ken-do-not-print"
)

// secret returns a valid Standard Webhooks secret over n bytes of fill.
func secret(fill byte, n int) string {
	return "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, n))
}

var (
	acmeSecret   = secret('a', 24)
	globexSecret = secret('g', 32)
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func fixture(name string) string { return filepath.Join(testdata, name) }

// lineOf finds the 1-based line of the first line containing text, so that tests of the
// example config keep asserting exact lines when the example's comments change.
func lineOf(t *testing.T, path, text string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("%s: no line contains %q", path, text)
	return 0
}

// problems loads path and returns the problems of its *Error, failing the test when the
// error is missing or of another type.
func problems(t *testing.T, path string, getenv func(string) (string, bool)) (*config.Error, []config.Problem) {
	t.Helper()
	cfg, err := config.Load(path, getenv)
	if err == nil {
		t.Fatalf("Load(%s) = %+v, want an error", path, cfg)
	}
	if cfg != nil {
		t.Errorf("Load(%s) returned a config along with its error", path)
	}
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load(%s) error %T %q, want *config.Error", path, err, err)
	}
	if cerr.File != path {
		t.Errorf("Error.File = %q, want %q", cerr.File, path)
	}
	return cerr, cerr.Problems
}

func diffProblems(t *testing.T, got, want []config.Problem) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "got %d problems:\n", len(got))
	for _, p := range got {
		fmt.Fprintf(&b, "  %#v\n", p)
	}
	fmt.Fprintf(&b, "want %d:\n", len(want))
	for _, p := range want {
		fmt.Fprintf(&b, "  %#v\n", p)
	}
	t.Error(b.String())
}

func TestLoadExample(t *testing.T) {
	cfg, err := config.Load(examplePath, env(map[string]string{
		"SYNCHUB_ADMIN_TOKEN":   adminToken,
		"ACME_WEBHOOK_SECRET":   acmeSecret,
		"GLOBEX_WEBHOOK_SECRET": globexSecret,
	}))
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	wantKafka := config.Kafka{
		Brokers:    []string{},
		Embedded:   config.Embedded{Listen: "127.0.0.1:9092", DataDir: "data/kafka"},
		Partitions: 8,
	}
	if !reflect.DeepEqual(cfg.Kafka, wantKafka) {
		t.Errorf("Kafka = %#v, want %#v", cfg.Kafka, wantKafka)
	}
	wantHTTP := config.HTTP{Listen: "127.0.0.1:8080", AdminTokenEnv: "SYNCHUB_ADMIN_TOKEN", AdminToken: adminToken}
	if cfg.HTTP != wantHTTP {
		t.Errorf("HTTP = %v, want %v (tokens compared but not printed)", cfg.HTTP, wantHTTP)
	}
	if cfg.Enrichment.GeoIPDB != "" {
		t.Errorf("GeoIPDB = %q, want empty", cfg.Enrichment.GeoIPDB)
	}

	want := []struct {
		id, name, url, secretEnv, secret string
	}{
		{"org_acme", "Acme Inc", "http://127.0.0.1:9000/hooks/acme", "ACME_WEBHOOK_SECRET", acmeSecret},
		{"org_globex", "Globex", "http://127.0.0.1:9000/hooks/globex", "GLOBEX_WEBHOOK_SECRET", globexSecret},
	}
	if len(cfg.Customers) != len(want) {
		t.Fatalf("%d customers, want %d", len(cfg.Customers), len(want))
	}
	for i, w := range want {
		c := cfg.Customers[i]
		hook := c.Connectors.Webhook
		if c.ID != w.id || c.Name != w.name || hook == nil {
			t.Fatalf("customers[%d] = %q %q webhook %v, want %q %q with a webhook", i, c.ID, c.Name, hook, w.id, w.name)
		}
		if !hook.Enabled || hook.URL != w.url || hook.SecretEnv != w.secretEnv || hook.Secret != w.secret {
			t.Errorf("customers[%d] webhook = %v, want enabled, url %s, secret_env %s and its secret", i, hook, w.url, w.secretEnv)
		}
		if !slices.Equal(hook.Entities, []string{"user"}) {
			t.Errorf("customers[%d] entities = %q, want [user]", i, hook.Entities)
		}
		if hook.BatchSize != 1 || hook.MaxConcurrency != 8 || hook.RateLimit != nil {
			t.Errorf("customers[%d] webhook = %v, want batch_size 1, max_concurrency 8, no rate_limit", i, hook)
		}
	}
	if want := defaultDispatch(); !reflect.DeepEqual(cfg.Dispatch, want) {
		t.Errorf("Dispatch = %v, want %v", cfg.Dispatch, want)
	}
	if got := cfg.Customers[0].Connectors.Webhook.SigningKey(); !bytes.Equal(got, bytes.Repeat([]byte{'a'}, 24)) {
		t.Errorf("SigningKey() = %x, want 24 bytes of 'a'", got)
	}
	hooks := cfg.EnabledWebhooks()
	if len(hooks) != 2 || hooks["org_acme"] != cfg.Customers[0].Connectors.Webhook || hooks["org_globex"] != cfg.Customers[1].Connectors.Webhook {
		t.Errorf("EnabledWebhooks() = %v, want org_acme and org_globex", hooks)
	}
	if c, ok := cfg.Customer("org_globex"); !ok || c != &cfg.Customers[1] {
		t.Errorf("Customer(org_globex) = %v, %v, want customers[1]", c, ok)
	}
	if _, ok := cfg.Customer("org_initech"); ok {
		t.Error("Customer(org_initech) found a customer that is not configured")
	}
	if ps := cfg.Validate(); len(ps) != 0 {
		t.Errorf("Validate() of a loaded config = %v, want none", ps)
	}
}

func TestLoadExampleWithoutEnv(t *testing.T) {
	adminLine := lineOf(t, examplePath, "admin_token_env: SYNCHUB_ADMIN_TOKEN")
	acmeLine := lineOf(t, examplePath, "secret_env: ACME_WEBHOOK_SECRET")
	globexLine := lineOf(t, examplePath, "secret_env: GLOBEX_WEBHOOK_SECRET")
	acme := config.Problem{Path: "customers[0].connectors.webhook.secret_env", Line: acmeLine, Msg: "environment variable ACME_WEBHOOK_SECRET is not set"}
	globex := config.Problem{Path: "customers[1].connectors.webhook.secret_env", Line: globexLine, Msg: "environment variable GLOBEX_WEBHOOK_SECRET is not set"}
	admin := config.Problem{Path: "http.admin_token_env", Line: adminLine, Msg: "environment variable SYNCHUB_ADMIN_TOKEN is not set"}

	tests := []struct {
		name string
		env  map[string]string
		want []config.Problem
	}{
		{"nothing set", nil, []config.Problem{admin, acme, globex}},
		{"admin token only", map[string]string{"SYNCHUB_ADMIN_TOKEN": adminToken}, []config.Problem{acme, globex}},
		{"globex missing", map[string]string{"SYNCHUB_ADMIN_TOKEN": adminToken, "ACME_WEBHOOK_SECRET": acmeSecret}, []config.Problem{globex}},
		{"admin token empty", map[string]string{"SYNCHUB_ADMIN_TOKEN": "", "ACME_WEBHOOK_SECRET": acmeSecret, "GLOBEX_WEBHOOK_SECRET": globexSecret},
			[]config.Problem{{Path: "http.admin_token_env", Line: adminLine, Msg: "environment variable SYNCHUB_ADMIN_TOKEN is empty"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cerr, got := problems(t, examplePath, env(tt.env))
			diffProblems(t, got, tt.want)
			for _, v := range []string{adminToken, acmeSecret} {
				if strings.Contains(cerr.Error(), v) {
					t.Errorf("error %q contains a secret value", cerr)
				}
			}
		})
	}
}

func defaultWebhook() config.Webhook {
	return config.Webhook{
		Entities: []string{"user"},
		Timeout:  config.Duration(10 * time.Second),
		Retry: config.Retry{
			MaxAttempts:     20,
			InitialInterval: config.Duration(250 * time.Millisecond),
			MaxInterval:     config.Duration(15 * time.Second),
			MaxElapsed:      config.Duration(10 * time.Minute),
		},
		BatchSize:      1,
		MaxConcurrency: 8,
		Circuit:        config.Circuit{Failures: 5, OpenFor: config.Duration(2 * time.Second)},
	}
}

func boolPtr(b bool) *bool { return &b }

func defaultDispatch() config.Dispatch {
	return config.Dispatch{
		MaxInFlight:            1000,
		MaxInFlightPerCustomer: 250,
		MaxPending:             100000,
		Linger:                 config.Duration(20 * time.Millisecond),
		Coalesce:               boolPtr(true),
	}
}

func TestDefaults(t *testing.T) {
	wantKafka := config.Kafka{Embedded: config.Embedded{Listen: "127.0.0.1:9092", DataDir: "data/kafka"}, Partitions: 8}
	wantHTTP := config.HTTP{Listen: "127.0.0.1:8080"}
	minimalHook := defaultWebhook()
	minimalHook.Enabled = true
	minimalHook.URL = "https://hooks.example.com/min"
	minimalHook.SecretEnv = "MIN_SECRET"
	minimalHook.Secret = acmeSecret
	disabledHook := defaultWebhook()
	disabledHook.URL = "https://hooks.example.com/acme"
	disabledHook.SecretEnv = "UNSET_WEBHOOK_SECRET"

	tests := []struct {
		file  string
		hooks []config.Webhook // of each customer, in order
	}{
		{"empty.yaml", nil},
		{"comments_only.yaml", nil},
		{"minimal.yaml", []config.Webhook{minimalHook}},
		// Disabled: its unset variable is not an error, and its secret stays unresolved.
		{"disabled_webhook.yaml", []config.Webhook{disabledHook}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := config.Load(fixture(tt.file), env(map[string]string{"MIN_SECRET": acmeSecret}))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(cfg.Kafka, wantKafka) {
				t.Errorf("Kafka = %#v, want %#v", cfg.Kafka, wantKafka)
			}
			if cfg.HTTP != wantHTTP || cfg.Enrichment != (config.Enrichment{}) {
				t.Errorf("HTTP = %v, Enrichment = %v, want %v and none", cfg.HTTP, cfg.Enrichment, wantHTTP)
			}
			if want := defaultDispatch(); !reflect.DeepEqual(cfg.Dispatch, want) || !cfg.Dispatch.CoalesceEnabled() {
				t.Errorf("Dispatch = %v, want %v", cfg.Dispatch, want)
			}
			if len(cfg.Customers) != len(tt.hooks) {
				t.Fatalf("%d customers, want %d", len(cfg.Customers), len(tt.hooks))
			}
			enabled := 0
			for i, want := range tt.hooks {
				got := cfg.Customers[i].Connectors.Webhook
				if got == nil || !reflect.DeepEqual(*got, want) {
					t.Errorf("customers[%d] webhook =\n  %v\nwant\n  %v", i, got, want)
				}
				if want.Enabled {
					enabled++
				}
			}
			if n := len(cfg.EnabledWebhooks()); n != enabled {
				t.Errorf("%d enabled webhooks, want %d", n, enabled)
			}
		})
	}
}

func TestExplicitValuesOverrideDefaults(t *testing.T) {
	cfg, err := config.Load(fixture("overrides.yaml"), env(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	wantKafka := config.Kafka{
		Brokers:    []string{"kafka-1:9092", "kafka-2:9093"},
		Embedded:   config.Embedded{Listen: "0.0.0.0:19092", DataDir: "/var/lib/synchub/kafka"},
		Partitions: 1024,
	}
	if !reflect.DeepEqual(cfg.Kafka, wantKafka) {
		t.Errorf("Kafka = %#v, want %#v", cfg.Kafka, wantKafka)
	}
	if cfg.HTTP.Listen != ":0" || cfg.Enrichment.GeoIPDB != "/usr/share/GeoIP/GeoLite2-City.mmdb" {
		t.Errorf("HTTP = %v, Enrichment = %v", cfg.HTTP, cfg.Enrichment)
	}
	// The upper bounds are allowed, and so are linger 0s and coalesce false, which are
	// zero values and must not be mistaken for absent keys.
	wantDispatch := config.Dispatch{
		MaxInFlight:            100000,
		MaxInFlightPerCustomer: 100000,
		MaxPending:             100000,
		Linger:                 0,
		Coalesce:               boolPtr(false),
	}
	if !reflect.DeepEqual(cfg.Dispatch, wantDispatch) || cfg.Dispatch.CoalesceEnabled() {
		t.Errorf("Dispatch = %v, want %v", cfg.Dispatch, wantDispatch)
	}
	wantHook := config.Webhook{
		URL:      "https://hooks.example.com/o",
		Entities: []string{"campaign", "user"},
		Timeout:  config.Duration(2 * time.Second),
		Retry: config.Retry{
			MaxAttempts:     1,
			InitialInterval: config.Duration(time.Second),
			MaxInterval:     config.Duration(time.Second),
			MaxElapsed:      config.Duration(30 * time.Second),
		},
		BatchSize:      1000,
		RateLimit:      &config.RateLimit{Requests: 4, Per: config.Duration(time.Second)},
		MaxConcurrency: 1,
		Circuit:        config.Circuit{Failures: 1, OpenFor: config.Duration(10 * time.Millisecond)},
	}
	if len(cfg.Customers) != 2 {
		t.Fatalf("%d customers, want 2", len(cfg.Customers))
	}
	if got := cfg.Customers[0].Connectors.Webhook; got == nil || !reflect.DeepEqual(*got, wantHook) {
		t.Errorf("webhook = %v, want %v", got, wantHook)
	}
	if got := cfg.Customers[0].Connectors.Webhook.Retry.MaxElapsed.D(); got != 30*time.Second {
		t.Errorf("MaxElapsed.D() = %v, want 30s", got)
	}
	if c := cfg.Customers[1]; c.ID != "org_nohook" || c.Connectors.Webhook != nil {
		t.Errorf("customers[1] = %+v, want org_nohook without connectors", c)
	}
}

func TestProblems(t *testing.T) {
	wantDuration := func(v string) string {
		return fmt.Sprintf("invalid duration %q (want a number with a unit, like 250ms, 10s or 2m)", v)
	}
	notHostPort := func(v string) string { return fmt.Sprintf("must be host:port with a numeric port, got %q", v) }
	const (
		badURL   = "must be an absolute http or https URL"
		required = "is required when the webhook is enabled"
		positive = "must be positive, got 0s"
		badName  = "must be the name of an environment variable (letters, digits and _, not starting with a digit)"
	)
	vars := map[string]string{"ACME_WEBHOOK_SECRET": acmeSecret, "SYNCHUB_ADMIN_TOKEN": adminToken}

	tests := []struct {
		file string
		want []config.Problem
	}{
		{"unknown_top.yaml", []config.Problem{
			{Path: "customer", Line: 3, Msg: `unknown key "customer"`},
		}},
		{"unknown_nested.yaml", []config.Problem{
			{Path: acmePath + ".retry.max_attempt", Line: 9, Msg: `unknown key "max_attempt"`},
		}},
		{"bad_duration.yaml", []config.Problem{
			{Path: acmePath + ".timeout", Line: 8, Msg: wantDuration("10")},
			{Path: acmePath + ".retry.max_interval", Line: 9, Msg: wantDuration("soon")},
		}},
		{"partitions_zero.yaml", []config.Problem{
			{Path: "kafka.partitions", Line: 3, Msg: "must be between 1 and 1024, got 0"},
		}},
		{"partitions_high.yaml", []config.Problem{
			{Path: "kafka.partitions", Line: 2, Msg: "must be between 1 and 1024, got 1025"},
		}},
		// The range check must not repeat the type error about the same key.
		{"partitions_type.yaml", []config.Problem{
			{Path: "kafka.partitions", Line: 2, Msg: `want an integer, got "many"`},
		}},
		// The decoder would truncate a float into an integer key without a word.
		{"partitions_float.yaml", []config.Problem{
			{Path: "kafka.partitions", Line: 2, Msg: `want an integer, got "8.5"`},
		}},
		{"duplicate_id.yaml", []config.Problem{
			{Path: "customers[2].id", Line: 5, Msg: `duplicate id "org_acme", already used by customers[0] at line 2`},
			{Path: "customers[3].id", Line: 7, Msg: "is required"},
		}},
		// Absent keys get the line of the webhook key, their nearest present parent.
		{"webhook_incomplete.yaml", []config.Problem{
			{Path: acmePath + ".url", Line: 4, Msg: required},
			{Path: acmePath + ".secret_env", Line: 4, Msg: required},
		}},
		{"secret_in_file.yaml", []config.Problem{
			{Path: "http.admin_token_env", Line: 2, Msg: badName},
			{Path: acmePath + ".secret_env", Line: 9, Msg: "looks like a secret; put the secret in an environment variable and give that variable's name here"},
		}},
		{"syntax_error.yaml", []config.Problem{
			{Line: 5, Msg: "invalid YAML: mapping values are not allowed in this context"},
		}},
		{"multi_doc.yaml", []config.Problem{
			{Line: 3, Msg: "only one YAML document is allowed"},
		}},
		{"wrong_types.yaml", []config.Problem{
			{Path: "kafka.embedded", Line: 2, Msg: "want a mapping, got a list"},
			{Path: "http", Line: 3, Msg: `want a mapping, got "8080"`},
			{Path: "customers[0]", Line: 5, Msg: `want a mapping, got "org_acme"`},
			{Path: "customers[1].connectors.webhook.enabled", Line: 9, Msg: `want true or false, got "maybe"`},
			{Path: "customers[1].connectors.webhook.entities[1]", Line: 10, Msg: "want a string, got a list"},
		}},
		{"bad_values.yaml", []config.Problem{
			{Path: "kafka.brokers[1]", Line: 2, Msg: notHostPort("kafka-2")},
			{Path: "kafka.brokers[2]", Line: 2, Msg: notHostPort("kafka-3:http")},
			{Path: "kafka.embedded.listen", Line: 3, Msg: notHostPort("localhost")},
			{Path: "kafka.embedded.data_dir", Line: 3, Msg: "must not be empty"},
			{Path: "http.listen", Line: 5, Msg: notHostPort("127.0.0.1:99999")},
			{Path: acmePath + ".url", Line: 11, Msg: badURL},
			{Path: acmePath + ".entities[1]", Line: 13, Msg: `unknown entity "page" (want "user" or "campaign")`},
			{Path: acmePath + ".entities[2]", Line: 13, Msg: `duplicate entity "user"`},
			{Path: acmePath + ".timeout", Line: 14, Msg: positive},
			{Path: acmePath + ".retry.max_attempts", Line: 16, Msg: "must be at least 1, got 0"},
			{Path: acmePath + ".retry.initial_interval", Line: 17, Msg: "must be positive, got -1s"},
			{Path: acmePath + ".retry.max_interval", Line: 18, Msg: positive},
			{Path: acmePath + ".retry.max_elapsed", Line: 19, Msg: positive},
			{Path: "customers[1].connectors.webhook.url", Line: 24, Msg: badURL},
			{Path: "customers[1].connectors.webhook.secret_env", Line: 25, Msg: badName},
			{Path: "customers[1].connectors.webhook.entities", Line: 26, Msg: `must list at least one of "user", "campaign"`},
			{Path: "customers[1].connectors.webhook.retry.max_interval", Line: 27, Msg: "must be at least initial_interval (2s), got 1s"},
			{Path: "customers[2].id", Line: 28, Msg: `must not start or end with spaces, got " org_spaces "`},
			{Path: "customers[2].connectors.webhook.url", Line: 31, Msg: "must not contain user info; credentials belong in environment variables"},
		}},
		// Coalesce false on line 6 is fine.
		{"dispatch_bad.yaml", []config.Problem{
			{Path: "dispatch.max_in_flight_per_customer", Line: 3, Msg: "must be between 1 and max_in_flight (100), got 101"},
			{Path: "dispatch.max_pending", Line: 4, Msg: "must be at least max_in_flight (100), got 99"},
			{Path: "dispatch.linger", Line: 5, Msg: "must be between 0s and 10s, got 11s"},
		}},
		// An invalid max_in_flight is not used as the bound of the others.
		{"dispatch_range.yaml", []config.Problem{
			{Path: "dispatch.max_in_flight", Line: 2, Msg: "must be between 1 and 100000, got 100001"},
			{Path: "dispatch.max_in_flight_per_customer", Line: 2, Msg: "must be at least 1, got 0"},
			{Path: "dispatch.max_pending", Line: 2, Msg: "must be at least 1, got 0"},
			{Path: "dispatch.linger", Line: 2, Msg: "must be between 0s and 10s, got -1ms"},
		}},
		{"dispatch_types.yaml", []config.Problem{
			{Path: "dispatch.max_in_flight", Line: 2, Msg: `want an integer, got "lots"`},
			{Path: "dispatch.coalesce", Line: 3, Msg: `want true or false, got "maybe"`},
			{Path: "dispatch.linger", Line: 4, Msg: wantDuration("soon")},
			{Path: "dispatch.max_pending", Line: 5, Msg: "want an integer, got a list"},
		}},
		// Keys missing from a rate_limit get the line of rate_limit.
		{"rate_limit_bad.yaml", []config.Problem{
			{Path: acmePath + ".batch_size", Line: 8, Msg: "must be between 1 and 1000, got 0"},
			{Path: acmePath + ".max_concurrency", Line: 9, Msg: "must be between 1 and 1000, got 1001"},
			{Path: acmePath + ".rate_limit.requests", Line: 10, Msg: "must be at least 1, got 0"},
			{Path: acmePath + ".rate_limit.per", Line: 10, Msg: positive},
			{Path: "customers[1].connectors.webhook.batch_size", Line: 15, Msg: "must be between 1 and 1000, got 5000"},
			{Path: "customers[1].connectors.webhook.max_concurrency", Line: 16, Msg: "must be between 1 and 1000, got 0"},
			{Path: "customers[1].connectors.webhook.rate_limit.per", Line: 17, Msg: "is required when rate_limit is given"},
			{Path: "customers[2].connectors.webhook.rate_limit.requests", Line: 22, Msg: "is required when rate_limit is given"},
			{Path: "customers[2].connectors.webhook.rate_limit.per", Line: 22, Msg: "is required when rate_limit is given"},
			{Path: "customers[3].connectors.webhook.rate_limit.requests", Line: 26, Msg: "must be at least 1, got -3"},
			{Path: "customers[3].connectors.webhook.rate_limit.per", Line: 26, Msg: "must be positive, got -1s"},
		}},
		// In flow style several values share a line; each problem still names its key.
		{"webhook_types.yaml", []config.Problem{
			{Path: acmePath + ".batch_size", Line: 5, Msg: `want an integer, got "big"`},
			{Path: acmePath + ".rate_limit", Line: 6, Msg: `want a mapping, got "4"`},
			{Path: "customers[1].connectors.webhook.max_concurrency", Line: 10, Msg: `want an integer, got "2.5"`},
			{Path: "customers[1].connectors.webhook.rate_limit.requests", Line: 11, Msg: `want an integer, got "many"`},
			{Path: "customers[2].connectors.webhook.rate_limit.per", Line: 15, Msg: wantDuration("60")},
			{Path: "customers[2].connectors.webhook.rate_limit.burst", Line: 15, Msg: `unknown key "burst"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cerr, got := problems(t, fixture(tt.file), env(vars))
			diffProblems(t, got, tt.want)
			for _, v := range vars {
				if strings.Contains(cerr.Error(), v) {
					t.Errorf("error contains a secret value:\n%s", cerr)
				}
			}
		})
	}
}

// TestAllProblemsAtOnce checks that decoding, validation and environment problems are
// reported together and sorted by line, not in the order they were found.
func TestAllProblemsAtOnce(t *testing.T) {
	cerr, _ := problems(t, fixture("many_problems.yaml"), env(map[string]string{"ACME_WEBHOOK_SECRET": acmeSecret}))
	want := strings.Join([]string{
		`line 2: kafka.partitions: must be between 1 and 1024, got 0`,
		`line 4: http.listen: must be host:port with a numeric port, got "nowhere"`,
		`line 12: customers[0].connectors.webhook.timeout: invalid duration "fast" (want a number with a unit, like 250ms, 10s or 2m)`,
		`line 13: customers[1].id: duplicate id "org_acme", already used by customers[0] at line 6`,
		`line 15: customers[1].connectors.webhook.url: is required when the webhook is enabled`,
		`line 17: customers[1].connectors.webhook.secret_env: environment variable MISSING_SECRET is not set`,
		`line 19: customers[1].connectors.webhook.retry.backoff: unknown key "backoff"`,
		`line 20: flavour: unknown key "flavour"`,
	}, "\n")
	if got := cerr.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

func TestBadWebhookSecret(t *testing.T) {
	problem := config.Problem{
		Path: acmePath + ".secret_env",
		Line: 9,
		Msg:  "environment variable ACME_WEBHOOK_SECRET is not a whsec_<base64> secret of at least 16 bytes",
	}
	tests := []struct {
		name, value string
		valid       bool
	}{
		{"no prefix", strings.TrimPrefix(acmeSecret, "whsec_"), false},
		{"not base64", "whsec_this-is-not-base64!", false},
		{"url-safe base64", "whsec_" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 24)), false},
		{"15 bytes", secret('s', 15), false},
		{"prefix only", "whsec_", false},
		{"empty", "", false},
		{"16 bytes", secret('s', 16), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"ACME_WEBHOOK_SECRET": tt.value, "SYNCHUB_ADMIN_TOKEN": adminToken}
			cfg, err := config.Load(fixture("missing_env.yaml"), env(vars))
			if tt.valid {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got := cfg.Customers[0].Connectors.Webhook.Secret; got != tt.value {
					t.Error("Secret is not the variable's value")
				}
				return
			}
			cerr, got := problems(t, fixture("missing_env.yaml"), env(vars))
			diffProblems(t, got, []config.Problem{problem})
			payload := strings.TrimPrefix(tt.value, "whsec_")
			if payload != "" && strings.Contains(cerr.Error(), payload) {
				t.Errorf("error %q contains the secret", cerr)
			}
		})
	}
}

func TestMissingEnvNamesVariableNotSecret(t *testing.T) {
	cerr, got := problems(t, fixture("missing_env.yaml"), env(map[string]string{"SYNCHUB_ADMIN_TOKEN": adminToken}))
	diffProblems(t, got, []config.Problem{
		{Path: acmePath + ".secret_env", Line: 9, Msg: "environment variable ACME_WEBHOOK_SECRET is not set"},
	})
	if msg := cerr.Error(); !strings.Contains(msg, "ACME_WEBHOOK_SECRET") || strings.Contains(msg, adminToken) {
		t.Errorf("error %q must name ACME_WEBHOOK_SECRET and not contain the admin token", msg)
	}
}

func TestSecretsNotPrinted(t *testing.T) {
	cfg, err := config.Load(examplePath, env(map[string]string{
		"SYNCHUB_ADMIN_TOKEN":   adminToken,
		"ACME_WEBHOOK_SECRET":   acmeSecret,
		"GLOBEX_WEBHOOK_SECRET": globexSecret,
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	hook := cfg.Customers[0].Connectors.Webhook
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{cfg, *cfg, cfg.HTTP, &cfg.HTTP, hook, *hook, cfg.Customers} {
			out := fmt.Sprintf(verb, v)
			for _, s := range []string{adminToken, acmeSecret, globexSecret} {
				if strings.Contains(out, s) {
					t.Errorf("Sprintf(%q, %T) prints a secret", verb, v)
				}
			}
		}
	}
	if got := fmt.Sprint(hook); !strings.Contains(got, "[redacted]") || !strings.Contains(got, hook.URL) {
		t.Errorf("Sprint(webhook) = %q, want the URL and a redacted secret", got)
	}
}

func TestProblemFormat(t *testing.T) {
	e := &config.Error{Problems: []config.Problem{
		{Path: "kafka.partitions", Line: 3, Msg: "must be between 1 and 1024, got 0"},
		{Path: "http.listen", Msg: "must be host:port with a numeric port, got \"x\""},
		{Line: 7, Msg: "invalid YAML: did not find expected key"},
	}}
	want := "line 3: kafka.partitions: must be between 1 and 1024, got 0\n" +
		"http.listen: must be host:port with a numeric port, got \"x\"\n" +
		"line 7: invalid YAML: did not find expected key"
	if got := e.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

// TestValidateAfterChange checks that Validate on a loaded config, as a reload would run
// it after an edit, still knows the lines of the source.
func TestValidateAfterChange(t *testing.T) {
	cfg, err := config.Load(examplePath, env(map[string]string{
		"SYNCHUB_ADMIN_TOKEN":   adminToken,
		"ACME_WEBHOOK_SECRET":   acmeSecret,
		"GLOBEX_WEBHOOK_SECRET": globexSecret,
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	cfg.Customers[1].ID = "org_acme"
	acmeLine := lineOf(t, examplePath, "id: org_acme")
	diffProblems(t, cfg.Validate(), []config.Problem{{
		Path: "customers[1].id",
		Line: lineOf(t, examplePath, "id: org_globex"),
		Msg:  fmt.Sprintf(`duplicate id "org_acme", already used by customers[0] at line %d`, acmeLine),
	}})

	// A config built in code has no source, so its problems have no line.
	var empty config.Config
	diffProblems(t, empty.Validate(), []config.Problem{
		{Path: "kafka.partitions", Msg: "must be between 1 and 1024, got 0"},
		{Path: "kafka.embedded.listen", Msg: `must be host:port with a numeric port, got ""`},
		{Path: "kafka.embedded.data_dir", Msg: "must not be empty"},
		{Path: "http.listen", Msg: `must be host:port with a numeric port, got ""`},
		{Path: "dispatch.max_in_flight", Msg: "must be between 1 and 100000, got 0"},
		{Path: "dispatch.max_in_flight_per_customer", Msg: "must be at least 1, got 0"},
		{Path: "dispatch.max_pending", Msg: "must be at least 1, got 0"},
	})
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(fixture("does_not_exist.yaml"), env(nil))
	var cerr *config.Error
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &cerr) {
		t.Errorf("Load of a missing file: %v, want a wrapped fs.ErrNotExist", err)
	}
}

func TestParseMatchesLoad(t *testing.T) {
	data, err := os.ReadFile(fixture("unknown_top.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Parse(data, env(nil))
	var cerr *config.Error
	if !errors.As(err, &cerr) || cerr.File != "" || err.Error() != `line 3: customer: unknown key "customer"` {
		t.Errorf("Parse error = %v, want a *config.Error without File naming the unknown key", err)
	}
}

// TestDispatchDefaults checks that each default applies only to its own absent key, and
// that a zero value written out (coalesce: false, linger: 0s) is kept.
func TestDispatchDefaults(t *testing.T) {
	ms := func(n int) config.Duration { return config.Duration(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name, yaml string
		want       config.Dispatch
		coalesce   bool
	}{
		{"absent", "", defaultDispatch(), true},
		{"null", "dispatch:\n", defaultDispatch(), true},
		{"empty", "dispatch: {}\n", defaultDispatch(), true},
		{"coalesce true", "dispatch: {coalesce: true}\n", defaultDispatch(), true},
		{"coalesce false", "dispatch:\n  coalesce: false\n",
			config.Dispatch{MaxInFlight: 1000, MaxInFlightPerCustomer: 250, MaxPending: 100000, Linger: ms(20), Coalesce: boolPtr(false)}, false},
		{"coalesce null", "dispatch:\n  coalesce: ~\n", defaultDispatch(), true},
		{"linger 0s", "dispatch: {linger: 0s}\n",
			config.Dispatch{MaxInFlight: 1000, MaxInFlightPerCustomer: 250, MaxPending: 100000, Linger: 0, Coalesce: boolPtr(true)}, true},
		// The per-customer default never exceeds a smaller max_in_flight.
		{"small max_in_flight", "dispatch: {max_in_flight: 100}\n",
			config.Dispatch{MaxInFlight: 100, MaxInFlightPerCustomer: 100, MaxPending: 100000, Linger: ms(20), Coalesce: boolPtr(true)}, true},
		{"large max_in_flight", "dispatch: {max_in_flight: 5000, max_pending: 5000}\n",
			config.Dispatch{MaxInFlight: 5000, MaxInFlightPerCustomer: 250, MaxPending: 5000, Linger: ms(20), Coalesce: boolPtr(true)}, true},
		{"all set", "dispatch: {max_in_flight: 10, max_in_flight_per_customer: 1, max_pending: 10, linger: 10s, coalesce: true}\n",
			config.Dispatch{MaxInFlight: 10, MaxInFlightPerCustomer: 1, MaxPending: 10, Linger: config.Duration(10 * time.Second), Coalesce: boolPtr(true)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tt.yaml), env(nil))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(cfg.Dispatch, tt.want) {
				t.Errorf("Dispatch = %v, want %v", cfg.Dispatch, tt.want)
			}
			if got := cfg.Dispatch.CoalesceEnabled(); got != tt.coalesce {
				t.Errorf("CoalesceEnabled() = %v, want %v", got, tt.coalesce)
			}
		})
	}
	// Built in code, an unset Coalesce means the default.
	if !(config.Dispatch{}).CoalesceEnabled() || (config.Dispatch{Coalesce: boolPtr(false)}).CoalesceEnabled() {
		t.Error("CoalesceEnabled() must be true for nil and false for an explicit false")
	}
}

// TestWebhookTuning checks the per-customer keys in both YAML styles and their defaults.
func TestWebhookTuning(t *testing.T) {
	const head = "customers:\n  - id: org_t\n    connectors:\n      webhook:\n"
	perSecond := func(n int) *config.RateLimit {
		return &config.RateLimit{Requests: n, Per: config.Duration(time.Second)}
	}
	tests := []struct {
		name, yaml  string
		batch, conc int
		rate        *config.RateLimit
	}{
		{"defaults", "        url: https://hooks.example.com/t\n", 1, 8, nil},
		{"rate_limit null", "        rate_limit:\n", 1, 8, nil},
		{"flow rate_limit", "        rate_limit: {requests: 4, per: 1s}\n", 1, 8, perSecond(4)},
		{"block rate_limit", "        rate_limit:\n          per: 1m\n          requests: 600\n", 1, 8,
			&config.RateLimit{Requests: 600, Per: config.Duration(time.Minute)}},
		{"bounds", "        batch_size: 1000\n        max_concurrency: 1000\n        rate_limit: {requests: 1, per: 1ns}\n", 1000, 1000,
			&config.RateLimit{Requests: 1, Per: 1}},
		{"flow webhook", "        {batch_size: 50, max_concurrency: 2, rate_limit: {requests: 10, per: 1s}}\n", 50, 2, perSecond(10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := head + tt.yaml
			if strings.HasPrefix(tt.yaml, "        {") {
				yaml = strings.TrimSuffix(head, "\n") + " " + strings.TrimSpace(tt.yaml) + "\n"
			}
			cfg, err := config.Parse([]byte(yaml), env(nil))
			if err != nil {
				t.Fatalf("Parse(%q): %v", yaml, err)
			}
			w := cfg.Customers[0].Connectors.Webhook
			if w.BatchSize != tt.batch || w.MaxConcurrency != tt.conc || !reflect.DeepEqual(w.RateLimit, tt.rate) {
				t.Errorf("webhook = %v, want batch_size %d, max_concurrency %d, rate_limit %v", w, tt.batch, tt.conc, tt.rate)
			}
		})
	}
}
