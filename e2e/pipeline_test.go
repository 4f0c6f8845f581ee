//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/synchub/synchub/internal/hubtest"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/retry"
)

var fiveCustomers = []string{"org_1", "org_2", "org_3", "org_4", "org_5"}

// malformed returns n records that break the envelope rules in different
// ways, each keyed "bad_<i>".
func malformed(n int) []string {
	shapes := []string{
		`not json at all`,
		`{"event_type":"userCreated"`,
		`[1,2,3]`,
		`{"entity_id":"u_0001","timestamp":"2026-11-25T10:00:00Z"}`,
		`{"event_type":"userLoggedIn","timestamp":"2026-11-25T10:00:00Z"}`,
		`{"event_type":"userLoggedIn","entity_id":"u_0001","timestamp":"yesterday"}`,
		`{"event_type":"userCreated","entity_id":"x","timestamp":"2026-11-25T10:00:00Z","event":{"name":"no org"}}`,
		`{"event_type":"userUpdated","entity_id":"ghost_%d","timestamp":"2026-11-25T10:00:00Z","event":{"name":"nobody"}}`,
		`{"event_type":"userUpdated","entity_id":"u_0001","timestamp":"2026-11-25T10:00:00Z","event":{"name":42}}`,
		`{"event_type":7,"entity_id":"u_0001","timestamp":"2026-11-25T10:00:00Z"}`,
	}
	out := make([]string, n)
	for i := range n {
		v := shapes[i%len(shapes)]
		if strings.Contains(v, "%d") {
			v = fmt.Sprintf(v, i)
		}
		out[i] = fmt.Sprintf("bad_%d\t%s", i, v)
	}
	return out
}

// interleave mixes extra records into lines at random places, keeping the
// order within lines.
func interleave(seed uint64, lines, extra []string) []string {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]string, 0, len(lines)+len(extra))
	i, j := 0, 0
	for i < len(lines) || j < len(extra) {
		if j < len(extra) && (i == len(lines) || rng.IntN(len(lines)+len(extra)) < len(extra)) {
			out = append(out, extra[j])
			j++
		} else {
			out = append(out, lines[i])
			i++
		}
	}
	return out
}

func TestSeedEventsReachEveryCustomerWithInvalidOnesSetAside(t *testing.T) {
	r, url := receiver(t, fiveCustomers)
	h := newHub(t, url, fiveCustomers)
	h.start()

	lines, want := workload(1, fiveCustomers, 500, 20000)
	const nBad, nUnknown = 800, 50
	var extra []string
	extra = append(extra, malformed(nBad)...)
	for i := range nUnknown {
		extra = append(extra, fmt.Sprintf(`u_%04d	{"event_type":"userTeleported","entity_id":"u_%04d","timestamp":"2026-11-25T10:00:00Z"}`, i, i))
	}
	start := time.Now()
	h.produce(interleave(2, lines, extra))
	hubtest.Eventually(t, 3*time.Minute, "every user's final state delivered", func() bool {
		done, total := delivered(r, want, nil)
		return done == total
	})
	t.Logf("20,000 events for 500 users of 5 customers delivered in %v", time.Since(start).Round(time.Millisecond))
	checkFinal(t, r, want, nil)

	invalid := h.readTopic(kafka.TopicEventsInvalid)
	if len(invalid) != nBad {
		t.Errorf("events.invalid holds %d records, want %d", len(invalid), nBad)
	}
	seen := map[string]bool{}
	for _, line := range invalid {
		key, hdrs, _ := strings.Cut(line, "\t")
		seen[key] = true
		if !strings.Contains(hdrs, kafka.HeaderError+"=") {
			t.Errorf("invalid record %s has no %s header: %q", key, kafka.HeaderError, hdrs)
		}
	}
	for i := range nBad {
		if !seen[fmt.Sprintf("bad_%d", i)] {
			t.Errorf("bad_%d missing from events.invalid", i)
		}
	}
	if !h.alive() || h.get("/healthz") != http.StatusOK {
		t.Error("synchub is not up after the malformed records")
	}
}

func TestKillNineThreeTimesWhileDraining(t *testing.T) {
	r, url := receiver(t, fiveCustomers)
	h := newHub(t, url, fiveCustomers)
	h.start()
	lines, want := workload(3, fiveCustomers, 500, 30000)
	h.produce(lines)
	// Kill at three points of the drain, each awaited on progress so the
	// kills land mid-stream: after the first deliveries, and then once a
	// quarter and a half of the users have arrived in their final state.
	points := []struct {
		what string
		at   func() bool
	}{
		{"first deliveries", func() bool { return len(r.Deliveries()) >= 100 }},
		{"a quarter of the users final", func() bool { done, total := delivered(r, want, nil); return done >= total/4 }},
		{"half of the users final", func() bool { done, total := delivered(r, want, nil); return done >= total/2 }},
	}
	for _, p := range points {
		hubtest.Eventually(t, 2*time.Minute, p.what, p.at)
		if done, total := delivered(r, want, nil); done == total {
			t.Fatalf("the drain finished before the kill at %q: the kills must land mid-stream", p.what)
		}
		h.kill()
		h.start()
	}
	hubtest.Eventually(t, 3*time.Minute, "every user's final state delivered after three kills", func() bool {
		done, total := delivered(r, want, nil)
		return done == total
	})
	checkFinal(t, r, want, nil)
}

func TestRejectingAndRecoveringEndpoints(t *testing.T) {
	r, url := receiver(t, fiveCustomers)
	// org_4 rejects everything; org_5 is down (503) for its first 400
	// requests, then recovers.
	r.Status = func(customer string, n int) int {
		switch {
		case customer == "org_4":
			return http.StatusBadRequest
		case customer == "org_5" && n <= 400:
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	h := newHub(t, url, fiveCustomers)
	h.start()
	lines, want := workload(4, fiveCustomers, 250, 5000)
	h.produce(lines)
	skip := map[string]bool{"org_4": true}
	hubtest.Eventually(t, 3*time.Minute, "other customers delivered in full", func() bool {
		done, total := delivered(r, want, skip)
		if done != total && time.Now().Second()%10 == 0 {
			t.Logf("%d/%d users final; requests per customer: %d %d %d %d %d", done, total,
				r.Requests("org_1"), r.Requests("org_2"), r.Requests("org_3"), r.Requests("org_4"), r.Requests("org_5"))
		}
		return done == total
	})
	checkFinal(t, r, want, skip)
	if n := r.Requests("org_5"); n <= 400 {
		t.Errorf("org_5 saw %d requests; the outage was not exercised", n)
	}

	// Every org_4 user's newest snapshot is dead-lettered (older ones may
	// have been coalesced away), and nothing of anyone else.
	newestDead := func(dlq []string) map[string]int64 {
		got := map[string]int64{}
		for _, line := range dlq {
			parts := strings.SplitN(line, "\t", 3)
			var snap struct {
				ID      string `json:"id"`
				Version int64  `json:"version"`
			}
			if len(parts) == 3 && json.Unmarshal([]byte(parts[2]), &snap) == nil && snap.Version > got[snap.ID] {
				got[snap.ID] = snap.Version
			}
		}
		return got
	}
	var dlq []string
	hubtest.Eventually(t, time.Minute, "every org_4 user's newest snapshot dead-lettered", func() bool {
		dlq = h.readTopic(kafka.DLQTopic("webhook"))
		dead := newestDead(dlq)
		for id, w := range want {
			if w.org == "org_4" && dead[id] != w.version {
				return false
			}
		}
		return true
	})
	for _, line := range dlq {
		_, hdrs, _ := strings.Cut(line, "\t")
		for _, want := range []string{retry.HeaderCustomer + "=org_4", retry.HeaderErrorClass + "=permanent", retry.HeaderHTTPStatus + "=400", retry.HeaderTopic + "=entity.user"} {
			if !strings.Contains(hdrs, want) {
				t.Fatalf("DLQ record headers %q lack %s", hdrs, want)
			}
		}
	}
	key := strings.TrimPrefix(secret, "whsec_")
	for _, line := range dlq {
		if strings.Contains(line, key) {
			t.Fatal("a DLQ record contains the webhook secret")
		}
	}
	if strings.Contains(h.logs.String(), key) {
		t.Error("the logs contain the webhook secret")
	}
}
