// Package config loads and validates synchub's YAML configuration file.
//
// Loading is strict so that a typo never silently falls back to a default: unknown keys,
// values of the wrong type and semantic mistakes are all reported together in one *Error,
// each with its key path and line number. Secrets never live in the file, only the names
// of environment variables that hold them; Load and Parse resolve those names.
package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	// Kafka says which Kafka to use; by default an embedded single-node broker.
	Kafka Kafka `yaml:"kafka"`
	// HTTP configures the ingest and admin HTTP server.
	HTTP HTTP `yaml:"http"`
	// Enrichment configures the enrichment stages.
	Enrichment Enrichment `yaml:"enrichment"`
	// Dispatch tunes the connector stage; it applies to every connector.
	Dispatch Dispatch `yaml:"dispatch"`
	// DLQ governs the dead-letter operations (synchub dlq, /v1/dlq).
	DLQ DLQ `yaml:"dlq"`
	// Customers lists the tenants and their connectors; default none.
	Customers []Customer `yaml:"customers"`

	// lines remembers where each key was in the source, so that problems found after
	// decoding can still point at a line.
	lines *lineIndex
}

// Kafka selects and sizes the Kafka cluster.
type Kafka struct {
	// Brokers are host:port seed addresses of an external cluster; empty (the default)
	// starts the embedded broker instead.
	Brokers []string `yaml:"brokers"`
	// Embedded configures the embedded broker; used only when Brokers is empty.
	Embedded Embedded `yaml:"embedded"`
	// Partitions is the partition count of the topics synchub creates; default 8, 1..1024.
	Partitions int `yaml:"partitions"`
}

// Embedded configures the embedded single-node broker.
type Embedded struct {
	// Listen is the broker's host:port with a numeric port; default 127.0.0.1:9092.
	Listen string `yaml:"listen"`
	// DataDir is where the broker keeps its log; default data/kafka.
	DataDir string `yaml:"data_dir"`
}

// HTTP configures the HTTP server.
type HTTP struct {
	// Listen is the server's host:port with a numeric port; default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// AdminTokenEnv optionally names the environment variable holding the admin API
	// bearer token; default empty.
	AdminTokenEnv string `yaml:"admin_token_env"`
	// AdminToken is the resolved value of AdminTokenEnv; empty when AdminTokenEnv is.
	AdminToken string `yaml:"-" json:"-"`
}

// Enrichment configures the enrichment stages.
type Enrichment struct {
	// GeoIPDB is the path of a MaxMind .mmdb file; default empty, which turns geo-IP
	// enrichment off.
	GeoIPDB string `yaml:"geoip_db"`
}

// Dispatch tunes the connector stage, which reads records from every partition and sends
// them to the connectors. Its limits apply per partition.
type Dispatch struct {
	// MaxInFlight bounds the messages of one partition out at once; default 1000,
	// 1..100000.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxInFlightPerCustomer bounds those of one customer among them, so that one slow
	// customer cannot take them all; default 250, or MaxInFlight when that is smaller;
	// 1..MaxInFlight.
	MaxInFlightPerCustomer int `yaml:"max_in_flight_per_customer"`
	// MaxPending bounds the records of one partition read but still waiting to be sent;
	// default 100000, at least MaxInFlight.
	MaxPending int `yaml:"max_pending"`
	// Linger is how long a batch waits to fill before it is sent; default 20ms, 0..10s,
	// where 0 sends at once.
	Linger Duration `yaml:"linger"`
	// Coalesce lets a newer snapshot of an entity replace an older one still waiting to
	// be sent; default true. Read it with CoalesceEnabled.
	Coalesce *bool `yaml:"coalesce"`
}

// CoalesceEnabled reports whether Coalesce is on; unset means the default, on.
func (d Dispatch) CoalesceEnabled() bool { return d.Coalesce == nil || *d.Coalesce }

// String prints Coalesce as a value rather than as a pointer.
func (d Dispatch) String() string {
	return fmt.Sprintf("{MaxInFlight:%d MaxInFlightPerCustomer:%d MaxPending:%d Linger:%s Coalesce:%t}",
		d.MaxInFlight, d.MaxInFlightPerCustomer, d.MaxPending, d.Linger, d.CoalesceEnabled())
}

// DLQ governs replaying dead-lettered records.
type DLQ struct {
	// MaxReplays is how often one record may be replayed; a record that failed again
	// after that many replays is left in the dead-letter topic and reported, so a
	// record the vendor will never take cannot loop; default 3, 1..100.
	MaxReplays int `yaml:"max_replays"`
}

// Customer is one tenant of the hub.
type Customer struct {
	// ID is required and unique; it equals organization_id in events.
	ID string `yaml:"id"`
	// Name is a display name; optional.
	Name string `yaml:"name"`
	// Connectors are the customer's external tools.
	Connectors Connectors `yaml:"connectors"`
}

// Connectors holds one optional entry per connector kind; nil means not configured.
type Connectors struct {
	// Webhook posts entity changes to the customer's URL; default nil.
	Webhook *Webhook `yaml:"webhook"`
	// HubSpot upserts users as HubSpot contacts; default nil.
	HubSpot *HubSpot `yaml:"hubspot"`
	// Salesforce upserts users as Salesforce records, Contact by default; default nil.
	Salesforce *Salesforce `yaml:"salesforce"`
	// Marketo upserts users as Marketo leads; default nil.
	Marketo *Marketo `yaml:"marketo"`
	// Mailchimp upserts users as members of a Mailchimp audience; default nil.
	Mailchimp *Mailchimp `yaml:"mailchimp"`
	// Intercom upserts users as Intercom contacts; default nil.
	Intercom *Intercom `yaml:"intercom"`
}

// Webhook configures the Standard Webhooks connector of one customer.
type Webhook struct {
	// Enabled turns the connector on; default false.
	Enabled bool `yaml:"enabled"`
	// URL is the absolute http or https endpoint; required when enabled.
	URL string `yaml:"url"`
	// SecretEnv names the environment variable holding the signing secret
	// ("whsec_" + base64); required when enabled.
	SecretEnv string `yaml:"secret_env"`
	// Secret is the resolved value of SecretEnv, still in "whsec_…" form; set only for
	// enabled webhooks. See SigningKey for the raw key bytes.
	Secret string `yaml:"-" json:"-"`
	// Entities are the entity kinds sent, each "user" or "campaign"; default [user].
	Entities []string `yaml:"entities"`
	// Timeout bounds one HTTP request; default 10s.
	Timeout Duration `yaml:"timeout"`
	// Retry says how failed deliveries are retried.
	Retry Retry `yaml:"retry"`
	// BatchSize is the most records sent in one request; default 1, 1..1000. With 1 each
	// request carries a single event, the body the webhook contract describes.
	BatchSize int `yaml:"batch_size"`
	// RateLimit caps the requests sent to this customer; default nil, unlimited.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// MaxConcurrency bounds this customer's requests at once; default 8, 1..1000.
	MaxConcurrency int `yaml:"max_concurrency"`
	// Circuit says when the endpoint counts as down: its records are then held,
	// not dead-lettered, and one probe goes out every OpenFor.
	Circuit Circuit `yaml:"circuit"`
}

// Circuit configures a customer's circuit breaker.
type Circuit struct {
	// Failures is how many failed attempts in a row open the circuit; default 5, >= 1.
	Failures int `yaml:"failures"`
	// OpenFor is how long the circuit stays open before one probe; default 2s, > 0.
	OpenFor Duration `yaml:"open_for"`
}

// RateLimit allows Requests requests in every Per, like {requests: 4, per: 1s}.
type RateLimit struct {
	// Requests is at least 1; required.
	Requests int `yaml:"requests"`
	// Per is positive; required.
	Per Duration `yaml:"per"`
}

// String formats r like "4 per 1s".
func (r RateLimit) String() string { return fmt.Sprintf("%d per %s", r.Requests, r.Per) }

// Retry is an exponential backoff policy.
type Retry struct {
	// MaxAttempts counts every attempt including the first; default 20, at least 1.
	MaxAttempts int `yaml:"max_attempts"`
	// InitialInterval is the wait after the first failure, doubled each time;
	// default 250ms.
	InitialInterval Duration `yaml:"initial_interval"`
	// MaxInterval caps the wait between attempts; default 15s, at least InitialInterval.
	MaxInterval Duration `yaml:"max_interval"`
	// MaxElapsed bounds the total time spent on one delivery; default 10m.
	MaxElapsed Duration `yaml:"max_elapsed"`
}

// Defaults. The retry ones ride out a one-minute outage: 250ms doubling up to 15s adds up
// to a minute in about ten attempts, well inside 20 attempts and 10 minutes.
const (
	defaultPartitions      = 8
	defaultEmbeddedListen  = "127.0.0.1:9092"
	defaultDataDir         = "data/kafka"
	defaultHTTPListen      = "127.0.0.1:8080"
	defaultWebhookTimeout  = Duration(10 * time.Second)
	defaultMaxAttempts     = 20
	defaultInitialInterval = Duration(250 * time.Millisecond)
	defaultMaxInterval     = Duration(15 * time.Second)
	defaultMaxElapsed      = Duration(10 * time.Minute)
	defaultBatchSize       = 1
	defaultMaxConcurrency  = 8
	defaultCircuitFailures = 5
	defaultCircuitOpenFor  = Duration(2 * time.Second)

	defaultMaxInFlight            = 1000
	defaultMaxInFlightPerCustomer = 250
	defaultMaxPending             = 100000
	defaultLinger                 = Duration(20 * time.Millisecond)
	defaultMaxReplays             = 3
)

// Load reads the file at path, decodes it strictly, applies defaults, validates it and
// resolves every *_env name through getenv (os.LookupEnv when nil). A file that cannot
// be read gives the *fs.PathError wrapped; anything wrong with its content gives an
// *Error listing every problem.
func Load(path string, getenv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, problems := parse(data, getenv)
	if len(problems) > 0 {
		return nil, &Error{File: path, Problems: problems}
	}
	return cfg, nil
}

// LoadLayout is Load without the secrets: the *_env names are checked but not read.
// It is for the operator commands (synchub dlq, synchub resync) that need the brokers,
// customers and connectors but never call a vendor, so they run where the vendors'
// credentials are not set.
func LoadLayout(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, problems := parseWith(data, nil, false)
	if len(problems) > 0 {
		return nil, &Error{File: path, Problems: problems}
	}
	return cfg, nil
}

// Parse is Load for a config already in memory; its *Error has no File.
func Parse(data []byte, getenv func(string) (string, bool)) (*Config, error) {
	cfg, problems := parse(data, getenv)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return cfg, nil
}

func parse(data []byte, getenv func(string) (string, bool)) (*Config, []Problem) {
	return parseWith(data, getenv, true)
}

func parseWith(data []byte, getenv func(string) (string, bool), secrets bool) (*Config, []Problem) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	idx, syntax := indexLines(data)
	if syntax != nil {
		return nil, []Problem{*syntax}
	}

	cfg := &Config{lines: idx}
	var problems []Problem
	var bad []string // paths of values that failed to decode
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// Fatal decoder errors (unknown anchor, excessive aliasing) stop decoding,
			// so nothing after them can be trusted.
			return nil, []Problem{syntaxProblem(err)}
		}
		for _, s := range te.Errors {
			p, isBad := idx.typeProblem(s)
			problems = append(problems, p)
			if isBad {
				bad = append(bad, p.Path)
			}
		}
	}
	for _, p := range idx.floatProblems() {
		if !coveredBy(p.Path, bad) {
			problems = append(problems, p)
			bad = append(bad, p.Path)
		}
	}
	cfg.applyDefaults()

	// A value that failed to decode is left zero, and checking it again would only
	// repeat the same mistake in other words.
	later := cfg.Validate()
	if secrets {
		later = append(later, cfg.resolveSecrets(getenv)...)
	}
	for _, p := range later {
		if !coveredBy(p.Path, bad) {
			problems = append(problems, p)
		}
	}
	sortProblems(problems)
	return cfg, problems
}

func (c *Config) applyDefaults() {
	has := c.lines.present
	if !has("kafka.partitions") {
		c.Kafka.Partitions = defaultPartitions
	}
	if !has("kafka.embedded.listen") {
		c.Kafka.Embedded.Listen = defaultEmbeddedListen
	}
	if !has("kafka.embedded.data_dir") {
		c.Kafka.Embedded.DataDir = defaultDataDir
	}
	if !has("http.listen") {
		c.HTTP.Listen = defaultHTTPListen
	}
	c.Dispatch.applyDefaults(has)
	if !has("dlq.max_replays") {
		c.DLQ.MaxReplays = defaultMaxReplays
	}
	for i := range c.Customers {
		c.Customers[i].Connectors.applyVendorDefaults(has, fmt.Sprintf("customers[%d].connectors", i))
		w := c.Customers[i].Connectors.Webhook
		if w == nil {
			continue
		}
		p := fmt.Sprintf("customers[%d].connectors.webhook.", i)
		if !has(p + "entities") {
			w.Entities = []string{EntityUser}
		}
		if !has(p + "timeout") {
			w.Timeout = defaultWebhookTimeout
		}
		w.Retry.applyDefaults(has, p+"retry.")
		if !has(p + "batch_size") {
			w.BatchSize = defaultBatchSize
		}
		if !has(p + "max_concurrency") {
			w.MaxConcurrency = defaultMaxConcurrency
		}
		w.Circuit.applyDefaults(has, p+"circuit.")
	}
}

func (d *Dispatch) applyDefaults(has func(string) bool) {
	if !has("dispatch.max_in_flight") {
		d.MaxInFlight = defaultMaxInFlight
	}
	if !has("dispatch.max_in_flight_per_customer") {
		// A smaller max_in_flight lowers the default rather than making the key, which
		// is not in the file, invalid.
		d.MaxInFlightPerCustomer = defaultMaxInFlightPerCustomer
		if d.MaxInFlight >= 1 && d.MaxInFlight < d.MaxInFlightPerCustomer {
			d.MaxInFlightPerCustomer = d.MaxInFlight
		}
	}
	if !has("dispatch.max_pending") {
		d.MaxPending = defaultMaxPending
	}
	if !has("dispatch.linger") {
		d.Linger = defaultLinger
	}
	if !has("dispatch.coalesce") {
		on := true
		d.Coalesce = &on
	}
}

// resolveSecrets reads the environment variables the config names. Names that Validate
// rejects are skipped: their problem is already reported, and looking them up could echo
// a secret pasted in by mistake.
func (c *Config) resolveSecrets(getenv func(string) (string, bool)) []Problem {
	var problems []Problem
	add := func(path, format string, args ...any) {
		problems = append(problems, Problem{Path: path, Line: c.lines.lineOf(path), Msg: fmt.Sprintf(format, args...)})
	}
	if name := c.HTTP.AdminTokenEnv; name != "" && envNameProblem(name) == "" {
		switch v, ok := getenv(name); {
		case !ok:
			add("http.admin_token_env", "environment variable %s is not set", name)
		case v == "":
			add("http.admin_token_env", "environment variable %s is empty", name)
		default:
			c.HTTP.AdminToken = v
		}
	}
	for i := range c.Customers {
		c.Customers[i].Connectors.resolveVendorSecrets(fmt.Sprintf("customers[%d].connectors", i), getenv, add)
		w := c.Customers[i].Connectors.Webhook
		if w == nil || !w.Enabled || w.SecretEnv == "" || envNameProblem(w.SecretEnv) != "" {
			continue
		}
		path := fmt.Sprintf("customers[%d].connectors.webhook.secret_env", i)
		switch v, ok := getenv(w.SecretEnv); {
		case !ok:
			add(path, "environment variable %s is not set", w.SecretEnv)
		case decodeWebhookSecret(v) == nil:
			add(path, "environment variable %s is not a whsec_<base64> secret of at least %d bytes", w.SecretEnv, minSecretBytes)
		default:
			w.Secret = v
		}
	}
	return problems
}

// minSecretBytes follows Standard Webhooks' advice against short HMAC keys.
const minSecretBytes = 16

// decodeWebhookSecret returns the HMAC key of a "whsec_<base64>" secret, or nil when s is
// not one.
func decodeWebhookSecret(s string) []byte {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < minSecretBytes {
		return nil
	}
	return key
}

// SigningKey returns the HMAC key encoded in Secret, or nil when Secret is unresolved.
func (w *Webhook) SigningKey() []byte {
	return decodeWebhookSecret(w.Secret)
}

// String keeps the secret out of logs and error messages.
func (w Webhook) String() string {
	type plain Webhook
	p := plain(w)
	p.Secret = redact(p.Secret)
	return fmt.Sprintf("%+v", p)
}

// GoString keeps the secret out of %#v output too.
func (w Webhook) GoString() string { return w.String() }

// String keeps the admin token out of logs and error messages.
func (h HTTP) String() string {
	type plain HTTP
	p := plain(h)
	p.AdminToken = redact(p.AdminToken)
	return fmt.Sprintf("%+v", p)
}

// GoString keeps the admin token out of %#v output too.
func (h HTTP) GoString() string { return h.String() }

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// Customer returns the customer with the given ID (an event's organization_id).
func (c *Config) Customer(id string) (*Customer, bool) {
	for i := range c.Customers {
		if c.Customers[i].ID == id {
			return &c.Customers[i], true
		}
	}
	return nil, false
}

// EnabledWebhooks maps customer ID to that customer's webhook, for enabled ones only.
func (c *Config) EnabledWebhooks() map[string]*Webhook {
	m := make(map[string]*Webhook)
	for i := range c.Customers {
		if w := c.Customers[i].Connectors.Webhook; w != nil && w.Enabled {
			m[c.Customers[i].ID] = w
		}
	}
	return m
}

// Duration is a time.Duration written in YAML as a string such as "250ms", "10s" or "2m".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes d in the form UnmarshalYAML reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reports a bad value as a *yaml.TypeError so that the decoder collects it
// with the other problems instead of stopping at it.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{
			fmt.Sprintf("line %d: cannot unmarshal %s into config.Duration", n.Line, n.ShortTag()),
		}}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{
			fmt.Sprintf("line %d: invalid duration %q (want a number with a unit, like 250ms, 10s or 2m)", n.Line, n.Value),
		}}
	}
	*d = Duration(v)
	return nil
}
