package marketo

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/synchub/synchub/connectors"
)

const (
	// MaxBatch is the most leads Sync Leads accepts in one call.
	MaxBatch = 300
	// maxPayload is Marketo's 1 MB request limit (HTTP 413 above it).
	maxPayload = 1 << 20
)

// Config configures a Client. Secrets are the resolved values, never the
// names of where they are kept.
type Config struct {
	// BaseURL is the instance's REST base, https://<munchkin-id>.mktorest.com.
	BaseURL string
	// ClientID and ClientSecret are the LaunchPoint custom service's
	// credentials, exchanged at /identity/oauth/token for access tokens.
	ClientID     string
	ClientSecret string
	// LookupField is the dedupe field (default KeyField(), "email").
	LookupField string
	// Action is the Sync Leads action (default "createOrUpdate").
	Action string
	// PartitionName is the lead partition, for instances that have them.
	PartitionName string
	// BatchSize is the most leads per call: default and cap MaxBatch.
	BatchSize int
	// Policy bounds the retries of one batch; zero fields take defaults
	// (DefaultPolicy).
	Policy connectors.Policy
	// ThrottleBackoff is the least wait after a 606/615 throttle answer.
	// Marketo counts calls per 20 s window and sends no reset header, so
	// the default is the window (20 s).
	ThrottleBackoff time.Duration
	// TokenRefreshMargin is how long before its expiry a token is replaced
	// (default 60 s), so no call leaves with a token about to die.
	TokenRefreshMargin time.Duration
}

// DefaultPolicy is the policy zero Policy fields fall back to.
func DefaultPolicy() connectors.Policy {
	return connectors.Policy{
		MaxAttempts:     5,
		InitialInterval: 500 * time.Millisecond,
		MaxInterval:     30 * time.Second,
		MaxElapsed:      2 * time.Minute,
		RequestTimeout:  30 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	if c.LookupField == "" {
		c.LookupField = KeyField()
	}
	if c.Action == "" {
		c.Action = "createOrUpdate"
	}
	if c.BatchSize == 0 {
		c.BatchSize = MaxBatch
	}
	if c.ThrottleBackoff == 0 {
		c.ThrottleBackoff = 20 * time.Second
	}
	if c.TokenRefreshMargin == 0 {
		c.TokenRefreshMargin = time.Minute
	}
	c.Policy = c.Policy.Or(DefaultPolicy())
	return c
}

// Validate reports every problem of c at once. Messages never quote the
// secret.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("marketo: BaseURL must be http(s)://host"))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("marketo: ClientID is empty"))
	}
	if c.ClientSecret == "" {
		errs = append(errs, errors.New("marketo: ClientSecret is empty"))
	}
	switch c.Action {
	case "", "createOrUpdate", "createOnly", "updateOnly", "createDuplicate":
	default:
		errs = append(errs, fmt.Errorf("marketo: Action %q is not a Sync Leads action", c.Action))
	}
	if c.BatchSize < 0 || c.BatchSize > MaxBatch {
		errs = append(errs, fmt.Errorf("marketo: BatchSize %d is outside 1..%d", c.BatchSize, MaxBatch))
	}
	if c.ThrottleBackoff < 0 || c.TokenRefreshMargin < 0 {
		errs = append(errs, errors.New("marketo: ThrottleBackoff and TokenRefreshMargin must not be negative"))
	}
	p := c.Policy
	if p.MaxAttempts < 0 || p.InitialInterval < 0 || p.MaxInterval < 0 || p.MaxElapsed < 0 || p.RequestTimeout < 0 {
		errs = append(errs, errors.New("marketo: Policy fields must not be negative"))
	}
	return errors.Join(errs...)
}
