package dispatch

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

// fakeClock advances only when someone sleeps on it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now = c.now.Add(d)
	}
	return nil
}

// maxInWindow is the most of times falling in any half-open window of per.
func maxInWindow(times []time.Time, per time.Duration) int {
	best := 0
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < per; j++ {
			n++
		}
		best = max(best, n)
	}
	return best
}

func TestGateRateLimit(t *testing.T) {
	tests := []struct {
		name     string
		limit    RateLimit
		attempts int
	}{
		{"4 per second", RateLimit{Requests: 4, Per: time.Second}, 40},
		{"hubspot 100 per 10s", RateLimit{Requests: 100, Per: 10 * time.Second}, 500},
		{"1 per minute", RateLimit{Requests: 1, Per: time.Minute}, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			g := newGate("t", &tc.limit, Circuit{Failures: 5, OpenFor: time.Second}, clk, nil)
			var at []time.Time
			for range tc.attempts {
				a := g.forDelivery()
				if err := a.Wait(context.Background()); err != nil {
					t.Fatal(err)
				}
				at = append(at, clk.Now())
				a.Done(http.StatusOK, 0, nil)
			}
			if got := maxInWindow(at, tc.limit.Per); got > tc.limit.Requests {
				t.Errorf("%d attempts in one window of %v, limit %d", got, tc.limit.Per, tc.limit.Requests)
			}
			// The limit is a ceiling, not a brake: the whole run takes about
			// attempts/rate.
			want := time.Duration(float64(tc.attempts-1) / float64(tc.limit.Requests) * float64(tc.limit.Per) * rateHeadroom)
			if got := at[len(at)-1].Sub(at[0]); got > want+want/10 {
				t.Errorf("%d attempts took %v, want about %v", tc.attempts, got, want)
			}
		})
	}
}

func TestGateSlowsDownOn429AndHonoursRetryAfter(t *testing.T) {
	clk := newFakeClock()
	g := newGate("t", &RateLimit{Requests: 10, Per: time.Second}, Circuit{Failures: 5, OpenFor: time.Second}, clk, nil)
	a := g.forDelivery()
	if err := a.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	throttledAt := clk.Now()
	a.Done(http.StatusTooManyRequests, 7*time.Second, nil)
	if err := a.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if waited := clk.Now().Sub(throttledAt); waited < 7*time.Second {
		t.Errorf("next attempt %v after a 429 with Retry-After: 7, want at least 7s", waited)
	}
	if got, want := g.limiter.Limit(), g.full/2; got != want {
		t.Errorf("rate after a 429 is %v/s, want halved to %v/s", got, want)
	}
	a.Done(http.StatusOK, 0, nil)
	if got := g.limiter.Limit(); got <= g.full/2 || got > g.full {
		t.Errorf("rate after a success is %v/s, want climbing back toward 10/s", got)
	}
}

// Concurrent attempts answer in any order: a later 429 stating a shorter
// wait, or none, must not cut short the pause an earlier one asked for.
func TestGatePauseIsTheLongestAsked(t *testing.T) {
	clk := newFakeClock()
	g := newGate("t", nil, Circuit{Failures: 5, OpenFor: time.Second}, clk, nil)
	first, second := g.forDelivery(), g.forDelivery()
	for _, a := range []*attempt{first, second} {
		if err := a.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	throttledAt := clk.Now()
	first.Done(http.StatusTooManyRequests, 20*time.Second, nil)
	second.Done(http.StatusTooManyRequests, 0, nil)
	next := g.forDelivery()
	if err := next.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if waited := clk.Now().Sub(throttledAt); waited < 20*time.Second {
		t.Errorf("next attempt %v after a 429 asking 20s and one asking nothing, want at least 20s", waited)
	}
}

// hookClock runs onSleep once, at the first Sleep: something that happens
// while an attempt waits.
type hookClock struct {
	*fakeClock
	onSleep func()
}

func (c *hookClock) Sleep(ctx context.Context, d time.Duration) error {
	if f := c.onSleep; f != nil {
		c.onSleep = nil
		f()
	}
	return c.fakeClock.Sleep(ctx, d)
}

// An attempt waiting for its rate token when another attempt is throttled
// leaves only after the stated wait.
func TestGateThrottleDuringTokenWaitHoldsTheAttempt(t *testing.T) {
	clk := &hookClock{fakeClock: newFakeClock()}
	g := newGate("t", &RateLimit{Requests: 1, Per: time.Second}, Circuit{Failures: 5, OpenFor: time.Second}, clk, nil)
	first := g.forDelivery()
	if err := first.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	var throttledAt time.Time
	clk.onSleep = func() {
		throttledAt = clk.Now()
		first.Done(http.StatusTooManyRequests, 5*time.Second, nil)
	}
	second := g.forDelivery()
	if err := second.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if throttledAt.IsZero() {
		t.Fatal("the second attempt never waited for a token")
	}
	if waited := clk.Now().Sub(throttledAt); waited < 5*time.Second {
		t.Errorf("second attempt left %v after a 429 asking 5s, while it waited for its token", waited)
	}
}

func TestGateCircuitOpensHoldsAndProbes(t *testing.T) {
	g := newGate("t", nil, Circuit{Failures: 3, OpenFor: 30 * time.Millisecond}, realClock{}, nil)
	fail := func() {
		a := g.forDelivery()
		if err := a.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		a.Done(http.StatusServiceUnavailable, 0, nil)
	}
	for range 3 {
		fail()
	}
	// Open: an attempt now waits for the probe slot instead of going out.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := g.forDelivery().Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("attempt through an open circuit: %v, want it held until ctx ended", err)
	}
	opened := time.Now()
	probe := g.forDelivery()
	if err := probe.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(opened); waited < 15*time.Millisecond {
		t.Errorf("probe went out %v after opening, want about open_for (30ms)", waited)
	}
	// Only one probe at a time while half-open.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel2()
	if err := g.forDelivery().Wait(ctx2); err == nil {
		t.Fatal("a second attempt went out beside the probe")
	}
	probe.Done(http.StatusOK, 0, nil)
	if !g.upSince(opened) {
		t.Error("a successful probe did not count as the endpoint being up")
	}
	a := g.forDelivery()
	if err := a.Wait(context.Background()); err != nil {
		t.Fatalf("closed circuit refused an attempt: %v", err)
	}
	a.Done(http.StatusBadRequest, 0, nil) // an answer, so the endpoint is up
	if g.breaker.State().String() != "closed" {
		t.Errorf("circuit %s after a 400, want closed", g.breaker.State())
	}
}
