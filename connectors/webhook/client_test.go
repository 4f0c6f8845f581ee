package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/synchub/synchub/retry"
)

// fast keeps retry tests quick; tests override what they exercise.
var fast = Policy{MaxAttempts: 5, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond, MaxElapsed: 5 * time.Second, RequestTimeout: 2 * time.Second}

type hit struct {
	at     time.Time
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint that records every request and answers
// with respond(n, …), n counting requests from 1.
type receiver struct {
	srv   *httptest.Server
	conns atomic.Int32 // connections opened by clients
	mu    sync.Mutex
	hits  []hit
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("receiver: reading body: %v", err)
		}
		rc.mu.Lock()
		rc.hits = append(rc.hits, hit{at: at, header: r.Header.Clone(), body: body})
		n := len(rc.hits)
		rc.mu.Unlock()
		respond(n, w, r)
	}))
	rc.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rc.conns.Add(1)
		}
	}
	rc.srv.Start()
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) Hits() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

func status(code int, body string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// failThen answers failures[n-1] (a status) while there are some, then 200.
func failThen(failures ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= len(failures) {
			w.WriteHeader(failures[n-1])
			_, _ = fmt.Fprintf(w, "failure %d", n)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

func endpoint(t *testing.T, rc *receiver) Endpoint {
	return Endpoint{URL: rc.srv.URL + "/hooks/synchub?token=querytoken", Secret: mustSecret(t, refSecret)}
}

func asRetryError(t *testing.T, err error, class retry.Class) *retry.Error {
	t.Helper()
	var re *retry.Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *retry.Error", err, err)
	}
	if re.Class != class {
		t.Fatalf("class = %s, want %s (%v)", re.Class, class, err)
	}
	assertNoSecret(t, "error", err.Error())
	if strings.Contains(err.Error(), "querytoken") || strings.Contains(err.Error(), "/hooks/") {
		t.Errorf("error shows the URL path or query: %v", err)
	}
	return re
}

func TestDeliverSignsEveryAttemptAndKeepsID(t *testing.T) {
	rc := newReceiver(t, failThen(503, 503, 503))
	c := NewClient(zap.NewNop())
	var clock atomic.Int64
	c.now = func() time.Time { return time.Unix(1_800_000_000+clock.Add(1), 0) }
	ep := endpoint(t, rc)

	if err := c.Deliver(context.Background(), ep, fast, "user", snapshot("u_42", 3)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	hits := rc.Hits()
	if len(hits) != 4 {
		t.Fatalf("attempts = %d, want 4", len(hits))
	}
	var lastTS int64
	for i, h := range hits {
		if id := h.header.Get("webhook-id"); id != "msg_user_u_42_v3" {
			t.Errorf("attempt %d: webhook-id = %q", i+1, id)
		}
		if ct, ua := h.header.Get("Content-Type"), h.header.Get("User-Agent"); ct != "application/json" || ua != "synchub-webhook/1" {
			t.Errorf("attempt %d: Content-Type %q, User-Agent %q", i+1, ct, ua)
		}
		ts, err := strconv.ParseInt(h.header.Get("webhook-timestamp"), 10, 64)
		if err != nil || ts <= lastTS {
			t.Errorf("attempt %d: webhook-timestamp %q not fresh (previous %d)", i+1, h.header.Get("webhook-timestamp"), lastTS)
		}
		lastTS = ts
		if err := Verify(ep.Secret, h.header, h.body, time.Minute, time.Unix(ts, 0)); err != nil {
			t.Errorf("attempt %d: receiver rejects signature: %v", i+1, err)
		}
		if string(h.body) != string(hits[0].body) {
			t.Errorf("attempt %d: body changed", i+1)
		}
	}
	var ev event
	if err := json.Unmarshal(hits[0].body, &ev); err != nil || ev.Type != "user.updated" {
		t.Fatalf("body %s: %v", hits[0].body, err)
	}
}

func TestDeliverTypesAndIDsPerVersion(t *testing.T) {
	rc := newReceiver(t, status(http.StatusNoContent, ""))
	c := NewClient(nil)
	ep := endpoint(t, rc)
	for _, v := range []int{1, 2, 2} {
		if err := c.Deliver(context.Background(), ep, fast, "user", snapshot("ann@example.com", v)); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
	}
	hits := rc.Hits()
	var types, ids []string
	for _, h := range hits {
		var ev event
		if err := json.Unmarshal(h.body, &ev); err != nil {
			t.Fatal(err)
		}
		if err := Verify(ep.Secret, h.header, h.body, 0, time.Now()); err != nil {
			t.Errorf("signature: %v", err)
		}
		types = append(types, ev.Type)
		ids = append(ids, h.header.Get("webhook-id"))
	}
	if fmt.Sprint(types) != "[user.created user.updated user.updated]" {
		t.Errorf("types = %v", types)
	}
	if ids[0] == ids[1] || ids[1] != ids[2] || ids[1] != "msg_user_ann%40example%2Ecom_v2" {
		t.Errorf("webhook-ids = %v: want distinct per version, equal for the same version", ids)
	}
}

func TestDeliverRetriesTransientStatuses(t *testing.T) {
	for _, code := range []int{408, 429, 500, 502, 503, 504, 599} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			rc := newReceiver(t, failThen(code))
			if err := NewClient(nil).Deliver(context.Background(), endpoint(t, rc), fast, "user", snapshot("u_1", 1)); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if n := len(rc.Hits()); n != 2 {
				t.Fatalf("attempts = %d, want 2", n)
			}
		})
	}
}

// The only slow test: a real one-second Retry-After.
func TestDeliverHonoursRetryAfter(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	if err := NewClient(nil).Deliver(context.Background(), endpoint(t, rc), fast, "user", snapshot("u_1", 1)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	hits := rc.Hits()
	if len(hits) != 2 {
		t.Fatalf("attempts = %d, want 2", len(hits))
	}
	if gap := hits[1].at.Sub(hits[0].at); gap < time.Second {
		t.Fatalf("second attempt %s after the 429, want >= 1s", gap)
	}
}

func TestDeliverRetryAfterBeyondMaxElapsedGivesUpAtOnce(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	start := time.Now()
	err := NewClient(nil).Deliver(context.Background(), endpoint(t, rc), fast, "user", snapshot("u_1", 1))
	re := asRetryError(t, err, retry.Exhausted)
	if re.Attempts != 1 || re.HTTPStatus != 503 || re.RetryAfter != time.Hour {
		t.Fatalf("attempts %d, status %d, retry-after %s; want 1, 503, 1h", re.Attempts, re.HTTPStatus, re.RetryAfter)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Fatalf("took %s: should not wait for a retry it cannot make", elapsed)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"Wed, 25 Nov 2026 10:00:30 GMT", 30 * time.Second, true},
		{"Wednesday, 25-Nov-26 10:01:00 GMT", time.Minute, true},
		{"Wed, 25 Nov 2026 09:00:00 GMT", 0, true}, // past
		{"", 0, false},
		{"-5", 0, false},
		{"soon", 0, false},
		{"99999999999999999", 0, false},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDeliverPermanentStatuses(t *testing.T) {
	long := strings.Repeat("x", 2000) + "TAIL"
	for _, tc := range []struct {
		code int
		body string
	}{
		{400, `{"error":"email is required"}`},
		{401, "unauthorized"},
		{404, "no such hook"},
		{410, ""},
		{422, long},
		{501, "not implemented"},
		{302, "moved"},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				if tc.code == 302 {
					// Following this would succeed; a webhook must not follow it.
					if r.URL.Path == "/elsewhere" {
						w.WriteHeader(http.StatusOK)
						return
					}
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.code)
				_, _ = io.WriteString(w, tc.body)
			})
			start := time.Now()
			err := NewClient(nil).Deliver(context.Background(), endpoint(t, rc), fast, "user", snapshot("u_1", 2))
			re := asRetryError(t, err, retry.Permanent)
			if re.Attempts != 1 || re.HTTPStatus != tc.code || len(rc.Hits()) != 1 {
				t.Fatalf("attempts %d (server saw %d), status %d", re.Attempts, len(rc.Hits()), re.HTTPStatus)
			}
			if re.FirstFailedAt.Before(start) || re.FirstFailedAt.After(time.Now()) {
				t.Errorf("FirstFailedAt = %v", re.FirstFailedAt)
			}
			msg := err.Error()
			switch {
			case tc.body == long:
				if strings.Contains(msg, "TAIL") || strings.Count(msg, "x") > 512 || strings.Count(msg, "x") < 500 {
					t.Errorf("snippet not trimmed to 512 bytes: %d x's", strings.Count(msg, "x"))
				}
			case tc.body != "" && !strings.Contains(msg, strings.ReplaceAll(tc.body, `"`, `\"`)):
				t.Errorf("message %q lacks the body snippet %q", msg, tc.body)
			}
		})
	}
}

func TestDeliverExhaustsAttempts(t *testing.T) {
	rc := newReceiver(t, status(500, "database is down"))
	p := fast
	p.MaxAttempts = 3
	start := time.Now()
	err := NewClient(nil).Deliver(context.Background(), endpoint(t, rc), p, "user", snapshot("u_1", 2))
	re := asRetryError(t, err, retry.Exhausted)
	if re.Attempts != 3 || len(rc.Hits()) != 3 || re.HTTPStatus != 500 {
		t.Fatalf("attempts %d (server saw %d), status %d; want 3, 500", re.Attempts, len(rc.Hits()), re.HTTPStatus)
	}
	if re.FirstFailedAt.Before(start) || re.FirstFailedAt.After(rc.Hits()[1].at) {
		t.Errorf("FirstFailedAt %v not at the first failure", re.FirstFailedAt)
	}
	if !strings.Contains(err.Error(), "database is down") {
		t.Errorf("message lacks the last response: %v", err)
	}
	if !retry.Terminal(err) {
		t.Error("not terminal")
	}
}

func TestDeliverExhaustsMaxElapsed(t *testing.T) {
	rc := newReceiver(t, status(502, "bad gateway"))
	p := Policy{MaxAttempts: 1000, InitialInterval: 10 * time.Millisecond, MaxInterval: 20 * time.Millisecond, MaxElapsed: 200 * time.Millisecond, RequestTimeout: time.Second}
	start := time.Now()
	err := NewClient(nil).Deliver(context.Background(), endpoint(t, rc), p, "user", snapshot("u_1", 2))
	elapsed := time.Since(start)
	re := asRetryError(t, err, retry.Exhausted)
	// The deadline may cut the last attempt before the server records it.
	if seen := len(rc.Hits()); re.Attempts < 2 || re.Attempts >= 1000 || seen != re.Attempts && seen != re.Attempts-1 || re.HTTPStatus != 502 {
		t.Fatalf("attempts %d (server saw %d), status %d", re.Attempts, len(rc.Hits()), re.HTTPStatus)
	}
	if elapsed > time.Second {
		t.Fatalf("took %s with MaxElapsed 200ms", elapsed)
	}
}

// Our own MaxElapsed deadline firing mid-request is exhaustion, not an
// interruption.
func TestDeliverMaxElapsedDuringRequest(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	p := fast
	p.MaxElapsed, p.RequestTimeout = 150*time.Millisecond, 5*time.Second
	err := NewClient(nil).Deliver(context.Background(), endpoint(t, rc), p, "user", snapshot("u_1", 2))
	re := asRetryError(t, err, retry.Exhausted)
	if re.Attempts != 1 || !strings.Contains(err.Error(), "max elapsed time 150ms reached") {
		t.Fatalf("attempts %d: %v", re.Attempts, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("exhaustion must not look like a caller deadline: %v", err)
	}
}

func TestDeliverRetriesTimeouts(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select { // hang past RequestTimeout
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(func() { close(release) }) // runs before the server closes
	p := fast
	p.RequestTimeout = 100 * time.Millisecond
	if err := NewClient(nil).Deliver(context.Background(), endpoint(t, rc), p, "user", snapshot("u_1", 2)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if n := len(rc.Hits()); n != 2 {
		t.Fatalf("attempts = %d, want 2", n)
	}
}

func TestDeliverTimeoutsExhaust(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	p := fast
	p.MaxAttempts, p.RequestTimeout = 2, 50*time.Millisecond
	err := NewClient(nil).Deliver(context.Background(), endpoint(t, rc), p, "user", snapshot("u_1", 2))
	re := asRetryError(t, err, retry.Exhausted)
	if re.Attempts != 2 || re.HTTPStatus != 0 || re.FirstFailedAt.IsZero() {
		t.Fatalf("attempts %d, status %d, first failure %v", re.Attempts, re.HTTPStatus, re.FirstFailedAt)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Errorf("exhaustion must not look like a cancelled context: %v", err)
	}
}

func assertInterrupted(t *testing.T, err error, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v does not wrap %v", err, want)
	}
	var re *retry.Error
	if errors.As(err, &re) {
		t.Fatalf("interruption reported as a delivery failure: %v", err)
	}
	assertNoSecret(t, "error", err.Error())
}

func TestDeliverCallerCancelDuringBackoff(t *testing.T) {
	attempted := make(chan struct{}, 10)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		attempted <- struct{}{}
	})
	p := Policy{MaxAttempts: 5, InitialInterval: time.Minute, MaxInterval: time.Minute, MaxElapsed: time.Hour, RequestTimeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- NewClient(nil).Deliver(ctx, endpoint(t, rc), p, "user", snapshot("u_1", 2)) }()
	<-attempted
	cancel()
	select {
	case err := <-done:
		assertInterrupted(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Deliver kept waiting after its context was cancelled")
	}
	if n := len(rc.Hits()); n != 1 {
		t.Fatalf("attempts = %d, want 1", n)
	}
}

func TestDeliverCallerCancelDuringRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		cancel() // shutdown while the second attempt is in flight
		<-r.Context().Done()
	})
	err := NewClient(nil).Deliver(ctx, endpoint(t, rc), fast, "user", snapshot("u_1", 2))
	assertInterrupted(t, err, context.Canceled)
}

func TestDeliverCallerDeadline(t *testing.T) {
	rc := newReceiver(t, status(503, ""))
	p := Policy{MaxAttempts: 1000, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxElapsed: time.Hour, RequestTimeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := NewClient(nil).Deliver(ctx, endpoint(t, rc), p, "user", snapshot("u_1", 2))
	assertInterrupted(t, err, context.DeadlineExceeded)
}

func TestDeliverCancelledBeforeStart(t *testing.T) {
	rc := newReceiver(t, status(200, ""))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := NewClient(nil).Deliver(ctx, endpoint(t, rc), fast, "user", snapshot("u_1", 2))
	assertInterrupted(t, err, context.Canceled)
	if len(rc.Hits()) != 0 {
		t.Fatal("request made with a cancelled context")
	}
}

func TestDeliverConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	core, logs := observer.New(zapcore.DebugLevel)
	c := NewClient(zap.New(core))
	p := fast
	p.MaxAttempts = 2
	err := c.Deliver(context.Background(), Endpoint{URL: url + "/hooks/T0/B0/pathtoken?token=querytoken", Secret: mustSecret(t, refSecret)}, p, "user", snapshot("u_1", 2))
	re := asRetryError(t, err, retry.Exhausted)
	if re.Attempts != 2 || re.HTTPStatus != 0 {
		t.Fatalf("attempts %d, status %d", re.Attempts, re.HTTPStatus)
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("error does not name the endpoint host: %v", err)
	}
	assertCleanLogs(t, logs)
}

func TestDeliverRejectsBadInput(t *testing.T) {
	rc := newReceiver(t, status(200, ""))
	c := NewClient(nil)
	ep := endpoint(t, rc)
	err := c.Deliver(context.Background(), ep, fast, "user", []byte(`{"id": "u_1", "updated_at": "2026-11-25T10:05:00Z"}`))
	if re := asRetryError(t, err, retry.InvalidInput); re.Attempts != 0 {
		t.Errorf("attempts = %d", re.Attempts)
	}
	for _, bad := range []Endpoint{
		{URL: ep.URL},                         // no secret
		{URL: "ftp://x/y", Secret: ep.Secret}, // scheme
		{URL: "http://[::1", Secret: ep.Secret},
		{URL: "/relative", Secret: ep.Secret},
	} {
		err := c.Deliver(context.Background(), bad, fast, "user", snapshot("u_1", 1))
		asRetryError(t, err, retry.Permanent)
	}
	if n := len(rc.Hits()); n != 0 {
		t.Fatalf("%d requests made for bad input", n)
	}
}

// Bodies are read and closed, so one connection serves successes,
// rejections and retries alike.
func TestDeliverReusesConnections(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 2:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, strings.Repeat("no ", 1000))
		case 3:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "later")
		default:
			_, _ = io.WriteString(w, "ok")
		}
	})
	c := NewClient(nil)
	ep := endpoint(t, rc)
	for i, want := range []retry.Class{"", retry.Permanent, "", ""} {
		err := c.Deliver(context.Background(), ep, fast, "user", snapshot("u_1", i+1))
		if want == "" && err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		if want != "" {
			asRetryError(t, err, want)
		}
	}
	if n := rc.conns.Load(); n != 1 {
		t.Fatalf("%d connections for %d requests, want 1", n, len(rc.Hits()))
	}
}

func TestNothingSecretInLogs(t *testing.T) {
	rc := newReceiver(t, failThen(503, 500, 429, 400))
	core, logs := observer.New(zapcore.DebugLevel)
	c := NewClient(zap.New(core))
	ep := endpoint(t, rc)
	err := c.Deliver(context.Background(), ep, fast, "user", snapshot("u_1", 2))
	asRetryError(t, err, retry.Permanent)
	if logs.Len() == 0 {
		t.Fatal("no debug logs for retries")
	}
	assertCleanLogs(t, logs)
}

func assertCleanLogs(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig())
	for _, e := range logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		line := buf.String()
		assertNoSecret(t, "log", line)
		if strings.Contains(line, "querytoken") || strings.Contains(line, "/hooks/") || strings.Contains(line, "Ann") {
			t.Errorf("log shows the URL path, query or body: %s", line)
		}
	}
}
