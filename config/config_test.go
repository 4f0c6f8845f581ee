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
		{"dlq_range.yaml", []config.Problem{
			{Path: "dlq.max_replays", Line: 2, Msg: "must be between 1 and 100, got 0"},
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

// LoadLayout is for the operator commands: the *_env names are checked but
// the variables need not be set.
func TestLoadLayoutNeedsNoSecrets(t *testing.T) {
	if _, err := config.Load(examplePath, env(nil)); err == nil {
		t.Fatal("Load without the secrets set succeeded")
	}
	cfg, err := config.LoadLayout(examplePath)
	if err != nil {
		t.Fatalf("LoadLayout: %v", err)
	}
	if cfg.DLQ.MaxReplays != 3 || len(cfg.Customers) == 0 || cfg.HTTP.AdminToken != "" {
		t.Errorf("LoadLayout gave max_replays %d, %d customers, admin token %q", cfg.DLQ.MaxReplays, len(cfg.Customers), cfg.HTTP.AdminToken)
	}
	if _, err := config.LoadLayout(fixture("dlq_range.yaml")); err == nil || !strings.Contains(err.Error(), "max_replays") {
		t.Error("LoadLayout accepted an invalid file")
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
		{Path: "dlq.max_replays", Msg: "must be between 1 and 100, got 0"},
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

// Resolved values of the vendor connectors' variables; no test output may contain them.
var vendorEnv = map[string]string{
	"HUBSPOT_TOKEN":         "pat-na1-hubspot-token-do-not-print",
	"HUBSPOT_CLIENT_ID":     "hubspot-client-id-do-not-print",
	"HUBSPOT_CLIENT_SECRET": "hubspot-client-secret-do-not-print",
	"HUBSPOT_REFRESH_TOKEN": "hubspot-refresh-token-do-not-print",
	"SF_CLIENT_ID":          "sf-client-id-do-not-print",
	"SF_CLIENT_SECRET":      "sf-client-secret-do-not-print",
	"SF_REFRESH_TOKEN":      "sf-refresh-token-do-not-print",
	"MARKETO_CLIENT_ID":     "marketo-client-id-do-not-print",
	"MARKETO_CLIENT_SECRET": "marketo-client-secret-do-not-print",
	"MAILCHIMP_API_KEY":     "0123456789abcdef-us21",
	"INTERCOM_TOKEN":        "intercom-token-do-not-print",
}

// vendorEnvWithout is vendorEnv less the named variables.
func vendorEnvWithout(names ...string) map[string]string {
	m := make(map[string]string, len(vendorEnv))
	for k, v := range vendorEnv {
		if !slices.Contains(names, k) {
			m[k] = v
		}
	}
	return m
}

// noSecrets fails the test when s contains any value of vendorEnv.
func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	for name, v := range vendorEnv {
		if strings.Contains(s, v) {
			t.Errorf("%s contains the value of %s:\n%s", what, name, s)
		}
	}
}

// defaultCommon is a vendor connector's common block with nothing but the defaults that
// do not depend on the vendor.
func defaultCommon() config.Common {
	w := defaultWebhook()
	return config.Common{
		Entities:       []string{"user"},
		MaxConcurrency: 8,
		Timeout:        config.Duration(30 * time.Second),
		Retry:          w.Retry,
		Circuit:        w.Circuit,
	}
}

func TestLoadVendors(t *testing.T) {
	cfg, err := config.Load(fixture("vendors_full.yaml"), env(vendorEnv))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(cfg.Customers) != 2 {
		t.Fatalf("%d customers, want 2", len(cfg.Customers))
	}

	hubspot := config.HubSpot{Common: defaultCommon(), TokenEnv: "HUBSPOT_TOKEN", Token: vendorEnv["HUBSPOT_TOKEN"]}
	hubspot.Enabled = true
	hubspot.BaseURL = "https://api.hubapi.com"
	hubspot.BatchSize = 100
	hubspot.RateLimit = &config.RateLimit{Requests: 100, Per: config.Duration(10 * time.Second)}
	hubspot.Mapping = map[string]map[string]string{"contact": {"email": "user.email", "firstname": "user.first_name"}}

	salesforce := config.Salesforce{
		Common:          defaultCommon(),
		LoginURL:        "https://login.salesforce.com",
		ClientIDEnv:     "SF_CLIENT_ID",
		ClientSecretEnv: "SF_CLIENT_SECRET",
		RefreshTokenEnv: "SF_REFRESH_TOKEN",
		APIVersion:      "60.0",
		Object:          "Contact",
		ExternalIDField: "Synchub_User_Id__c",
		ClientID:        vendorEnv["SF_CLIENT_ID"],
		ClientSecret:    vendorEnv["SF_CLIENT_SECRET"],
		RefreshToken:    vendorEnv["SF_REFRESH_TOKEN"],
	}
	salesforce.Enabled = true
	salesforce.BatchSize = 200
	salesforce.Mapping = map[string]map[string]string{"Contact": {"Email": "user.email"}}

	marketo := config.Marketo{
		Common:          defaultCommon(),
		ClientIDEnv:     "MARKETO_CLIENT_ID",
		ClientSecretEnv: "MARKETO_CLIENT_SECRET",
		LookupField:     "email",
		ClientID:        vendorEnv["MARKETO_CLIENT_ID"],
		ClientSecret:    vendorEnv["MARKETO_CLIENT_SECRET"],
	}
	marketo.Enabled = true
	marketo.BaseURL = "https://123-ABC-456.mktorest.com"
	marketo.BatchSize = 300
	marketo.RateLimit = &config.RateLimit{Requests: 100, Per: config.Duration(20 * time.Second)}

	mailchimp := config.Mailchimp{
		Common:      defaultCommon(),
		APIKeyEnv:   "MAILCHIMP_API_KEY",
		ListID:      "a1b2c3d4e5",
		StatusIfNew: "subscribed",
		APIKey:      vendorEnv["MAILCHIMP_API_KEY"],
	}
	mailchimp.Enabled = true
	mailchimp.BaseURL = "https://us1.api.mailchimp.com"
	mailchimp.BatchSize = 1
	mailchimp.MaxConcurrency = 10

	intercom := config.Intercom{Common: defaultCommon(), TokenEnv: "INTERCOM_TOKEN", Token: vendorEnv["INTERCOM_TOKEN"]}
	intercom.Enabled = true
	intercom.BaseURL = "https://api.intercom.io"
	intercom.BatchSize = 1
	intercom.Mapping = map[string]map[string]string{"contact": {"external_id": "user.id"}}

	// The second customer overrides defaults: OAuth for HubSpot, and disabled
	// connectors whose values are still checked and kept.
	oauth := config.HubSpot{
		Common:          defaultCommon(),
		ClientIDEnv:     "HUBSPOT_CLIENT_ID",
		ClientSecretEnv: "HUBSPOT_CLIENT_SECRET",
		RefreshTokenEnv: "HUBSPOT_REFRESH_TOKEN",
		ClientID:        vendorEnv["HUBSPOT_CLIENT_ID"],
		ClientSecret:    vendorEnv["HUBSPOT_CLIENT_SECRET"],
		RefreshToken:    vendorEnv["HUBSPOT_REFRESH_TOKEN"],
	}
	oauth.Enabled = true
	oauth.BaseURL = "http://127.0.0.1:8001"
	oauth.BatchSize = 10
	oauth.RateLimit = &config.RateLimit{Requests: 5, Per: config.Duration(time.Second)}
	oauth.MaxConcurrency = 2
	oauth.Timeout = config.Duration(5 * time.Second)
	oauth.Retry.MaxAttempts = 3
	oauth.Circuit.Failures = 2

	customObject := config.Salesforce{Common: defaultCommon(), LoginURL: "https://login.salesforce.com", APIVersion: "59.0", Object: "Member__c"}
	customObject.BatchSize = 200
	customObject.Mapping = map[string]map[string]string{"Member__c": {"Name": "user.name"}, "contact": {"Email": "user.email"}}

	transactional := config.Mailchimp{Common: defaultCommon(), StatusIfNew: "transactional"}
	transactional.BaseURL = "https://us1.api.mailchimp.com"
	transactional.BatchSize = 1
	transactional.MaxConcurrency = 10

	tests := []struct {
		name      string
		got, want any
	}{
		{"customers[0] hubspot", cfg.Customers[0].Connectors.HubSpot, &hubspot},
		{"customers[0] salesforce", cfg.Customers[0].Connectors.Salesforce, &salesforce},
		{"customers[0] marketo", cfg.Customers[0].Connectors.Marketo, &marketo},
		{"customers[0] mailchimp", cfg.Customers[0].Connectors.Mailchimp, &mailchimp},
		{"customers[0] intercom", cfg.Customers[0].Connectors.Intercom, &intercom},
		{"customers[0] webhook", cfg.Customers[0].Connectors.Webhook, (*config.Webhook)(nil)},
		{"customers[0] enabled", cfg.Customers[0].Connectors.Enabled(), []string{"hubspot", "intercom", "mailchimp", "marketo", "salesforce"}},
		{"customers[1] hubspot", cfg.Customers[1].Connectors.HubSpot, &oauth},
		{"customers[1] salesforce", cfg.Customers[1].Connectors.Salesforce, &customObject},
		{"customers[1] marketo", cfg.Customers[1].Connectors.Marketo, (*config.Marketo)(nil)},
		{"customers[1] mailchimp", cfg.Customers[1].Connectors.Mailchimp, &transactional},
		{"customers[1] enabled", cfg.Customers[1].Connectors.Enabled(), []string{"hubspot"}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			// Printing is redacted, so a mismatch in a secret alone shows as equal text.
			t.Errorf("%s =\n  %v\nwant\n  %v", tt.name, tt.got, tt.want)
		}
	}
	if ps := cfg.Validate(); len(ps) != 0 {
		t.Errorf("Validate() of a loaded config = %v, want none", ps)
	}
}

// TestVendorsDisabled checks that disabled connectors need no variables and resolve none.
func TestVendorsDisabled(t *testing.T) {
	cfg, err := config.Load(fixture("vendors_disabled.yaml"), env(vendorEnv))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	c := cfg.Customers[0].Connectors
	if n := c.Enabled(); len(n) != 0 {
		t.Errorf("Enabled() = %q, want none", n)
	}
	if c.HubSpot.Token != "" || c.Salesforce.ClientID != "" || c.Marketo.ClientID != "" || c.Mailchimp.APIKey != "" || c.Intercom.Token != "" {
		t.Error("a disabled connector has a resolved secret")
	}
	if c.Salesforce.ExternalIDField != "" || c.Mailchimp.ListID != "" || c.Marketo.BaseURL != "" {
		t.Error("required keys of disabled connectors got values")
	}
}

func TestEnabledConnectors(t *testing.T) {
	on := config.Common{Enabled: true}
	tests := []struct {
		name string
		c    config.Connectors
		want []string
	}{
		{"none", config.Connectors{}, nil},
		{"disabled", config.Connectors{Webhook: &config.Webhook{}, HubSpot: &config.HubSpot{}}, nil},
		{"sorted", config.Connectors{
			Webhook:    &config.Webhook{Enabled: true},
			Salesforce: &config.Salesforce{Common: on},
			Intercom:   &config.Intercom{Common: on},
			Marketo:    &config.Marketo{},
		}, []string{"intercom", "salesforce", "webhook"}},
	}
	for _, tt := range tests {
		if got := tt.c.Enabled(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Enabled() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestVendorProblems(t *testing.T) {
	const (
		c0, c1, c2, c3 = "customers[0].connectors", "customers[1].connectors", "customers[2].connectors", "customers[3].connectors"
		required       = "is required when the connector is enabled"
		badURL         = "must be an absolute http or https URL"
		oauthPartial   = "is required when token_env is not given: OAuth needs client_id_env, client_secret_env and refresh_token_env"
	)
	tests := []struct {
		file string
		env  map[string]string
		want []config.Problem
	}{
		{"vendors_bad.yaml", vendorEnv, []config.Problem{
			{Path: c0 + ".hubspot.token_env", Line: 6, Msg: "must not be combined with client_id_env, client_secret_env and refresh_token_env: give either a private app token or an OAuth app"},
			{Path: c0 + ".hubspot.batch_size", Line: 10, Msg: "must be between 1 and 100, got 101"},
			{Path: c0 + ".hubspot.mapping.company", Line: 12, Msg: `unknown object "company" (want "contact")`},
			{Path: c0 + ".hubspot.mapping.contact.email", Line: 15, Msg: "expression must not be empty"},
			// An absent required key gets the line of its connector.
			{Path: c1 + ".salesforce.external_id_field", Line: 18, Msg: required + " (the external ID field holding the synchub user ID, like Synchub_User_Id__c)"},
			{Path: c1 + ".salesforce.api_version", Line: 23, Msg: `must be a version like "60.0", got "60"`},
			{Path: c1 + ".salesforce.batch_size", Line: 24, Msg: "must be between 1 and 200, got 0"},
			{Path: c1 + ".salesforce.mapping.Lead", Line: 26, Msg: `unknown object "Lead" (want "Contact", "contact")`},
			{Path: c2 + ".mailchimp.list_id", Line: 30, Msg: required},
			{Path: c2 + ".mailchimp.status_if_new", Line: 33, Msg: `must be one of "subscribed", "pending", "unsubscribed", "cleaned", "transactional", got "active"`},
			{Path: c2 + ".mailchimp.batch_size", Line: 34, Msg: "must be 1, the vendor's limit, got 2"},
			{Path: c2 + ".mailchimp.max_concurrency", Line: 35, Msg: "must be between 1 and 10, got 11"},
			// Written out empty, base_url does not take its default.
			{Path: c2 + ".mailchimp.base_url", Line: 36, Msg: badURL},
			{Path: c2 + ".marketo.base_url", Line: 37, Msg: required + " (each instance has its own, like https://123-ABC-456.mktorest.com)"},
			{Path: c2 + ".marketo.rate_limit.requests", Line: 41, Msg: "must be at least 1, got 0"},
			{Path: c2 + ".marketo.lookup_field", Line: 42, Msg: "must not be empty"},
			{Path: c2 + ".intercom.token_env", Line: 43, Msg: required},
			{Path: c2 + ".intercom.base_url", Line: 45, Msg: badURL},
			{Path: c2 + ".intercom.entities[1]", Line: 46, Msg: `unknown entity "page" (want "user" or "campaign")`},
			{Path: c2 + ".intercom.timeout", Line: 47, Msg: "must be positive, got 0s"},
			{Path: c2 + ".intercom.retry.max_interval", Line: 48, Msg: "must be at least initial_interval (250ms), got 1ms"},
			{Path: c3 + ".hubspot.client_secret_env", Line: 51, Msg: oauthPartial},
			{Path: c3 + ".hubspot.refresh_token_env", Line: 51, Msg: oauthPartial},
			// A secret pasted in place of a variable name is neither echoed nor looked up.
			{Path: c3 + ".intercom.token_env", Line: 56, Msg: "must be the name of an environment variable (letters, digits and _, not starting with a digit)"},
			{Path: c3 + ".intercom.mapping.contact.", Line: 59, Msg: "field name must not be empty"},
			{Path: c3 + ".hubspot_v2", Line: 60, Msg: `unknown key "hubspot_v2"`},
		}},
		// Each missing variable is named; the required token_env of intercom is reported
		// once, not again as a missing variable.
		{"vendors_missing_env.yaml", vendorEnvWithout("HUBSPOT_TOKEN", "SF_CLIENT_SECRET", "MAILCHIMP_API_KEY"), []config.Problem{
			{Path: c0 + ".hubspot.token_env", Line: 6, Msg: "environment variable HUBSPOT_TOKEN is not set"},
			{Path: c0 + ".salesforce.client_secret_env", Line: 10, Msg: "environment variable SF_CLIENT_SECRET is not set"},
			{Path: c0 + ".intercom.token_env", Line: 13, Msg: required},
			{Path: c0 + ".mailchimp.api_key_env", Line: 17, Msg: "environment variable MAILCHIMP_API_KEY is not set"},
		}},
		{"vendors_missing_env.yaml", map[string]string{"HUBSPOT_TOKEN": "", "SF_CLIENT_ID": "x", "SF_CLIENT_SECRET": "x", "SF_REFRESH_TOKEN": "x", "MAILCHIMP_API_KEY": "x"}, []config.Problem{
			{Path: c0 + ".hubspot.token_env", Line: 6, Msg: "environment variable HUBSPOT_TOKEN is empty"},
			{Path: c0 + ".intercom.token_env", Line: 13, Msg: required},
		}},
		// Type errors inside the inline common block and the mapping keep their paths.
		{"vendors_types.yaml", vendorEnv, []config.Problem{
			{Path: c0 + ".hubspot.batch_size", Line: 5, Msg: `want an integer, got "2.5"`},
			{Path: c0 + ".hubspot.max_concurrency", Line: 6, Msg: `want an integer, got "many"`},
			{Path: c0 + ".hubspot.timeout", Line: 7, Msg: `invalid duration "10" (want a number with a unit, like 250ms, 10s or 2m)`},
			{Path: c0 + ".hubspot.mapping.contact.email", Line: 10, Msg: "want a string, got a list"},
			{Path: c0 + ".marketo.batch_size", Line: 11, Msg: `want an integer, got "lots"`},
			{Path: c0 + ".marketo.client_id_env", Line: 11, Msg: "environment variable M_ID is not set"},
			{Path: c0 + ".marketo.client_secret_env", Line: 11, Msg: "environment variable M_SECRET is not set"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cerr, got := problems(t, fixture(tt.file), env(tt.env))
			diffProblems(t, got, tt.want)
			noSecrets(t, "error", cerr.Error())
			if strings.Contains(cerr.Error(), "tok-secret-value") {
				t.Errorf("error echoes a secret given as a variable name:\n%s", cerr)
			}
		})
	}
}

// TestHubSpotAuth checks that exactly one of a private app token and the OAuth trio is
// required when HubSpot is enabled, and that giving both is wrong even when disabled.
func TestHubSpotAuth(t *testing.T) {
	const (
		head     = "customers:\n  - id: org_h\n    connectors:\n      hubspot:\n"
		path     = "customers[0].connectors.hubspot"
		token    = "        token_env: HUBSPOT_TOKEN\n"
		trio     = "        client_id_env: HUBSPOT_CLIENT_ID\n        client_secret_env: HUBSPOT_CLIENT_SECRET\n        refresh_token_env: HUBSPOT_REFRESH_TOKEN\n"
		enabled  = "        enabled: true\n"
		both     = "must not be combined with client_id_env, client_secret_env and refresh_token_env: give either a private app token or an OAuth app"
		neither  = "is required when the connector is enabled, unless client_id_env, client_secret_env and refresh_token_env are given"
		oauthMsg = "is required when token_env is not given: OAuth needs client_id_env, client_secret_env and refresh_token_env"
	)
	tests := []struct {
		name, yaml string
		want       []config.Problem
	}{
		{"token", enabled + token, nil},
		{"oauth", enabled + trio, nil},
		{"both", enabled + token + trio, []config.Problem{{Path: path + ".token_env", Line: 6, Msg: both}}},
		{"both disabled", token + trio, []config.Problem{{Path: path + ".token_env", Line: 5, Msg: both}}},
		{"neither", enabled, []config.Problem{{Path: path + ".token_env", Line: 4, Msg: neither}}},
		{"neither disabled", "        enabled: false\n", nil},
		{"partial oauth", enabled + "        refresh_token_env: HUBSPOT_REFRESH_TOKEN\n", []config.Problem{
			{Path: path + ".client_id_env", Line: 4, Msg: oauthMsg},
			{Path: path + ".client_secret_env", Line: 4, Msg: oauthMsg},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(head+tt.yaml), env(vendorEnv))
			var got []config.Problem
			var cerr *config.Error
			switch {
			case errors.As(err, &cerr):
				got = cerr.Problems
				noSecrets(t, "error", cerr.Error())
			case err != nil:
				t.Fatalf("Parse: %v", err)
			default:
				h := cfg.Customers[0].Connectors.HubSpot
				if h.Enabled && h.Token == "" && h.RefreshToken == "" {
					t.Errorf("hubspot = %v, want its credentials resolved", h)
				}
			}
			diffProblems(t, got, tt.want)
		})
	}
}

func TestVendorSecretsNotPrinted(t *testing.T) {
	cfg, err := config.Load(fixture("vendors_full.yaml"), env(vendorEnv))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	c := cfg.Customers[0].Connectors
	oauth := cfg.Customers[1].Connectors.HubSpot
	values := []any{cfg, *cfg, cfg.Customers, c, &c,
		c.HubSpot, *c.HubSpot, oauth, *oauth, c.Salesforce, *c.Salesforce, c.Marketo, *c.Marketo,
		c.Mailchimp, *c.Mailchimp, c.Intercom, *c.Intercom}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range values {
			noSecrets(t, fmt.Sprintf("Sprintf(%q, %T)", verb, v), fmt.Sprintf(verb, v))
		}
	}
	for _, v := range []fmt.Stringer{c.HubSpot, oauth, c.Salesforce, c.Marketo, c.Mailchimp, c.Intercom} {
		if got := v.String(); !strings.Contains(got, "[redacted]") {
			t.Errorf("String() = %q, want redacted secrets", got)
		}
	}
}
