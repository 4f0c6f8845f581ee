// Package mailchimp upserts records as members of a Mailchimp audience
// through the Marketing API v3.0.
//
// Each record is one PUT /lists/{list_id}/members/{subscriber_hash}, the
// hash being the MD5 of the lower-cased email (the record's Key), with
// status_if_new: a repeat is a plain update, so retries are safe. Mailchimp
// has no synchronous batch upsert that reports per member without failing
// existing ones, so Upsert fans out up to Config.Concurrency requests (at
// most 10, Mailchimp's limit of simultaneous connections per account).
//
// Auth is HTTP Basic with the API key as password. Mailchimp keys (and
// OAuth tokens) never expire, so there is no refresh: a 401 means a
// revoked or wrong key and is permanent.
package mailchimp

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/attempt"
)

const (
	userAgent = "synchub-mailchimp/1"
	// bodyLimit bounds the error body read; Mailchimp's problem documents
	// are small, anything bigger is not one.
	bodyLimit  = 16 << 10
	drainLimit = 64 << 10
)

// topLevel are the member properties sent as themselves; any other field
// is a merge field.
var topLevel = map[string]bool{
	"email_address": true, "status": true, "status_if_new": true,
	"email_type": true, "language": true, "vip": true, "location": true,
	"ip_signup": true, "timestamp_signup": true, "ip_opt": true,
	"timestamp_opt": true, "interests": true, "marketing_permissions": true,
	"tags": true,
}

// Client upserts members. It is safe for concurrent use.
type Client struct {
	cfg  Config
	log  *zap.Logger
	pool *http.Transport
	auth string // the Authorization header value; never logged
	// slots caps requests in flight across concurrent Upsert calls: the
	// limit is Mailchimp's per account, and HTTP/2 would multiplex past
	// the transport's per-host connection cap.
	slots   chan struct{}
	safeURL string // scheme://host, the only form of BaseURL in errors
}

// New returns a Client for cfg, which must pass Validate. logger nil: no
// logging. Logs name subscriber hashes, never emails or the key.
func New(cfg Config, logger *zap.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = zap.NewNop()
	}
	u, _ := url.Parse(cfg.BaseURL)
	return &Client{
		cfg: cfg,
		log: logger,
		pool: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   30 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        MaxConcurrency,
			MaxIdleConnsPerHost: MaxConcurrency,
			// A connection over Mailchimp's limit is a 429, not a queue.
			MaxConnsPerHost:       MaxConcurrency,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		auth:    "Basic " + basicAuth("synchub", cfg.APIKey),
		safeURL: u.Scheme + "://" + u.Host,
		slots:   make(chan struct{}, cfg.Concurrency),
	}, nil
}

// CloseIdleConnections closes the pool's idle connections (at shutdown).
func (c *Client) CloseIdleConnections() { c.pool.CloseIdleConnections() }

// SubscriberHash is Mailchimp's member id for email: hex MD5 of its lower
// case.
func SubscriberHash(email string) string {
	sum := md5.Sum([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// Upsert stores recs as members of the configured audience and returns one
// result per record, in order: nil when stored.
//
// A record whose Key is not an email, or whose email_address field names
// another member, is InvalidInput and no request is made. Otherwise each
// record is retried on its own, per Config.Policy: 408, 429, 5xx except
// 501, a 403 without a JSON body (an edge block) and transport errors are
// transient (Retry-After honoured, though Mailchimp sends none); they end
// as retry.Exhausted when attempts or MaxElapsed run out. Any other answer
// is retry.Permanent, its message quoting Mailchimp's title and detail
// ("Member Exists", "Forgotten Email Not Subscribed", "API Key Invalid").
//
// gate.Wait precedes every attempt and gate.Done follows it from the same
// goroutine; the gate is called from up to Concurrency goroutines at
// once, a limit shared by every Upsert call of the Client. Time held in Wait does not count toward MaxElapsed. When ctx ends,
// unfinished records get an error wrapping ctx.Err() that is not a
// *retry.Error: they were interrupted, not failed.
func (c *Client) Upsert(ctx context.Context, gate connectors.Gate, recs []connectors.Record) []error {
	if gate == nil {
		gate = connectors.OpenGate{}
	}
	errs := make([]error, len(recs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(c.cfg.Concurrency, len(recs)) {
		wg.Go(func() {
			for i := range next {
				select {
				case c.slots <- struct{}{}:
					errs[i] = c.upsertOne(ctx, gate, recs[i])
					<-c.slots
				case <-ctx.Done():
					errs[i] = fmt.Errorf("mailchimp: upsert not started: %w", ctx.Err())
				}
			}
		})
	}
	for i := range recs {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// member builds the request body of r.
func (c *Client) member(r connectors.Record) (hash string, body []byte, err error) {
	key := strings.TrimSpace(r.Key)
	if !strings.Contains(key, "@") {
		return "", nil, fmt.Errorf("mailchimp: record key %q is not an email address", key)
	}
	hash = SubscriberHash(key)
	m := map[string]any{"email_address": key, "status_if_new": c.cfg.StatusIfNew}
	merge := map[string]any{}
	for k, v := range r.Fields {
		switch {
		case k == "email_address":
			s, ok := v.(string)
			if !ok || SubscriberHash(s) != hash {
				// A different email would move the member the key names.
				return "", nil, fmt.Errorf("mailchimp: email_address %v does not match the record key", v)
			}
			m[k] = strings.TrimSpace(s)
		case topLevel[k]:
			if v != nil {
				m[k] = v
			}
		default:
			if v == nil {
				v = "" // Mailchimp clears a merge field with ""; null is invalid
			}
			merge[k] = v
		}
	}
	if len(merge) > 0 {
		m["merge_fields"] = merge
	}
	body, err = json.Marshal(m)
	if err != nil {
		return "", nil, fmt.Errorf("mailchimp: record %s: %w", hash, err)
	}
	return hash, body, nil
}

// problem is Mailchimp's error body (application/problem+json).
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	Errors   []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// describe renders an error answer for a message: the problem's title,
// detail and field errors, or a quoted snippet of a body that is not one.
func describe(status int, header http.Header, body []byte) string {
	var p problem
	if isJSON(header) && json.Unmarshal(body, &p) == nil && (p.Title != "" || p.Detail != "") {
		s := p.Title
		if p.Detail != "" {
			s += ": " + p.Detail
		}
		for _, fe := range p.Errors {
			s += fmt.Sprintf("; %s: %s", fe.Field, fe.Message)
		}
		return s
	}
	snippet := strings.TrimSpace(strings.ToValidUTF8(string(body[:min(len(body), 512)]), ""))
	if snippet == "" {
		return http.StatusText(status) + " (empty body)"
	}
	return strconv.Quote(snippet)
}

func isJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// retryable reports whether an answer is worth another attempt.
func retryable(status int, header http.Header) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return true
	case status == http.StatusForbidden:
		// Akamai's edge blocks busy clients with a bare 403; Mailchimp's
		// own 403s (forbidden, user disabled) are problem documents.
		return !isJSON(header)
	case status >= 500:
		return status != http.StatusNotImplemented
	}
	return false
}

func success(code int) bool { return attempt.Success(code) }

func basicAuth(user, pass string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// readBody replaces resp.Body by its first bodyLimit bytes, so it can be
// quoted after go-retryablehttp drained the original, and frees the
// connection.
func readBody(resp *http.Response) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
	drain(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	_ = body.Close()
}

// parseRetryAfter reads a Retry-After value of at most a day.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	return attempt.ParseRetryAfter(v, now, 24*time.Hour)
}
