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
//
// Client.DeliverBatch sends several snapshots in one POST of
//
//	{"type": "batch", "data": [<event>, …]}
//
// each <event> being the single-delivery body above, signed the same way
// over the whole body; it also takes a Gate, through which the caller
// rate-limits and circuit-breaks every attempt.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/attempt"
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
	// MaxElapsed bounds the whole delivery, backoff waits and attempts
	// included; time spent held by a Gate is not counted.
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

// Gate is consulted around every HTTP attempt of a delivery.
type Gate interface {
	// Wait blocks until an attempt may be made (rate limit, open circuit) or ctx ends.
	Wait(ctx context.Context) error
	// Done reports an attempt's outcome: the HTTP status (0 if none), the Retry-After the endpoint asked for (0 if none), and the transport error if any.
	Done(status int, retryAfter time.Duration, err error)
}

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
	return c.deliver(ctx, ep.URL, safeURL, ep.Secret, p, nil, msg, 1)
}

// DeliverBatch POSTs snapshots, all of entityType, to ep in one request,
// with the outcomes, retries and errors of Deliver, and consults gate
// (nil: none) around every attempt.
//
// With one snapshot the request is exactly Deliver's: same body, same
// webhook-id. With more, the body is {"type":"batch","data":[…]} holding
// each snapshot's single-delivery event in the order given, and the
// webhook-id is "msg_batch_" + 32 hex digits of a SHA-256 over the sorted
// member webhook-ids: the same set of (entity id, version) pairs always
// gets the same id. No snapshots: nil, and no request.
//
// The endpoint answers for the whole batch, so the error applies to
// every snapshot, with one exception: a snapshot that cannot be turned
// into an event makes a *retry.Error of Class InvalidInput wrapping a
// *BatchInputError that names its index, and no request is made, so the
// caller can dead-letter that record alone and send the rest again.
// (InvalidInput without a *BatchInputError — an invalid entityType —
// spoils every snapshot.)
//
// The gate:
//   - gate.Wait is called before every attempt, the first and each retry
//     (after the backoff wait), with a context that ends only with ctx.
//     Each attempt is signed after Wait returns, so a long hold does not
//     stale the webhook-timestamp.
//   - Time spent in Wait is not counted toward p.MaxElapsed: the MaxElapsed
//     clock stops while the gate holds the delivery and its deadline moves
//     on by the time held, so a gate pausing an endpoint through an outage
//     does not make its records Exhausted. Nor does RequestTimeout run;
//     only ctx can end a hold. Attempts count requests made, not Waits.
//   - Every Wait that returns nil is followed by exactly one gate.Done for
//     that attempt, from the same goroutine: the status answered (0 if
//     none), the response's Retry-After for a non-2xx answer (0 if none),
//     and the transport error (endpoint redacted) if no answer came. An
//     attempt cut by ctx reports ctx's error (errors.Is(err,
//     context.Canceled) at shutdown), which a gate should not hold against
//     the endpoint; one cut by MaxElapsed is a slow endpoint, like a
//     timeout.
//   - If Wait returns an error the delivery ends without another attempt:
//     with ctx done, as a cancelled ctx ends it (an error wrapping
//     ctx.Err(), not a *retry.Error); otherwise with an error wrapping
//     Wait's, also not a *retry.Error (retry.ClassOf calls it Transient):
//     the gate refused, the endpoint did not fail.
func (c *Client) DeliverBatch(ctx context.Context, ep Endpoint, p Policy, gate Gate, entityType string, snapshots [][]byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("webhook: delivery not started: %w", err)
	}
	safeURL, err := checkEndpoint(ep)
	if err != nil {
		return &retry.Error{Class: retry.Permanent, Err: err}
	}
	if len(snapshots) == 0 {
		return nil
	}
	msg, err := newBatchMessage(entityType, snapshots)
	if err != nil {
		return &retry.Error{Class: retry.InvalidInput, Err: err}
	}
	return c.deliver(ctx, ep.URL, safeURL, ep.Secret, p, gate, msg, len(snapshots))
}

// deliver sends msg (of size events) to rawURL: the part Deliver and
// DeliverBatch share once the input is checked.
func (c *Client) deliver(ctx context.Context, rawURL, safeURL string, secret Secret, p Policy, gate Gate, msg message, size int) error {
	p = p.normalized()
	log := c.log.With(zap.String("webhook_id", msg.id), zap.String("endpoint", safeURL))
	if size > 1 {
		log = log.With(zap.Int("batch_size", size))
	}
	var g connectors.Gate
	if gate != nil {
		g = gate
	}
	run := attempt.Start(ctx, attempt.Config{
		Policy: connectors.Policy(p), Gate: g, Transport: c.pool, SafeURL: safeURL,
		Name: "webhook", Log: log,
		Classify: func(resp *http.Response, now time.Time) attempt.Verdict {
			code := resp.StatusCode
			if !retryableStatus(code) {
				return attempt.Verdict{} // reported Permanent
			}
			if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable || code == http.StatusRequestTimeout {
				asked, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now)
				return attempt.Verdict{Retry: true, Asked: asked, HasAsked: ok}
			}
			return attempt.Verdict{Retry: true}
		},
		GateDelay: func(resp *http.Response, now time.Time) time.Duration {
			ra, _ := parseRetryAfter(resp.Header.Get("Retry-After"), now)
			return ra
		},
		// Every attempt is signed after the gate: a long hold must not
		// stale the timestamp.
		Prepare: func(h http.Header) {
			ts := c.now().Unix()
			h.Set(headerTimestamp, strconv.FormatInt(ts, 10))
			h.Set(headerSignature, Sign(secret, msg.id, ts, msg.body))
		},
	})
	defer run.Close()

	req, err := retryablehttp.NewRequestWithContext(run.Context(), http.MethodPost, rawURL, msg.body)
	if err != nil {
		return &retry.Error{Class: retry.Permanent, Err: fmt.Errorf("webhook: cannot build request to %s", safeURL)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(headerID, msg.id)
	resp, err := run.Do(req)
	return outcome(run, log, msg.id, safeURL, p, resp, err)
}

// outcome turns what the run returned into Deliver's result.
func outcome(run *attempt.Run, log *zap.Logger, id, safeURL string, p Policy, resp *http.Response, err error) error {
	if err == nil {
		defer drain(resp.Body)
		if success(resp.StatusCode) {
			log.Debug("webhook delivered", zap.Int("attempts", run.Attempts()), zap.Int("status", resp.StatusCode))
			return nil
		}
		return &retry.Error{
			Class: retry.Permanent, HTTPStatus: resp.StatusCode,
			Attempts: run.Attempts(), FirstFailedAt: run.FirstFailedAt(),
			Err: fmt.Errorf("webhook %s: %s rejected the delivery: %s", id, safeURL, quoteSnippet(readSnippet(resp.Body))),
		}
	}
	var snippet string
	if resp != nil {
		snippet = readSnippet(resp.Body)
		drain(resp.Body)
	}
	f := err.(*attempt.Failure)
	switch f.Kind {
	case attempt.Interrupted:
		return fmt.Errorf("webhook %s: delivery interrupted after %d attempt(s): %w", id, run.Attempts(), f.Err)
	case attempt.Refused:
		return fmt.Errorf("webhook %s: gate refused attempt %d: %w", id, run.Attempts()+1, f.Err)
	case attempt.Permanent:
		return &retry.Error{
			Class: retry.Permanent, HTTPStatus: run.LastStatus(),
			Attempts: run.Attempts(), FirstFailedAt: run.FirstFailedAt(),
			Err: fmt.Errorf("webhook %s: %w", id, f.Err),
		}
	}
	var last string
	switch {
	case run.LastErr() != nil:
		last = run.LastErr().Error()
	case resp != nil:
		last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, quoteSnippet(snippet))
	case run.LastStatus() != 0:
		last = fmt.Sprintf("HTTP %d", run.LastStatus())
	default:
		last = "none"
	}
	return &retry.Error{
		Class: retry.Exhausted, HTTPStatus: run.LastStatus(),
		Attempts: run.Attempts(), FirstFailedAt: run.FirstFailedAt(), RetryAfter: run.RetryAfter(),
		Err: fmt.Errorf("webhook %s to %s: %s; last failure: %s", id, safeURL, f.Why, last),
	}
}

func success(code int) bool { return code >= 200 && code < 300 }

func retryableStatus(code int) bool { return attempt.RetryableStatus(code) }

// parseRetryAfter reads a Retry-After value of at most a year.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	return attempt.ParseRetryAfter(v, now, 365*24*time.Hour)
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
