package attempt_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/connectors/attempt"
	"github.com/synchub/synchub/retry"
)

var fast = connectors.Policy{
	MaxAttempts: 4, InitialInterval: time.Millisecond, MaxInterval: 4 * time.Millisecond,
	MaxElapsed: 5 * time.Second, RequestTimeout: time.Second,
}

func classify(resp *http.Response, now time.Time) attempt.Verdict {
	if !attempt.RetryableStatus(resp.StatusCode) {
		return attempt.Verdict{}
	}
	d, ok := attempt.ParseRetryAfter(resp.Header.Get("Retry-After"), now, time.Hour)
	return attempt.Verdict{Retry: true, Asked: d, HasAsked: ok}
}

type doneCall struct {
	status int
	wait   time.Duration
	err    error
}

type recGate struct {
	mu    sync.Mutex
	waits int
	dones []doneCall
	hold  time.Duration
	err   error
}

func (g *recGate) Wait(ctx context.Context) error {
	g.mu.Lock()
	g.waits++
	g.mu.Unlock()
	if g.err != nil {
		return g.err
	}
	select {
	case <-time.After(g.hold):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *recGate) Done(status int, wait time.Duration, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dones = append(g.dones, doneCall{status, wait, err})
}

// server answers with statuses in turn, then 200.
func server(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(statuses) {
			if statuses[i] == 429 {
				w.Header().Set("Retry-After", "0")
			}
			w.WriteHeader(statuses[i])
			return
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// hang holds an answer until the client gives up (the body read first, so
// the server notices), or a second.
func hang(r *http.Request) {
	_, _ = io.ReadAll(r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(time.Second):
	}
}

func do(t *testing.T, ctx context.Context, cfg attempt.Config, url string) (*attempt.Run, *http.Response, error) {
	t.Helper()
	if cfg.Policy == (connectors.Policy{}) {
		cfg.Policy = fast
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{}
	}
	if cfg.Classify == nil {
		cfg.Classify = classify
	}
	run := attempt.Start(ctx, cfg)
	t.Cleanup(run.Close)
	req, err := retryablehttp.NewRequestWithContext(run.Context(), http.MethodPost, url+"/secret/path?token=x", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := run.Do(req)
	if resp != nil {
		resp.Body.Close()
	}
	return run, resp, err
}

func TestRetriesThenSucceeds(t *testing.T) {
	srv, n := server(t, 503, 429, 500)
	g := &recGate{}
	var signed atomic.Int32
	cfg := attempt.Config{Gate: g, SafeURL: srv.URL, GateDelay: func(*http.Response, time.Time) time.Duration { return time.Second },
		Prepare: func(h http.Header) { h.Set("X-Sig", "s"); signed.Add(1) }}
	run, resp, err := do(t, context.Background(), cfg, srv.URL)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("resp %v, err %v", resp, err)
	}
	if run.Attempts() != 4 || n.Load() != 4 || signed.Load() != 4 || g.waits != 4 || len(g.dones) != 4 {
		t.Fatalf("attempts %d, hits %d, signed %d, waits %d, dones %d", run.Attempts(), n.Load(), signed.Load(), g.waits, len(g.dones))
	}
	if g.dones[0].status != 503 || g.dones[0].wait != time.Second || g.dones[3] != (doneCall{200, 0, nil}) {
		t.Errorf("dones %v", g.dones)
	}
	if run.FirstFailedAt().IsZero() || run.LastStatus() != 500 {
		t.Errorf("first failed %v, last status %d", run.FirstFailedAt(), run.LastStatus())
	}
}

func TestFinalAnswerIsReturned(t *testing.T) {
	srv, n := server(t, 400)
	run, resp, err := do(t, context.Background(), attempt.Config{}, srv.URL)
	if err != nil || resp.StatusCode != 400 || n.Load() != 1 || run.Attempts() != 1 {
		t.Fatalf("resp %v, err %v, hits %d", resp, err, n.Load())
	}
}

func TestExhaustedAttempts(t *testing.T) {
	srv, n := server(t, 500, 500, 500, 500, 500)
	run, _, err := do(t, context.Background(), attempt.Config{}, srv.URL)
	var f *attempt.Failure
	if !errors.As(err, &f) || f.Kind != attempt.Exhausted || f.Why != "all 4 attempt(s) failed" {
		t.Fatalf("err %v", err)
	}
	if n.Load() != 4 || run.Attempts() != 4 || run.LastStatus() != 500 {
		t.Errorf("hits %d, attempts %d, status %d", n.Load(), run.Attempts(), run.LastStatus())
	}
}

func TestRetryAfterPastBudgetStopsAtOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(429)
	}))
	defer srv.Close()
	run, _, err := do(t, context.Background(), attempt.Config{}, srv.URL)
	var f *attempt.Failure
	if !errors.As(err, &f) || f.Kind != attempt.Exhausted || !strings.Contains(f.Why, "next attempt (in 1m0s)") {
		t.Fatalf("err %v", err)
	}
	if run.Attempts() != 1 || run.RetryAfter() != time.Minute {
		t.Errorf("attempts %d, retry after %s", run.Attempts(), run.RetryAfter())
	}
}

func TestGateHoldDoesNotCountTowardMaxElapsed(t *testing.T) {
	srv, _ := server(t, 500, 500)
	p := fast
	p.MaxElapsed = 80 * time.Millisecond
	g := &recGate{hold: 60 * time.Millisecond}
	if _, _, err := do(t, context.Background(), attempt.Config{Policy: p, Gate: g}, srv.URL); err != nil {
		t.Fatalf("held 180ms within an 80ms budget: %v", err)
	}
}

func TestMaxElapsedCutsSlowAttempt(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hang(r)
	}))
	defer srv.Close()
	p := fast
	p.MaxElapsed = 50 * time.Millisecond
	g := &recGate{}
	_, _, err := do(t, context.Background(), attempt.Config{Policy: p, Gate: g, SafeURL: "http://safe"}, srv.URL)
	var f *attempt.Failure
	if !errors.As(err, &f) || f.Kind != attempt.Exhausted || !strings.Contains(f.Why, "max elapsed time 50ms reached") {
		t.Fatalf("err %v", err)
	}
	if len(g.dones) != g.waits || g.dones[0].err == nil || strings.Contains(g.dones[0].err.Error(), "token") {
		t.Errorf("dones %v for %d waits", g.dones, g.waits)
	}
}

func TestCallerCancelIsNotRetryError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hang(r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, _, err := do(t, ctx, attempt.Config{Gate: &recGate{}}, srv.URL)
	var f *attempt.Failure
	var re *retry.Error
	if !errors.As(err, &f) || f.Kind != attempt.Interrupted || !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &re) {
		t.Fatalf("err %v", err)
	}
}

func TestGateRefusal(t *testing.T) {
	srv, n := server(t)
	boom := errors.New("circuit open")
	run, _, err := do(t, context.Background(), attempt.Config{Gate: &recGate{err: boom}}, srv.URL)
	var f *attempt.Failure
	if !errors.As(err, &f) || f.Kind != attempt.Refused || !errors.Is(err, boom) || n.Load() != 0 || run.Attempts() != 0 {
		t.Fatalf("err %v, hits %d", err, n.Load())
	}
}

func TestPermanentTransportErrorIsRedacted(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	run, _, err := do(t, context.Background(), attempt.Config{SafeURL: "https://safe"}, srv.URL)
	var f *attempt.Failure
	if !errors.As(err, &f) || f.Kind != attempt.Permanent || strings.Contains(err.Error(), "token") || !strings.Contains(err.Error(), "https://safe") {
		t.Fatalf("err %v", err)
	}
	if run.Attempts() != 1 {
		t.Errorf("attempts %d", run.Attempts())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"Wed, 25 Nov 2026 10:00:30 GMT", 30 * time.Second, true},
		{"Wed, 25 Nov 2026 09:00:00 GMT", 0, true},
		{"", 0, false},
		{"-5", 0, false},
		{"7201", 0, false},
		{"soon", 0, false},
	} {
		got, ok := attempt.ParseRetryAfter(tc.in, now, 2*time.Hour)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := connectors.Policy{InitialInterval: 100 * time.Millisecond, MaxInterval: 300 * time.Millisecond}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 5: 300 * time.Millisecond} {
		for range 20 {
			if d := attempt.Backoff(p, n); d < want/2 || d > want {
				t.Fatalf("Backoff(%d) = %s, want in [%s, %s]", n, d, want/2, want)
			}
		}
	}
}

func TestBudgetPauses(t *testing.T) {
	var fired atomic.Bool
	b := attempt.StartBudget(40*time.Millisecond, func() { fired.Store(true) })
	defer b.Stop()
	d0 := b.Deadline()
	if !b.Pause() {
		t.Fatal("Pause on a live budget")
	}
	time.Sleep(60 * time.Millisecond)
	b.Resume()
	if fired.Load() || b.Out() || b.Deadline().Sub(d0) < 60*time.Millisecond {
		t.Fatalf("paused budget ran: fired %v, deadline moved %s", fired.Load(), b.Deadline().Sub(d0))
	}
	time.Sleep(80 * time.Millisecond)
	if !fired.Load() || !b.Out() || b.Pause() {
		t.Fatal("budget did not run out after resume")
	}
}
