package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/synchub/synchub/connectors/webhook"
)

// receiver is every customer's webhook endpoint, at /hooks/<customer>. It
// takes latency per request, verifies the Standard Webhooks signature,
// accepts single and batch bodies, checks that no user's version ever goes
// back, and tracks the events of the current phase until a delivered
// snapshot contains them.
type receiver struct {
	secret  webhook.Secret
	latency time.Duration

	mu            sync.Mutex
	newest        map[string]int64 // customer/user → newest version accepted
	regressions   int
	regressed     []string // the first few customer/user keys that went back
	badSignatures int
	badBodies     int
	misrouted     int // snapshots of another customer's user
	phase         *phase
}

// phase is the part of the traffic one benchmark phase measures.
type phase struct {
	since    time.Time // snapshots updated before it are not timed
	pending  map[string][]pendingEvent
	open     int // events expected and not delivered yet
	sealed   bool
	done     chan struct{}
	doneAt   time.Time
	firstAt  time.Time
	requests int
	records  int // snapshots accepted
	eventLat []time.Duration
	snapLat  []time.Duration
}

// pendingEvent is an event not yet delivered: a user version and when it
// was produced (zero: not timed).
type pendingEvent struct {
	version  int64
	produced time.Time
}

// phaseStats is a phase's outcome so far.
type phaseStats struct {
	requests, records, undelivered int
	complete                       bool
	firstAt, doneAt                time.Time
	eventLatencies                 []time.Duration // sorted
	snapshotLatencies              []time.Duration // sorted
}

// maxRegressionExamples bounds the keys kept as examples of regressions.
const maxRegressionExamples = 10

// newReceiver returns an endpoint verifying with secret and taking latency
// per request.
func newReceiver(secret webhook.Secret, latency time.Duration) *receiver {
	return &receiver{secret: secret, latency: latency, newest: map[string]int64{}, phase: newPhase(time.Time{})}
}

func newPhase(since time.Time) *phase {
	return &phase{since: since, pending: map[string][]pendingEvent{}, done: make(chan struct{})}
}

// beginPhase starts counting afresh. Delivered snapshots updated at or
// after since are timed against their updated_at.
func (r *receiver) beginPhase(since time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phase = newPhase(since)
}

// expect registers an event of the phase, before it is produced. Events of
// one user must be registered in version order.
func (r *receiver) expect(e event, produced time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := e.endpointKey()
	r.phase.pending[key] = append(r.phase.pending[key], pendingEvent{version: e.version, produced: produced})
	r.phase.open++
}

// seal says every event of the phase is registered. The channel returned
// is closed once all of them have been delivered.
func (r *receiver) seal() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.phase
	p.sealed = true
	p.maybeDone(time.Now())
	return p.done
}

// stats returns the phase's outcome so far.
func (r *receiver) stats() phaseStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.phase
	s := phaseStats{
		requests: p.requests, records: p.records, undelivered: p.open,
		complete: p.sealed && p.open == 0, firstAt: p.firstAt, doneAt: p.doneAt,
		eventLatencies:    slices.Clone(p.eventLat),
		snapshotLatencies: slices.Clone(p.snapLat),
	}
	slices.Sort(s.eventLatencies)
	slices.Sort(s.snapshotLatencies)
	return s
}

// progress returns the phase's undelivered events and requests so far.
func (r *receiver) progress() (undelivered, requests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phase.open, r.phase.requests
}

// problems returns the correctness counters.
func (r *receiver) problems() (regressions int, examples []string, badSignatures, badBodies, misrouted int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.regressions, slices.Clone(r.regressed), r.badSignatures, r.badBodies, r.misrouted
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	time.Sleep(r.latency) // the endpoint's own work
	r.mu.Lock()
	r.phase.requests++
	r.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(r.secret, req.Header, body, 0, time.Now()); err != nil {
		r.count(&r.badSignatures)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	snaps, err := decodeBody(body)
	if err != nil {
		r.count(&r.badBodies)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.accept(strings.TrimPrefix(req.URL.Path, "/hooks/"), snaps, time.Now())
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) count(n *int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*n++
}

// accept records the snapshots customer's endpoint received at now.
func (r *receiver) accept(customer string, snaps []snapshot, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.phase
	if p.firstAt.IsZero() {
		p.firstAt = now
	}
	for _, s := range snaps {
		if s.OrganizationID != customer {
			r.misrouted++
			continue
		}
		key := customer + "/" + s.ID
		if prev, ok := r.newest[key]; ok && s.Version < prev {
			r.regressions++
			if len(r.regressed) < maxRegressionExamples {
				r.regressed = append(r.regressed, key)
			}
			continue
		}
		r.newest[key] = s.Version
		p.records++
		p.deliver(key, s, now)
	}
	p.maybeDone(now)
}

// deliver resolves the pending events of key that s contains.
func (p *phase) deliver(key string, s snapshot, now time.Time) {
	if !p.since.IsZero() {
		if t, err := time.Parse(time.RFC3339Nano, s.UpdatedAt); err == nil && !t.Before(p.since) {
			p.snapLat = append(p.snapLat, now.Sub(t))
		}
	}
	q := p.pending[key]
	i := 0
	for ; i < len(q) && q[i].version <= s.Version; i++ {
		if !q[i].produced.IsZero() {
			p.eventLat = append(p.eventLat, now.Sub(q[i].produced))
		}
	}
	if i == 0 {
		return
	}
	p.open -= i
	if i == len(q) {
		delete(p.pending, key)
	} else {
		p.pending[key] = q[i:]
	}
}

// maybeDone closes done once the phase is sealed and nothing is pending.
func (p *phase) maybeDone(now time.Time) {
	if p.sealed && p.open == 0 && p.doneAt.IsZero() {
		p.doneAt = now
		close(p.done)
	}
}

// snapshot is the part of a user snapshot the receiver reads.
type snapshot struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organization_id"`
	Version        int64  `json:"version"`
	UpdatedAt      string `json:"updated_at"`
}

// decodeBody reads a single-event body {"type":"user.updated",…,"data":<snapshot>}
// or a batch body {"type":"batch","data":[<single-event body>,…]}. It
// decodes in one pass, the receiver sharing the CPUs with the hub.
func decodeBody(body []byte) ([]snapshot, error) {
	var msg struct {
		Type string   `json:"type"`
		Data userData `json:"data"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, err
	}
	if msg.Data.batch != (msg.Type == "batch") {
		return nil, fmt.Errorf("body of type %q with data of the wrong shape", msg.Type)
	}
	if msg.Data.batch {
		if len(msg.Data.events) == 0 {
			return nil, errors.New("empty batch")
		}
		snaps := make([]snapshot, len(msg.Data.events))
		for i, e := range msg.Data.events {
			if err := checkEvent(e.Type, e.Data); err != nil {
				return nil, err
			}
			snaps[i] = e.Data
		}
		return snaps, nil
	}
	if err := checkEvent(msg.Type, msg.Data.single); err != nil {
		return nil, err
	}
	return []snapshot{msg.Data.single}, nil
}

// userData is a body's data: a snapshot, or the events of a batch.
type userData struct {
	batch  bool
	single snapshot
	events []struct {
		Type string   `json:"type"`
		Data snapshot `json:"data"`
	}
}

// UnmarshalJSON decodes an array as a batch's events and anything else as
// a snapshot.
func (d *userData) UnmarshalJSON(b []byte) error {
	if d.batch = len(b) > 0 && b[0] == '['; d.batch {
		return json.Unmarshal(b, &d.events)
	}
	return json.Unmarshal(b, &d.single)
}

// checkEvent checks the type and snapshot of one user event.
func checkEvent(typ string, s snapshot) error {
	if typ != "user.created" && typ != "user.updated" {
		return fmt.Errorf("unexpected event type %q", typ)
	}
	if s.ID == "" || s.Version < 1 {
		return errors.New("snapshot without id or version")
	}
	return nil
}
