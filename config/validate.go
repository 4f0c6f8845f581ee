package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Entity kinds a connector can subscribe to.
const (
	EntityUser     = "user"
	EntityCampaign = "campaign"
)

const (
	minPartitions = 1
	maxPartitions = 1024

	maxInFlight    = 100000
	maxLinger      = Duration(10 * time.Second)
	maxBatchSize   = 1000
	maxConcurrency = 1000
	maxReplays     = 100
)

// Validate checks the meaning of a config whose defaults are already applied, and returns
// every problem found, sorted by line. It does not look at the environment. For a Config
// from Load or Parse the problems carry lines; for one built in code Line is 0.
func (c *Config) Validate() []Problem {
	v := validator{lines: c.lines}
	v.kafka(&c.Kafka)
	v.listen("http.listen", c.HTTP.Listen, 0)
	if c.HTTP.AdminTokenEnv != "" {
		v.envName("http.admin_token_env", c.HTTP.AdminTokenEnv)
	}
	v.dispatch(&c.Dispatch)
	if n := c.DLQ.MaxReplays; n < 1 || n > maxReplays {
		v.add("dlq.max_replays", "must be between 1 and %d, got %d", maxReplays, n)
	}
	seen := make(map[string]int) // customer id → index of its first use
	for i := range c.Customers {
		v.customer(i, &c.Customers[i], seen)
	}
	sortProblems(v.problems)
	return v.problems
}

type validator struct {
	lines    *lineIndex
	problems []Problem
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Line: v.lines.lineOf(path), Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) kafka(k *Kafka) {
	if k.Partitions < minPartitions || k.Partitions > maxPartitions {
		v.add("kafka.partitions", "must be between %d and %d, got %d", minPartitions, maxPartitions, k.Partitions)
	}
	for i, b := range k.Brokers {
		v.listen(fmt.Sprintf("kafka.brokers[%d]", i), b, 1)
	}
	v.listen("kafka.embedded.listen", k.Embedded.Listen, 0)
	if strings.TrimSpace(k.Embedded.DataDir) == "" {
		v.add("kafka.embedded.data_dir", "must not be empty")
	}
}

// dispatch compares the other limits with max_in_flight only when max_in_flight is
// itself valid, so that one mistake is not reported three times.
func (v *validator) dispatch(d *Dispatch) {
	okInFlight := d.MaxInFlight >= 1 && d.MaxInFlight <= maxInFlight
	if !okInFlight {
		v.add("dispatch.max_in_flight", "must be between 1 and %d, got %d", maxInFlight, d.MaxInFlight)
	}
	switch n := d.MaxInFlightPerCustomer; {
	case okInFlight && (n < 1 || n > d.MaxInFlight):
		v.add("dispatch.max_in_flight_per_customer", "must be between 1 and max_in_flight (%d), got %d", d.MaxInFlight, n)
	case n < 1:
		v.add("dispatch.max_in_flight_per_customer", "must be at least 1, got %d", n)
	}
	switch n := d.MaxPending; {
	case okInFlight && n < d.MaxInFlight:
		v.add("dispatch.max_pending", "must be at least max_in_flight (%d), got %d", d.MaxInFlight, n)
	case n < 1:
		v.add("dispatch.max_pending", "must be at least 1, got %d", n)
	}
	if d.Linger < 0 || d.Linger > maxLinger {
		v.add("dispatch.linger", "must be between 0s and %s, got %s", maxLinger, d.Linger)
	}
}

// listen checks a host:port address. Listeners may use port 0 (any free port) and an
// empty host (all interfaces); broker addresses pass minPort 1 to forbid port 0.
func (v *validator) listen(path, addr string, minPort int) {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		n, perr := strconv.Atoi(port)
		if perr == nil && n >= minPort && n <= 65535 {
			return
		}
	}
	v.add(path, "must be host:port with a numeric port, got %q", addr)
}

func (v *validator) customer(i int, c *Customer, seen map[string]int) {
	p := fmt.Sprintf("customers[%d]", i)
	switch {
	case strings.TrimSpace(c.ID) == "":
		v.add(p+".id", "is required")
	case strings.TrimSpace(c.ID) != c.ID:
		v.add(p+".id", "must not start or end with spaces, got %q", c.ID)
	default:
		if first, dup := seen[c.ID]; dup {
			where := fmt.Sprintf("customers[%d]", first)
			if line := v.lines.lineOf(where + ".id"); line > 0 {
				where += fmt.Sprintf(" at line %d", line)
			}
			v.add(p+".id", "duplicate id %q, already used by %s", c.ID, where)
		} else {
			seen[c.ID] = i
		}
	}
	if c.Connectors.Webhook != nil {
		v.webhook(p+".connectors.webhook", c.Connectors.Webhook)
	}
	v.vendors(p+".connectors", &c.Connectors)
}

// webhook checks everything that has a value even when the webhook is disabled, so that
// enabling it later cannot reveal old mistakes; only required keys wait for Enabled.
func (v *validator) webhook(p string, w *Webhook) {
	switch {
	case w.URL != "":
		v.webhookURL(p+".url", w.URL)
	case w.Enabled:
		v.add(p+".url", "is required when the webhook is enabled")
	}
	switch {
	case w.SecretEnv != "":
		v.envName(p+".secret_env", w.SecretEnv)
	case w.Enabled:
		v.add(p+".secret_env", "is required when the webhook is enabled")
	}

	v.entities(p+".entities", w.Entities)

	if w.Timeout <= 0 {
		v.add(p+".timeout", "must be positive, got %s", w.Timeout)
	}
	v.retry(p+".retry", w.Retry)

	if w.BatchSize < 1 || w.BatchSize > maxBatchSize {
		v.add(p+".batch_size", "must be between 1 and %d, got %d", maxBatchSize, w.BatchSize)
	}
	if rl := w.RateLimit; rl != nil {
		v.rateLimit(p+".rate_limit", rl)
	}
	if w.MaxConcurrency < 1 || w.MaxConcurrency > maxConcurrency {
		v.add(p+".max_concurrency", "must be between 1 and %d, got %d", maxConcurrency, w.MaxConcurrency)
	}
	v.circuit(p+".circuit", w.Circuit)
}

func (v *validator) entities(p string, entities []string) {
	if len(entities) == 0 {
		v.add(p, "must list at least one of %q, %q", EntityUser, EntityCampaign)
	}
	seen := make(map[string]bool)
	for i, e := range entities {
		ep := fmt.Sprintf("%s[%d]", p, i)
		switch {
		case e != EntityUser && e != EntityCampaign:
			v.add(ep, "unknown entity %q (want %q or %q)", e, EntityUser, EntityCampaign)
		case seen[e]:
			v.add(ep, "duplicate entity %q", e)
		}
		seen[e] = true
	}
}

func (v *validator) retry(p string, r Retry) {
	if r.MaxAttempts < 1 {
		v.add(p+".max_attempts", "must be at least 1, got %d", r.MaxAttempts)
	}
	if r.InitialInterval <= 0 {
		v.add(p+".initial_interval", "must be positive, got %s", r.InitialInterval)
	}
	switch {
	case r.MaxInterval <= 0:
		v.add(p+".max_interval", "must be positive, got %s", r.MaxInterval)
	case r.MaxInterval < r.InitialInterval:
		v.add(p+".max_interval", "must be at least initial_interval (%s), got %s", r.InitialInterval, r.MaxInterval)
	}
	if r.MaxElapsed <= 0 {
		v.add(p+".max_elapsed", "must be positive, got %s", r.MaxElapsed)
	}
}

func (v *validator) circuit(p string, c Circuit) {
	if c.Failures < 1 {
		v.add(p+".failures", "must be at least 1, got %d", c.Failures)
	}
	if c.OpenFor <= 0 {
		v.add(p+".open_for", "must be positive, got %s", c.OpenFor)
	}
}

// rateLimit tells a key left out, which has no default, from one given a bad value.
func (v *validator) rateLimit(p string, r *RateLimit) {
	const required = "is required when rate_limit is given"
	switch {
	case r.Requests == 0 && !v.lines.present(p+".requests"):
		v.add(p+".requests", required)
	case r.Requests < 1:
		v.add(p+".requests", "must be at least 1, got %d", r.Requests)
	}
	switch {
	case r.Per == 0 && !v.lines.present(p+".per"):
		v.add(p+".per", required)
	case r.Per <= 0:
		v.add(p+".per", "must be positive, got %s", r.Per)
	}
}

// webhookURL never echoes the URL: query strings and user info can carry credentials.
func (v *validator) webhookURL(path, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		v.add(path, "must be an absolute http or https URL")
	case u.User != nil:
		v.add(path, "must not contain user info; credentials belong in environment variables")
	}
}

func (v *validator) envName(path, name string) {
	if msg := envNameProblem(name); msg != "" {
		v.add(path, "%s", msg)
	}
}

// envNameProblem never echoes name: a value that is not a variable name is most likely
// the secret itself, pasted where its variable's name belongs.
func envNameProblem(name string) string {
	if strings.HasPrefix(strings.ToLower(name), "whsec_") {
		return "looks like a secret; put the secret in an environment variable and give that variable's name here"
	}
	for i, r := range name {
		letter := r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return "must be the name of an environment variable (letters, digits and _, not starting with a digit)"
		}
	}
	return ""
}
