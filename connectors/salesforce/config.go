package salesforce

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/synchub/synchub/connectors"
)

// MaxBatchSize is the sObject Collections limit: 200 records per request.
const MaxBatchSize = 200

// Defaults applied by New to zero Config fields.
const (
	DefaultAPIVersion      = "60.0"
	DefaultObject          = "Contact"
	DefaultExternalIDField = "Hub_Id__c"
	// DefaultSessionTimeout is Salesforce's default session timeout. The
	// token response carries no expires_in, so the connector can only know
	// the lifetime from configuration.
	DefaultSessionTimeout = 2 * time.Hour
)

// Config configures a Client. Secret fields hold resolved values, never
// environment variable names; they never appear in errors or logs.
type Config struct {
	// LoginURL is the OAuth host: https://login.salesforce.com,
	// https://test.salesforce.com or the org's My Domain.
	LoginURL string
	// BaseURL, if set, replaces the instance_url of the token response
	// (for proxies and tests); normally left empty.
	BaseURL      string
	ClientID     string
	ClientSecret string
	RefreshToken string
	// APIVersion without the "v" ("60.0"); the collections upsert needs
	// 46.0 or later.
	APIVersion string
	// Object is the sObject type upserted (Contact).
	Object string
	// ExternalIDField is the external ID field holding the user id
	// (Hub_Id__c); it is the upsert key.
	ExternalIDField string
	// SessionTimeout is the org's session timeout; tokens are refreshed a
	// minute (a quarter, for timeouts under 4m) before it runs out.
	// 0: DefaultSessionTimeout.
	SessionTimeout time.Duration
	// BatchSize is the most records per request; 0 means MaxBatchSize,
	// which is also the cap.
	BatchSize int
	Policy    connectors.Policy
}

var (
	versionRe = regexp.MustCompile(`^[0-9]+\.[0-9]$`)
	apiNameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
)

func (c Config) withDefaults() Config {
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if c.Object == "" {
		c.Object = DefaultObject
	}
	if c.ExternalIDField == "" {
		c.ExternalIDField = DefaultExternalIDField
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.BatchSize == 0 {
		c.BatchSize = MaxBatchSize
	}
	c.Policy = c.Policy.Or(connectors.Policy{
		MaxAttempts: 5, InitialInterval: 500 * time.Millisecond, MaxInterval: 30 * time.Second,
		MaxElapsed: 2 * time.Minute, RequestTimeout: 30 * time.Second,
	})
	return c
}

// Validate reports every problem of c (after defaults) at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	checkURL := func(name, v string, required bool) {
		if v == "" {
			if required {
				errs = append(errs, fmt.Errorf("salesforce: %s is required", name))
			}
			return
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("salesforce: %s must be an http(s)://host URL", name))
		}
	}
	checkURL("LoginURL", c.LoginURL, true)
	checkURL("BaseURL", c.BaseURL, false)
	if c.ClientID == "" {
		errs = append(errs, errors.New("salesforce: ClientID is required"))
	}
	if c.ClientSecret == "" {
		errs = append(errs, errors.New("salesforce: ClientSecret is required"))
	}
	if c.RefreshToken == "" {
		errs = append(errs, errors.New("salesforce: RefreshToken is required"))
	}
	if !versionRe.MatchString(c.APIVersion) {
		errs = append(errs, fmt.Errorf("salesforce: APIVersion %q must look like 60.0", c.APIVersion))
	}
	if !apiNameRe.MatchString(c.Object) {
		errs = append(errs, fmt.Errorf("salesforce: Object %q is not an API name", c.Object))
	}
	if !apiNameRe.MatchString(c.ExternalIDField) {
		errs = append(errs, fmt.Errorf("salesforce: ExternalIDField %q is not an API name", c.ExternalIDField))
	}
	if c.SessionTimeout < 0 {
		errs = append(errs, errors.New("salesforce: SessionTimeout must not be negative"))
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("salesforce: BatchSize %d must be within 1..%d", c.BatchSize, MaxBatchSize))
	}
	return errors.Join(errs...)
}

// DefaultMapping maps Salesforce Contact fields to expr-lang expressions
// over the user entity snapshot (id, name, email, roles, logins_count,
// organization_id, created_at, updated_at).
//
// LastName is required by Salesforce, so a single-word name becomes the
// LastName with no FirstName (as Salesforce's own UI treats it), and with
// several words the last one is the LastName and the rest the FirstName. A
// user without a name falls back to the email's local part, so the record
// still saves. Hub_Id__c (see KeyField) carries the user id.
func DefaultMapping() map[string]string {
	return map[string]string{
		DefaultExternalIDField: `id`,
		"FirstName":            `len(split(trim(name ?? ""), " ")) > 1 ? join(split(trim(name), " ")[:-1], " ") : nil`,
		"LastName":             `trim(name ?? "") != "" ? split(trim(name), " ")[-1] : split(email, "@")[0]`,
		"Email":                `email`,
	}
}

// KeyField names the mapped field that is the upsert key: the external ID
// field, whose value is the user id.
func KeyField() string { return DefaultExternalIDField }
