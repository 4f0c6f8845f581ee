package intercom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	userAgent = "synchub-intercom/1"
	// bodyLimit bounds how much of a response is read: a contact or an
	// error list is far smaller, and a bigger body only needs closing.
	bodyLimit = 1 << 20
	// snippetLimit bounds the body quoted in an error with no error list.
	snippetLimit = 512
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

// run is the state of one record's requests: they share one attempt
// count, one MaxElapsed budget and the gate protocol.
type run struct {
	*attempt.Run
	c        *Client
	key      string
	lastBody []byte
}

func (c *Client) newRun(ctx context.Context, gate connectors.Gate, key string) *run {
	r := &run{c: c, key: key}
	r.Run = attempt.Start(ctx, attempt.Config{
		Policy: c.cfg.Policy, Gate: gate, Transport: c.pool, SafeURL: c.safeURL,
		Name: "intercom", Log: c.log.With(zap.String("external_id", key)),
		Classify: r.classify,
		GateDelay: func(resp *http.Response, now time.Time) time.Duration {
			wait, _ := askedWait(resp.StatusCode, resp.Header, now)
			return wait
		},
	})
	return r
}

func (r *run) close() { r.Close() }

// classify judges a non-2xx answer by its status and Intercom's codes.
func (r *run) classify(resp *http.Response, now time.Time) attempt.Verdict {
	// Read the body now: its error codes decide, and go-retryablehttp
	// drains it before a retry.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	r.lastBody = b
	var l errorList
	_ = json.Unmarshal(b, &l)
	if !retryable(resp.StatusCode, l) {
		return attempt.Verdict{}
	}
	asked, ok := askedWait(resp.StatusCode, resp.Header, now)
	return attempt.Verdict{Retry: true, Asked: asked, HasAsked: ok}
}

// send makes one API call with retries. It returns a result for a 2xx or
// a status retrying cannot fix; an error (already classified) otherwise.
func (r *run) send(method, path string, body []byte) (result, error) {
	var rawBody any
	if body != nil {
		rawBody = body
	}
	req, err := retryablehttp.NewRequestWithContext(r.Context(), method, r.c.cfg.BaseURL+path, rawBody)
	if err != nil {
		return result{}, &retry.Error{Class: retry.Permanent, Attempts: r.Attempts(),
			Err: fmt.Errorf("intercom: cannot build %s request to %s", method, r.c.safeURL)}
	}
	req.Header.Set("Authorization", "Bearer "+r.c.cfg.AccessToken)
	req.Header.Set("Intercom-Version", r.c.cfg.Version)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.Do(req)
	return r.outcome(method, resp, err)
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
	return attempt.ParseRetryAfter(v, now, 24*time.Hour)
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
	f := err.(*attempt.Failure)
	switch f.Kind {
	case attempt.Interrupted:
		return result{}, fmt.Errorf("intercom: upsert of %q interrupted after %d attempt(s): %w", r.key, r.Attempts(), f.Err)
	case attempt.Refused:
		return result{}, fmt.Errorf("intercom: gate refused attempt %d for %q: %w", r.Attempts()+1, r.key, f.Err)
	case attempt.Permanent:
		return result{}, &retry.Error{Class: retry.Permanent, HTTPStatus: r.LastStatus(),
			Attempts: r.Attempts(), FirstFailedAt: r.FirstFailedAt(),
			Err: fmt.Errorf("intercom: %s contact %q: %w", method, r.key, f.Err)}
	}
	last := "none"
	switch {
	case r.LastErr() != nil:
		last = r.LastErr().Error()
	case r.LastStatus() != 0:
		last = fmt.Sprintf("HTTP %d %s", r.LastStatus(), describe(r.lastBody))
	}
	return result{}, &retry.Error{Class: retry.Exhausted, HTTPStatus: r.LastStatus(),
		Attempts: r.Attempts(), FirstFailedAt: r.FirstFailedAt(), RetryAfter: r.RetryAfter(),
		Err: fmt.Errorf("intercom: %s contact %q at %s: %s; last failure: %s", method, r.key, r.c.safeURL, f.Why, last)}
}

// refused turns a final non-2xx answer into a Permanent error quoting
// Intercom's own codes and messages.
func (r *run) refused(res result) error {
	return &retry.Error{Class: retry.Permanent, HTTPStatus: res.status,
		Attempts: r.Attempts(), FirstFailedAt: r.FirstFailedAt(),
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
