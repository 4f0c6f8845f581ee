package router

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/hubspot"
	"github.com/synchub/synchub/connectors/intercom"
	"github.com/synchub/synchub/connectors/mailchimp"
	"github.com/synchub/synchub/connectors/marketo"
	"github.com/synchub/synchub/connectors/salesforce"
	"github.com/synchub/synchub/connectors/webhook"
	"github.com/synchub/synchub/mapping"
	"github.com/synchub/synchub/router/aggregate"
	"github.com/synchub/synchub/router/dispatch"
)

// VendorConnectors are the connectors that sync through a mapping.
func VendorConnectors() []string {
	return []string{"hubspot", "salesforce", "marketo", "mailchimp", "intercom"}
}

// vendor is one customer's vendor connector, ready to become a route.
type vendor struct {
	common   *config.Common
	client   dispatch.Upserter
	defaults mapping.Spec
	keyField string
	// object is the mapping key in config (hubspot's "contact", …).
	object string
}

// vendorOf builds the client of connector for customer c, or returns nil
// when c does not have it enabled.
func vendorOf(name string, c config.Customer, log *zap.Logger) (*vendor, error) {
	log = log.Named(name).With(zap.String("customer", c.ID))
	policy := func(cm *config.Common) connectors.Policy {
		return connectors.Policy{
			MaxAttempts: cm.Retry.MaxAttempts, InitialInterval: cm.Retry.InitialInterval.D(),
			MaxInterval: cm.Retry.MaxInterval.D(), MaxElapsed: cm.Retry.MaxElapsed.D(), RequestTimeout: cm.Timeout.D(),
		}
	}
	switch name {
	case "hubspot":
		h := c.Connectors.HubSpot
		if h == nil || !h.Enabled {
			return nil, nil
		}
		client, err := hubspot.New(hubspot.Config{
			BaseURL: h.BaseURL, AccessToken: h.Token, ClientID: h.ClientID, ClientSecret: h.ClientSecret, RefreshToken: h.RefreshToken,
			BatchSize: h.BatchSize, Policy: policy(&h.Common),
		}, log)
		return &vendor{common: &h.Common, client: client, defaults: hubspot.DefaultMapping(), keyField: hubspot.KeyField(), object: "contact"}, err
	case "salesforce":
		s := c.Connectors.Salesforce
		if s == nil || !s.Enabled {
			return nil, nil
		}
		client, err := salesforce.New(salesforce.Config{
			LoginURL: s.LoginURL, BaseURL: s.BaseURL, ClientID: s.ClientID, ClientSecret: s.ClientSecret, RefreshToken: s.RefreshToken,
			APIVersion: s.APIVersion, Object: s.Object, ExternalIDField: s.ExternalIDField, BatchSize: s.BatchSize, Policy: policy(&s.Common),
		}, log)
		// The upsert key is the customer's external id field, holding the
		// user id.
		defaults := mapping.Spec(maps.Clone(salesforce.DefaultMapping()))
		delete(defaults, salesforce.KeyField())
		defaults[s.ExternalIDField] = "id"
		return &vendor{common: &s.Common, client: client, defaults: defaults, keyField: s.ExternalIDField, object: "contact"}, err
	case "marketo":
		m := c.Connectors.Marketo
		if m == nil || !m.Enabled {
			return nil, nil
		}
		client, err := marketo.New(marketo.Config{
			BaseURL: m.BaseURL, ClientID: m.ClientID, ClientSecret: m.ClientSecret, LookupField: m.LookupField,
			BatchSize: m.BatchSize, Policy: policy(&m.Common),
		}, log)
		return &vendor{common: &m.Common, client: client, defaults: marketo.DefaultMapping(), keyField: m.LookupField, object: "lead"}, err
	case "mailchimp":
		m := c.Connectors.Mailchimp
		if m == nil || !m.Enabled {
			return nil, nil
		}
		// Config names the API's host, as for every vendor; the client
		// wants the versioned root.
		base := strings.TrimSuffix(m.BaseURL, "/")
		if !strings.HasSuffix(base, "/3.0") {
			base += "/3.0"
		}
		client, err := mailchimp.New(mailchimp.Config{
			BaseURL: base, APIKey: m.APIKey, ListID: m.ListID, StatusIfNew: m.StatusIfNew,
			Concurrency: m.MaxConcurrency, Policy: policy(&m.Common),
		}, log)
		return &vendor{common: &m.Common, client: client, defaults: mailchimp.DefaultMapping(), keyField: mailchimp.KeyField(), object: "member"}, err
	case "intercom":
		i := c.Connectors.Intercom
		if i == nil || !i.Enabled {
			return nil, nil
		}
		client, err := intercom.New(intercom.Config{BaseURL: i.BaseURL, AccessToken: i.Token, Policy: policy(&i.Common)}, log)
		return &vendor{common: &i.Common, client: client, defaults: intercom.DefaultMapping(), keyField: intercom.KeyField(), object: "contact"}, err
	}
	return nil, fmt.Errorf("unknown connector %q", name)
}

// vendorRoutes builds connector name's routes for cfg's customers: each
// customer's client, and its mapping (the connector's defaults with the
// customer's overrides) compiled against a user snapshot.
func vendorRoutes(cfg *config.Config, name string, log *zap.Logger) (map[string]dispatch.Route, error) {
	sample, err := sampleEntity()
	if err != nil {
		return nil, err
	}
	routes := map[string]dispatch.Route{}
	for _, c := range cfg.Customers {
		v, err := vendorOf(name, c, log)
		if err != nil {
			return nil, fmt.Errorf("customer %s, connector %s: %w", c.ID, name, err)
		}
		if v == nil {
			continue
		}
		spec := mapping.Merge(v.defaults, v.common.Mapping[v.object])
		m, err := mapping.Compile(spec, sample)
		if err != nil {
			return nil, fmt.Errorf("customer %s, connector %s, mapping %s: %w", c.ID, name, v.object, err)
		}
		if _, ok := spec[v.keyField]; !ok {
			return nil, fmt.Errorf("customer %s, connector %s, mapping %s: the upsert key %s is not mapped", c.ID, name, v.object, v.keyField)
		}
		route := dispatch.Route{
			Target:         dispatch.MappedTarget{Client: v.client, Mapping: m, KeyField: v.keyField, FormerKeys: formerKeys(m, v.keyField)},
			Entities:       v.common.Entities,
			BatchSize:      v.common.BatchSize,
			MaxConcurrency: v.common.MaxConcurrency,
			Circuit:        dispatch.Circuit{Failures: v.common.Circuit.Failures, OpenFor: v.common.Circuit.OpenFor.D()},
		}
		if rl := v.common.RateLimit; rl != nil {
			route.RateLimit = &dispatch.RateLimit{Requests: rl.Requests, Per: rl.Per.D()}
		}
		routes[c.ID] = route
	}
	return routes, nil
}

// formerKeys derives a record's former upsert keys from the user's
// previous_emails, for every vendor alike: the key field's own expression
// evaluated over the snapshot as it was under each former address, newest
// first. A key that does not depend on the email (Salesforce's and
// Intercom's user id) comes out equal to the current key every time, so
// those records get none; a key that does (HubSpot's email, Marketo's
// default lookupField, Mailchimp's email_address) gets the former
// addresses exactly as the mapping renders keys (lower-cased, say, if the
// customer's mapping lower-cases). Keys that fail to evaluate, come out
// empty or repeat are skipped.
//
// An endpoint that already received the version where the current
// address began (email_version) holds the record under it: the record
// then has no former keys, so only the first delivery after a change pays
// the connector's lookup, not every later update of that user. After a
// restart nothing is known delivered and the first delivery looks again.
func formerKeys(m *mapping.Mapping, keyField string) func(entity map[string]any, key string, delivered int64) []string {
	return func(entity map[string]any, key string, delivered int64) []string {
		prev, _ := entity["previous_emails"].([]any)
		if len(prev) == 0 {
			return nil
		}
		if since, ok := entity["email_version"].(float64); ok && delivered >= int64(since) {
			return nil
		}
		then := maps.Clone(entity)
		seen := map[string]bool{key: true}
		var out []string
		for i := len(prev) - 1; i >= 0; i-- {
			email, _ := prev[i].(string)
			if email == "" {
				continue
			}
			then["email"] = email
			v, ok, err := m.Field(keyField, then)
			k, _ := v.(string)
			if !ok || err != nil || k == "" || seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, k)
		}
		return out
	}
}

// sampleEntity is a user snapshot with every field present, for compiling
// mappings.
func sampleEntity() (map[string]any, error) {
	data, err := json.Marshal(aggregate.User{Type: aggregate.EntityUser, Roles: []string{}, PreviousEmails: []string{}})
	if err != nil {
		return nil, fmt.Errorf("sample user: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("sample user: %w", err)
	}
	return m, nil
}

// Route builds one customer's route of one connector (webhook or a vendor)
// exactly as the hub does: the client, and for a vendor the mapping
// compiled from the connector's defaults and the customer's overrides. It
// fails if the customer is unknown or does not have the connector enabled.
func Route(cfg *config.Config, customer, connector string, log *zap.Logger) (dispatch.Route, error) {
	i := slices.IndexFunc(cfg.Customers, func(c config.Customer) bool { return c.ID == customer })
	if i < 0 {
		return dispatch.Route{}, fmt.Errorf("unknown customer %q", customer)
	}
	one := *cfg
	one.Customers = cfg.Customers[i : i+1]
	var (
		routes map[string]dispatch.Route
		err    error
	)
	switch {
	case connector == dispatch.ConnectorWebhook:
		routes, err = webhookRoutes(&one, webhook.NewClient(log.Named("webhook")))
	case slices.Contains(VendorConnectors(), connector):
		routes, err = vendorRoutes(&one, connector, log)
	default:
		return dispatch.Route{}, fmt.Errorf("unknown connector %q (want webhook or one of %s)", connector, strings.Join(VendorConnectors(), ", "))
	}
	if err != nil {
		return dispatch.Route{}, err
	}
	r, ok := routes[customer]
	if !ok {
		return dispatch.Route{}, fmt.Errorf("customer %s does not have connector %s enabled", customer, connector)
	}
	return r, nil
}
