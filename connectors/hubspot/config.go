package hubspot

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/synchub/synchub/connectors"
)

// MaxBatch is HubSpot's limit on inputs per CRM object batch request.
const MaxBatch = 100

// Config configures a Client. Secrets are resolved values, never names of
// where to find them; String redacts them.
//
// Exactly one auth mode must be set: AccessToken (a private app's static
// token), or ClientID, ClientSecret and RefreshToken (an OAuth app, whose
// 30-minute access tokens the Client fetches and refreshes itself).
type Config struct {
	// BaseURL is the API root; default https://api.hubapi.com.
	BaseURL string
	// TokenURL is the OAuth token endpoint; default BaseURL + "/oauth/v1/token".
	TokenURL string

	AccessToken string

	ClientID     string
	ClientSecret string
	RefreshToken string
	// RefreshAhead is how long before expiry an OAuth token is replaced
	// (default 5 minutes, at most half the token's lifetime): HubSpot
	// says a 401 is not a reliable signal to refresh on, so the client
	// must not wait for one.
	RefreshAhead time.Duration

	// ObjectType is the CRM object upserted; default "contacts".
	ObjectType string
	// IDProperty is the unique property Record.Key holds; default "email".
	IDProperty string
	// BatchSize is the most inputs per request; default and cap MaxBatch.
	BatchSize int
	// Policy bounds the retries of each batch request; zero fields take
	// DefaultPolicy's values.
	Policy connectors.Policy
}

// DefaultPolicy is what zero Policy fields fall back to.
func DefaultPolicy() connectors.Policy {
	return connectors.Policy{
		MaxAttempts:     5,
		InitialInterval: 500 * time.Millisecond,
		MaxInterval:     30 * time.Second,
		MaxElapsed:      2 * time.Minute,
		RequestTimeout:  30 * time.Second,
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.BaseURL != "" {
		if err := checkURL("BaseURL", c.BaseURL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.TokenURL != "" {
		if err := checkURL("TokenURL", c.TokenURL); err != nil {
			errs = append(errs, err)
		}
	}
	oauth := c.ClientID != "" || c.ClientSecret != "" || c.RefreshToken != ""
	switch {
	case c.AccessToken != "" && oauth:
		errs = append(errs, errors.New("hubspot: set AccessToken or the OAuth fields, not both"))
	case c.AccessToken == "" && !oauth:
		errs = append(errs, errors.New("hubspot: no credentials: set AccessToken, or ClientID, ClientSecret and RefreshToken"))
	case oauth:
		if c.ClientID == "" {
			errs = append(errs, errors.New("hubspot: ClientID is empty"))
		}
		if c.ClientSecret == "" {
			errs = append(errs, errors.New("hubspot: ClientSecret is empty"))
		}
		if c.RefreshToken == "" {
			errs = append(errs, errors.New("hubspot: RefreshToken is empty"))
		}
	}
	if c.RefreshAhead < 0 {
		errs = append(errs, errors.New("hubspot: RefreshAhead is negative"))
	}
	if c.BatchSize < 0 {
		errs = append(errs, errors.New("hubspot: BatchSize is negative"))
	}
	p := c.Policy
	if p.MaxAttempts < 0 || p.InitialInterval < 0 || p.MaxInterval < 0 || p.MaxElapsed < 0 || p.RequestTimeout < 0 {
		errs = append(errs, errors.New("hubspot: Policy has a negative field"))
	}
	return errors.Join(errs...)
}

func checkURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("hubspot: %s must be an http(s)://host URL", name)
	}
	return nil
}

// String prints c with its secrets redacted, so a logged Config leaks none.
func (c Config) String() string {
	red := func(s string) string {
		if s == "" {
			return ""
		}
		return "****"
	}
	return fmt.Sprintf("hubspot.Config{BaseURL:%q TokenURL:%q AccessToken:%s ClientID:%q ClientSecret:%s RefreshToken:%s ObjectType:%q IDProperty:%q BatchSize:%d Policy:%+v}",
		c.BaseURL, c.TokenURL, red(c.AccessToken), c.ClientID, red(c.ClientSecret), red(c.RefreshToken),
		c.ObjectType, c.IDProperty, c.BatchSize, c.Policy)
}

// GoString redacts as String does, for %#v.
func (c Config) GoString() string { return c.String() }

// withDefaults fills zero fields; c is valid.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = "https://api.hubapi.com"
	}
	if c.TokenURL == "" {
		c.TokenURL = c.BaseURL + "/oauth/v1/token"
	}
	if c.RefreshAhead == 0 {
		c.RefreshAhead = 5 * time.Minute
	}
	if c.ObjectType == "" {
		c.ObjectType = "contacts"
	}
	if c.IDProperty == "" {
		c.IDProperty = "email"
	}
	if c.BatchSize == 0 || c.BatchSize > MaxBatch {
		c.BatchSize = MaxBatch
	}
	c.Policy = c.Policy.Or(DefaultPolicy())
	return c
}
