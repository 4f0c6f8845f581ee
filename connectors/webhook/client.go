// Package webhook delivers entity snapshots to a customer's HTTP endpoint,
// signed per the Standard Webhooks specification
// (https://www.standardwebhooks.com).
//
// Each delivery is one POST of the contract body
//
//	{"type": "user.updated", "timestamp": "<snapshot updated_at>", "data": <snapshot>}
//
// ("<type>.created" for version 1) with the headers webhook-id (stable per
// entity version, so receivers can deduplicate), webhook-timestamp (unix
// seconds, fresh on every attempt) and webhook-signature ("v1,<base64
// HMAC-SHA256>"). Attempts, backoff and Retry-After handling are described
// on Client.Deliver.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"

	"github.com/synchub/synchub/retry"
)

const (
	userAgent = "synchub-webhook/1"
	// snippetLimit bounds the response body quoted in an error.
	snippetLimit = 512
	// drainLimit bounds how much of a response is read so its connection
	// can be reused; bigger bodies just close the connection.
	drainLimit = 64 << 10
)

// Policy bounds the attempts of one delivery. Zero (or negative) fields
// take the value of DefaultPolicy; a MaxInterval below InitialInterval is
// raised to it.
type Policy struct {
	// MaxAttempts is the most requests made, the first one included.
	MaxAttempts int
	// InitialInterval is the backoff after the first failure; it doubles
	// per failure up to MaxInterval, with equal jitter (a wait is uniform
	// in [d/2, d]).
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// MaxElapsed bounds the whole delivery, waits and attempts included.
	MaxElapsed time.Duration
	// RequestTimeout bounds one attempt, reading the response included.
	RequestTimeout time.Duration
}

// DefaultPolicy is the policy zero Policy fields fall back to.
func DefaultPolicy() Policy {
	return Policy{
		MaxAttempts:     5,
		InitialInterval: 500 * time.Millisecond,
		MaxInterval:     30 * time.Second,
		MaxElapsed:      2 * time.Minute,
		RequestTimeout:  10 * time.Second,
	}
}

func (p Policy) normalized() Policy {
	d := DefaultPolicy()
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.InitialInterval <= 0 {
		p.InitialInterval = d.InitialInterval
	}
	if p.MaxInterval <= 0 {
		p.MaxInterval = d.MaxInterval
	}
	if p.MaxInterval < p.InitialInterval {
		p.MaxInterval = p.InitialInterval
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = d.MaxElapsed
	}
	if p.RequestTimeout <= 0 {
		p.RequestTimeout = d.RequestTimeout
	}
	return p
}

// Endpoint is where one customer's webhooks go and the key they are signed
// with. Printing an Endpoint prints the secret as "whsec_****".
type Endpoint struct {
	URL    string // http or https
	Secret Secret
}

// Client delivers webhooks. One Client serves every customer: it holds a
// single connection pool, and the retry policy is given per call. It is
// safe for concurrent use.
type Client struct {
	log  *zap.Logger
	pool *http.Transport
	// now stamps webhook-timestamp; tests replace it.
	now func() time.Time
}

// NewClient returns a Client that logs to logger (nil: no logging). Logs
// name the webhook-id and the endpoint's scheme://host only: never the
// URL's path or query (they often hold tokens), the body or the secret.
func NewClient(logger *zap.Logger) *Client {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Client{
		log: logger,
		pool: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   30 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		now: time.Now,
	}
}

// CloseIdleConnections closes the pool's idle connections (at shutdown).
func (c *Client) CloseIdleConnections() { c.pool.CloseIdleConnections() }

// sharedPool hides the pool's CloseIdleConnections from go-retryablehttp,
// which calls it after every failed delivery: on a pool shared by all
// customers, one failing endpoint would drop everyone's idle connections.
type sharedPool struct{ t *http.Transport }

func (s sharedPool) RoundTrip(r *http.Request) (*http.Response, error) { return s.t.RoundTrip(r) }

// Deliver POSTs one entity snapshot to ep, retrying per p. entityType is
// the entity's type ("user"); snapshot is the entity JSON, from which id,
// version and updated_at are read (a "type" field, if present, must equal
// entityType).
//
// Outcomes:
//   - 2xx: nil. Redirects are not followed.
//   - Network errors, timeouts, 408, 429 and 5xx except 501 are retried, up
//     to p.MaxAttempts requests and p.MaxElapsed in all, with exponential
//     backoff and jitter. On 408, 429 and 503 a Retry-After header (seconds
//     or HTTP date) replaces the backoff, exactly as asked, as long as the
//     next attempt still fits in MaxElapsed; if it does not, Deliver stops
//     at once rather than sleep into the deadline.
//   - Running out of attempts or time: *retry.Error with Class Exhausted,
//     HTTPStatus of the last response (0 if none answered) and RetryAfter
//     as last asked (so the caller may park the record until then).
//   - Any other status (4xx, 3xx, 501), or an error retrying cannot fix
//     (bad TLS certificate): *retry.Error, Class Permanent, with up to 512
//     bytes of the response body quoted in the message.
//   - A snapshot without a usable id, version or updated_at: Class
//     InvalidInput; an unusable Endpoint (bad URL, zero secret): Permanent.
//     No request is made for either.
//   - ctx done (shutdown, or a deadline of the caller's shorter than
//     MaxElapsed): an error wrapping ctx.Err() that is NOT a *retry.Error;
//     the delivery did not fail, it was interrupted.
//
// Every *retry.Error has Attempts (requests started) and FirstFailedAt
// filled (zero for InvalidInput and a bad Endpoint). Every attempt
// is signed afresh (new webhook-timestamp, same webhook-id). Errors carry
// the endpoint as scheme://host only and never the secret.
func (c *Client) Deliver(ctx context.Context, ep Endpoint, p Policy, entityType string, snapshot []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("webhook: delivery not started: %w", err)
	}
	safeURL, err := checkEndpoint(ep)
	if err != nil {
		return &retry.Error{Class: retry.Permanent, Err: err}
	}
	msg, err := newMessage(entityType, snapshot)
	if err != nil {
		return &retry.Error{Class: retry.InvalidInput, Err: err}
	}
	p = p.normalized()

	deadline := time.Now().Add(p.MaxElapsed)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	d := &delivery{
		c: c, p: p, secret: ep.Secret, msg: msg, safeURL: safeURL, deadline: deadline,
		log: c.log.With(zap.String("webhook_id", msg.id), zap.String("endpoint", safeURL)),
	}
	req, err := retryablehttp.NewRequestWithContext(dctx, http.MethodPost, ep.URL, msg.body)
	if err != nil {
		return &retry.Error{Class: retry.Permanent, Err: fmt.Errorf("webhook: cannot build request to %s", safeURL)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(headerID, msg.id)
	d.sign(req.Header)

	rc := &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: sharedPool{c.pool},
			Timeout:   p.RequestTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		RetryWaitMin:   p.InitialInterval,
		RetryWaitMax:   p.MaxInterval,
		RetryMax:       p.MaxAttempts - 1,
		RequestLogHook: func(retryablehttp.Logger, *http.Request, int) { d.attempts++ },
		CheckRetry:     d.checkRetry,
		Backoff:        func(time.Duration, time.Duration, int, *http.Response) time.Duration { return d.wait },
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if err == nil {
				err = errAttemptsUsed
			}
			return resp, err
		},
		PrepareRetry: func(r *http.Request) error {
			// The previous attempt's request may still be read by the
			// transport: sign a copy of the headers.
			r.Header = r.Header.Clone()
			d.sign(r.Header)
			return nil
		},
	}
	resp, err := rc.Do(req)
	return d.outcome(ctx, dctx, resp, err)
}

var (
	errAttemptsUsed = errors.New("attempts used up")
	errNoTime       = errors.New("next attempt would pass the max elapsed time")
)

// delivery is the state of one Deliver call. go-retryablehttp calls its
// hooks synchronously from Do, so it needs no locking.
type delivery struct {
	c        *Client
	p        Policy
	secret   Secret
	msg      message
	safeURL  string
	deadline time.Time
	log      *zap.Logger

	attempts      int
	firstFailedAt time.Time
	lastStatus    int           // last status answered, 0 if none
	lastErr       error         // last transport error (redacted); nil if the last attempt got a response
	retryAfter    time.Duration // Retry-After of the last response, 0 if none
	wait          time.Duration // the wait before the next attempt
	permanent     error         // a transport error retrying cannot fix
}

func (d *delivery) sign(h http.Header) {
	ts := d.c.now().Unix()
	h.Set(headerTimestamp, strconv.FormatInt(ts, 10))
	h.Set(headerSignature, Sign(d.secret, d.msg.id, ts, d.msg.body))
}

// checkRetry is go-retryablehttp's CheckRetry: it classifies an attempt,
// records it, and decides the wait before the next one.
func (d *delivery) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	now := time.Now()
	var asked time.Duration
	var hasAsked bool
	if err == nil {
		code := resp.StatusCode
		if success(code) {
			return false, nil
		}
		d.failed(now)
		d.lastStatus, d.lastErr, d.retryAfter = code, nil, 0
		if !retryableStatus(code) {
			return false, nil // Deliver reads the body and reports Permanent
		}
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable || code == http.StatusRequestTimeout {
			asked, hasAsked = parseRetryAfter(resp.Header.Get("Retry-After"), now)
			d.retryAfter = asked
		}
	} else {
		d.failed(now)
		d.lastErr = d.redact(err)
		if ctx.Err() == nil {
			if again, _ := retryablehttp.ErrorPropagatedRetryPolicy(ctx, nil, err); !again {
				d.permanent = d.lastErr
				return false, d.permanent
			}
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return false, cerr
	}
	if d.attempts >= d.p.MaxAttempts {
		return true, nil // go-retryablehttp stops: RetryMax reached
	}
	wait := d.backoff()
	if hasAsked {
		wait = asked
	}
	if now.Add(wait).After(d.deadline) {
		d.wait = wait
		return false, errNoTime
	}
	d.wait = wait
	d.log.Debug("webhook attempt failed, retrying",
		zap.Int("attempt", d.attempts), zap.Int("status", d.lastStatus),
		zap.NamedError("cause", d.lastErr), zap.Duration("retry_in", wait))
	return true, nil
}

func (d *delivery) failed(now time.Time) {
	if d.firstFailedAt.IsZero() {
		d.firstFailedAt = now
	}
}

// backoff is the exponential wait after the d.attempts-th failure, with
// equal jitter: uniform in [b/2, b], b = InitialInterval*2^(attempts-1)
// capped at MaxInterval.
func (d *delivery) backoff() time.Duration {
	b := d.p.InitialInterval
	for i := 1; i < d.attempts && b < d.p.MaxInterval; i++ {
		b *= 2
	}
	b = min(b, d.p.MaxInterval)
	half := b / 2
	return half + rand.N(b-half+1)
}

// redact replaces the URL in a *url.Error by scheme://host: the path and
// query of a webhook URL often carry tokens.
func (d *delivery) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: d.safeURL, Err: ue.Err}
	}
	return err
}

// outcome turns what go-retryablehttp returned into Deliver's result.
func (d *delivery) outcome(ctx, dctx context.Context, resp *http.Response, err error) error {
	if err == nil {
		defer drain(resp.Body)
		if success(resp.StatusCode) {
			d.log.Debug("webhook delivered", zap.Int("attempts", d.attempts), zap.Int("status", resp.StatusCode))
			return nil
		}
		return &retry.Error{
			Class: retry.Permanent, HTTPStatus: resp.StatusCode,
			Attempts: d.attempts, FirstFailedAt: d.firstFailedAt,
			Err: fmt.Errorf("webhook %s: %s rejected the delivery: %s", d.msg.id, d.safeURL, quoteSnippet(readSnippet(resp.Body))),
		}
	}
	var snippet string
	if resp != nil {
		snippet = readSnippet(resp.Body)
		drain(resp.Body)
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("webhook %s: delivery interrupted after %d attempt(s): %w", d.msg.id, d.attempts, cerr)
	}
	if d.permanent != nil {
		return &retry.Error{
			Class: retry.Permanent, HTTPStatus: d.lastStatus,
			Attempts: d.attempts, FirstFailedAt: d.firstFailedAt,
			Err: fmt.Errorf("webhook %s: %w", d.msg.id, d.permanent),
		}
	}
	var why string
	switch {
	case errors.Is(err, errNoTime):
		why = fmt.Sprintf("next attempt (in %s) would pass the max elapsed time %s", d.wait, d.p.MaxElapsed)
	case dctx.Err() != nil:
		why = fmt.Sprintf("max elapsed time %s reached", d.p.MaxElapsed)
	default:
		why = fmt.Sprintf("all %d attempt(s) failed", d.p.MaxAttempts)
	}
	var last string
	switch {
	case d.lastErr != nil:
		last = d.lastErr.Error()
	case resp != nil:
		last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, quoteSnippet(snippet))
	case d.lastStatus != 0:
		last = fmt.Sprintf("HTTP %d", d.lastStatus)
	default:
		last = "none"
	}
	return &retry.Error{
		Class: retry.Exhausted, HTTPStatus: d.lastStatus,
		Attempts: d.attempts, FirstFailedAt: d.firstFailedAt, RetryAfter: d.retryAfter,
		Err: fmt.Errorf("webhook %s to %s: %s; last failure: %s", d.msg.id, d.safeURL, why, last),
	}
}

func success(code int) bool { return code >= 200 && code < 300 }

// retryableStatus: 408, 429 and 5xx except 501 (as go-retryablehttp).
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		code >= 500 && code != http.StatusNotImplemented
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP
// date (a past date means 0). Negative or unparsable values are ignored.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 || secs > int64(365*24*time.Hour/time.Second) {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// checkEndpoint validates ep and returns its URL as scheme://host, the
// only form of it that goes into logs and errors.
func checkEndpoint(ep Endpoint) (string, error) {
	if ep.Secret.isZero() {
		return "", errors.New("webhook: endpoint has no secret")
	}
	u, err := url.Parse(ep.URL)
	if err != nil {
		return "", errors.New("webhook: endpoint URL does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", errors.New("webhook: endpoint URL must be http(s)://host/…")
	}
	return u.Scheme + "://" + u.Host, nil
}

func readSnippet(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, snippetLimit))
	return strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
}

// quoteSnippet quotes a body snippet for an error message (one line, escaped).
func quoteSnippet(s string) string {
	if s == "" {
		return "(empty body)"
	}
	return strconv.Quote(s)
}

func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	_ = body.Close()
}
