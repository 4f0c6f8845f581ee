// Package intercom upserts contacts into Intercom (REST API 2.14).
//
// Intercom has no contact upsert and no batch endpoint in 2.14 (bulk
// exists only in the Preview version), so each record costs its own
// requests: POST /contacts creates the contact (role "user", external_id =
// Record.Key); a 409 "conflict" ("A contact matching those details already
// exists with id=…") means it exists, and PUT /contacts/{id} updates it.
// The Intercom id of each key is remembered, so repeats go straight to PUT
// (a 404 there forgets it and creates again).
//
// Auth is a workspace access token (private app) or an OAuth token (public
// app), sent as a bearer token. Neither expires and there is no refresh
// token: a 401 "unauthorized" means the app must be re-authorized, so it
// is Permanent, and the rest of that Upsert call fails without requests.
//
// Throttling is a 429 "rate_limit_exceeded" with X-RateLimit-Reset (unix
// seconds); the client sleeps until the reset (or as a Retry-After asks).
package intercom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/retry"
)

const (
	// MaxBatch is the most records Intercom takes in one request.
	MaxBatch = 1
	// APIVersion is the Intercom-Version sent unless Config says otherwise.
	APIVersion = "2.14"
	// DefaultConcurrency is how many records are in flight at once: with
	// one request per record, a serial loop would spend most of its time
	// waiting on round trips.
	DefaultConcurrency = 4
	// idCacheLimit bounds the key → Intercom id memory; past it the memory
	// starts over, which costs one 409 per forgotten key.
	idCacheLimit = 100_000
)

// Config configures a Client. Secrets are resolved values, not names.
type Config struct {
	// BaseURL is the regional API root, e.g. https://api.intercom.io.
	BaseURL string
	// AccessToken is the workspace access token or OAuth token.
	AccessToken string
	// Version is the Intercom-Version header; default APIVersion.
	Version string
	// BatchSize is records per request: 0 means MaxBatch, and anything
	// above MaxBatch is capped to it (Intercom takes one contact per call).
	BatchSize int
	// Concurrency is how many records are sent at once; 0 means
	// DefaultConcurrency. Records with the same Key are always sent in
	// order, one at a time.
	Concurrency int
	// Policy bounds the attempts of each record (its POST, and PUT on a
	// conflict, share one attempt count and one MaxElapsed). Zero fields
	// take DefaultPolicy's.
	Policy connectors.Policy
}

// String keeps the token out of logs and error messages.
func (c Config) String() string {
	tok := ""
	if c.AccessToken != "" {
		tok = "****"
	}
	return fmt.Sprintf("intercom.Config{BaseURL:%q AccessToken:%s Version:%q BatchSize:%d Concurrency:%d Policy:%+v}",
		c.BaseURL, tok, c.Version, c.BatchSize, c.Concurrency, c.Policy)
}

// GoString is String, so %#v does not print the token either.
func (c Config) GoString() string { return c.String() }

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("intercom: BaseURL must be http(s)://host"))
	} else if u.RawQuery != "" || u.User != nil {
		errs = append(errs, errors.New("intercom: BaseURL must not carry a query or user info"))
	}
	if strings.TrimSpace(c.AccessToken) == "" {
		errs = append(errs, errors.New("intercom: AccessToken is empty"))
	}
	if c.BatchSize < 0 {
		errs = append(errs, errors.New("intercom: BatchSize is negative"))
	}
	if c.Concurrency < 0 {
		errs = append(errs, errors.New("intercom: Concurrency is negative"))
	}
	p := c.Policy
	if p.MaxAttempts < 0 || p.InitialInterval < 0 || p.MaxInterval < 0 || p.MaxElapsed < 0 || p.RequestTimeout < 0 {
		errs = append(errs, errors.New("intercom: Policy has a negative field"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 || c.BatchSize > MaxBatch {
		c.BatchSize = MaxBatch
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Version == "" {
		c.Version = APIVersion
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	c.Policy = c.Policy.Or(DefaultPolicy())
	return c
}

// DefaultPolicy is what zero Policy fields fall back to.
func DefaultPolicy() connectors.Policy {
	return connectors.Policy{
		MaxAttempts:     5,
		InitialInterval: 500 * time.Millisecond,
		MaxInterval:     30 * time.Second,
		MaxElapsed:      2 * time.Minute,
		RequestTimeout:  10 * time.Second,
	}
}

// Client upserts contacts. It is safe for concurrent use.
type Client struct {
	cfg     Config
	log     *zap.Logger
	pool    *http.Transport
	safeURL string // scheme://host, the only form of BaseURL in errors and logs
	ids     idCache
}

// New validates cfg and returns a Client logging to logger (nil: none).
func New(cfg Config, logger *zap.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	u, _ := url.Parse(cfg.BaseURL)
	return &Client{
		cfg:     cfg,
		log:     logger.With(zap.String("vendor", "intercom")),
		safeURL: u.Scheme + "://" + u.Host,
		pool: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   30 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   max(cfg.Concurrency, 2),
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		ids: idCache{m: map[string]string{}},
	}, nil
}

// CloseIdleConnections closes the pool's idle connections (at shutdown).
func (c *Client) CloseIdleConnections() { c.pool.CloseIdleConnections() }

// Upsert creates or updates one Intercom contact per record and returns
// one result per record, in order: nil when Intercom holds it.
//
// A record's Key is its external_id; Fields are the contact's body
// (DefaultMapping), with role defaulting to "user" and external_id to Key
// (a different external_id in Fields is InvalidInput, as is an empty Key).
//
// Failures are *retry.Error: Permanent for a 4xx Intercom refuses (the
// message quotes Intercom's error codes and messages), Exhausted when
// transient failures (timeouts, 408, 429, 5xx) outlast the Policy,
// InvalidInput for a record that cannot become a request. If ctx ends, the
// records not yet stored get an error wrapping ctx.Err() that is not a
// *retry.Error. gate (nil: OpenGate) is consulted around every attempt, as
// webhook.Client.DeliverBatch does; time held in it does not count toward
// MaxElapsed.
func (c *Client) Upsert(ctx context.Context, gate connectors.Gate, recs []connectors.Record) []error {
	errs := make([]error, len(recs))
	if gate == nil {
		gate = connectors.OpenGate{}
	}
	// Same-key records go to one worker in input order, so the last one wins.
	var order []string
	groups := map[string][]int{}
	for i, r := range recs {
		if _, ok := groups[r.Key]; !ok {
			order = append(order, r.Key)
		}
		groups[r.Key] = append(groups[r.Key], i)
	}
	var (
		mu      sync.Mutex
		authErr *retry.Error // set by the first 401: the token is bad for everyone
	)
	work := make(chan []int)
	var wg sync.WaitGroup
	for range min(c.cfg.Concurrency, len(order)) {
		wg.Go(func() {
			for idxs := range work {
				for _, i := range idxs {
					if err := ctx.Err(); err != nil {
						errs[i] = fmt.Errorf("intercom: upsert of %q not started: %w", recs[i].Key, err)
						continue
					}
					mu.Lock()
					ae := authErr
					mu.Unlock()
					if ae != nil {
						errs[i] = &retry.Error{Class: retry.Permanent, HTTPStatus: ae.HTTPStatus,
							Err: fmt.Errorf("intercom: contact %q not sent: an earlier request was unauthorized: %w", recs[i].Key, ae.Err)}
						continue
					}
					err := c.upsertOne(ctx, gate, recs[i])
					var re *retry.Error
					if errors.As(err, &re) && re.HTTPStatus == http.StatusUnauthorized {
						mu.Lock()
						if authErr == nil {
							authErr = re
						}
						mu.Unlock()
					}
					errs[i] = err
				}
			}
		})
	}
	for _, k := range order {
		work <- groups[k]
	}
	close(work)
	wg.Wait()
	return errs
}

// conflictID finds the existing contact's id in a 409 message.
var conflictID = regexp.MustCompile(`id=([A-Za-z0-9_-]+)`)

func (c *Client) upsertOne(ctx context.Context, gate connectors.Gate, rec connectors.Record) error {
	body, err := contactBody(rec)
	if err != nil {
		return &retry.Error{Class: retry.InvalidInput, Err: err}
	}
	r := c.newRun(ctx, gate, rec.Key)
	defer r.close()

	if id, ok := c.ids.get(rec.Key); ok {
		res, err := r.send(http.MethodPut, "/contacts/"+url.PathEscape(id), body)
		if err != nil {
			return err
		}
		switch {
		case success(res.status):
			return nil
		case res.status == http.StatusNotFound:
			c.ids.forget(rec.Key) // deleted or merged in Intercom: create anew
		default:
			return r.refused(res)
		}
	}

	res, err := r.send(http.MethodPost, "/contacts", body)
	if err != nil {
		return err
	}
	if success(res.status) {
		c.remember(rec.Key, res.body)
		return nil
	}
	if res.status != http.StatusConflict {
		return r.refused(res)
	}
	id := ""
	for _, e := range res.errs.Errors {
		if m := conflictID.FindStringSubmatch(e.Message); m != nil {
			id = m[1]
			break
		}
	}
	if id == "" {
		// Older API versions word the conflict without the id: look it up.
		look, err := r.send(http.MethodGet, "/contacts/find_by_external_id/"+url.PathEscape(rec.Key), nil)
		if err != nil {
			return err
		}
		if !success(look.status) {
			return r.refused(res)
		}
		var found struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(look.body, &found) != nil || found.ID == "" {
			return r.refused(res)
		}
		id = found.ID
	}
	res, err = r.send(http.MethodPut, "/contacts/"+url.PathEscape(id), body)
	if err != nil {
		return err
	}
	if !success(res.status) {
		return r.refused(res)
	}
	c.ids.put(rec.Key, id)
	return nil
}

func (c *Client) remember(key string, body []byte) {
	var created struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &created) == nil && created.ID != "" {
		c.ids.put(key, created.ID)
	}
}

// contactBody is the JSON of a create or update: Fields, plus the key as
// external_id and role "user" unless Fields set one (a lead has no
// external_id to be found by, so it must be a user).
func contactBody(rec connectors.Record) ([]byte, error) {
	if rec.Key == "" {
		return nil, errors.New("intercom: record has no key (external_id)")
	}
	m := make(map[string]any, len(rec.Fields)+2)
	for k, v := range rec.Fields {
		m[k] = v
	}
	if v, ok := m["external_id"]; ok && fmt.Sprint(v) != rec.Key {
		return nil, fmt.Errorf("intercom: record %q has a different external_id field", rec.Key)
	}
	m["external_id"] = rec.Key
	if _, ok := m["role"]; !ok {
		m["role"] = "user"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("intercom: record %q does not encode as JSON: %v", rec.Key, err)
	}
	return buf.Bytes(), nil
}

// idCache remembers Intercom's contact id per external_id.
type idCache struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *idCache) get(k string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *idCache) put(k, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= idCacheLimit {
		c.m = map[string]string{}
	}
	c.m[k] = v
}

func (c *idCache) forget(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

func success(code int) bool { return code >= 200 && code < 300 }
