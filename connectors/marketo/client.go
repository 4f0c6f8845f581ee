// Package marketo upserts leads into Marketo Engage through the Lead
// Database REST API (POST /rest/v1/leads.json, "Sync Leads").
//
// Marketo answers almost everything with HTTP 200: a failed call has
// "success": false and a response-level code (601/602 token, 606/615
// throttle, 607 daily quota, …), a failed lead has status "skipped" and
// reasons[] with a record-level 1xxx code. The client reads the body of
// every answer to classify it; see Client.Upsert.
package marketo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/attempt"
	"github.com/synchub/synchub/retry"
)

const (
	userAgent    = "synchub-marketo/1"
	snippetLimit = 512
	drainLimit   = 64 << 10
	// bodyLimit bounds a Sync Leads answer read: 300 results fit easily.
	bodyLimit = 4 << 20
)

// Client upserts leads into one Marketo instance. It caches the access
// token of its custom service and is safe for concurrent use.
type Client struct {
	cfg     Config
	safeURL string // scheme://host: the only form of the URL in errors and logs
	log     *zap.Logger
	pool    *http.Transport

	// tokenSem serializes token fetches so concurrent Upserts share one,
	// while still letting a waiter give up with its ctx.
	tokenSem chan struct{}
	tokMu    sync.Mutex
	token    string
	tokenExp time.Time
}

// New returns a Client for cfg (validated; defaults filled). logger nil:
// no logging. Nothing is sent until the first Upsert.
func New(cfg Config, logger *zap.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	u, _ := url.Parse(cfg.BaseURL)
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Client{
		cfg:     cfg,
		safeURL: u.Scheme + "://" + u.Host,
		log:     logger.With(zap.String("vendor", "marketo"), zap.String("endpoint", u.Scheme+"://"+u.Host)),
		pool: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   10, // Marketo allows 10 calls in flight per instance
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		tokenSem: make(chan struct{}, 1),
	}, nil
}

// CloseIdleConnections closes the pool's idle connections (at shutdown).
func (c *Client) CloseIdleConnections() { c.pool.CloseIdleConnections() }

// sharedPool hides the pool's CloseIdleConnections from go-retryablehttp,
// which calls it after every failed request.
type sharedPool struct{ t *http.Transport }

func (s sharedPool) RoundTrip(r *http.Request) (*http.Response, error) { return s.t.RoundTrip(r) }

// Upsert syncs recs as leads, deduplicated on Config.LookupField, and
// returns one result per record, in order: nil when Marketo created or
// updated the lead.
//
//   - Records go out in calls of at most BatchSize leads and 1 MB, one
//     call after the other (Marketo allows 10 in flight per instance,
//     shared by every integration, so the hub does not use them all).
//   - gate.Wait is called before every call attempt, retries included, and
//     gate.Done after each, with the status, the wait Marketo's answer
//     implies (throttle window, daily reset; Marketo sends no Retry-After
//     except on HTTP 429/503) and the transport error. Token requests do
//     not pass the gate: Identity calls do not count against the quota.
//     Time held in gate.Wait does not count toward Policy.MaxElapsed.
//   - 601/602 (token invalid or expired): the token is fetched afresh
//     once and the call resent; a second one fails the batch Permanent.
//   - Transport errors, 5xx (but 501), 408, 429 and the codes 604, 606,
//     608, 611, 614, 615, 713, 719 are retried with exponential backoff
//     (at least ThrottleBackoff after 606/615; Retry-After when sent)
//     within Policy; 607 (daily quota) waits for the reset at midnight
//     US Central time, which no MaxElapsed allows, so it ends the batch at
//     once as Exhausted with RetryAfter set to the reset.
//   - Running out of attempts or time: *retry.Error{Class: Exhausted}.
//   - A lead Marketo skipped: *retry.Error{Class: Permanent, HTTPStatus:
//     200} carrying its reasons' codes and messages; the other leads of
//     the call stand. Any other response-level code, HTTP 413/414 and
//     other 4xx fail the whole call Permanent.
//   - A record with no Key, a lookup field that disagrees with its Key or
//     fields that do not encode as JSON: InvalidInput, and it is not sent.
//   - ctx done: an error wrapping ctx.Err() that is not a *retry.Error,
//     for every record not yet settled.
//
// Records with FormerKeys are first moved (see move), with action
// createOrUpdate only.
//
// Errors and logs name the instance as scheme://host and never carry the
// client secret or the access token.
func (c *Client) Upsert(ctx context.Context, gate connectors.Gate, recs []connectors.Record) []error {
	out := make([]error, len(recs))
	if gate == nil {
		gate = connectors.OpenGate{}
	}
	var idx []int
	var raws []json.RawMessage
	for i, r := range recs {
		raw, err := c.encode(r)
		if err != nil {
			out[i] = &retry.Error{Class: retry.InvalidInput, Err: err}
			continue
		}
		idx = append(idx, i)
		raws = append(raws, raw)
	}
	if c.cfg.Action == "createOrUpdate" {
		idx, raws = c.move(ctx, gate, recs, idx, raws, out)
	}
	for len(idx) > 0 {
		n := c.chunkLen(raws)
		if err := ctx.Err(); err != nil {
			for _, i := range idx {
				out[i] = fmt.Errorf("marketo: upsert interrupted: %w", err)
			}
			break
		}
		errs := c.send(ctx, gate, raws[:n])
		for j, err := range errs {
			out[idx[j]] = err
		}
		idx, raws = idx[n:], raws[n:]
	}
	return out
}

func (c *Client) encode(r connectors.Record) (json.RawMessage, error) {
	if r.Key == "" {
		return nil, errors.New("marketo: record has no key")
	}
	fields := make(map[string]any, len(r.Fields)+1)
	for k, v := range r.Fields {
		fields[k] = v
	}
	if v, ok := fields[c.cfg.LookupField]; ok && v != nil && fmt.Sprint(v) != r.Key {
		return nil, fmt.Errorf("marketo: record field %s disagrees with its key", c.cfg.LookupField)
	}
	fields[c.cfg.LookupField] = r.Key
	raw, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("marketo: record fields do not encode as JSON: %w", err)
	}
	if len(raw)+256 > maxPayload {
		return nil, errors.New("marketo: record alone exceeds the 1 MB request limit")
	}
	return raw, nil
}

// chunkLen is how many of raws fit the next call: BatchSize leads and
// 1 MB with room for the envelope.
func (c *Client) chunkLen(raws []json.RawMessage) int {
	size := 256
	for n, r := range raws {
		size += len(r) + 1
		if n == c.cfg.BatchSize || size > maxPayload {
			return max(n, 1)
		}
	}
	return len(raws)
}

type syncRequest struct {
	Action        string            `json:"action"`
	LookupField   string            `json:"lookupField"`
	PartitionName string            `json:"partitionName,omitempty"`
	Input         []json.RawMessage `json:"input"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type syncResponse struct {
	RequestID string     `json:"requestId"`
	Success   bool       `json:"success"`
	Errors    []apiError `json:"errors"`
	Result    []struct {
		ID      int64      `json:"id"`
		Status  string     `json:"status"`
		Reasons []apiError `json:"reasons"`
	} `json:"result"`
}

var (
	errAttemptsUsed = errors.New("attempts used up")
	errNoTime       = errors.New("next attempt would pass the max elapsed time")
	errElapsed      = errors.New("max elapsed time reached")
	errNotSent      = errors.New("attempt not sent")
)

// send makes one Sync Leads call for raws with the configured action and
// lookup field, retried per Policy, and returns one result per lead.
func (c *Client) send(ctx context.Context, gate connectors.Gate, raws []json.RawMessage) []error {
	return c.sync(ctx, gate, c.cfg.Action, c.cfg.LookupField, raws)
}

// sync makes one Sync Leads call, retried per Policy, and returns one
// result per lead.
func (c *Client) sync(ctx context.Context, gate connectors.Gate, action, lookupField string, raws []json.RawMessage) []error {
	d, err := c.syncCall(ctx, gate, action, lookupField, raws)
	if err != nil {
		out := make([]error, len(raws))
		for i := range out {
			out[i] = err
		}
		return out
	}
	return d.records(len(raws))
}

// syncCall makes one Sync Leads call and returns it answered per lead, or
// the error every lead of it gets.
func (c *Client) syncCall(ctx context.Context, gate connectors.Gate, action, lookupField string, raws []json.RawMessage) (*call, error) {
	body, err := json.Marshal(syncRequest{Action: action, LookupField: lookupField, PartitionName: c.cfg.PartitionName, Input: raws})
	if err != nil {
		return nil, &retry.Error{Class: retry.InvalidInput, Err: fmt.Errorf("marketo: cannot encode request: %w", err)}
	}
	return c.do(ctx, gate, http.MethodPost, c.cfg.BaseURL+"/rest/v1/leads.json", body, len(raws))
}

// do makes one API call (a POST with a JSON body, or a GET with none)
// retried per Policy, and returns it once Marketo answered success: true,
// or the call's error. n is the leads it carries, for logs.
func (c *Client) do(ctx context.Context, gate connectors.Gate, method, target string, body []byte, n int) (*call, error) {
	p := c.cfg.Policy
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b := attempt.StartBudget(p.MaxElapsed, func() { cancel(errElapsed) })
	defer b.Stop()
	d := &call{c: c, p: p, gate: gate, budget: b, log: c.log.With(zap.Int("batch_size", n))}

	var rb any
	if body != nil {
		rb = body
	}
	req, err := retryablehttp.NewRequestWithContext(dctx, method, target, rb)
	if err != nil {
		return nil, &retry.Error{Class: retry.Permanent, Err: fmt.Errorf("marketo: cannot build request to %s", c.safeURL)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	defer d.release(0, 0, errNotSent)
	if err := d.prepare(dctx, req.Header); err != nil {
		return nil, d.outcome(ctx, dctx, nil, err)
	}
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
			if d.refused {
				return nil, err
			}
			if err == nil {
				err = errAttemptsUsed
			}
			return resp, err
		},
		PrepareRetry: func(r *http.Request) error {
			// The previous attempt's request may still be read by the
			// transport: work on a copy of the headers.
			r.Header = r.Header.Clone()
			if err := d.prepare(r.Context(), r.Header); err != nil {
				d.refused = true
				return err
			}
			return nil
		},
	}
	resp, err := rc.Do(req)
	if err := d.outcome(ctx, dctx, resp, err); err != nil {
		return nil, err
	}
	return d, nil
}

// call is the state of one Sync Leads call across its attempts.
// go-retryablehttp runs its hooks synchronously, so it needs no locking.
type call struct {
	c      *Client
	p      connectors.Policy
	gate   connectors.Gate
	budget *attempt.Budget
	log    *zap.Logger

	attempts      int
	firstFailedAt time.Time
	lastStatus    int
	lastFailure   string // last failure, for the Exhausted message
	retryAfter    time.Duration
	wait          time.Duration
	permanent     error
	gateErr       error
	tokenErr      error
	refused       bool
	admitted      bool
	token         string // the token the last attempt carried
	reauthed      bool   // the one refresh after 601/602 was spent
	staleToken    bool   // the next attempt needs a fresh token
	result        *syncResponse
	raw           []byte // the body of the successful answer
}

// prepare readies the next attempt: a valid token in h, then the gate
// (with the MaxElapsed clock stopped while it holds).
func (d *call) prepare(ctx context.Context, h http.Header) error {
	stale := ""
	if d.staleToken {
		stale = d.token
	}
	tok, err := d.c.accessToken(ctx, stale)
	if err != nil {
		d.tokenErr = err
		return err
	}
	d.staleToken = false
	d.token = tok
	h.Set("Authorization", "Bearer "+tok)
	if !d.budget.Pause() {
		return errElapsed
	}
	err = ctx.Err()
	if err == nil {
		err = d.gate.Wait(ctx)
	}
	d.budget.Resume()
	if err != nil {
		d.gateErr = err
		return err
	}
	d.admitted = true
	return nil
}

func (d *call) release(status int, asked time.Duration, err error) {
	if !d.admitted {
		return
	}
	d.admitted = false
	d.gate.Done(status, asked, d.c.redact(err))
}

func (d *call) failed(now time.Time, status int, why string) {
	if d.firstFailedAt.IsZero() {
		d.firstFailedAt = now
	}
	d.lastStatus, d.lastFailure = status, why
}

// checkRetry is go-retryablehttp's CheckRetry: it classifies an attempt
// (reading the body of a 200, where Marketo puts its verdict) and sets
// the wait before the next one.
func (d *call) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	now := time.Now()
	var asked time.Duration
	var hasAsked bool
	if err != nil {
		d.release(0, 0, err)
		d.failed(now, 0, d.c.redact(err).Error())
		if ctx.Err() == nil {
			if again, _ := retryablehttp.ErrorPropagatedRetryPolicy(ctx, nil, err); !again {
				d.permanent = d.c.redact(err)
				return false, d.permanent
			}
		}
	} else {
		code := resp.StatusCode
		switch {
		case code == http.StatusOK:
			raw, rerr := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(raw))
			var sr syncResponse
			if rerr != nil || json.Unmarshal(raw, &sr) != nil {
				// A proxy's page or a cut body: the call's fate is unknown,
				// and resending an upsert is safe.
				d.release(code, 0, nil)
				d.failed(now, code, "unreadable answer "+quoteSnippet(string(raw)))
				break
			}
			if sr.Success {
				d.release(code, 0, nil)
				d.result, d.raw = &sr, raw
				return false, nil
			}
			ae := apiError{Code: "?", Message: "success:false without errors"}
			if len(sr.Errors) > 0 {
				ae = sr.Errors[0]
			}
			why := fmt.Sprintf("Marketo error %s: %s", ae.Code, ae.Message)
			d.failed(now, code, why)
			// The gate hears Marketo's own signals in HTTP terms: a throttle
			// or quota code as 429 (the pair slows down and pauses for the
			// wait), a transient failure as 503 (it counts toward the circuit).
			gateStatus := http.StatusServiceUnavailable
			switch ae.Code {
			case "601", "602":
				d.release(code, 0, nil)
				if d.reauthed {
					d.permanent = fmt.Errorf("marketo: %s, again with a fresh token", why)
					return false, nil
				}
				d.reauthed, d.staleToken = true, true
				if d.attempts >= d.p.MaxAttempts {
					return true, nil
				}
				d.wait = 0 // nothing to wait for: a new token fixes it
				return true, nil
			case "606", "615":
				asked, hasAsked = max(d.c.cfg.ThrottleBackoff, d.backoff()), true
				gateStatus = http.StatusTooManyRequests
			case "607":
				asked, hasAsked = untilQuotaReset(now), true
				gateStatus = http.StatusTooManyRequests
			case "604", "608", "611", "614", "713", "719":
			default:
				d.release(code, 0, nil)
				d.permanent = fmt.Errorf("marketo: %s", why)
				return false, nil
			}
			d.release(gateStatus, asked, nil)
		case retryableStatus(code):
			if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable || code == http.StatusRequestTimeout {
				asked, hasAsked = parseRetryAfter(resp.Header.Get("Retry-After"), now)
			}
			d.release(code, asked, nil)
			d.failed(now, code, fmt.Sprintf("HTTP %d %s", code, quoteSnippet(readSnippet(resp.Body))))
		default:
			d.release(code, 0, nil)
			d.failed(now, code, "")
			d.permanent = fmt.Errorf("marketo: %s answered HTTP %d: %s", d.c.safeURL, code, quoteSnippet(readSnippet(resp.Body)))
			return false, nil
		}
	}
	d.retryAfter = asked
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
	d.wait = wait
	if now.Add(wait).After(d.budget.Deadline()) {
		return false, errNoTime
	}
	d.log.Debug("marketo attempt failed, retrying", zap.Int("attempt", d.attempts),
		zap.String("failure", d.lastFailure), zap.Duration("retry_in", wait))
	return true, nil
}

// backoff is the exponential wait after the d.attempts-th failure, with
// equal jitter.
func (d *call) backoff() time.Duration {
	return attempt.Backoff(d.p, d.attempts)
}

// outcome turns what go-retryablehttp returned into the call's error for
// every lead, or nil when Marketo answered per lead (see records).
func (d *call) outcome(ctx, dctx context.Context, resp *http.Response, err error) error {
	if resp != nil {
		drain(resp.Body)
	}
	if err == nil && d.result != nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("marketo: call to %s interrupted after %d attempt(s): %w", d.c.safeURL, d.attempts, cerr)
	}
	if d.tokenErr != nil && !d.budget.Out() {
		return d.tokenErr
	}
	if d.gateErr != nil && !d.budget.Out() {
		return fmt.Errorf("marketo: gate refused attempt %d: %w", d.attempts+1, d.gateErr)
	}
	if d.permanent != nil {
		return &retry.Error{Class: retry.Permanent, HTTPStatus: d.lastStatus, Attempts: d.attempts,
			FirstFailedAt: d.firstFailedAt, Err: d.permanent}
	}
	var why string
	switch {
	case errors.Is(err, errNoTime):
		why = fmt.Sprintf("next attempt (in %s) would pass the max elapsed time %s", d.wait, d.p.MaxElapsed)
	case dctx.Err() != nil || d.budget.Out():
		why = fmt.Sprintf("max elapsed time %s reached", d.p.MaxElapsed)
	default:
		why = fmt.Sprintf("all %d attempt(s) failed", d.p.MaxAttempts)
	}
	last := d.lastFailure
	if last == "" {
		last = "none"
	}
	return &retry.Error{Class: retry.Exhausted, HTTPStatus: d.lastStatus, Attempts: d.attempts,
		FirstFailedAt: d.firstFailedAt, RetryAfter: d.retryAfter,
		Err: fmt.Errorf("marketo: call to %s: %s; last failure: %s", d.c.safeURL, why, last)}
}

// records reads the per-lead results, which Marketo returns in input
// order.
func (d *call) records(n int) []error {
	out := make([]error, n)
	res := d.result.Result
	if len(res) != n {
		err := &retry.Error{Class: retry.Permanent, HTTPStatus: http.StatusOK, Attempts: d.attempts, FirstFailedAt: d.firstFailedAt,
			Err: fmt.Errorf("marketo: request %s answered %d results for %d leads", d.result.RequestID, len(res), n)}
		for i := range out {
			out[i] = err
		}
		return out
	}
	for i, r := range res {
		switch r.Status {
		case "created", "updated":
			continue
		}
		var msgs []string
		for _, reason := range r.Reasons {
			msgs = append(msgs, reason.Code+" "+reason.Message)
		}
		if len(msgs) == 0 {
			msgs = append(msgs, "no reason given")
		}
		out[i] = &retry.Error{Class: retry.Permanent, HTTPStatus: http.StatusOK, Attempts: d.attempts,
			FirstFailedAt: time.Now(),
			Err:           fmt.Errorf("marketo: lead %d of request %s %s: %s", i, d.result.RequestID, r.Status, strings.Join(msgs, "; "))}
	}
	return out
}

// untilQuotaReset is the wait until Marketo's daily quota resets, at
// 12:00 AM US Central Standard Time (UTC-6; Marketo names CST).
func untilQuotaReset(now time.Time) time.Duration {
	cst := time.FixedZone("CST", -6*60*60)
	t := now.In(cst)
	next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, cst)
	return next.Sub(now)
}

// redact replaces the URL in a *url.Error by scheme://host: token URLs
// carry the client secret in their query.
func (c *Client) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: c.safeURL, Err: ue.Err}
	}
	return err
}

func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		code >= 500 && code != http.StatusNotImplemented
}

func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	return attempt.ParseRetryAfter(v, now, 365*24*time.Hour)
}

func readSnippet(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, snippetLimit))
	return strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
}

func quoteSnippet(s string) string {
	if s == "" {
		return "(empty body)"
	}
	if len(s) > snippetLimit {
		s = s[:snippetLimit]
	}
	return strconv.Quote(s)
}

func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	_ = body.Close()
}
