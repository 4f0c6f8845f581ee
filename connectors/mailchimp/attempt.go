package mailchimp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/retry"
)

var (
	errAttemptsUsed = errors.New("attempts used up")
	errNoTime       = errors.New("next attempt would pass the max elapsed time")
	// errElapsed is the cause the record's context is cancelled with when
	// MaxElapsed runs out, so an attempt it cuts says so.
	errElapsed = errors.New("max elapsed time reached")
)

// upsertOne PUTs one record, retrying per the policy.
func (c *Client) upsertOne(ctx context.Context, gate connectors.Gate, r connectors.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mailchimp: upsert not started: %w", err)
	}
	hash, body, err := c.member(r)
	if err != nil {
		return &retry.Error{Class: retry.InvalidInput, Err: err}
	}
	p := c.cfg.Policy

	// A deadline context cannot be paused while the gate holds the record,
	// so a timer cancels it instead.
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b := startBudget(p.MaxElapsed, func() { cancel(errElapsed) })
	defer b.timer.Stop()

	a := &attempt{c: c, p: p, hash: hash, gate: gate, budget: b,
		log: c.log.With(zap.String("subscriber_hash", hash))}
	target := c.cfg.BaseURL + "/lists/" + url.PathEscape(c.cfg.ListID) + "/members/" + hash
	req, err := retryablehttp.NewRequestWithContext(dctx, http.MethodPut, target, body)
	if err != nil {
		return &retry.Error{Class: retry.Permanent, Err: fmt.Errorf("mailchimp: cannot build request to %s", c.safeURL)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Authorization", c.auth)

	// Should go-retryablehttp give up between a Wait and its attempt, the
	// gate still hears of it.
	defer a.release(nil, errNotSent)
	if err := a.admit(dctx); err != nil {
		return a.outcome(ctx, dctx, nil, err)
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
		RequestLogHook: func(retryablehttp.Logger, *http.Request, int) { a.attempts++ },
		CheckRetry:     a.checkRetry,
		Backoff:        func(time.Duration, time.Duration, int, *http.Response) time.Duration { return a.wait },
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if a.refused {
				return nil, err // resp is the previous attempt's, already closed
			}
			if err == nil {
				err = errAttemptsUsed
			}
			return resp, err
		},
		PrepareRetry: func(r *http.Request) error {
			if err := a.admit(r.Context()); err != nil {
				a.refused = true
				return err
			}
			return nil
		},
	}
	resp, err := rc.Do(req)
	return a.outcome(ctx, dctx, resp, err)
}

// budget is a record's MaxElapsed: a timer that cuts it when it runs out,
// stopped while the gate holds the record.
type budget struct {
	deadline time.Time // only the record's goroutine touches it
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

// pause stops the clock; false if the budget has run out.
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

// attempt is the state of one record's upsert. go-retryablehttp calls its
// hooks synchronously from Do, so it needs no locking.
type attempt struct {
	c      *Client
	p      connectors.Policy
	hash   string
	gate   connectors.Gate
	budget *budget
	log    *zap.Logger

	attempts      int
	firstFailedAt time.Time
	lastStatus    int
	lastBody      string // describe() of the last error answer
	lastErr       error  // last transport error (redacted)
	retryAfter    time.Duration
	wait          time.Duration
	permanent     error
	gateErr       error
	refused       bool
	admitted      bool
}

// admit lets the gate hold the next attempt, the MaxElapsed clock stopped.
func (a *attempt) admit(ctx context.Context) error {
	if !a.budget.pause() {
		return errElapsed
	}
	err := ctx.Err()
	if err == nil {
		err = a.gate.Wait(ctx)
	}
	a.budget.resume()
	if err != nil {
		a.gateErr = err
		return err
	}
	a.admitted = true
	return nil
}

// release reports an attempt's outcome to the gate, once per admit.
func (a *attempt) release(resp *http.Response, err error) {
	if !a.admitted {
		return
	}
	a.admitted = false
	var status int
	var ra time.Duration
	if resp != nil {
		status = resp.StatusCode
		if !success(status) {
			ra, _ = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	a.gate.Done(status, ra, a.redact(err))
}

func (a *attempt) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	a.release(resp, err)
	now := time.Now()
	var asked time.Duration
	var hasAsked bool
	if err == nil {
		code := resp.StatusCode
		if success(code) {
			return false, nil
		}
		a.failed(now)
		a.lastStatus, a.lastErr, a.retryAfter = code, nil, 0
		a.lastBody = describe(code, resp.Header, readBody(resp))
		if !retryable(code, resp.Header) {
			return false, nil // outcome reports Permanent
		}
		asked, hasAsked = parseRetryAfter(resp.Header.Get("Retry-After"), now)
		a.retryAfter = asked
	} else {
		a.failed(now)
		a.lastErr = a.redact(err)
		if ctx.Err() == nil {
			if again, _ := retryablehttp.ErrorPropagatedRetryPolicy(ctx, nil, err); !again {
				a.permanent = a.lastErr
				return false, a.permanent
			}
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return false, cerr
	}
	if a.attempts >= a.p.MaxAttempts {
		return true, nil // go-retryablehttp stops: RetryMax reached
	}
	wait := a.backoff()
	if hasAsked {
		wait = asked
	}
	a.wait = wait
	if now.Add(wait).After(a.budget.deadline) {
		return false, errNoTime
	}
	a.log.Debug("mailchimp attempt failed, retrying",
		zap.Int("attempt", a.attempts), zap.Int("status", a.lastStatus),
		zap.NamedError("cause", a.lastErr), zap.Duration("retry_in", wait))
	return true, nil
}

func (a *attempt) failed(now time.Time) {
	if a.firstFailedAt.IsZero() {
		a.firstFailedAt = now
	}
}

// backoff is the exponential wait after the a.attempts-th failure with
// equal jitter, so ten throttled workers do not come back in step.
func (a *attempt) backoff() time.Duration {
	b := a.p.InitialInterval
	for i := 1; i < a.attempts && b < a.p.MaxInterval; i++ {
		b *= 2
	}
	b = min(b, a.p.MaxInterval)
	half := b / 2
	return half + rand.N(b-half+1)
}

// redact keeps a *url.Error to scheme://host: the path names the member.
func (a *attempt) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: a.c.safeURL, Err: ue.Err}
	}
	return err
}

// outcome turns what go-retryablehttp returned into the record's result.
func (a *attempt) outcome(ctx, dctx context.Context, resp *http.Response, err error) error {
	if resp != nil {
		defer drain(resp.Body)
	}
	if err == nil {
		if success(resp.StatusCode) {
			return nil
		}
		msg := a.lastBody
		if a.lastStatus != resp.StatusCode {
			msg = describe(resp.StatusCode, resp.Header, readBody(resp))
		}
		return &retry.Error{
			Class: retry.Permanent, HTTPStatus: resp.StatusCode,
			Attempts: a.attempts, FirstFailedAt: a.firstFailedAt,
			Err: fmt.Errorf("mailchimp member %s: %s", a.hash, msg),
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("mailchimp member %s: interrupted after %d attempt(s): %w", a.hash, a.attempts, cerr)
	}
	if a.gateErr != nil && !a.budget.out.Load() {
		return fmt.Errorf("mailchimp member %s: gate refused attempt %d: %w", a.hash, a.attempts+1, a.gateErr)
	}
	if a.permanent != nil {
		return &retry.Error{
			Class: retry.Permanent, HTTPStatus: a.lastStatus,
			Attempts: a.attempts, FirstFailedAt: a.firstFailedAt,
			Err: fmt.Errorf("mailchimp member %s: %w", a.hash, a.permanent),
		}
	}
	var why string
	switch {
	case errors.Is(err, errNoTime):
		why = fmt.Sprintf("next attempt (in %s) would pass the max elapsed time %s", a.wait, a.p.MaxElapsed)
	case dctx.Err() != nil || a.budget.out.Load():
		why = fmt.Sprintf("max elapsed time %s reached", a.p.MaxElapsed)
	default:
		why = fmt.Sprintf("all %d attempt(s) failed", a.p.MaxAttempts)
	}
	last := "none"
	switch {
	case a.lastErr != nil:
		last = a.lastErr.Error()
	case a.lastStatus != 0:
		last = fmt.Sprintf("HTTP %d %s", a.lastStatus, a.lastBody)
	}
	return &retry.Error{
		Class: retry.Exhausted, HTTPStatus: a.lastStatus,
		Attempts: a.attempts, FirstFailedAt: a.firstFailedAt, RetryAfter: a.retryAfter,
		Err: fmt.Errorf("mailchimp member %s at %s: %s; last failure: %s", a.hash, a.c.safeURL, why, last),
	}
}
