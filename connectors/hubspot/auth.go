package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// tokenSource hands out the bearer token: the private app's, or an OAuth
// access token fetched with the refresh token and replaced ahead of expiry.
type tokenSource struct {
	static string

	hc       *http.Client
	tokenURL string
	clientID string
	secret   string
	ahead    time.Duration
	now      func() time.Time

	// mu is held across a fetch so concurrent callers share one refresh.
	mu      sync.Mutex
	refresh string
	token   string
	expires time.Time
	renewAt time.Time
}

// tokenError is a failed token fetch. permanent means the credentials
// were refused, which no retry will fix.
type tokenError struct {
	status    int
	permanent bool
	msg       string
}

func (e *tokenError) Error() string { return e.msg }

// get returns a token valid for a while yet.
func (t *tokenSource) get(ctx context.Context) (string, error) {
	if t.static != "" {
		return t.static, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && t.now().Before(t.renewAt) {
		return t.token, nil
	}
	return t.fetch(ctx)
}

// invalidate drops tok so the next get fetches a new one; a token already
// replaced by another caller is left alone, so N callers that saw the same
// 401 cause one refresh, not N.
func (t *tokenSource) invalidate(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token == tok {
		t.token = ""
	}
}

func (t *tokenSource) oauth() bool { return t.static == "" }

func (t *tokenSource) fetch(ctx context.Context) (string, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {t.clientID},
		"client_secret": {t.secret},
		"refresh_token": {t.refresh},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", &tokenError{permanent: true, msg: "hubspot: cannot build token request"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", userAgent)
	resp, err := t.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("hubspot: token refresh interrupted: %w", ctx.Err())
		}
		return "", &tokenError{msg: "hubspot: token refresh failed: " + redact(err).Error()}
	}
	defer drain(resp.Body)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, snippetLimit))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Status, Message string
		}
		_ = json.Unmarshal(body, &e)
		return "", &tokenError{
			status:    resp.StatusCode,
			permanent: resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests,
			msg:       fmt.Sprintf("hubspot: token refresh refused, HTTP %d: %s %s", resp.StatusCode, e.Status, e.Message),
		}
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" || tr.ExpiresIn <= 0 {
		return "", &tokenError{status: resp.StatusCode, msg: "hubspot: token response lacks access_token or expires_in"}
	}
	now := t.now()
	life := time.Duration(tr.ExpiresIn) * time.Second
	t.token, t.expires = tr.AccessToken, now.Add(life)
	t.renewAt = t.expires.Add(-min(t.ahead, life/2))
	if tr.RefreshToken != "" {
		t.refresh = tr.RefreshToken
	}
	return t.token, nil
}
