// Package hubtest has the pieces the hub's integration and end-to-end tests
// share: a webhook receiver that verifies signatures like a real one, and a
// way to wait for a condition without sleeping a fixed time.
package hubtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synchub/synchub/connectors/webhook"
)

// Eventually polls cond until it holds or timeout passes, then fails the
// test with what. It waits on a condition, never a fixed time.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Delivery is one verified webhook request.
type Delivery struct {
	Customer string
	ID       string
	Type     string
	Data     Snapshot
}

// Snapshot is the part of a user snapshot the tests check.
type Snapshot struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organization_id"`
	Version        int64  `json:"version"`
	Name           string `json:"name"`
	Email          string `json:"email"`
	LoginsCount    int64  `json:"logins_count"`
	LoginsFailed   int64  `json:"logins_failed_count"`
}

// Receiver is a webhook endpoint per customer at /hooks/<customer>. It
// verifies every signature and records what it accepted. Status, when set,
// decides the answer per customer and request number (1-based).
type Receiver struct {
	Secrets map[string]webhook.Secret
	Status  func(customer string, n int) int
	// Delay, when set, is how long customer's endpoint takes to answer.
	Delay func(customer string) time.Duration

	mu         sync.Mutex
	requests   map[string]int
	times      map[string][]time.Time
	deliveries []Delivery
	latest     map[string]Delivery // customer/user → newest accepted
	regressed  []string
	badSig     int
}

// NewReceiver returns a receiver for customers with these secrets.
func NewReceiver(secrets map[string]webhook.Secret) *Receiver {
	return &Receiver{Secrets: secrets, requests: map[string]int{}, times: map[string][]time.Time{}, latest: map[string]Delivery{}}
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	customer := strings.TrimPrefix(req.URL.Path, "/hooks/")
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.requests[customer]++
	r.times[customer] = append(r.times[customer], time.Now())
	n := r.requests[customer]
	r.mu.Unlock()
	if r.Delay != nil {
		time.Sleep(r.Delay(customer))
	}
	if r.Status != nil {
		if code := r.Status(customer, n); code != http.StatusOK {
			http.Error(w, "configured failure", code)
			return
		}
	}
	secret, ok := r.Secrets[customer]
	if !ok || webhook.Verify(secret, req.Header, body, 5*time.Minute, time.Now()) != nil {
		r.mu.Lock()
		r.badSig++
		r.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	events, err := decodeBody(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range events {
		d := Delivery{Customer: customer, ID: req.Header.Get("webhook-id"), Type: ev.Type, Data: ev.Data}
		key := customer + "/" + d.Data.ID
		prev, seen := r.latest[key]
		if seen && prev.Data.Version > d.Data.Version {
			r.regressed = append(r.regressed, key)
		}
		if !seen || d.Data.Version >= prev.Data.Version {
			r.latest[key] = d
		}
		r.deliveries = append(r.deliveries, d)
	}
	w.WriteHeader(http.StatusNoContent)
}

type event struct {
	Type string   `json:"type"`
	Data Snapshot `json:"data"`
}

// decodeBody accepts the single-event body and the batch body of the
// webhook contract.
func decodeBody(body []byte) ([]event, error) {
	var probe struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, err
	}
	if probe.Type != "batch" {
		var ev event
		err := json.Unmarshal(body, &ev)
		return []event{ev}, err
	}
	var events []event
	err := json.Unmarshal(probe.Data, &events)
	return events, err
}

// RequestTimes returns when customer's endpoint received each request.
func (r *Receiver) RequestTimes(customer string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.times[customer]...)
}

// Latest returns the newest accepted snapshot of every user of customer.
func (r *Receiver) Latest(customer string) map[string]Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]Snapshot{}
	for _, d := range r.latest {
		if d.Customer == customer {
			out[d.Data.ID] = d.Data
		}
	}
	return out
}

// Requests is how many requests customer's endpoint received.
func (r *Receiver) Requests(customer string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[customer]
}

// Deliveries returns every accepted delivery.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Regressions lists customer/user keys that received an older version after
// a newer one; BadSignatures counts requests that failed verification.
func (r *Receiver) Regressions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.regressed...)
}

// BadSignatures counts requests whose signature did not verify.
func (r *Receiver) BadSignatures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.badSig
}

// Serve starts a Receiver for customers, all signing with secret, and
// returns it with its base URL. It stops when the test ends.
func Serve(t testing.TB, secret string, customers []string) (*Receiver, string) {
	t.Helper()
	s, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]webhook.Secret{}
	for _, c := range customers {
		secrets[c] = s
	}
	r := NewReceiver(secrets)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL
}
