// Package hubspot upserts records into HubSpot CRM objects (contacts by
// email by default) through POST /crm/v3/objects/{type}/batch/upsert, with
// private-app or OAuth auth, HubSpot's batch limit, throttle signals and
// 207 partial failures handled. The fake subpackage is a local HubSpot.
package hubspot

import (
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
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/attempt"
	"github.com/synchub/synchub/retry"
)

const (
	userAgent    = "synchub-hubspot/1"
	snippetLimit = 4 << 10
	drainLimit   = 64 << 10
	// lockWait is HubSpot's advice for 423 Locked: its locks last 2 s.
	lockWait = 2 * time.Second
)

// Client upserts into one HubSpot portal. It is safe for concurrent use.
type Client struct {
	cfg  Config
	log  *zap.Logger
	pool *http.Transport
	auth *tokenSource
	url  string // the batch upsert endpoint
	// readURL and updateURL are the batch read and batch update endpoints,
	// for finding and moving a record held under a former key
	// (Record.FormerKeys).
	readURL, updateURL string
}

// New returns a Client for cfg (see Config.Validate) logging to logger
// (nil: none). Logs and errors never carry tokens or secrets.
func New(cfg Config, logger *zap.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = zap.NewNop()
	}
	pool := &http.Transport{
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
	}
	c := &Client{
		cfg:       cfg,
		log:       logger.With(zap.String("vendor", "hubspot")),
		pool:      pool,
		url:       strings.TrimRight(cfg.BaseURL, "/") + "/crm/v3/objects/" + url.PathEscape(cfg.ObjectType) + "/batch/upsert",
		readURL:   strings.TrimRight(cfg.BaseURL, "/") + "/crm/v3/objects/" + url.PathEscape(cfg.ObjectType) + "/batch/read",
		updateURL: strings.TrimRight(cfg.BaseURL, "/") + "/crm/v3/objects/" + url.PathEscape(cfg.ObjectType) + "/batch/update",
		auth: &tokenSource{
			static:   cfg.AccessToken,
			hc:       &http.Client{Transport: sharedPool{pool}, Timeout: cfg.Policy.RequestTimeout},
			tokenURL: cfg.TokenURL,
			clientID: cfg.ClientID,
			secret:   cfg.ClientSecret,
			refresh:  cfg.RefreshToken,
			ahead:    cfg.RefreshAhead,
			now:      time.Now,
		},
	}
	return c, nil
}

// CloseIdleConnections closes the pool's idle connections (at shutdown).
func (c *Client) CloseIdleConnections() { c.pool.CloseIdleConnections() }

// sharedPool hides the pool's CloseIdleConnections from go-retryablehttp,
// which calls it after every failed request: one bad batch would drop every
// caller's idle connections.
type sharedPool struct{ t *http.Transport }

func (s sharedPool) RoundTrip(r *http.Request) (*http.Response, error) { return s.t.RoundTrip(r) }

// Upsert stores recs, returning one result per record, nil when stored.
//
// Records go in requests of at most Config.BatchSize inputs, in order; a
// key repeated within recs starts a new request, since HubSpot refuses a
// batch with duplicate ids, so the later record wins. Each request is
// retried per Config.Policy (MaxAttempts and MaxElapsed count per request,
// 207 re-sends included; time held by gate.Wait is not counted), and gate
// sees every attempt: Wait before it, Done after it.
//
// Results:
//   - nil: HubSpot stored the record.
//   - *retry.Error Permanent: HubSpot refused it (an input error in a 207,
//     a 4xx for the whole request, refused credentials); the message holds
//     HubSpot's category and message.
//   - *retry.Error Exhausted: transient failures (timeouts, 5xx, 429, 423,
//     477, per-input 5xx/429) outlasted the policy.
//   - *retry.Error InvalidInput: an empty Key; never sent.
//   - ctx done: an error wrapping ctx.Err(), not a *retry.Error, for every
//     record not yet settled; the gate refusing an attempt likewise wraps
//     the gate's error.
//
// 429 waits for Retry-After when sent, else, when
// X-HubSpot-RateLimit-Remaining is 0, for the rate window
// (X-HubSpot-RateLimit-Interval-Milliseconds, capped at MaxInterval); 423
// waits at least 2 s. A 401 EXPIRED_AUTHENTICATION with OAuth refreshes the
// token once and resends. Token requests do not pass the gate: they are
// not CRM API calls and count against none of its rate limits.
//
// A record with FormerKeys is first moved (see move): the contact HubSpot
// holds under a former key gets the new key and the record's properties,
// so the user keeps one contact. Records moved are not upserted again.
func (c *Client) Upsert(ctx context.Context, gate connectors.Gate, recs []connectors.Record) []error {
	out := make([]error, len(recs))
	if gate == nil {
		gate = connectors.OpenGate{}
	}
	done := c.move(ctx, gate, recs, out)
	var batch []int
	inBatch := map[string]bool{}
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		c.sendBatch(ctx, gate, recs, batch, out)
		batch, inBatch = batch[:0], map[string]bool{}
		return ctx.Err() == nil
	}
	for i, r := range recs {
		if done[i] {
			continue
		}
		if r.Key == "" {
			out[i] = &retry.Error{Class: retry.InvalidInput, Err: fmt.Errorf("hubspot: record %d has no %s", i, c.cfg.IDProperty)}
			continue
		}
		if len(batch) == c.cfg.BatchSize || inBatch[r.Key] {
			if !flush() {
				for j := i; j < len(recs); j++ {
					if out[j] == nil && !done[j] {
						out[j] = fmt.Errorf("hubspot: upsert interrupted before record %d was sent: %w", j, ctx.Err())
					}
				}
				return out
			}
		}
		batch = append(batch, i)
		inBatch[r.Key] = true
	}
	flush()
	return out
}

// input is one element of the batch upsert's inputs.
type input struct {
	IDProperty         string            `json:"idProperty"`
	ID                 string            `json:"id"`
	ObjectWriteTraceID string            `json:"objectWriteTraceId"`
	Properties         map[string]string `json:"properties"`
}

// stdError is HubSpot's Error / StandardError body.
type stdError struct {
	Status             string              `json:"status"`
	Category           string              `json:"category"`
	Message            string              `json:"message"`
	CorrelationID      string              `json:"correlationId"`
	PolicyName         string              `json:"policyName"`
	ObjectWriteTraceID string              `json:"objectWriteTraceId"`
	Context            map[string][]string `json:"context"`
}

func (e stdError) String() string {
	s := e.Message
	if e.Category != "" {
		s = e.Category + ": " + s
	}
	if e.CorrelationID != "" {
		s += " (correlationId " + e.CorrelationID + ")"
	}
	return s
}

// sendBatch upserts recs[idx...] in one request, then re-sends the inputs
// a 207 failed transiently, and fills out for each index.
func (c *Client) sendBatch(ctx context.Context, gate connectors.Gate, recs []connectors.Record, idx []int, out []error) {
	p := c.cfg.Policy
	s, bctx, stop := c.start(ctx, gate, c.log.With(zap.Int("batch_size", len(idx))))
	defer stop()

	pending := append([]int(nil), idx...)
	for {
		inputs := make([]input, len(pending))
		byTrace := make(map[string]int, len(pending))
		for n, i := range pending {
			trace := strconv.Itoa(i)
			inputs[n] = input{IDProperty: c.cfg.IDProperty, ID: recs[i].Key, ObjectWriteTraceID: trace, Properties: properties(recs[i].Fields)}
			byTrace[trace] = i
		}
		body, _ := json.Marshal(map[string]any{"inputs": inputs})
		status, resp, err := s.do(ctx, bctx, s.c.url, body)
		if err != nil {
			for _, i := range pending {
				out[i] = err
			}
			return
		}
		// 200 or 207: every input not named in errors was stored.
		var br struct {
			Errors []stdError `json:"errors"`
		}
		_ = json.Unmarshal(resp, &br)
		failed := map[int]stdError{}
		for _, e := range br.Errors {
			if i, ok := s.which(e, byTrace, recs, pending); ok {
				failed[i] = e
			}
		}
		if status == http.StatusMultiStatus && len(failed) == 0 && len(br.Errors) > 0 {
			// HubSpot failed inputs it did not name: which ones is unknown,
			// so none can be called stored.
			for _, i := range pending {
				out[i] = s.fail(retry.Permanent, status, fmt.Errorf("hubspot: batch partly failed without naming inputs: %s", br.Errors[0]))
			}
			return
		}
		var again []int
		for _, i := range pending {
			e, bad := failed[i]
			switch {
			case !bad:
				out[i] = nil
			case transientInput(e):
				again = append(again, i)
				out[i] = s.fail(retry.Exhausted, inputStatus(e, status), fmt.Errorf("hubspot: input %s: %s", recs[i].Key, e))
			default:
				out[i] = s.fail(retry.Permanent, inputStatus(e, status), fmt.Errorf("hubspot: input %s refused: %s", recs[i].Key, e))
			}
		}
		if len(again) == 0 {
			return
		}
		s.failedAt(time.Now())
		if s.attempts >= p.MaxAttempts {
			return // out already holds Exhausted for them
		}
		wait := s.backoff()
		if time.Now().Add(wait).After(s.budget.Deadline()) {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-bctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				for _, i := range again {
					out[i] = fmt.Errorf("hubspot: upsert interrupted after %d attempt(s): %w", s.attempts, ctx.Err())
				}
			}
			return
		}
		pending = again
	}
}

// which finds the input a per-input error is about: by objectWriteTraceId,
// else by the id HubSpot puts in context.ids.
func (s *send) which(e stdError, byTrace map[string]int, recs []connectors.Record, pending []int) (int, bool) {
	if i, ok := byTrace[e.ObjectWriteTraceID]; ok {
		return i, true
	}
	for _, id := range e.Context["ids"] {
		for _, i := range pending {
			if recs[i].Key == id {
				return i, true
			}
		}
	}
	return 0, false
}

// inputStatus is a per-input error's own status when it has one, else the
// response's (207).
func inputStatus(e stdError, status int) int {
	if code, err := strconv.Atoi(e.Status); err == nil {
		return code
	}
	return status
}

// transientInput: a per-input error worth re-sending, by its status.
// HubSpot's StandardError.status is usually just "error"; the categories
// are a guess at HubSpot's transient ones (unverified), safe because a
// wrongly transient input only costs retries before it is Exhausted.
func transientInput(e stdError) bool {
	if code, err := strconv.Atoi(e.Status); err == nil {
		return retryableStatus(code)
	}
	switch e.Category {
	case "RATE_LIMIT", "RATE_LIMITS", "LOCKED", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT":
		return true
	}
	return false
}

// properties renders field values as HubSpot's string property values;
// lists become ";"-separated, HubSpot's multi-select form.
func properties(fields map[string]any) map[string]string {
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		switch x := v.(type) {
		case nil:
			out[k] = ""
		case string:
			out[k] = x
		case []string:
			out[k] = strings.Join(x, ";")
		case []any:
			parts := make([]string, len(x))
			for n, y := range x {
				parts[n] = fmt.Sprint(y)
			}
			out[k] = strings.Join(parts, ";")
		case time.Time:
			// HubSpot datetime properties take epoch milliseconds.
			out[k] = strconv.FormatInt(x.UnixMilli(), 10)
		default:
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

var (
	errAttemptsUsed = errors.New("attempts used up")
	errNoTime       = errors.New("next attempt would pass the max elapsed time")
	errElapsed      = errors.New("max elapsed time reached")
	errNotSent      = errors.New("attempt not sent")
)

// send is the state of one batch request across its attempts. The
// go-retryablehttp hooks run synchronously in Do: no locking needed.
type send struct {
	c      *Client
	gate   connectors.Gate
	budget *attempt.Budget
	log    *zap.Logger

	attempts      int
	firstFailedAt time.Time
	lastStatus    int
	lastBody      []byte
	lastErr       error
	retryAfter    time.Duration
	wait          time.Duration
	token         string
	refreshed     bool // the one refresh after EXPIRED_AUTHENTICATION is spent
	permanent     error
	gateErr       error
	tokenErr      error
	refused       bool
	admitted      bool
}

// start begins one batch request: its MaxElapsed budget, bctx (ctx, ended
// when the budget runs out) and the send making its attempts; stop ends
// them once the request is settled.
func (c *Client) start(ctx context.Context, gate connectors.Gate, log *zap.Logger) (s *send, bctx context.Context, stop func()) {
	bctx, cancel := context.WithCancelCause(ctx)
	b := attempt.StartBudget(c.cfg.Policy.MaxElapsed, func() { cancel(errElapsed) })
	return &send{c: c, gate: gate, budget: b, log: log}, bctx, func() { b.Stop(); cancel(nil) }
}

func (s *send) failedAt(now time.Time) {
	if s.firstFailedAt.IsZero() {
		s.firstFailedAt = now
	}
}

func (s *send) fail(class retry.Class, status int, err error) *retry.Error {
	return &retry.Error{Class: class, HTTPStatus: status, Attempts: s.attempts, FirstFailedAt: s.firstFailedAt, RetryAfter: s.retryAfter, Err: err}
}

// admit lets the gate hold the next attempt with the MaxElapsed clock
// stopped, then readies the token: after the hold, so a long hold cannot
// outlive it.
func (s *send) admit(ctx context.Context, h http.Header) error {
	if !s.budget.Pause() {
		return errElapsed
	}
	err := ctx.Err()
	if err == nil {
		err = s.gate.Wait(ctx)
	}
	s.budget.Resume()
	if err != nil {
		s.gateErr = err
		return err
	}
	s.admitted = true
	tok, err := s.c.auth.get(ctx)
	if err != nil {
		s.release(nil, errNotSent)
		s.tokenErr = err
		return err
	}
	s.token = tok
	h.Set("Authorization", "Bearer "+tok)
	return nil
}

// release reports an attempt to the gate, once per admit.
func (s *send) release(resp *http.Response, err error) {
	if !s.admitted {
		return
	}
	s.admitted = false
	var status int
	var after time.Duration
	if resp != nil {
		status = resp.StatusCode
		if status >= 300 {
			after, _ = askedWait(resp, time.Now(), s.c.cfg.Policy.MaxInterval)
		}
	}
	s.gate.Done(status, after, redact(err))
}

// do makes one request of body with retries, and returns the status and
// body of a 200 or 207, or the error every input of the request gets.
func (s *send) do(ctx, bctx context.Context, target string, body []byte) (int, []byte, error) {
	p := s.c.cfg.Policy
	if s.attempts >= p.MaxAttempts {
		return 0, nil, s.fail(retry.Exhausted, s.lastStatus, errAttemptsUsed)
	}
	s.permanent, s.gateErr, s.tokenErr, s.refused = nil, nil, nil, false
	req, err := retryablehttp.NewRequestWithContext(bctx, http.MethodPost, target, body)
	if err != nil {
		return 0, nil, s.fail(retry.Permanent, 0, errors.New("hubspot: cannot build request"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	defer s.release(nil, errNotSent)
	if err := s.admit(bctx, req.Header); err != nil {
		return s.outcome(ctx, bctx, nil, err)
	}
	rc := &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: sharedPool{s.c.pool},
			Timeout:   p.RequestTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		RetryWaitMin:   p.InitialInterval,
		RetryWaitMax:   p.MaxInterval,
		RetryMax:       p.MaxAttempts - s.attempts - 1,
		RequestLogHook: func(retryablehttp.Logger, *http.Request, int) { s.attempts++ },
		CheckRetry:     s.checkRetry,
		Backoff:        func(time.Duration, time.Duration, int, *http.Response) time.Duration { return s.wait },
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if s.refused {
				return nil, err
			}
			if err == nil {
				err = errAttemptsUsed
			}
			return resp, err
		},
		PrepareRetry: func(r *http.Request) error {
			// The previous attempt's request may still be read by the
			// transport: set the token on a copy of the headers.
			r.Header = r.Header.Clone()
			if err := s.admit(r.Context(), r.Header); err != nil {
				s.refused = true
				return err
			}
			return nil
		},
	}
	resp, err := rc.Do(req)
	return s.outcome(ctx, bctx, resp, err)
}

// checkRetry classifies an attempt and sets the wait before the next.
func (s *send) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	s.release(resp, err)
	now := time.Now()
	var asked time.Duration
	var hasAsked bool
	s.retryAfter = 0
	if err == nil {
		code := resp.StatusCode
		if code == http.StatusOK || code == http.StatusMultiStatus {
			s.lastBody, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			return false, nil
		}
		s.failedAt(now)
		s.lastStatus, s.lastErr = code, nil
		s.lastBody, _ = io.ReadAll(io.LimitReader(resp.Body, snippetLimit))
		if code == http.StatusUnauthorized && s.c.auth.oauth() && !s.refreshed {
			var e stdError
			_ = json.Unmarshal(s.lastBody, &e)
			if e.Category == "EXPIRED_AUTHENTICATION" {
				s.refreshed = true
				s.c.auth.invalidate(s.token)
				s.wait = 0
				s.log.Debug("hubspot token expired, refreshing", zap.Int("attempt", s.attempts))
				return ctx.Err() == nil, ctx.Err()
			}
		}
		if !retryableStatus(code) {
			return false, nil
		}
		asked, hasAsked = askedWait(resp, now, s.c.cfg.Policy.MaxInterval)
		s.retryAfter = asked
	} else {
		s.failedAt(now)
		s.lastStatus, s.lastErr = 0, redact(err)
		if ctx.Err() == nil {
			if again, _ := retryablehttp.ErrorPropagatedRetryPolicy(ctx, nil, err); !again {
				s.permanent = s.lastErr
				return false, s.permanent
			}
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return false, cerr
	}
	if s.attempts >= s.c.cfg.Policy.MaxAttempts {
		return true, nil // RetryMax reached: go-retryablehttp stops
	}
	wait := s.backoff()
	if hasAsked {
		wait = asked
	}
	s.wait = wait
	if now.Add(wait).After(s.budget.Deadline()) {
		return false, errNoTime
	}
	s.log.Debug("hubspot attempt failed, retrying", zap.Int("attempt", s.attempts),
		zap.Int("status", s.lastStatus), zap.NamedError("cause", s.lastErr), zap.Duration("retry_in", wait))
	return true, nil
}

// backoff: InitialInterval doubling per attempt up to MaxInterval, equal jitter.
func (s *send) backoff() time.Duration {
	return attempt.Backoff(s.c.cfg.Policy, s.attempts)
}

// outcome turns what go-retryablehttp returned into do's result.
func (s *send) outcome(ctx, bctx context.Context, resp *http.Response, err error) (int, []byte, error) {
	if resp != nil {
		drain(resp.Body)
	}
	if err == nil {
		code := resp.StatusCode
		if code == http.StatusOK || code == http.StatusMultiStatus {
			return code, s.lastBody, nil
		}
		return 0, nil, s.fail(retry.Permanent, code, fmt.Errorf("hubspot: request refused: %s", vendorMessage(s.lastBody)))
	}
	if cerr := ctx.Err(); cerr != nil {
		return 0, nil, fmt.Errorf("hubspot: upsert interrupted after %d attempt(s): %w", s.attempts, cerr)
	}
	if s.gateErr != nil && !s.budget.Out() {
		return 0, nil, fmt.Errorf("hubspot: gate refused attempt %d: %w", s.attempts+1, s.gateErr)
	}
	if s.tokenErr != nil {
		var te *tokenError
		if errors.As(s.tokenErr, &te) && te.permanent {
			return 0, nil, s.fail(retry.Permanent, te.status, s.tokenErr)
		}
		return 0, nil, s.fail(retry.Exhausted, s.lastStatus, s.tokenErr)
	}
	if s.permanent != nil {
		return 0, nil, s.fail(retry.Permanent, 0, fmt.Errorf("hubspot: %w", s.permanent))
	}
	var why string
	switch {
	case errors.Is(err, errNoTime):
		why = fmt.Sprintf("next attempt (in %s) would pass the max elapsed time %s", s.wait, s.c.cfg.Policy.MaxElapsed)
	case bctx.Err() != nil || s.budget.Out():
		why = fmt.Sprintf("max elapsed time %s reached", s.c.cfg.Policy.MaxElapsed)
	default:
		why = fmt.Sprintf("all %d attempt(s) failed", s.attempts)
	}
	last := "none"
	switch {
	case s.lastErr != nil:
		last = s.lastErr.Error()
	case s.lastStatus != 0:
		last = fmt.Sprintf("HTTP %d %s", s.lastStatus, vendorMessage(s.lastBody))
	}
	return 0, nil, s.fail(retry.Exhausted, s.lastStatus, fmt.Errorf("hubspot: %s; last failure: %s", why, last))
}

// vendorMessage quotes HubSpot's category and message from an error body,
// or the body itself if it is not HubSpot's shape.
func vendorMessage(body []byte) string {
	var e stdError
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return e.String()
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(body), ""))
	if len(s) > 512 {
		s = s[:512]
	}
	if s == "" {
		return "(empty body)"
	}
	return strconv.Quote(s)
}

// retryableStatus: 408, 423 (locked), 429, 477 (migration) and 5xx but 501.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusLocked, http.StatusTooManyRequests, 477:
		return true
	}
	return code >= 500 && code != http.StatusNotImplemented
}

// askedWait is the delay HubSpot asked for: Retry-After if sent (477 and
// some 429s); on a 429 without it and X-HubSpot-RateLimit-Remaining 0, the
// rate window, capped at maxWindow since where the window started is
// unknown; on 423, HubSpot's 2 s lock time.
func askedWait(resp *http.Response, now time.Time, maxWindow time.Duration) (time.Duration, bool) {
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
		return d, true
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		if strings.TrimSpace(resp.Header.Get("X-HubSpot-RateLimit-Remaining")) == "0" {
			if ms, err := strconv.ParseInt(resp.Header.Get("X-HubSpot-RateLimit-Interval-Milliseconds"), 10, 64); err == nil && ms > 0 {
				return min(time.Duration(ms)*time.Millisecond, maxWindow), true
			}
		}
	case http.StatusLocked:
		return lockWait, true
	}
	return 0, false
}

func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	return attempt.ParseRetryAfter(v, now, 24*time.Hour)
}

// redact drops the URL from a *url.Error: only the operation and cause
// matter, and the client never puts secrets in URLs, but a logged URL
// invites someone to.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	_ = body.Close()
}
