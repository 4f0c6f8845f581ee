package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/webhook"
	"github.com/synchub/synchub/retry"
	"github.com/synchub/synchub/router"
)

const mappingUsage = "synchub mapping test --config FILE --customer ID --connector NAME --entity FILE [--out -]"

func cmdMapping(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "test" {
		return fmt.Errorf("%w: %s", errUsage, mappingUsage)
	}
	fs := newFlagSet("mapping test", stderr)
	path := fs.String("config", defaultConfig, "config file")
	customer := fs.String("customer", "", "customer id (required)")
	connector := fs.String("connector", "", "connector: webhook, "+strings.Join(router.VendorConnectors(), ", ")+" (required)")
	entity := fs.String("entity", "", "file holding an entity snapshot as JSON, like a record of entity.user (required)")
	out := fs.String("out", "-", "where to write the request; - is standard output")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{{"customer", *customer}, {"connector", *connector}, {"entity", *entity}} {
		if f.value == "" {
			return fmt.Errorf("%w: --%s is required: %s", errUsage, f.name, mappingUsage)
		}
	}
	cfg, err := config.Load(*path, nil)
	if err != nil {
		return fmt.Errorf("%s:\n%w", *path, err)
	}
	snapshot, entityType, err := readEntity(*entity)
	if err != nil {
		return err
	}
	reqs, sendErr, err := mappingTest(ctx, cfg, *customer, *connector, entityType, snapshot)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for i, r := range reqs {
		if i > 0 {
			fmt.Fprintln(&buf)
		}
		fmt.Fprintf(&buf, "# %s request %d of %d for %s (the sandbox fake answered %d)\n", *connector, i+1, len(reqs), *customer, r.status)
		r.write(&buf)
	}
	if sendErr != nil {
		fmt.Fprintf(stderr, "synchub: note: the sandbox fake did not accept the request: %v\n", sendErr)
	}
	if *out == "-" {
		_, err = stdout.Write(buf.Bytes())
		return err
	}
	return os.WriteFile(*out, buf.Bytes(), 0o644)
}

// readEntity reads a snapshot file; its type is its "type" field, user if
// it has none.
func readEntity(path string) ([]byte, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("entity: %w", err)
	}
	var probe map[string]any
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, "", fmt.Errorf("entity %s: not a JSON object: %w", path, err)
	}
	entityType := "user"
	if t, ok := probe["type"].(string); ok && t != "" {
		entityType = t
	}
	return data, entityType, nil
}

// captured is one API request the recorder saw.
type captured struct {
	method, uri, host string
	header            http.Header
	body              []byte
	status            int
}

// write prints the request: request line, headers (credentials redacted)
// and the body, indented if it is JSON.
func (c captured) write(w io.Writer) {
	fmt.Fprintf(w, "%s %s\n", c.method, c.uri)
	fmt.Fprintf(w, "Host: %s\n", c.host)
	for _, k := range slices.Sorted(maps.Keys(c.header)) {
		for _, v := range c.header[k] {
			fmt.Fprintf(w, "%s: %s\n", k, redactHeader(k, v))
		}
	}
	if len(c.body) == 0 {
		return
	}
	fmt.Fprintln(w)
	var pretty bytes.Buffer
	if json.Indent(&pretty, bytes.TrimSpace(c.body), "", "  ") == nil {
		fmt.Fprintln(w, pretty.String())
		return
	}
	fmt.Fprintln(w, string(c.body))
}

// secretHeaders are printed with their value hidden.
var secretHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key"}

func redactHeader(name, value string) string {
	if !slices.Contains(secretHeaders, http.CanonicalHeaderKey(name)) {
		return value
	}
	if scheme, _, ok := strings.Cut(value, " "); ok {
		return scheme + " ****"
	}
	return "****"
}

// secretParams are query parameters printed with their value hidden.
var secretParams = []string{"access_token", "client_secret", "api_key", "apikey", "key", "token"}

func redactQuery(u *url.URL) string {
	if u.RawQuery == "" {
		return u.RequestURI()
	}
	q := u.Query()
	for k := range q {
		if slices.Contains(secretParams, strings.ToLower(k)) {
			q[k] = []string{"****"}
		}
	}
	return u.EscapedPath() + "?" + q.Encode()
}

// tokenPaths are the vendors' token endpoints: not the requests a mapping
// produces.
var tokenPaths = []string{"/oauth/v1/token", "/services/oauth2/token", "/identity/oauth/token"}

// recorder captures the API requests on their way to next.
type recorder struct {
	next http.Handler
	host string // shown as the requests' Host: the customer's real one

	mu   sync.Mutex
	reqs []captured
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if slices.Contains(tokenPaths, r.URL.Path) {
		rc.next.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	rc.next.ServeHTTP(sw, r)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.reqs = append(rc.reqs, captured{
		method: r.Method, uri: redactQuery(r.URL), host: rc.host,
		header: r.Header.Clone(), body: body, status: sw.status,
	})
}

func (rc *recorder) requests() []captured {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]captured(nil), rc.reqs...)
}

// hostOf is the host of a configured URL, or what stands for it.
func hostOf(raw, unset string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return unset
}

// mappingTest sends snapshot through customer's connector, built as the
// hub builds it but pointed at a recorder in front of the vendor's fake, and
// returns the API requests it made. sendErr is the connector's outcome; err
// is a problem of the config, the customer or the mapping.
func mappingTest(ctx context.Context, cfg *config.Config, customer, connector, entityType string, snapshot []byte) (reqs []captured, sendErr, err error) {
	i := slices.IndexFunc(cfg.Customers, func(c config.Customer) bool { return c.ID == customer })
	if i < 0 {
		ids := make([]string, len(cfg.Customers))
		for j, c := range cfg.Customers {
			ids[j] = c.ID
		}
		return nil, nil, fmt.Errorf("unknown customer %q (the config has %s)", customer, strings.Join(ids, ", "))
	}
	names := append([]string{config.ConnectorWebhook}, router.VendorConnectors()...)
	if !slices.Contains(names, connector) {
		return nil, nil, fmt.Errorf("unknown connector %q (want one of %s)", connector, strings.Join(names, ", "))
	}
	c := cfg.Customers[i]
	if !slices.Contains(c.Connectors.Enabled(), connector) {
		return nil, nil, fmt.Errorf("customer %s does not have connector %s enabled", customer, connector)
	}

	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	// One attempt: the request printed is the request sent.
	once := config.Retry{MaxAttempts: 1, InitialInterval: config.Duration(10 * time.Millisecond),
		MaxInterval: config.Duration(10 * time.Millisecond), MaxElapsed: config.Duration(30 * time.Second)}
	timeout := config.Duration(10 * time.Second)
	cc := c
	cc.Connectors = config.Connectors{}
	if connector == config.ConnectorWebhook {
		w := *c.Connectors.Webhook
		u, err := url.Parse(w.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("customer %s webhook url: %w", customer, err)
		}
		secret, err := webhook.ParseSecret(w.Secret)
		if err != nil {
			return nil, nil, fmt.Errorf("customer %s webhook secret (%s): %w", customer, w.SecretEnv, err)
		}
		rec.host = u.Host
		rec.next = verifier{secret: secret}
		w.URL = srv.URL + u.RequestURI()
		w.Retry, w.Timeout = once, timeout
		cc.Connectors.Webhook = &w
	} else {
		f, err := startFake(connector)
		if err != nil {
			return nil, nil, err
		}
		defer f.close()
		common, err := pointAt(&cc, c, f, srv.URL, rec)
		if err != nil {
			return nil, nil, err
		}
		common.Retry, common.Timeout = once, timeout
	}
	one := *cfg
	one.Customers = []config.Customer{cc}
	route, err := router.Route(&one, customer, connector, zap.NewNop())
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(route.Entities, entityType) {
		return nil, nil, fmt.Errorf("customer %s's %s connector does not send %s entities (entities: %s)", customer, connector, entityType, strings.Join(route.Entities, ", "))
	}
	item, err := route.Target.Prepare(entityType, snapshot, 0)
	if err != nil {
		var re *retry.Error
		if errors.As(err, &re) {
			err = re.Err
		}
		return nil, nil, fmt.Errorf("customer %s, connector %s: %w", customer, connector, err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	errs := route.Target.Send(ctx, connectors.OpenGate{}, entityType, []any{item})
	reqs = rec.requests()
	if len(reqs) == 0 {
		return nil, nil, fmt.Errorf("customer %s, connector %s: no request was sent: %w", customer, connector, errors.Join(errs...))
	}
	return reqs, errors.Join(errs...), nil
}

// pointAt sets cc's connector to a copy of c's, with its URLs at the
// recorder (which forwards to the fake f) and the fake's credentials. It
// returns the copy's common part.
func pointAt(cc *config.Customer, c config.Customer, f *fakeVendor, recURL string, rec *recorder) (*config.Common, error) {
	fake, err := newFakeProxy(f, "")
	if err != nil {
		return nil, err
	}
	rec.next = fake
	switch f.name {
	case config.ConnectorHubSpot:
		h := *c.Connectors.HubSpot
		rec.host = hostOf(h.BaseURL, "api.hubapi.com")
		h.BaseURL = recURL
		if h.Token != "" {
			h.Token = f.token
		} else {
			h.ClientID, h.ClientSecret, h.RefreshToken = f.clientID, f.clientSecret, f.refreshToken
		}
		cc.Connectors.HubSpot = &h
		return &h.Common, nil
	case config.ConnectorSalesforce:
		s := *c.Connectors.Salesforce
		rec.host = hostOf(s.BaseURL, "<instance_url of the login answer>")
		s.LoginURL, s.BaseURL = recURL, recURL
		s.ClientID, s.ClientSecret, s.RefreshToken = f.clientID, f.clientSecret, f.refreshToken
		cc.Connectors.Salesforce = &s
		return &s.Common, nil
	case config.ConnectorMarketo:
		m := *c.Connectors.Marketo
		rec.host = hostOf(m.BaseURL, "")
		m.BaseURL = recURL
		m.ClientID, m.ClientSecret = f.clientID, f.clientSecret
		cc.Connectors.Marketo = &m
		return &m.Common, nil
	case config.ConnectorMailchimp:
		m := *c.Connectors.Mailchimp
		rec.host = hostOf(m.BaseURL, "")
		// The customer's audience is sent to the fake's.
		if rec.next, err = newFakeProxy(f, m.ListID); err != nil {
			return nil, err
		}
		m.BaseURL = recURL
		m.APIKey = f.apiKey
		cc.Connectors.Mailchimp = &m
		return &m.Common, nil
	case config.ConnectorIntercom:
		i := *c.Connectors.Intercom
		rec.host = hostOf(i.BaseURL, "api.intercom.io")
		i.BaseURL = recURL
		i.Token = f.token
		cc.Connectors.Intercom = &i
		return &i.Common, nil
	}
	return nil, fmt.Errorf("unknown connector %q", f.name)
}

// verifier answers a webhook: 204 if its signature verifies with secret,
// 401 otherwise.
type verifier struct{ secret webhook.Secret }

func (v verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = webhook.Verify(v.secret, r.Header, body, 5*time.Minute, time.Now())
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
