//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/synchub/synchub/internal/hubtest"
	"github.com/synchub/synchub/kafka"
)

var tenCustomers = []string{"org_0", "org_1", "org_2", "org_3", "org_4", "org_5", "org_6", "org_7", "org_8", "org_9"}

func batched(string) string { return "        batch_size: 20\n" }

func TestRateLimitedCustomerNeverExceedsItsBudget(t *testing.T) {
	customers := []string{"org_slow", "org_free"}
	r, url := receiver(t, customers)
	h := newHub(t, url, customers, func(c string) string {
		if c == "org_slow" {
			return "        batch_size: 5\n        rate_limit: {requests: 4, per: 1s}\n"
		}
		return ""
	})
	h.start()
	lines, want := workload(5, customers, 200, 2000)
	h.produce(lines)
	hubtest.Eventually(t, 2*time.Minute, "both customers delivered", func() bool {
		done, total := delivered(r, want, nil)
		return done == total
	})
	checkFinal(t, r, want, nil)
	times := r.RequestTimes("org_slow")
	if len(times) < 20 {
		t.Fatalf("org_slow got %d requests; too few to show the limit", len(times))
	}
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < time.Second; j++ {
			n++
		}
		if n > 4 {
			t.Fatalf("org_slow received %d requests within one second from %v; its limit is 4", n, times[i].Format(time.StampMilli))
		}
	}
	t.Logf("org_slow: %d requests over %v", len(times), times[len(times)-1].Sub(times[0]).Round(time.Millisecond))
}

// drainTime runs the workload and returns how long the healthy customers
// took to get every user's final state.
func drainTime(t *testing.T, r *hubtest.Receiver, h *hub, want map[string]*expectation, skip map[string]bool, lines []string) time.Duration {
	t.Helper()
	start := time.Now()
	h.produce(lines)
	hubtest.Eventually(t, 2*time.Minute, "healthy customers delivered", func() bool {
		done, total := delivered(r, want, skip)
		return done == total
	})
	return time.Since(start)
}

func TestSlowAndDownCustomersDoNotHoldBackTheOthers(t *testing.T) {
	lines, want := workload(6, tenCustomers, 2000, 20000)
	problem := map[string]bool{"org_8": true, "org_9": true}

	// Baseline: all ten healthy.
	rBase, urlBase := receiver(t, tenCustomers)
	base := newHub(t, urlBase, tenCustomers, batched)
	base.start()
	baseline := drainTime(t, rBase, base, want, problem, lines)
	base.kill()

	// org_8 takes 2 s per request; org_9 answers 503 for its first 20 s.
	r, url := receiver(t, tenCustomers)
	var downSince time.Time
	r.Delay = func(c string) time.Duration {
		if c == "org_8" {
			return 2 * time.Second
		}
		return 0
	}
	r.Status = func(c string, n int) int {
		if c != "org_9" {
			return http.StatusOK
		}
		if n == 1 {
			downSince = time.Now()
		}
		if time.Since(downSince) < 20*time.Second {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	h := newHub(t, url, tenCustomers, batched)
	h.start()
	faulted := drainTime(t, r, h, want, problem, lines)
	t.Logf("eight healthy customers drained in %v with two faulty ones beside them, %v without", faulted.Round(time.Millisecond), baseline.Round(time.Millisecond))
	if limit := 2*baseline + 2*time.Second; faulted > limit {
		t.Errorf("healthy customers took %v beside a slow and a down one, %v alone: more than %v", faulted, baseline, limit)
	}

	// Both faulty customers get everything afterwards, nothing dead-lettered.
	hubtest.Eventually(t, 2*time.Minute, "slow and down customers delivered in full", func() bool {
		done, total := delivered(r, want, nil)
		return done == total
	})
	checkFinal(t, r, want, nil)
	if dlq := h.readTopic(kafka.DLQTopic("webhook")); len(dlq) > 0 {
		t.Errorf("%d records dead-lettered, e.g. %s", len(dlq), strings.SplitN(dlq[0], "\t", 2)[1])
	}
	if n := r.Requests("org_9"); n < 2 {
		t.Errorf("org_9 saw %d requests: the outage was not exercised", n)
	}
}
