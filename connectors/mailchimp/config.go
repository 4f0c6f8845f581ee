package mailchimp

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/synchub/synchub/connectors"
)

const (
	// MaxBatch is the most records one upsert request carries. Mailchimp's
	// member upsert (PUT /lists/{list_id}/members/{subscriber_hash}) takes
	// one member; its batch endpoints either fail members on a repeat
	// (POST /lists/{id} without care) or are asynchronous (/batches), which
	// would hide per-record outcomes from the dispatch stage.
	MaxBatch = 1
	// MaxConcurrency is Mailchimp's limit of simultaneous connections per
	// user account; above it the API answers 429.
	MaxConcurrency = 10
)

// statuses are the values status_if_new accepts (vendor-apis.md §4.2).
var statuses = []string{"subscribed", "unsubscribed", "cleaned", "pending", "transactional"}

// dcSuffix is the data centre an API key names: "…-us21".
var dcSuffix = regexp.MustCompile(`-([a-z]+[0-9]+)$`)

// Config configures a Client. Secrets are resolved values, not the names
// of the variables holding them.
type Config struct {
	// BaseURL is the API root including /3.0. Empty: derived from the
	// APIKey's data centre, https://<dc>.api.mailchimp.com/3.0.
	BaseURL string
	// APIKey authenticates every request (HTTP Basic, key as password).
	// Mailchimp keys do not expire, so there is nothing to refresh.
	APIKey string
	// ListID is the audience members are upserted into.
	ListID string
	// StatusIfNew is the status given to members the upsert creates;
	// existing members keep theirs. Default "subscribed".
	StatusIfNew string
	// BatchSize is the records per request: default and cap MaxBatch (a
	// larger value is lowered, so a config shared across vendors works).
	BatchSize int
	// Concurrency is the most requests in flight per Upsert: default and
	// cap MaxConcurrency. Several Clients on one account share Mailchimp's
	// limit, so lower it when running more than one.
	Concurrency int
	// Policy bounds the retries of each record; zero fields take
	// DefaultPolicy's.
	Policy connectors.Policy
}

// DefaultPolicy is what zero Policy fields fall back to.
func DefaultPolicy() connectors.Policy {
	return connectors.Policy{
		MaxAttempts:     5,
		InitialInterval: 500 * time.Millisecond,
		MaxInterval:     30 * time.Second,
		MaxElapsed:      2 * time.Minute,
		// Mailchimp lets calls run up to 120 s; a member upsert is quick,
		// so a long wait is more likely a stuck connection than work.
		RequestTimeout: 30 * time.Second,
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.APIKey) == "" {
		errs = append(errs, errors.New("mailchimp: api key is required"))
	}
	if c.BaseURL == "" {
		if c.APIKey != "" && !dcSuffix.MatchString(c.APIKey) {
			errs = append(errs, errors.New("mailchimp: api key has no data centre suffix (-usNN) and no base URL is set"))
		}
	} else if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("mailchimp: base URL must be http(s)://host[/3.0]"))
	}
	if strings.TrimSpace(c.ListID) == "" {
		errs = append(errs, errors.New("mailchimp: list id is required"))
	} else if strings.ContainsAny(c.ListID, "/?#% ") {
		errs = append(errs, fmt.Errorf("mailchimp: list id %q is not a plain id", c.ListID))
	}
	if c.StatusIfNew != "" && !contains(statuses, c.StatusIfNew) {
		errs = append(errs, fmt.Errorf("mailchimp: status_if_new %q is not one of %s", c.StatusIfNew, strings.Join(statuses, ", ")))
	}
	if c.BatchSize < 0 {
		errs = append(errs, errors.New("mailchimp: batch size must not be negative"))
	}
	if c.Concurrency < 0 {
		errs = append(errs, errors.New("mailchimp: concurrency must not be negative"))
	}
	p := c.Policy
	if p.MaxAttempts < 0 || p.InitialInterval < 0 || p.MaxInterval < 0 || p.MaxElapsed < 0 || p.RequestTimeout < 0 {
		errs = append(errs, errors.New("mailchimp: retry policy values must not be negative"))
	}
	return errors.Join(errs...)
}

// withDefaults fills zero fields and applies the caps; c must be valid.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		dc := dcSuffix.FindStringSubmatch(c.APIKey)[1]
		c.BaseURL = "https://" + dc + ".api.mailchimp.com/3.0"
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.StatusIfNew == "" {
		c.StatusIfNew = "subscribed"
	}
	if c.BatchSize == 0 || c.BatchSize > MaxBatch {
		c.BatchSize = MaxBatch
	}
	if c.Concurrency == 0 || c.Concurrency > MaxConcurrency {
		c.Concurrency = MaxConcurrency
	}
	c.Policy = c.Policy.Or(DefaultPolicy())
	return c
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// DefaultMapping is the user entity → Mailchimp member mapping, vendor
// field → expr-lang expression over the entity snapshot (id, name, email,
// roles, logins_count, organization_id, created_at, updated_at, …).
//
// Upsert sends email_address, status and the few other member properties
// Mailchimp has at top level as themselves; every other field is a merge
// field (an audience's merge tags are upper case, ≤10 characters), so
// FNAME and LNAME land in merge_fields. The name splits on its last word:
// "Ann Marie Lee" → FNAME "Ann Marie", LNAME "Lee"; a single word is a
// first name (Mailchimp requires neither, and a lone name is more often
// a given name than a surname).
func DefaultMapping() map[string]string {
	// words drops the empty strings split leaves between repeated spaces.
	const words = `filter(split(trim(name ?? ""), " "), # != "")`
	return map[string]string{
		"email_address": "email",
		"FNAME":         `let w = ` + words + `; len(w) > 1 ? join(w[:len(w)-1], " ") : join(w, "")`,
		"LNAME":         `let w = ` + words + `; len(w) > 1 ? w[len(w)-1] : ""`,
	}
}

// KeyField is the mapped field that is the upsert key: the member's email,
// whose lower-case MD5 is Mailchimp's subscriber hash.
func KeyField() string { return "email_address" }
