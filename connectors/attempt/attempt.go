// Package attempt runs a vendor HTTP request with retries the way every
// connector must: through go-retryablehttp over a shared transport, with
// connectors.Gate Wait before every attempt (retries included) and Done
// after each, a MaxElapsed budget that stops while the gate holds the
// request, Retry-After honoured, jittered exponential backoff, transport
// errors redacted to scheme://host, and the caller's ctx ending a run as an
// interruption rather than a failure.
//
// A Run is one record's (or one batch's) budget; it may make several
// requests (Do) that share its attempt count and MaxElapsed, each request
// allowed Policy.MaxAttempts attempts. Run is not safe for concurrent use.
package attempt

import (
	"context"
	"errors"
	"fmt"
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
)

// Verdict is what Config.Classify makes of a non-2xx answer.
type Verdict struct {
	// Retry: the answer is worth another attempt. If false, Do returns the
	// response as final.
	Retry bool
	// Asked is the wait the vendor asked for, if HasAsked; it replaces the
	// backoff and is reported as Run.RetryAfter.
	Asked    time.Duration
	HasAsked bool
}

// Config is what a connector fixes for its runs.
type Config struct {
	Policy connectors.Policy
	// Gate is consulted around every attempt; nil: none (and the budget
	// is never paused).
	Gate connectors.Gate
	// Transport is the connector's pool, shared by all its runs; the run
	// never closes its idle connections.
	Transport *http.Transport
	// SafeURL is the endpoint as scheme://host, the only form of it that
	// goes into errors.
	SafeURL string
	// Name prefixes the debug log line of a retry ("webhook").
	Name string
	Log  *zap.Logger // nil: no logging
	// Classify judges a non-2xx answer; it may read and replace resp.Body
	// (go-retryablehttp drains it before a retry). Required.
	Classify func(resp *http.Response, now time.Time) Verdict
	// GateDelay is the Retry-After reported to Gate.Done for a non-2xx
	// answer; nil: none.
	GateDelay func(resp *http.Response, now time.Time) time.Duration
	// Prepare, if set, runs on the request headers after every admitted
	// Wait, just before the attempt (to sign it afresh). Retries get a
	// copy of the headers, as the transport may still read the previous.
	Prepare func(h http.Header)
}

// Kind says why Do failed.
type Kind int

const (
	// Interrupted: the caller's ctx ended. Not a delivery failure.
	Interrupted Kind = iota + 1
	// Refused: the gate refused an attempt (its error in Err).
	Refused
	// Permanent: a transport error retrying cannot fix (redacted, in Err).
	Permanent
	// Exhausted: attempts or MaxElapsed ran out (Why says which).
	Exhausted
)

// Failure is the error Do returns when it has no final answer.
type Failure struct {
	Kind Kind
	// Err is ctx's error (Interrupted), the gate's (Refused), the
	// transport error (Permanent) or go-retryablehttp's (Exhausted).
	Err error
	// Why, for Exhausted, reads "all 5 attempt(s) failed", "max elapsed
	// time 2m0s reached" or "next attempt (in 1s) would pass the max
	// elapsed time 2m0s".
	Why string
}

func (f *Failure) Error() string {
	if f.Why != "" {
		return f.Why
	}
	return f.Err.Error()
}

func (f *Failure) Unwrap() error { return f.Err }

var (
	errAttemptsUsed = errors.New("attempts used up")
	errNoTime       = errors.New("next attempt would pass the max elapsed time")
	// ErrElapsed is the cause Run.Context is cancelled with when MaxElapsed
	// runs out, so an attempt it cuts says so.
	ErrElapsed = errors.New("max elapsed time reached")
	errNotSent = errors.New("attempt not sent")
)

// Run is the state of one record's requests.
type Run struct {
	cfg    Config
	ctx    context.Context // the caller's
	dctx   context.Context // ctx, cut when MaxElapsed runs out
	cancel context.CancelCauseFunc
	budget *Budget
	log    *zap.Logger

	attempts      int // requests made in the run
	opAttempts    int // requests made by the current Do
	firstFailedAt time.Time
	lastStatus    int
	lastErr       error
	retryAfter    time.Duration
	wait          time.Duration
	permanent     error
	gateErr       error
	refused       bool
	admitted      bool
}

// Start starts a run and its MaxElapsed clock. Close it when done.
func Start(ctx context.Context, cfg Config) *Run {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	dctx, cancel := context.WithCancelCause(ctx)
	r := &Run{cfg: cfg, ctx: ctx, dctx: dctx, cancel: cancel, log: cfg.Log}
	r.budget = StartBudget(cfg.Policy.MaxElapsed, func() { cancel(ErrElapsed) })
	return r
}

// Close stops the clock and releases the run's context.
func (r *Run) Close() {
	r.budget.Stop()
	r.cancel(nil)
}

// Context is the context requests of the run must be built with: the
// caller's, cut when MaxElapsed runs out.
func (r *Run) Context() context.Context { return r.dctx }

// Attempts is the number of requests started in the run.
func (r *Run) Attempts() int { return r.attempts }

// FirstFailedAt is when the run's first attempt failed, zero if none did.
func (r *Run) FirstFailedAt() time.Time { return r.firstFailedAt }

// LastStatus is the last non-2xx status answered, 0 if none.
func (r *Run) LastStatus() int { return r.lastStatus }

// LastErr is the last transport error (redacted), nil if the last failed
// attempt got an answer.
func (r *Run) LastErr() error { return r.lastErr }

// RetryAfter is the wait the last retryable answer asked for, 0 if none.
func (r *Run) RetryAfter() time.Duration { return r.retryAfter }

// Do sends req (built with Context) with retries. It returns the response
// for a 2xx or an answer Classify would not retry, with a nil error;
// otherwise a *Failure, and possibly the last response, whose body the
// caller must close.
func (r *Run) Do(req *retryablehttp.Request) (*http.Response, error) {
	r.opAttempts, r.permanent, r.gateErr, r.refused = 0, nil, nil, false
	p := r.cfg.Policy
	// Should go-retryablehttp give up between a Wait and its attempt, the
	// gate still hears of it.
	defer r.release(nil, errNotSent)
	if err := r.admit(r.dctx); err != nil {
		return r.outcome(nil, err)
	}
	if r.cfg.Prepare != nil {
		r.cfg.Prepare(req.Header) // after the gate: a long hold must not stale it
	}
	rc := &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: sharedPool{r.cfg.Transport},
			Timeout:   p.RequestTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		RetryWaitMin: p.InitialInterval,
		RetryWaitMax: p.MaxInterval,
		RetryMax:     p.MaxAttempts - 1,
		RequestLogHook: func(retryablehttp.Logger, *http.Request, int) {
			r.attempts++
			r.opAttempts++
		},
		CheckRetry: r.checkRetry,
		Backoff:    func(time.Duration, time.Duration, int, *http.Response) time.Duration { return r.wait },
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if r.refused {
				// PrepareRetry failed: resp is the previous attempt's,
				// already drained and closed.
				return nil, err
			}
			if err == nil {
				err = errAttemptsUsed
			}
			return resp, err
		},
		PrepareRetry: func(hr *http.Request) error {
			// Runs after the backoff wait, before each retry.
			if err := r.admit(hr.Context()); err != nil {
				r.refused = true
				return err
			}
			if r.cfg.Prepare != nil {
				hr.Header = hr.Header.Clone()
				r.cfg.Prepare(hr.Header)
			}
			return nil
		},
	}
	resp, err := rc.Do(req)
	return r.outcome(resp, err)
}

// sharedPool hides the pool's CloseIdleConnections from go-retryablehttp,
// which calls it after every failed request: one failing record must not
// drop the idle connections of every other in flight.
type sharedPool struct{ t *http.Transport }

func (s sharedPool) RoundTrip(req *http.Request) (*http.Response, error) { return s.t.RoundTrip(req) }

// admit lets the gate hold the next attempt with the MaxElapsed clock
// stopped; while it is stopped only the caller's ctx can end the hold.
func (r *Run) admit(ctx context.Context) error {
	if r.cfg.Gate == nil {
		return nil
	}
	if !r.budget.Pause() {
		return ErrElapsed
	}
	err := ctx.Err()
	if err == nil {
		err = r.cfg.Gate.Wait(ctx)
	}
	r.budget.Resume()
	if err != nil {
		r.gateErr = err
		return err
	}
	r.admitted = true
	return nil
}

// release reports an attempt's outcome to the gate, once per admit.
func (r *Run) release(resp *http.Response, err error) {
	if r.cfg.Gate == nil || !r.admitted {
		return
	}
	r.admitted = false
	var status int
	var wait time.Duration
	if resp != nil {
		status = resp.StatusCode
		if !Success(status) && r.cfg.GateDelay != nil {
			wait = r.cfg.GateDelay(resp, time.Now())
		}
	}
	r.cfg.Gate.Done(status, wait, Redact(err, r.cfg.SafeURL))
}

func (r *Run) failed(now time.Time) {
	if r.firstFailedAt.IsZero() {
		r.firstFailedAt = now
	}
}

// checkRetry is go-retryablehttp's CheckRetry: it classifies an attempt,
// records it, and decides the wait before the next one.
func (r *Run) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	r.release(resp, err)
	now := time.Now()
	var v Verdict
	if err == nil {
		code := resp.StatusCode
		if Success(code) {
			return false, nil
		}
		r.failed(now)
		r.lastStatus, r.lastErr, r.retryAfter = code, nil, 0
		v = r.cfg.Classify(resp, now)
		if !v.Retry {
			return false, nil // a final answer
		}
		r.retryAfter = v.Asked
	} else {
		r.failed(now)
		r.lastErr = Redact(err, r.cfg.SafeURL)
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
	if r.opAttempts >= r.cfg.Policy.MaxAttempts {
		return true, nil // go-retryablehttp stops: RetryMax reached
	}
	wait := Backoff(r.cfg.Policy, r.opAttempts)
	if v.HasAsked {
		wait = v.Asked
	}
	r.wait = wait
	if now.Add(wait).After(r.budget.Deadline()) {
		return false, errNoTime
	}
	r.log.Debug(r.cfg.Name+" attempt failed, retrying",
		zap.Int("attempt", r.attempts), zap.Int("status", r.lastStatus),
		zap.NamedError("cause", r.lastErr), zap.Duration("retry_in", wait))
	return true, nil
}

// outcome turns what go-retryablehttp returned into Do's result.
func (r *Run) outcome(resp *http.Response, err error) (*http.Response, error) {
	if err == nil {
		return resp, nil
	}
	if cerr := r.ctx.Err(); cerr != nil {
		return resp, &Failure{Kind: Interrupted, Err: cerr}
	}
	if r.gateErr != nil && !r.budget.Out() {
		return resp, &Failure{Kind: Refused, Err: r.gateErr}
	}
	if r.permanent != nil {
		return resp, &Failure{Kind: Permanent, Err: r.permanent}
	}
	p := r.cfg.Policy
	var why string
	switch {
	case errors.Is(err, errNoTime):
		why = fmt.Sprintf("next attempt (in %s) would pass the max elapsed time %s", r.wait, p.MaxElapsed)
	case r.dctx.Err() != nil || r.budget.Out():
		why = fmt.Sprintf("max elapsed time %s reached", p.MaxElapsed)
	default:
		why = fmt.Sprintf("all %d attempt(s) failed", p.MaxAttempts)
	}
	return resp, &Failure{Kind: Exhausted, Err: err, Why: why}
}

// Success reports a 2xx status.
func Success(code int) bool { return code >= 200 && code < 300 }

// RetryableStatus: 408, 429 and 5xx except 501 (as go-retryablehttp).
func RetryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		code >= 500 && code != http.StatusNotImplemented
}

// Backoff is the wait after the n-th failure, with equal jitter: uniform
// in [b/2, b], b = InitialInterval*2^(n-1) capped at MaxInterval.
func Backoff(p connectors.Policy, n int) time.Duration {
	b := p.InitialInterval
	for i := 1; i < n && b < p.MaxInterval; i++ {
		b *= 2
	}
	b = min(b, p.MaxInterval)
	half := b / 2
	return half + rand.N(b-half+1)
}

// ParseRetryAfter reads a Retry-After value: delay-seconds or an HTTP
// date (a past date means 0). Negative, unparsable values and delays over
// limit are ignored.
func ParseRetryAfter(v string, now time.Time, limit time.Duration) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 || secs > int64(limit/time.Second) {
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

// Redact replaces the URL of a *url.Error in err by safeURL: paths and
// queries carry tokens and member names.
func Redact(err error, safeURL string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: safeURL, Err: ue.Err}
	}
	return err
}

// Budget is a MaxElapsed that stops while a gate holds the request: a
// timer calling expire when it runs out. Only one goroutine may Pause,
// Resume and read Deadline.
type Budget struct {
	deadline time.Time // moved on by the time paused
	timer    *time.Timer
	out      atomic.Bool // the timer fired
	heldAt   time.Time
}

// StartBudget starts a budget of d that calls expire when it runs out.
func StartBudget(d time.Duration, expire func()) *Budget {
	b := &Budget{deadline: time.Now().Add(d)}
	b.timer = time.AfterFunc(d, func() {
		b.out.Store(true)
		expire()
	})
	return b
}

// Pause stops the clock; false if the budget has run out.
func (b *Budget) Pause() bool {
	if !b.timer.Stop() {
		return false
	}
	b.heldAt = time.Now()
	return true
}

// Resume restarts the clock, the deadline moved on by the time paused.
func (b *Budget) Resume() {
	b.deadline = b.deadline.Add(time.Since(b.heldAt))
	b.timer.Reset(time.Until(b.deadline))
}

// Deadline is when the budget runs out, unless paused again.
func (b *Budget) Deadline() time.Time { return b.deadline }

// Out reports whether the budget ran out.
func (b *Budget) Out() bool { return b.out.Load() }

// Stop stops the clock for good.
func (b *Budget) Stop() { b.timer.Stop() }
