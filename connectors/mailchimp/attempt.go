package mailchimp

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/attempt"
	"github.com/synchub/synchub/retry"
)

// upsertOne PUTs one record, retrying per the policy, after moving the
// member from a former address when r has former keys (see move).
func (c *Client) upsertOne(ctx context.Context, gate connectors.Gate, r connectors.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mailchimp: upsert not started: %w", err)
	}
	hash, body, err := c.member(r)
	if err != nil {
		return &retry.Error{Class: retry.InvalidInput, Err: err}
	}
	if formers := formerHashes(r, hash); len(formers) > 0 {
		done, err := c.move(ctx, gate, hash, body, formers)
		if done || err != nil {
			return err
		}
	}
	return c.request(ctx, gate, http.MethodPut, hash, hash, body)
}

// request sends one member request (PUT or PATCH of
// /lists/{list_id}/members/{pathHash}) with retries per the policy, and
// classifies its end: nil on 2xx, *retry.Error otherwise (Permanent with
// the final HTTP status for an answer not worth retrying), or an error
// wrapping ctx's or the gate's when interrupted. hash names the member in
// logs and errors.
func (c *Client) request(ctx context.Context, gate connectors.Gate, method, pathHash, hash string, body []byte) error {
	var lastBody string // describe() of the last error answer
	run := attempt.Start(ctx, attempt.Config{
		Policy: c.cfg.Policy, Gate: gate, Transport: c.pool, SafeURL: c.safeURL,
		Name: "mailchimp", Log: c.log.With(zap.String("subscriber_hash", hash)),
		Classify: func(resp *http.Response, now time.Time) attempt.Verdict {
			lastBody = describe(resp.StatusCode, resp.Header, readBody(resp))
			if !retryable(resp.StatusCode, resp.Header) {
				return attempt.Verdict{} // reported Permanent
			}
			asked, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now)
			return attempt.Verdict{Retry: true, Asked: asked, HasAsked: ok}
		},
		GateDelay: func(resp *http.Response, now time.Time) time.Duration {
			ra, _ := parseRetryAfter(resp.Header.Get("Retry-After"), now)
			return ra
		},
	})
	defer run.Close()

	target := c.cfg.BaseURL + "/lists/" + url.PathEscape(c.cfg.ListID) + "/members/" + pathHash
	req, err := retryablehttp.NewRequestWithContext(run.Context(), method, target, body)
	if err != nil {
		return &retry.Error{Class: retry.Permanent, Err: fmt.Errorf("mailchimp: cannot build request to %s", c.safeURL)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Authorization", c.auth)

	resp, err := run.Do(req)
	if resp != nil {
		defer drain(resp.Body)
	}
	if err == nil {
		if success(resp.StatusCode) {
			return nil
		}
		msg := lastBody
		if run.LastStatus() != resp.StatusCode {
			msg = describe(resp.StatusCode, resp.Header, readBody(resp))
		}
		return &retry.Error{
			Class: retry.Permanent, HTTPStatus: resp.StatusCode,
			Attempts: run.Attempts(), FirstFailedAt: run.FirstFailedAt(),
			Err: fmt.Errorf("mailchimp member %s: %s", hash, msg),
		}
	}
	f := err.(*attempt.Failure)
	switch f.Kind {
	case attempt.Interrupted:
		return fmt.Errorf("mailchimp member %s: interrupted after %d attempt(s): %w", hash, run.Attempts(), f.Err)
	case attempt.Refused:
		return fmt.Errorf("mailchimp member %s: gate refused attempt %d: %w", hash, run.Attempts()+1, f.Err)
	case attempt.Permanent:
		return &retry.Error{
			Class: retry.Permanent, HTTPStatus: run.LastStatus(),
			Attempts: run.Attempts(), FirstFailedAt: run.FirstFailedAt(),
			Err: fmt.Errorf("mailchimp member %s: %w", hash, f.Err),
		}
	}
	last := "none"
	switch {
	case run.LastErr() != nil:
		last = run.LastErr().Error()
	case run.LastStatus() != 0:
		last = fmt.Sprintf("HTTP %d %s", run.LastStatus(), lastBody)
	}
	return &retry.Error{
		Class: retry.Exhausted, HTTPStatus: run.LastStatus(),
		Attempts: run.Attempts(), FirstFailedAt: run.FirstFailedAt(), RetryAfter: run.RetryAfter(),
		Err: fmt.Errorf("mailchimp member %s at %s: %s; last failure: %s", hash, c.safeURL, f.Why, last),
	}
}
