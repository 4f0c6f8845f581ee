package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Connector names, as the keys under connectors and as Connectors.Enabled returns them.
const (
	ConnectorWebhook    = "webhook"
	ConnectorHubSpot    = "hubspot"
	ConnectorSalesforce = "salesforce"
	ConnectorMarketo    = "marketo"
	ConnectorMailchimp  = "mailchimp"
	ConnectorIntercom   = "intercom"
)

// Common is the part every vendor connector shares. Its defaults depend on the vendor;
// each vendor's type says which.
type Common struct {
	// Enabled turns the connector on; default false.
	Enabled bool `yaml:"enabled"`
	// Entities are the entity kinds sent, each "user" or "campaign"; default [user].
	Entities []string `yaml:"entities"`
	// BaseURL is the absolute http or https root of the vendor's API; its default is the
	// vendor's real API, except for Salesforce and Marketo (see their types).
	BaseURL string `yaml:"base_url"`
	// BatchSize is the most records sent in one request; default and maximum the
	// vendor's own limit.
	BatchSize int `yaml:"batch_size"`
	// RateLimit caps the requests sent to the vendor for this customer; the default is
	// the vendor's published limit, or nil (unlimited) where it has none that fits.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// MaxConcurrency bounds this customer's requests at once; default 8, 1..1000
	// (Mailchimp: default and maximum 10).
	MaxConcurrency int `yaml:"max_concurrency"`
	// Timeout bounds one HTTP request; default 30s.
	Timeout Duration `yaml:"timeout"`
	// Retry says how failed deliveries are retried; defaults as for the webhook.
	Retry Retry `yaml:"retry"`
	// Circuit says when the vendor counts as down; defaults as for the webhook.
	Circuit Circuit `yaml:"circuit"`
	// Mapping maps an object name to the vendor fields set on it, each to the expression
	// computing its value; optional. Each vendor allows only its own object names. The
	// expressions are compiled by the router, not here.
	Mapping map[string]map[string]string `yaml:"mapping"`
}

// HubSpot configures the HubSpot CRM connector of one customer. Authentication is either
// a private app token (TokenEnv) or an OAuth app (ClientIDEnv, ClientSecretEnv and
// RefreshTokenEnv), never both; one of the two is required when enabled.
//
// Defaults: base_url https://api.hubapi.com, batch_size 100 (also the maximum),
// rate_limit 100 per 10s, mapping object "contact".
type HubSpot struct {
	Common `yaml:",inline"`
	// TokenEnv names the environment variable holding a private app access token.
	TokenEnv string `yaml:"token_env"`
	// ClientIDEnv names the environment variable holding the OAuth app's client ID.
	ClientIDEnv string `yaml:"client_id_env"`
	// ClientSecretEnv names the environment variable holding the OAuth client secret.
	ClientSecretEnv string `yaml:"client_secret_env"`
	// RefreshTokenEnv names the environment variable holding the OAuth refresh token.
	RefreshTokenEnv string `yaml:"refresh_token_env"`

	// Token, ClientID, ClientSecret and RefreshToken are the resolved values of the
	// variables named above; set only for enabled connectors.
	Token        string `yaml:"-" json:"-"`
	ClientID     string `yaml:"-" json:"-"`
	ClientSecret string `yaml:"-" json:"-"`
	RefreshToken string `yaml:"-" json:"-"`
}

// Salesforce configures the Salesforce connector of one customer, which upserts Object
// records by ExternalIDField through an OAuth refresh-token flow.
//
// Defaults: base_url empty, which means the instance URL that the login at LoginURL
// returns; batch_size 200 (also the maximum); no rate_limit; mapping object the
// configured Object or "contact".
type Salesforce struct {
	Common `yaml:",inline"`
	// LoginURL is where tokens are obtained; default https://login.salesforce.com
	// (https://test.salesforce.com for sandboxes).
	LoginURL string `yaml:"login_url"`
	// ClientIDEnv names the environment variable holding the connected app's consumer
	// key; required when enabled.
	ClientIDEnv string `yaml:"client_id_env"`
	// ClientSecretEnv names the environment variable holding the consumer secret;
	// required when enabled.
	ClientSecretEnv string `yaml:"client_secret_env"`
	// RefreshTokenEnv names the environment variable holding the refresh token; required
	// when enabled.
	RefreshTokenEnv string `yaml:"refresh_token_env"`
	// APIVersion is the REST API version like "60.0"; default "60.0".
	APIVersion string `yaml:"api_version"`
	// Object is the sObject upserted; default Contact.
	Object string `yaml:"object"`
	// ExternalIDField is the external ID field of Object holding the synchub user ID,
	// like Synchub_User_Id__c; required when enabled.
	ExternalIDField string `yaml:"external_id_field"`

	// ClientID, ClientSecret and RefreshToken are the resolved values of the variables
	// named above; set only for enabled connectors.
	ClientID     string `yaml:"-" json:"-"`
	ClientSecret string `yaml:"-" json:"-"`
	RefreshToken string `yaml:"-" json:"-"`
}

// Marketo configures the Marketo connector of one customer.
//
// Defaults: base_url none, it is required when enabled because every Marketo instance
// has its own (https://XXX-XXX-XXX.mktorest.com); batch_size 300 (also the maximum);
// rate_limit 100 per 20s; mapping object "lead".
type Marketo struct {
	Common `yaml:",inline"`
	// ClientIDEnv names the environment variable holding the API user's client ID;
	// required when enabled.
	ClientIDEnv string `yaml:"client_id_env"`
	// ClientSecretEnv names the environment variable holding its client secret; required
	// when enabled.
	ClientSecretEnv string `yaml:"client_secret_env"`
	// LookupField is the lead field that identifies a lead on upsert; default email.
	LookupField string `yaml:"lookup_field"`

	// ClientID and ClientSecret are the resolved values of the variables named above;
	// set only for enabled connectors.
	ClientID     string `yaml:"-" json:"-"`
	ClientSecret string `yaml:"-" json:"-"`
}

// Mailchimp configures the Mailchimp audience connector of one customer.
//
// Defaults: base_url https://us1.api.mailchimp.com; batch_size 1 (also the maximum: a
// member upsert takes one member); max_concurrency 10 (also the maximum, Mailchimp's
// limit of simultaneous connections); no rate_limit; mapping object "member".
//
// Mailchimp serves each account from one datacenter, named by the suffix of its API key:
// a key ending in -us21 belongs to https://us21.api.mailchimp.com. The default base_url
// is right only for keys ending in -us1; set base_url to the key's datacenter otherwise.
type Mailchimp struct {
	Common `yaml:",inline"`
	// APIKeyEnv names the environment variable holding the API key; required when
	// enabled.
	APIKeyEnv string `yaml:"api_key_env"`
	// ListID is the audience members are upserted into; required when enabled.
	ListID string `yaml:"list_id"`
	// StatusIfNew is the status of members the upsert creates: subscribed, pending,
	// unsubscribed, cleaned or transactional; default subscribed.
	StatusIfNew string `yaml:"status_if_new"`

	// APIKey is the resolved value of APIKeyEnv; set only for enabled connectors.
	APIKey string `yaml:"-" json:"-"`
}

// Intercom configures the Intercom contacts connector of one customer.
//
// Defaults: base_url https://api.intercom.io; batch_size 1 (also the maximum); no
// rate_limit; mapping object "contact".
type Intercom struct {
	Common `yaml:",inline"`
	// TokenEnv names the environment variable holding the access token; required when
	// enabled.
	TokenEnv string `yaml:"token_env"`

	// Token is the resolved value of TokenEnv; set only for enabled connectors.
	Token string `yaml:"-" json:"-"`
}

// Mailchimp's member statuses that status_if_new accepts.
var mailchimpStatuses = []string{"subscribed", "pending", "unsubscribed", "cleaned", "transactional"}

const (
	defaultVendorTimeout     = Duration(30 * time.Second)
	defaultSalesforceLogin   = "https://login.salesforce.com"
	defaultSalesforceVersion = "60.0"
	defaultSalesforceObject  = "Contact"
	defaultMarketoLookup     = "email"
	defaultMailchimpStatus   = "subscribed"
)

var (
	apiVersionRE = regexp.MustCompile(`^\d+\.\d$`)
	// apiNameRE matches Salesforce API names such as Contact or Synchub_User_Id__c.
	apiNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	listIDRE  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// vendorSpec is what differs between vendors in their Common block.
type vendorSpec struct {
	baseURL        string // default; "" for none
	needsBaseURL   bool   // no default: required when enabled
	maxBatch       int    // also the default
	rateLimit      *RateLimit
	maxConcurrency int
	defConcurrency int
}

var vendorSpecs = map[string]vendorSpec{
	ConnectorHubSpot: {
		baseURL: "https://api.hubapi.com", maxBatch: 100,
		rateLimit:      &RateLimit{Requests: 100, Per: Duration(10 * time.Second)},
		maxConcurrency: maxConcurrency, defConcurrency: defaultMaxConcurrency,
	},
	ConnectorSalesforce: {
		maxBatch: 200, maxConcurrency: maxConcurrency, defConcurrency: defaultMaxConcurrency,
	},
	ConnectorMarketo: {
		needsBaseURL: true, maxBatch: 300,
		rateLimit:      &RateLimit{Requests: 100, Per: Duration(20 * time.Second)},
		maxConcurrency: maxConcurrency, defConcurrency: defaultMaxConcurrency,
	},
	ConnectorMailchimp: {
		baseURL: "https://us1.api.mailchimp.com", maxBatch: 1, maxConcurrency: 10, defConcurrency: 10,
	},
	ConnectorIntercom: {
		baseURL: "https://api.intercom.io", maxBatch: 1,
		maxConcurrency: maxConcurrency, defConcurrency: defaultMaxConcurrency,
	},
}

// vendor is one configured vendor connector of a customer.
type vendor struct {
	name   string
	common *Common
}

// vendors lists the configured vendor connectors, in key order of the Connectors type.
func (c *Connectors) vendors() []vendor {
	var vs []vendor
	if c.HubSpot != nil {
		vs = append(vs, vendor{ConnectorHubSpot, &c.HubSpot.Common})
	}
	if c.Salesforce != nil {
		vs = append(vs, vendor{ConnectorSalesforce, &c.Salesforce.Common})
	}
	if c.Marketo != nil {
		vs = append(vs, vendor{ConnectorMarketo, &c.Marketo.Common})
	}
	if c.Mailchimp != nil {
		vs = append(vs, vendor{ConnectorMailchimp, &c.Mailchimp.Common})
	}
	if c.Intercom != nil {
		vs = append(vs, vendor{ConnectorIntercom, &c.Intercom.Common})
	}
	return vs
}

// Enabled returns the names of the enabled connectors, sorted, like [hubspot webhook].
func (c Connectors) Enabled() []string {
	var names []string
	if c.Webhook != nil && c.Webhook.Enabled {
		names = append(names, ConnectorWebhook)
	}
	for _, v := range c.vendors() {
		if v.common.Enabled {
			names = append(names, v.name)
		}
	}
	slices.Sort(names)
	return names
}

// EntitiesOf returns the entity types connector name syncs, and whether it is enabled.
func (c Connectors) EntitiesOf(name string) ([]string, bool) {
	if name == ConnectorWebhook {
		if c.Webhook == nil {
			return nil, false
		}
		return c.Webhook.Entities, c.Webhook.Enabled
	}
	for _, v := range c.vendors() {
		if v.name == name {
			return v.common.Entities, v.common.Enabled
		}
	}
	return nil, false
}

// mappingObjects returns the object names a vendor's mapping may use.
func (c *Connectors) mappingObjects(name string) []string {
	switch name {
	case ConnectorHubSpot, ConnectorIntercom:
		return []string{"contact"}
	case ConnectorSalesforce:
		if o := c.Salesforce.Object; o != "contact" {
			return []string{o, "contact"}
		}
		return []string{"contact"}
	case ConnectorMarketo:
		return []string{"lead"}
	case ConnectorMailchimp:
		return []string{"member"}
	}
	return nil
}

// applyVendorDefaults fills the absent keys of every vendor connector; p is the path of
// the customer's connectors, like "customers[0].connectors".
func (c *Connectors) applyVendorDefaults(has func(string) bool, p string) {
	for _, v := range c.vendors() {
		v.common.applyDefaults(has, p+"."+v.name+".", vendorSpecs[v.name])
	}
	if s := c.Salesforce; s != nil {
		sp := p + ".salesforce."
		if !has(sp + "login_url") {
			s.LoginURL = defaultSalesforceLogin
		}
		if !has(sp + "api_version") {
			s.APIVersion = defaultSalesforceVersion
		}
		if !has(sp + "object") {
			s.Object = defaultSalesforceObject
		}
	}
	if m := c.Marketo; m != nil && !has(p+".marketo.lookup_field") {
		m.LookupField = defaultMarketoLookup
	}
	if m := c.Mailchimp; m != nil && !has(p+".mailchimp.status_if_new") {
		m.StatusIfNew = defaultMailchimpStatus
	}
}

func (cm *Common) applyDefaults(has func(string) bool, p string, spec vendorSpec) {
	if !has(p + "entities") {
		cm.Entities = []string{EntityUser}
	}
	if !has(p + "base_url") {
		cm.BaseURL = spec.baseURL
	}
	if !has(p + "batch_size") {
		cm.BatchSize = spec.maxBatch
	}
	if !has(p+"rate_limit") && spec.rateLimit != nil {
		rl := *spec.rateLimit
		cm.RateLimit = &rl
	}
	if !has(p + "max_concurrency") {
		cm.MaxConcurrency = spec.defConcurrency
	}
	if !has(p + "timeout") {
		cm.Timeout = defaultVendorTimeout
	}
	cm.Retry.applyDefaults(has, p+"retry.")
	cm.Circuit.applyDefaults(has, p+"circuit.")
}

func (r *Retry) applyDefaults(has func(string) bool, p string) {
	if !has(p + "max_attempts") {
		r.MaxAttempts = defaultMaxAttempts
	}
	if !has(p + "initial_interval") {
		r.InitialInterval = defaultInitialInterval
	}
	if !has(p + "max_interval") {
		r.MaxInterval = defaultMaxInterval
	}
	if !has(p + "max_elapsed") {
		r.MaxElapsed = defaultMaxElapsed
	}
}

func (c *Circuit) applyDefaults(has func(string) bool, p string) {
	if !has(p + "failures") {
		c.Failures = defaultCircuitFailures
	}
	if !has(p + "open_for") {
		c.OpenFor = defaultCircuitOpenFor
	}
}

// vendors checks the vendor connectors of one customer; p is the path of its connectors.
// Like webhook, it checks every value given even when a connector is disabled, and only
// required keys wait for Enabled.
func (v *validator) vendors(p string, c *Connectors) {
	for _, vd := range c.vendors() {
		vp := p + "." + vd.name
		v.common(vp, vd.common, vendorSpecs[vd.name], c.mappingObjects(vd.name))
	}
	if h := c.HubSpot; h != nil {
		v.hubspot(p+".hubspot", h)
	}
	if s := c.Salesforce; s != nil {
		v.salesforce(p+".salesforce", s)
	}
	if m := c.Marketo; m != nil {
		sp := p + ".marketo"
		v.requiredEnv(sp+".client_id_env", m.ClientIDEnv, m.Enabled)
		v.requiredEnv(sp+".client_secret_env", m.ClientSecretEnv, m.Enabled)
		if strings.TrimSpace(m.LookupField) == "" {
			v.add(sp+".lookup_field", "must not be empty")
		}
	}
	if m := c.Mailchimp; m != nil {
		v.mailchimp(p+".mailchimp", m)
	}
	if i := c.Intercom; i != nil {
		v.requiredEnv(p+".intercom.token_env", i.TokenEnv, i.Enabled)
	}
}

const requiredWhenEnabled = "is required when the connector is enabled"

func (v *validator) common(p string, c *Common, spec vendorSpec, objects []string) {
	switch {
	case c.BaseURL != "":
		v.webhookURL(p+".base_url", c.BaseURL)
	case spec.needsBaseURL && c.Enabled:
		v.add(p+".base_url", "%s (each instance has its own, like https://123-ABC-456.mktorest.com)", requiredWhenEnabled)
	case !spec.needsBaseURL && spec.baseURL != "":
		// Present but empty: absent would have taken the default.
		v.add(p+".base_url", "must be an absolute http or https URL")
	}
	v.entities(p+".entities", c.Entities)
	if c.Timeout <= 0 {
		v.add(p+".timeout", "must be positive, got %s", c.Timeout)
	}
	v.retry(p+".retry", c.Retry)
	v.between(p+".batch_size", c.BatchSize, spec.maxBatch)
	if rl := c.RateLimit; rl != nil {
		v.rateLimit(p+".rate_limit", rl)
	}
	v.between(p+".max_concurrency", c.MaxConcurrency, spec.maxConcurrency)
	v.circuit(p+".circuit", c.Circuit)

	mp := p + ".mapping"
	for _, object := range sortedKeys(c.Mapping) {
		op := mp + "." + object
		if !slices.Contains(objects, object) {
			v.add(op, "unknown object %q (want %s)", object, quoteList(objects))
			continue
		}
		for _, field := range sortedKeys(c.Mapping[object]) {
			fp := op + "." + field
			switch {
			case strings.TrimSpace(field) == "":
				v.add(fp, "field name must not be empty")
			case strings.TrimSpace(c.Mapping[object][field]) == "":
				v.add(fp, "expression must not be empty")
			}
		}
	}
}

// between checks that n is in 1..max.
func (v *validator) between(path string, n, max int) {
	switch {
	case n >= 1 && n <= max:
	case max == 1:
		v.add(path, "must be 1, the vendor's limit, got %d", n)
	default:
		v.add(path, "must be between 1 and %d, got %d", max, n)
	}
}

func (v *validator) hubspot(p string, h *HubSpot) {
	oauth := []struct{ key, name string }{
		{"client_id_env", h.ClientIDEnv},
		{"client_secret_env", h.ClientSecretEnv},
		{"refresh_token_env", h.RefreshTokenEnv},
	}
	anyOAuth := false
	for _, o := range oauth {
		if o.name != "" {
			anyOAuth = true
			v.envName(p+"."+o.key, o.name)
		}
	}
	if h.TokenEnv != "" {
		v.envName(p+".token_env", h.TokenEnv)
	}
	switch {
	case h.TokenEnv != "" && anyOAuth:
		v.add(p+".token_env", "must not be combined with client_id_env, client_secret_env and refresh_token_env: give either a private app token or an OAuth app")
	case h.TokenEnv == "" && !anyOAuth && h.Enabled:
		v.add(p+".token_env", "%s, unless client_id_env, client_secret_env and refresh_token_env are given", requiredWhenEnabled)
	case h.TokenEnv == "" && anyOAuth && h.Enabled:
		for _, o := range oauth {
			if o.name == "" {
				v.add(p+"."+o.key, "is required when token_env is not given: OAuth needs client_id_env, client_secret_env and refresh_token_env")
			}
		}
	}
}

func (v *validator) salesforce(p string, s *Salesforce) {
	if s.LoginURL == "" {
		v.add(p+".login_url", "must be an absolute http or https URL")
	} else {
		v.webhookURL(p+".login_url", s.LoginURL)
	}
	v.requiredEnv(p+".client_id_env", s.ClientIDEnv, s.Enabled)
	v.requiredEnv(p+".client_secret_env", s.ClientSecretEnv, s.Enabled)
	v.requiredEnv(p+".refresh_token_env", s.RefreshTokenEnv, s.Enabled)
	if !apiVersionRE.MatchString(s.APIVersion) {
		v.add(p+".api_version", "must be a version like %q, got %q", defaultSalesforceVersion, s.APIVersion)
	}
	if !apiNameRE.MatchString(s.Object) {
		v.add(p+".object", "must be an object API name like Contact or Member__c, got %q", s.Object)
	}
	switch {
	case s.ExternalIDField != "":
		if !apiNameRE.MatchString(s.ExternalIDField) {
			v.add(p+".external_id_field", "must be a field API name like Synchub_User_Id__c, got %q", s.ExternalIDField)
		}
	case s.Enabled:
		v.add(p+".external_id_field", "%s (the external ID field holding the synchub user ID, like Synchub_User_Id__c)", requiredWhenEnabled)
	}
}

func (v *validator) mailchimp(p string, m *Mailchimp) {
	v.requiredEnv(p+".api_key_env", m.APIKeyEnv, m.Enabled)
	switch {
	case m.ListID != "":
		if !listIDRE.MatchString(m.ListID) {
			v.add(p+".list_id", "must be an audience ID of letters, digits, _ and -, got %q", m.ListID)
		}
	case m.Enabled:
		v.add(p+".list_id", requiredWhenEnabled)
	}
	if !slices.Contains(mailchimpStatuses, m.StatusIfNew) {
		v.add(p+".status_if_new", "must be one of %s, got %q", quoteList(mailchimpStatuses), m.StatusIfNew)
	}
}

// requiredEnv checks a variable name that is required when the connector is enabled.
func (v *validator) requiredEnv(path, name string, enabled bool) {
	switch {
	case name != "":
		v.envName(path, name)
	case enabled:
		v.add(path, requiredWhenEnabled)
	}
}

// resolveVendorSecrets resolves the variables of the enabled vendor connectors of one
// customer; p is the path of its connectors. Names Validate rejects are skipped.
func (c *Connectors) resolveVendorSecrets(p string, getenv func(string) (string, bool), add func(path, format string, args ...any)) {
	resolve := func(path, name string, dst *string) {
		if name == "" || envNameProblem(name) != "" {
			return
		}
		switch v, ok := getenv(name); {
		case !ok:
			add(path, "environment variable %s is not set", name)
		case v == "":
			add(path, "environment variable %s is empty", name)
		default:
			*dst = v
		}
	}
	if h := c.HubSpot; h != nil && h.Enabled {
		hp := p + ".hubspot."
		resolve(hp+"token_env", h.TokenEnv, &h.Token)
		resolve(hp+"client_id_env", h.ClientIDEnv, &h.ClientID)
		resolve(hp+"client_secret_env", h.ClientSecretEnv, &h.ClientSecret)
		resolve(hp+"refresh_token_env", h.RefreshTokenEnv, &h.RefreshToken)
	}
	if s := c.Salesforce; s != nil && s.Enabled {
		sp := p + ".salesforce."
		resolve(sp+"client_id_env", s.ClientIDEnv, &s.ClientID)
		resolve(sp+"client_secret_env", s.ClientSecretEnv, &s.ClientSecret)
		resolve(sp+"refresh_token_env", s.RefreshTokenEnv, &s.RefreshToken)
	}
	if m := c.Marketo; m != nil && m.Enabled {
		mp := p + ".marketo."
		resolve(mp+"client_id_env", m.ClientIDEnv, &m.ClientID)
		resolve(mp+"client_secret_env", m.ClientSecretEnv, &m.ClientSecret)
	}
	if m := c.Mailchimp; m != nil && m.Enabled {
		resolve(p+".mailchimp.api_key_env", m.APIKeyEnv, &m.APIKey)
	}
	if i := c.Intercom; i != nil && i.Enabled {
		resolve(p+".intercom.token_env", i.TokenEnv, &i.Token)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func quoteList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(quoted, ", ")
}

// String keeps the resolved secrets out of logs and error messages.
func (h HubSpot) String() string {
	type plain HubSpot
	p := plain(h)
	p.Token, p.ClientID = redact(p.Token), redact(p.ClientID)
	p.ClientSecret, p.RefreshToken = redact(p.ClientSecret), redact(p.RefreshToken)
	return fmt.Sprintf("%+v", p)
}

// GoString keeps the secrets out of %#v output too.
func (h HubSpot) GoString() string { return h.String() }

// String keeps the resolved secrets out of logs and error messages.
func (s Salesforce) String() string {
	type plain Salesforce
	p := plain(s)
	p.ClientID, p.ClientSecret, p.RefreshToken = redact(p.ClientID), redact(p.ClientSecret), redact(p.RefreshToken)
	return fmt.Sprintf("%+v", p)
}

// GoString keeps the secrets out of %#v output too.
func (s Salesforce) GoString() string { return s.String() }

// String keeps the resolved secrets out of logs and error messages.
func (m Marketo) String() string {
	type plain Marketo
	p := plain(m)
	p.ClientID, p.ClientSecret = redact(p.ClientID), redact(p.ClientSecret)
	return fmt.Sprintf("%+v", p)
}

// GoString keeps the secrets out of %#v output too.
func (m Marketo) GoString() string { return m.String() }

// String keeps the resolved API key out of logs and error messages.
func (m Mailchimp) String() string {
	type plain Mailchimp
	p := plain(m)
	p.APIKey = redact(p.APIKey)
	return fmt.Sprintf("%+v", p)
}

// GoString keeps the API key out of %#v output too.
func (m Mailchimp) GoString() string { return m.String() }

// String keeps the resolved token out of logs and error messages.
func (i Intercom) String() string {
	type plain Intercom
	p := plain(i)
	p.Token = redact(p.Token)
	return fmt.Sprintf("%+v", p)
}

// GoString keeps the token out of %#v output too.
func (i Intercom) GoString() string { return i.String() }
