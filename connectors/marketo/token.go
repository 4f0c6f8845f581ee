package marketo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"

	"github.com/synchub/synchub/retry"
)

type identityResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// accessToken returns a token good for at least TokenRefreshMargin. stale,
// if not empty, is a token Marketo refused (601/602): it is not returned
// again even if its clock says it is alive.
//
// Marketo hands out the same token until it expires, so a refresh after a
// refusal asks Identity again rather than reuse the cache.
func (c *Client) accessToken(ctx context.Context, stale string) (string, error) {
	select {
	case c.tokenSem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("marketo: waiting for an access token: %w", ctx.Err())
	}
	defer func() { <-c.tokenSem }()

	c.tokMu.Lock()
	tok, exp := c.token, c.tokenExp
	c.tokMu.Unlock()
	if tok != "" && tok != stale && time.Until(exp) > c.cfg.TokenRefreshMargin {
		return tok, nil
	}
	tok, ttl, err := c.fetchToken(ctx)
	if err != nil {
		return "", err
	}
	c.tokMu.Lock()
	c.token, c.tokenExp = tok, time.Now().Add(ttl)
	c.tokMu.Unlock()
	c.log.Debug("marketo access token fetched", zap.Duration("expires_in", ttl))
	return tok, nil
}

// fetchToken calls Identity with the client credentials. Marketo's spec
// takes them in the query; the URL therefore never reaches an error or a
// log (see redact).
func (c *Client) fetchToken(ctx context.Context) (string, time.Duration, error) {
	p := c.cfg.Policy
	q := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.cfg.ClientID}, "client_secret": {c.cfg.ClientSecret}}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, c.cfg.BaseURL+"/identity/oauth/token?"+q.Encode(), nil)
	if err != nil {
		return "", 0, &retry.Error{Class: retry.Permanent, Err: fmt.Errorf("marketo: cannot build token request to %s", c.safeURL)}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	attempts := 0
	rc := &retryablehttp.Client{
		HTTPClient:     &http.Client{Transport: sharedPool{c.pool}, Timeout: p.RequestTimeout},
		RetryWaitMin:   p.InitialInterval,
		RetryWaitMax:   p.MaxInterval,
		RetryMax:       p.MaxAttempts - 1,
		RequestLogHook: func(retryablehttp.Logger, *http.Request, int) { attempts++ },
		CheckRetry:     retryablehttp.DefaultRetryPolicy,
		Backoff:        retryablehttp.DefaultBackoff,
		ErrorHandler:   retryablehttp.PassthroughErrorHandler,
	}
	resp, err := rc.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return "", 0, fmt.Errorf("marketo: token request to %s interrupted: %w", c.safeURL, cerr)
		}
		return "", 0, &retry.Error{Class: retry.Exhausted, Attempts: attempts,
			Err: fmt.Errorf("marketo: token request failed: %w", c.redact(err))}
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		class := retry.Permanent
		if retryableStatus(resp.StatusCode) {
			class = retry.Exhausted
		}
		return "", 0, &retry.Error{Class: class, HTTPStatus: resp.StatusCode, Attempts: attempts,
			Err: fmt.Errorf("marketo: identity at %s refused the client credentials: %s", c.safeURL, quoteSnippet(readSnippet(resp.Body)))}
	}
	var ir identityResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ir); err != nil || ir.AccessToken == "" {
		return "", 0, &retry.Error{Class: retry.Exhausted, HTTPStatus: resp.StatusCode, Attempts: attempts,
			Err: fmt.Errorf("marketo: identity at %s answered without a token", c.safeURL)}
	}
	ttl := time.Duration(ir.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = time.Hour
	}
	return ir.AccessToken, ttl, nil
}
