package dispatch

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// minRateFraction is the floor a pair's rate drops to under repeated 429s,
// and the step it climbs back by on each success.
const minRateFraction = 0.05

// rateHeadroom stretches the spacing of rate-limited requests by 5%.
const rateHeadroom = 1.05

// Circuit says when a pair's endpoint counts as down: after Failures failed
// attempts in a row. The failures are the endpoint's, not a record's, so
// the pair then holds its records, sends one probe every OpenFor, and
// resumes on the first success.
type Circuit struct {
	Failures int
	OpenFor  time.Duration
}

// RateLimit is a request budget: at most Requests in any window of Per.
type RateLimit struct {
	Requests int
	Per      time.Duration
}

// gate is one connector/customer pair's admission control: its rate limit,
// which slows down on 429 and honours Retry-After, and its circuit breaker.
// It is shared by every delivery of the pair.
type gate struct {
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
	limiter *rate.Limiter // nil: no rate limit
	full    rate.Limit
	clock   clock
	// poll is how often a waiting attempt checks an open circuit again.
	poll time.Duration

	mu          sync.Mutex
	pausedUntil time.Time
	lastSuccess time.Time
}

// clock is the time source of a gate, so tests can drive it.
type clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newGate(name string, rl *RateLimit, c Circuit, clk clock, onChange func(from, to string)) *gate {
	g := &gate{clock: clk, poll: max(min(c.OpenFor/10, 100*time.Millisecond), time.Millisecond)}
	g.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     c.OpenFor,
		ReadyToTrip: func(counts gobreaker.Counts) bool { return counts.ConsecutiveFailures >= uint32(max(c.Failures, 1)) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if onChange != nil {
				onChange(from.String(), to.String())
			}
		},
	})
	if rl != nil {
		// A burst of one spaces requests evenly, so no window of Per holds
		// more than Requests. Vendors count arrivals on their side, where
		// network jitter can bunch two requests up: the spacing keeps
		// rateHeadroom in reserve for that.
		g.full = rate.Limit(float64(rl.Requests) / (rl.Per.Seconds() * rateHeadroom))
		g.limiter = rate.NewLimiter(g.full, 1)
	}
	return g
}

// errAttemptFailed is what the breaker is told about a failed attempt.
var errAttemptFailed = errors.New("attempt failed")

// attempt is the Gate of one delivery: attempts of a delivery are
// sequential, so it can carry the breaker's callback from Wait to Done.
type attempt struct {
	g    *gate
	done func(error)
}

func (g *gate) forDelivery() *attempt { return &attempt{g: g} }

// Wait blocks while the pair is paused (Retry-After) or its circuit is open,
// then takes a token from the rate limiter. A throttle answered to another
// attempt while this one waited for its token pauses it too: the pause is
// checked again last, so no attempt leaves during a stated wait.
func (a *attempt) Wait(ctx context.Context) error {
	g := a.g
	for {
		if pause := g.pause(); pause > 0 {
			if err := g.clock.Sleep(ctx, pause); err != nil {
				return err
			}
			continue
		}
		if g.limiter != nil {
			now := g.clock.Now()
			r := g.limiter.ReserveN(now, 1)
			if err := g.clock.Sleep(ctx, r.DelayFrom(now)); err != nil {
				r.CancelAt(g.clock.Now())
				return err
			}
			if g.pause() > 0 {
				continue
			}
		}
		done, err := g.breaker.Allow()
		if err != nil {
			if err := g.clock.Sleep(ctx, g.poll); err != nil {
				return err
			}
			continue
		}
		a.done = done
		return nil
	}
}

// pause is how long the pair stays paused from now.
func (g *gate) pause() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pausedUntil.Sub(g.clock.Now())
}

// Done feeds an attempt's outcome back: an answer that is not a failure of
// the endpoint closes the circuit and restores the rate; 429 halves the rate
// and pauses for Retry-After; timeouts and 5xx count toward tripping.
func (a *attempt) Done(status int, retryAfter time.Duration, err error) {
	g := a.g
	now := g.clock.Now()
	switch {
	case status == http.StatusTooManyRequests:
		a.report(true) // the endpoint is up, just busy
		// Concurrent attempts answer in any order: a 429 that states a
		// shorter wait (or none) must not cut short a longer one.
		g.mu.Lock()
		if until := now.Add(retryAfter); until.After(g.pausedUntil) {
			g.pausedUntil = until
		}
		g.mu.Unlock()
		if g.limiter != nil {
			g.limiter.SetLimitAt(now, max(g.limiter.Limit()/2, g.full*minRateFraction))
		}
	case err != nil || status == 0 || status == http.StatusRequestTimeout || status >= 500:
		a.report(false)
	default:
		a.report(true)
		g.mu.Lock()
		g.lastSuccess = now
		g.mu.Unlock()
		if g.limiter != nil && g.limiter.Limit() < g.full {
			// Additive increase back to the configured rate.
			g.limiter.SetLimitAt(now, min(g.full, g.limiter.Limit()+g.full*minRateFraction))
		}
	}
}

func (a *attempt) report(ok bool) {
	if a.done == nil {
		return
	}
	if ok {
		a.done(nil)
	} else {
		a.done(errAttemptFailed)
	}
	a.done = nil
}

// upSince reports whether the endpoint has answered since t: if it has not,
// a delivery that ran out of attempts met an outage, not a bad record.
func (g *gate) upSince(t time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastSuccess.After(t)
}
