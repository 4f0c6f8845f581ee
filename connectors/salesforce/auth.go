package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/synchub/synchub/retry"
)

// session returns a usable session, fetching one through the refresh-token
// flow when there is none or the configured session timeout is near.
// Callers block on each other while one fetches, so a burst of expired
// callers costs one token request.
func (c *Client) session(ctx context.Context) (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && time.Now().Before(c.tok.expires) {
		return c.tok, nil
	}
	s, err := c.fetchToken(ctx)
	if err != nil {
		return nil, err
	}
	c.tok = s
	return s, nil
}

// invalidate drops s if it is still the current session; a session a
// concurrent caller already replaced is left alone.
func (c *Client) invalidate(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == s {
		c.tok = nil
	}
}

// fetchToken runs the refresh-token flow. A refused grant (400/401, bad
// credentials or a revoked refresh token) is Permanent: no retry fixes it.
// Errors never quote the request (it holds the secrets); the OAuth error
// response holds none, so it is quoted.
func (c *Client) fetchToken(ctx context.Context) (*session, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
		"refresh_token": {c.cfg.RefreshToken},
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Policy.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost,
		strings.TrimRight(c.cfg.LoginURL, "/")+"/services/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &retry.Error{Class: retry.Permanent, Err: errors.New("salesforce: cannot build the token request")}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("salesforce: token request to %s: %w", c.safe, redact(err))
	}
	defer drain(resp.Body)
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("salesforce: token response from %s: %w", c.safe, redact(err))
	}
	if resp.StatusCode != http.StatusOK {
		var oe struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		desc := quote(data)
		if json.Unmarshal(data, &oe) == nil && oe.Error != "" {
			desc = oe.Error + ": " + oe.Description
		}
		err := fmt.Errorf("salesforce: token request to %s refused: HTTP %d %s", c.safe, resp.StatusCode, desc)
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized {
			return nil, &retry.Error{Class: retry.Permanent, HTTPStatus: resp.StatusCode, Attempts: 1, FirstFailedAt: time.Now(), Err: err}
		}
		return nil, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	if err := json.Unmarshal(data, &tok); err != nil || tok.AccessToken == "" {
		return nil, fmt.Errorf("salesforce: token response from %s has no access_token", c.safe)
	}
	instance := c.cfg.BaseURL
	if instance == "" {
		instance = tok.InstanceURL
	}
	if u, err := url.Parse(instance); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, &retry.Error{Class: retry.Permanent, Err: fmt.Errorf("salesforce: token response from %s has no usable instance_url", c.safe)}
	}
	// Refreshing ahead of the timeout keeps a request from leaving with a
	// token about to die; the 401 path covers sessions ended early.
	c.log.Debug("salesforce session refreshed")
	return &session{
		access:   tok.AccessToken,
		instance: strings.TrimRight(instance, "/"),
		// issued_at is the server's clock; timing from receipt is safer
		// against skew and only errs towards refreshing early.
		expires: time.Now().Add(c.cfg.SessionTimeout - min(time.Minute, c.cfg.SessionTimeout/4)),
	}, nil
}
