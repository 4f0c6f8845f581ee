// Package salesforce upserts records into Salesforce through the sObject
// Collections upsert by external ID:
//
//	PATCH {instance_url}/services/data/v{APIVersion}/composite/sobjects/{Object}/{ExternalIDField}
//	{"allOrNone": false, "records": [{"attributes": {"type": "Contact"}, "Hub_Id__c": "u-1", "LastName": "Lee"}, …]}
//
// with at most 200 records per request, authenticated by the OAuth 2.0
// refresh-token flow. The fake vendor lives in the fake subpackage.
package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/retry"
)

const (
	userAgent    = "synchub-salesforce/1"
	snippetLimit = 512
	bodyLimit    = 16 << 20
)

// Client upserts records into one Salesforce org. It is safe for
// concurrent use; all calls share one connection pool and one session.
type Client struct {
	cfg  Config
	log  *zap.Logger
	http *http.Client
	safe string // login URL as scheme://host, the only form logged

	mu  sync.Mutex // guards tok; held while a token is fetched so concurrent callers share one refresh
	tok *session
}

type session struct {
	access   string
	instance string
	expires  time.Time
}

// New validates cfg and returns a Client logging to logger (nil: none).
func New(cfg Config, logger *zap.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = zap.NewNop()
	}
	u, _ := url.Parse(cfg.LoginURL)
	return &Client{
		cfg:  cfg,
		log:  logger,
		safe: u.Scheme + "://" + u.Host,
		http: &http.Client{
			Transport: &http.Transport{
				Proxy: http.ProxyFromEnvironment,
				DialContext: (&net.Dialer{
					Timeout:   30 * time.Second,
					KeepAlive: 30 * time.Second,
				}).DialContext,
				ForceAttemptHTTP2:     true,
				MaxIdleConns:          64,
				MaxIdleConnsPerHost:   16,
				IdleConnTimeout:       90 * time.Second,
				TLSHandshakeTimeout:   10 * time.Second,
				ExpectContinueTimeout: time.Second,
			},
			// A redirect would carry the bearer token to another host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// CloseIdleConnections closes the pool's idle connections (at shutdown).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Upsert stores recs, keyed by Record.Key in the external ID field, and
// returns one result per record: nil if stored, else an error.
//
// Records go in requests of at most BatchSize, one after the other, with
// allOrNone false so one bad record does not sink its batch.
//
//   - A request-level transient failure (transport error or timeout, 5xx,
//     408, 429, 403 REQUEST_LIMIT_EXCEEDED) resends the batch after an
//     exponential backoff with jitter, or after Retry-After when the
//     answer has one (Salesforce's throttle has none).
//   - 401 INVALID_SESSION_ID refreshes the token and resends at once,
//     once per batch; a second 401 is Permanent.
//   - A record-level UNABLE_TO_LOCK_ROW (or a first DUPLICATE_VALUE, which
//     can be a race between two upserts) resends only those records.
//   - Other failures are Permanent: *retry.Error whose message quotes
//     Salesforce's errorCode and message. A request-level one applies to
//     every record of the batch; a record-level one only to its record.
//     HTTPStatus is what the request answered, so 200 for a record-level
//     failure.
//   - Records still failing transiently when Policy.MaxAttempts requests
//     of their batch were made, or when Policy.MaxElapsed (per Upsert
//     call, time held by gate.Wait not counted) runs out: Exhausted.
//   - ctx done: the unsettled records get an error wrapping ctx.Err()
//     that is not a *retry.Error. If gate.Wait refuses otherwise, its
//     error is wrapped the same way.
//
// gate.Wait is called before every API request, retries and resends
// included, and gate.Done after each. Token requests go to the login host
// and bypass the gate. A record with an empty Key is InvalidInput and is
// not sent.
func (c *Client) Upsert(ctx context.Context, gate connectors.Gate, recs []connectors.Record) []error {
	out := make([]error, len(recs))
	if gate == nil {
		gate = connectors.OpenGate{}
	}
	u := &upsert{c: c, gate: gate, recs: recs, out: out, deadline: time.Now().Add(c.cfg.Policy.MaxElapsed)}
	var batch []int
	for i, r := range recs {
		if err := c.checkRecord(r); err != nil {
			out[i] = &retry.Error{Class: retry.InvalidInput, Err: err}
			continue
		}
		batch = append(batch, i)
		if len(batch) == c.cfg.BatchSize {
			u.batch(ctx, batch)
			batch = nil
		}
	}
	if len(batch) > 0 {
		u.batch(ctx, batch)
	}
	return out
}

func (c *Client) checkRecord(r connectors.Record) error {
	if r.Key == "" {
		return errors.New("salesforce: record has no key")
	}
	for _, reserved := range []string{"attributes", "Id"} {
		if _, ok := r.Fields[reserved]; ok {
			return fmt.Errorf("salesforce: record %s sets the reserved field %s", r.Key, reserved)
		}
	}
	if v, ok := r.Fields[c.cfg.ExternalIDField]; ok && fmt.Sprint(v) != r.Key {
		return fmt.Errorf("salesforce: record %s has %s=%v, which differs from its key", r.Key, c.cfg.ExternalIDField, v)
	}
	return nil
}

// upsert is the state of one Upsert call.
type upsert struct {
	c    *Client
	gate connectors.Gate
	recs []connectors.Record
	out  []error
	// deadline is when Policy.MaxElapsed runs out; time held by the gate
	// moves it on.
	deadline time.Time
}

// attempt is what one request of a batch came to.
type attempt struct {
	status     int
	retryAfter time.Duration
	err        error // transport error, or the request-level vendor error
	code       string
	msg        string
}

// batch sends the records at idx until each is settled.
func (u *upsert) batch(ctx context.Context, idx []int) {
	p := u.c.cfg.Policy
	var (
		attempts    int
		firstFailed time.Time
		refreshed   bool
		last        attempt
		duplicates  = map[int]bool{}
		wait        time.Duration
	)
	settle := func(i int, err error) { u.out[i] = err }
	settleAll := func(err func() error) {
		for _, i := range idx {
			settle(i, err())
		}
		idx = nil
	}
	exhausted := func(why string) {
		settleAll(func() error {
			return &retry.Error{
				Class: retry.Exhausted, HTTPStatus: last.status, Attempts: attempts,
				FirstFailedAt: firstFailed, RetryAfter: last.retryAfter,
				Err: fmt.Errorf("salesforce: %s; last failure: %s", why, last.describe()),
			}
		})
	}
	for len(idx) > 0 {
		if attempts >= p.MaxAttempts {
			exhausted(fmt.Sprintf("all %d attempt(s) failed", p.MaxAttempts))
			return
		}
		if attempts > 0 && wait > 0 {
			if time.Now().Add(wait).After(u.deadline) {
				exhausted(fmt.Sprintf("next attempt (in %s) would pass the max elapsed time %s", wait.Round(time.Millisecond), p.MaxElapsed))
				return
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				u.interrupted(ctx.Err(), idx, attempts)
				return
			case <-t.C:
			}
		}
		if !time.Now().Before(u.deadline) {
			exhausted(fmt.Sprintf("max elapsed time %s reached", p.MaxElapsed))
			return
		}
		sess, err := u.c.session(ctx)
		if err != nil {
			if ctx.Err() != nil {
				u.interrupted(ctx.Err(), idx, attempts)
				return
			}
			var re *retry.Error
			if errors.As(err, &re) && re.Class == retry.Permanent {
				settleAll(func() error { return err })
				return
			}
			if firstFailed.IsZero() {
				firstFailed = time.Now()
			}
			attempts++ // a failed token request spends an attempt, so a dead login host ends
			last = attempt{err: err}
			wait = u.backoff(attempts)
			continue
		}

		held := time.Now()
		if err := u.gate.Wait(ctx); err != nil {
			u.interrupted(err, idx, attempts)
			return
		}
		u.deadline = u.deadline.Add(time.Since(held))
		attempts++
		res, a := u.send(ctx, sess, idx)
		gateStatus := a.status
		if a.status == http.StatusForbidden && a.code == "REQUEST_LIMIT_EXCEEDED" {
			// Salesforce's throttle signal: the gate slows the pair as for a 429.
			gateStatus = http.StatusTooManyRequests
		}
		u.gate.Done(gateStatus, a.retryAfter, a.err)
		last = a
		if ctx.Err() != nil {
			u.interrupted(ctx.Err(), idx, attempts)
			return
		}
		wait = 0
		switch {
		case a.status == http.StatusOK && res != nil:
			var again []int
			for k, i := range idx {
				r := res[k]
				if r.Success {
					settle(i, nil)
					continue
				}
				code, msg := r.first()
				if code == "UNABLE_TO_LOCK_ROW" || code == "DUPLICATE_VALUE" && !duplicates[i] {
					if code == "DUPLICATE_VALUE" {
						duplicates[i] = true
					}
					again = append(again, i)
					continue
				}
				settle(i, &retry.Error{
					Class: retry.Permanent, HTTPStatus: a.status, Attempts: attempts,
					FirstFailedAt: orNow(firstFailed),
					Err:           fmt.Errorf("salesforce: %s %s=%s rejected: %s: %s", u.c.cfg.Object, u.c.cfg.ExternalIDField, u.recs[i].Key, code, msg),
				})
			}
			if len(again) > 0 {
				if firstFailed.IsZero() {
					firstFailed = time.Now()
				}
				last = attempt{status: a.status, code: "record-level", msg: "UNABLE_TO_LOCK_ROW or DUPLICATE_VALUE"}
				wait = u.backoff(attempts)
			}
			idx = again
		case a.status == http.StatusUnauthorized && a.code == "INVALID_SESSION_ID" && !refreshed:
			// The session ended (timeout, logout, admin reset): refresh
			// and resend at once, without backoff, once.
			refreshed = true
			u.c.invalidate(sess)
		case transient(a):
			if firstFailed.IsZero() {
				firstFailed = time.Now()
			}
			wait = u.backoff(attempts)
			if a.retryAfter > 0 {
				wait = a.retryAfter
			}
			u.c.log.Debug("salesforce upsert failed, retrying",
				zap.Int("attempt", attempts), zap.Int("records", len(idx)),
				zap.Int("status", a.status), zap.String("cause", a.describe()), zap.Duration("retry_in", wait))
		default:
			if firstFailed.IsZero() {
				firstFailed = time.Now()
			}
			settleAll(func() error {
				return &retry.Error{
					Class: retry.Permanent, HTTPStatus: a.status, Attempts: attempts,
					FirstFailedAt: firstFailed,
					Err:           fmt.Errorf("salesforce: %s upsert refused: %s", u.c.cfg.Object, a.describe()),
				}
			})
		}
	}
}

func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// interrupted settles idx when the caller's ctx ended or the gate refused:
// the records did not fail, so the error is not a *retry.Error.
func (u *upsert) interrupted(err error, idx []int, attempts int) {
	for _, i := range idx {
		u.out[i] = fmt.Errorf("salesforce: upsert interrupted after %d attempt(s): %w", attempts, err)
	}
}

// backoff is the wait after the n-th failed request: exponential from
// InitialInterval, capped at MaxInterval, with equal jitter.
func (u *upsert) backoff(n int) time.Duration {
	p := u.c.cfg.Policy
	b := p.InitialInterval
	for i := 1; i < n && b < p.MaxInterval; i++ {
		b *= 2
	}
	b = min(b, p.MaxInterval)
	half := b / 2
	return half + rand.N(b-half+1)
}

// transient reports whether a request-level failure is worth resending.
func transient(a attempt) bool {
	switch {
	case a.status == 0:
		return a.err != nil
	case a.status == http.StatusForbidden:
		return a.code == "REQUEST_LIMIT_EXCEEDED"
	case a.status == http.StatusRequestTimeout, a.status == http.StatusTooManyRequests:
		return true
	case a.status >= 500:
		return a.status != http.StatusNotImplemented
	}
	return false
}

func (a attempt) describe() string {
	switch {
	case a.code != "":
		s := fmt.Sprintf("%s: %s", a.code, a.msg)
		if a.status != 0 {
			s = fmt.Sprintf("HTTP %d %s", a.status, s)
		}
		return s
	case a.err != nil:
		return a.err.Error()
	case a.status != 0:
		return fmt.Sprintf("HTTP %d", a.status)
	}
	return "none"
}

type saveResult struct {
	ID      string `json:"id"`
	Success bool   `json:"success"`
	Errors  []struct {
		StatusCode string   `json:"statusCode"`
		Message    string   `json:"message"`
		Fields     []string `json:"fields"`
	} `json:"errors"`
}

func (r saveResult) first() (code, msg string) {
	if len(r.Errors) == 0 {
		return "UNKNOWN_ERROR", "success false without errors"
	}
	e := r.Errors[0]
	msg = e.Message
	if len(e.Fields) > 0 {
		msg += " [" + strings.Join(e.Fields, ", ") + "]"
	}
	for _, more := range r.Errors[1:] {
		msg += "; " + more.StatusCode + ": " + more.Message
	}
	return e.StatusCode, msg
}

// send makes one collections upsert request of the records at idx. It
// returns their results when Salesforce answered 200 with one per record.
func (u *upsert) send(ctx context.Context, sess *session, idx []int) ([]saveResult, attempt) {
	cfg := u.c.cfg
	records := make([]map[string]any, len(idx))
	for k, i := range idx {
		r := u.recs[i]
		m := make(map[string]any, len(r.Fields)+2)
		for f, v := range r.Fields {
			m[f] = v
		}
		m["attributes"] = map[string]string{"type": cfg.Object}
		m[cfg.ExternalIDField] = r.Key
		records[k] = m
	}
	body, err := json.Marshal(map[string]any{"allOrNone": false, "records": records})
	if err != nil {
		return nil, attempt{err: fmt.Errorf("salesforce: cannot encode records: %v", err)}
	}
	rctx, cancel := context.WithDeadline(ctx, minTime(time.Now().Add(cfg.Policy.RequestTimeout), u.deadline))
	defer cancel()
	endpoint := fmt.Sprintf("%s/services/data/v%s/composite/sobjects/%s/%s",
		sess.instance, cfg.APIVersion, url.PathEscape(cfg.Object), url.PathEscape(cfg.ExternalIDField))
	req, err := http.NewRequestWithContext(rctx, http.MethodPatch, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, attempt{err: errors.New("salesforce: cannot build the request")}
	}
	req.Header.Set("Authorization", "Bearer "+sess.access)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := u.c.http.Do(req)
	if err != nil {
		return nil, attempt{err: redact(err)}
	}
	defer drain(resp.Body)
	a := attempt{status: resp.StatusCode}
	data, err := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
	if err != nil {
		a.err = redact(err)
		a.status = 0 // an answer cut short is a transport failure
		return nil, a
	}
	if resp.StatusCode != http.StatusOK {
		a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
		a.code, a.msg = vendorError(data)
		return nil, a
	}
	var res []saveResult
	if err := json.Unmarshal(data, &res); err != nil || len(res) != len(idx) {
		// Salesforce answered 200 but not with one result per record:
		// nothing says which record was saved, so the batch is resent
		// (the upsert is idempotent by external ID).
		a.status, a.code, a.msg = http.StatusBadGateway, "BAD_RESPONSE", fmt.Sprintf("200 with %s", quote(data))
		return nil, a
	}
	return res, a
}

// vendorError reads Salesforce's error body, [{"message","errorCode"}],
// falling back to a quoted snippet.
func vendorError(data []byte) (code, msg string) {
	var errs []struct {
		Message   string   `json:"message"`
		ErrorCode string   `json:"errorCode"`
		Fields    []string `json:"fields"`
	}
	if json.Unmarshal(data, &errs) == nil && len(errs) > 0 && errs[0].ErrorCode != "" {
		msg = errs[0].Message
		if len(errs[0].Fields) > 0 {
			msg += " [" + strings.Join(errs[0].Fields, ", ") + "]"
		}
		return errs[0].ErrorCode, msg
	}
	return "UNPARSED", quote(data)
}

func quote(data []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(data[:min(len(data), snippetLimit)]), ""))
	if s == "" {
		return "(empty body)"
	}
	return strconv.Quote(s)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// redact drops the URL from a *url.Error: it names the instance, which is
// harmless, but keeping errors URL-free matches the other connectors.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("salesforce: %s: %w", ue.Op, ue.Err)
	}
	return err
}

func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	_ = body.Close()
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 if absent or bad.
func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 && secs < 86400*365 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
