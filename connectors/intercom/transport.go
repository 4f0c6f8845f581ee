package intercom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/retry"
)

const (
	userAgent = "synchub-intercom/1"
	// bodyLimit bounds how much of a response is read: a contact or an
	// error list is far smaller, and a bigger body only needs closing.
	bodyLimit = 1 << 20
	// snippetLimit bounds the body quoted in an error with no error list.
	snippetLimit = 512
)

var (
	errAttemptsUsed = errors.New("attempts used up")
	errNoTime       = errors.New("next attempt would pass the max elapsed time")
	// errElapsed is the cause the record's context is cancelled with when
	// MaxElapsed runs out, so an attempt it cuts says so.
	errElapsed = errors.New("max elapsed time reached")
	errNotSent = errors.New("attempt not sent")
)

// errorList is Intercom's error body ("error" schema of the spec).
type errorList struct {
	Type      string `json:"type"`
	RequestID string `json:"request_id,omitempty"`
	Errors    []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"errors"`
}

func (l errorList) String() string {
	var parts []string
	for _, e := range l.Errors {
		s := e.Code
		if e.Message != "" {
			s += ": " + e.Message
		}
		if e.Field != "" {
			s += " (field " + e.Field + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func (l errorList) has(codes ...string) bool {
	for _, e := range l.Errors {
		for _, c := range codes {
			if e.Code == c {
				return true
			}
		}
	}
	return false
}

// result is a final answer Intercom gave: success, or a status retrying
// cannot change (the caller decides what a 404 or 409 means).
type result struct {
	status int
	body   []byte
	errs   errorList
}

// run is the state of one record's requests. They share one attempt
// count, one MaxElapsed budget and the gate protocol; go-retryablehttp
// calls the hooks synchronously, so no locking is needed.
type run struct {
	c      *Client
	p      connectors.Policy
	key    string
	gate   connectors.Gate
	ctx    context.Context // the caller's
	dctx   context.Context // ctx, cut when MaxElapsed runs out
	cancel context.CancelCauseFunc
	budget *budget
	log    *zap.Logger

	attempts      int // requests made for the record
	opAttempts    int // requests made for the current send
	firstFailedAt time.Time
	lastStatus    int
	lastErr       error
	lastBody      []byte
	retryAfter    time.Duration
	wait          time.Duration
	permanent     error
	gateErr       error
	refusedRetry  bool
	admitted      bool
}

func (c *Client) newRun(ctx context.Context, gate connectors.Gate, key string) *run {
	p := c.cfg.Policy
	dctx, cancel := context.WithCancelCause(ctx)
	r := &run{c: c, p: p, key: key, gate: gate, ctx: ctx, dctx: dctx, cancel: cancel,
		log: c.log.With(zap.String("external_id", key))}
	r.budget = startBudget(p.MaxElapsed, func() { cancel(errElapsed) })
	return r
}

func (r *run) close() {
	r.budget.timer.Stop()
	r.cancel(nil)
}

// send makes one API call with retries. It returns a result for a 2xx or
// a status retrying cannot fix; an error (already classified) otherwise.
func (r *run) send(method, path string, body []byte) (result, error) {
	r.opAttempts, r.permanent, r.gateErr, r.refusedRetry = 0, nil, nil, false
	var rawBody any
	if body != nil {
		rawBody = body
	}
	req, err := retryablehttp.NewRequestWithContext(r.dctx, method, r.c.cfg.BaseURL+path, rawBody)
	if err != nil {
		return result{}, &retry.Error{Class: retry.Permanent, Attempts: r.attempts,
			Err: fmt.Errorf("intercom: cannot build %s request to %s", method, r.c.safeURL)}
	}
	req.Header.Set("Authorization", "Bearer "+r.c.cfg.AccessToken)
	req.Header.Set("Intercom-Version", r.c.cfg.Version)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	defer r.release(nil, errNotSent)
	if err := r.admit(r.dctx); err != nil {
		return r.outcome(method, nil, err)
	}
	rc := &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: sharedPool{r.c.pool},
			Timeout:   r.p.RequestTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		RetryWaitMin: r.p.InitialInterval,
		RetryWaitMax: r.p.MaxInterval,
		RetryMax:     r.p.MaxAttempts - 1,
		RequestLogHook: func(retryablehttp.Logger, *http.Request, int) {
			r.attempts++
			r.opAttempts++
		},
		CheckRetry: r.checkRetry,
		Backoff:    func(time.Duration, time.Duration, int, *http.Response) time.Duration { return r.wait },
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if r.refusedRetry {
				return nil, err
			}
			if err == nil {
				err = errAttemptsUsed
			}
			return resp, err
		},
		PrepareRetry: func(req *http.Request) error {
			if err := r.admit(req.Context()); err != nil {
				r.refusedRetry = true
				return err
			}
			return nil
		},
	}
	resp, err := rc.Do(req)
	return r.outcome(method, resp, err)
}

// sharedPool hides the pool's CloseIdleConnections from go-retryablehttp,
// which calls it after every failed request: one record's outage must not
// drop every other worker's idle connections.
type sharedPool struct{ t *http.Transport }

func (s sharedPool) RoundTrip(req *http.Request) (*http.Response, error) { return s.t.RoundTrip(req) }

// admit lets the gate hold the next attempt with the MaxElapsed clock
// stopped: a gate pausing Intercom through an outage must not make the
// record Exhausted.
func (r *run) admit(ctx context.Context) error {
	if !r.budget.pause() {
		return errElapsed
	}
	err := ctx.Err()
	if err == nil {
		err = r.gate.Wait(ctx)
	}
	r.budget.resume()
	if err != nil {
		r.gateErr = err
		return err
	}
	r.admitted = true
	return nil
}

// release reports an attempt to the gate, once per admit.
func (r *run) release(resp *http.Response, err error) {
	if !r.admitted {
		return
	}
	r.admitted = false
	var status int
	var wait time.Duration
	if resp != nil {
		status = resp.StatusCode
		if !success(status) {
			wait, _ = askedWait(status, resp.Header, time.Now())
		}
	}
	r.gate.Done(status, wait, redact(err, r.c.safeURL))
}

func (r *run) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	r.release(resp, err)
	now := time.Now()
	var asked time.Duration
	var hasAsked bool
	if err == nil {
		code := resp.StatusCode
		if success(code) {
			return false, nil
		}
		// Read the body now: its error codes decide, and go-retryablehttp
		// drains it before a retry.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if r.firstFailedAt.IsZero() {
			r.firstFailedAt = now
		}
		r.lastStatus, r.lastErr, r.lastBody, r.retryAfter = code, nil, b, 0
		var l errorList
		_ = json.Unmarshal(b, &l)
		if !retryable(code, l) {
			return false, nil
		}
		asked, hasAsked = askedWait(code, resp.Header, now)
		r.retryAfter = asked
	} else {
		if r.firstFailedAt.IsZero() {
			r.firstFailedAt = now
		}
		r.lastErr = redact(err, r.c.safeURL)
		if ctx.Err() == nil {
			if again, _ := retryablehttp.ErrorPropagatedRetryPolicy(ctx, nil, err); !again {
				r.permanent = r.lastErr
				return false, r.permanent
			}
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return false, cerr
	}
	if r.opAttempts >= r.p.MaxAttempts {
		return true, nil // go-retryablehttp stops: RetryMax reached
	}
	wait := r.backoff()
	if hasAsked {
		wait = asked
	}
	r.wait = wait
	if now.Add(wait).After(r.budget.deadline) {
		return false, errNoTime
	}
	r.log.Debug("intercom attempt failed, retrying",
		zap.Int("attempt", r.attempts), zap.Int("status", r.lastStatus),
		zap.NamedError("cause", r.lastErr), zap.Duration("retry_in", wait))
	return true, nil
}

// retryable: 408, 429, 5xx except 501, and Intercom's transient codes on
// whatever status they come with.
func retryable(code int, l errorList) bool {
	if code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		code >= 500 && code != http.StatusNotImplemented {
		return true
	}
	return l.has("rate_limit_exceeded", "too_many_requests", "request_timeout", "service_unavailable", "server_error")
}

// askedWait is the wait Intercom asked for: Retry-After if present (not
// documented, but proxies in front of it send one), else until
// X-RateLimit-Reset on a throttle. Every authenticated answer carries the
// reset of the current 10 s window, so it means "wait" only on a 429 or
// with nothing remaining: a 500 must not wait out the window.
func askedWait(status int, h http.Header, now time.Time) (time.Duration, bool) {
	if d, ok := parseRetryAfter(h.Get("Retry-After"), now); ok {
		return d, true
	}
	if status == http.StatusTooManyRequests || h.Get("X-RateLimit-Remaining") == "0" {
		secs, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 10, 64)
		if err != nil || secs <= 0 {
			return 0, false
		}
		d := time.Unix(secs, 0).Sub(now)
		if d <= 0 || d > time.Hour {
			return 0, false
		}
		return d, true
	}
	return 0, false
}

func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 || secs > int64(24*time.Hour/time.Second) {
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

// backoff: InitialInterval doubling per failure up to MaxInterval, with
// equal jitter.
func (r *run) backoff() time.Duration {
	b := r.p.InitialInterval
	for i := 1; i < r.opAttempts && b < r.p.MaxInterval; i++ {
		b *= 2
	}
	b = min(b, r.p.MaxInterval)
	half := b / 2
	return half + rand.N(b-half+1)
}

func (r *run) outcome(method string, resp *http.Response, err error) (result, error) {
	if err == nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
		_ = resp.Body.Close()
		res := result{status: resp.StatusCode, body: b}
		if !success(res.status) {
			_ = json.Unmarshal(b, &res.errs)
		}
		return res, nil
	}
	if resp != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, bodyLimit))
		_ = resp.Body.Close()
	}
	if cerr := r.ctx.Err(); cerr != nil {
		return result{}, fmt.Errorf("intercom: upsert of %q interrupted after %d attempt(s): %w", r.key, r.attempts, cerr)
	}
	if r.gateErr != nil && !r.budget.out.Load() {
		return result{}, fmt.Errorf("intercom: gate refused attempt %d for %q: %w", r.attempts+1, r.key, r.gateErr)
	}
	if r.permanent != nil {
		return result{}, &retry.Error{Class: retry.Permanent, HTTPStatus: r.lastStatus,
			Attempts: r.attempts, FirstFailedAt: r.firstFailedAt,
			Err: fmt.Errorf("intercom: %s contact %q: %w", method, r.key, r.permanent)}
	}
	var why string
	switch {
	case errors.Is(err, errNoTime):
		why = fmt.Sprintf("next attempt (in %s) would pass the max elapsed time %s", r.wait, r.p.MaxElapsed)
	case r.dctx.Err() != nil || r.budget.out.Load():
		why = fmt.Sprintf("max elapsed time %s reached", r.p.MaxElapsed)
	default:
		why = fmt.Sprintf("all %d attempt(s) failed", r.p.MaxAttempts)
	}
	last := "none"
	switch {
	case r.lastErr != nil:
		last = r.lastErr.Error()
	case r.lastStatus != 0:
		last = fmt.Sprintf("HTTP %d %s", r.lastStatus, describe(r.lastBody))
	}
	return result{}, &retry.Error{Class: retry.Exhausted, HTTPStatus: r.lastStatus,
		Attempts: r.attempts, FirstFailedAt: r.firstFailedAt, RetryAfter: r.retryAfter,
		Err: fmt.Errorf("intercom: %s contact %q at %s: %s; last failure: %s", method, r.key, r.c.safeURL, why, last)}
}

// refused turns a final non-2xx answer into a Permanent error quoting
// Intercom's own codes and messages.
func (r *run) refused(res result) error {
	return &retry.Error{Class: retry.Permanent, HTTPStatus: res.status,
		Attempts: r.attempts, FirstFailedAt: r.firstFailedAt,
		Err: fmt.Errorf("intercom: contact %q refused: %s", r.key, describe(res.body))}
}

// describe renders an error body: its error list, or a quoted snippet.
func describe(b []byte) string {
	var l errorList
	if json.Unmarshal(b, &l) == nil && len(l.Errors) > 0 {
		return l.String()
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(b[:min(len(b), snippetLimit)]), ""))
	if s == "" {
		return "(empty body)"
	}
	return strconv.Quote(s)
}

// redact keeps only scheme://host of a URL in a transport error.
func redact(err error, safeURL string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: safeURL, Err: ue.Err}
	}
	return err
}

// budget is a record's MaxElapsed: a timer cutting its requests when it
// runs out, stopped while the gate holds them.
type budget struct {
	deadline time.Time
	timer    *time.Timer
	out      atomic.Bool
	heldAt   time.Time
}

func startBudget(d time.Duration, expire func()) *budget {
	b := &budget{deadline: time.Now().Add(d)}
	b.timer = time.AfterFunc(d, func() {
		b.out.Store(true)
		expire()
	})
	return b
}

func (b *budget) pause() bool {
	if !b.timer.Stop() {
		return false
	}
	b.heldAt = time.Now()
	return true
}

func (b *budget) resume() {
	b.deadline = b.deadline.Add(time.Since(b.heldAt))
	b.timer.Reset(time.Until(b.deadline))
}
