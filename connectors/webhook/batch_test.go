package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synchub/synchub/retry"
)

// trace records, in order, what the gate and the receiver saw.
type trace struct {
	mu     sync.Mutex
	events []string
}

func (tr *trace) add(e string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.events = append(tr.events, e)
}

func (tr *trace) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.events, ", ")
}

type doneCall struct {
	status     int
	retryAfter time.Duration
	err        error
}

// testGate records its calls; hold, if set, decides the n-th Wait
// (n from 1).
type testGate struct {
	trace *trace
	hold  func(ctx context.Context, n int) error

	mu    sync.Mutex
	waits int
	dones []doneCall
}

func (g *testGate) Wait(ctx context.Context) error {
	g.mu.Lock()
	g.waits++
	n := g.waits
	g.mu.Unlock()
	if g.trace != nil {
		g.trace.add("wait")
	}
	if g.hold != nil {
		return g.hold(ctx, n)
	}
	return nil
}

func (g *testGate) Done(status int, retryAfter time.Duration, err error) {
	g.mu.Lock()
	g.dones = append(g.dones, doneCall{status, retryAfter, err})
	g.mu.Unlock()
	if g.trace != nil {
		g.trace.add(fmt.Sprintf("done %d", status))
	}
}

func (g *testGate) counts() (waits int, dones []doneCall) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waits, append([]doneCall(nil), g.dones...)
}

var batchIDRe = regexp.MustCompile(`^msg_batch_[0-9a-f]{32}$`)

func TestDeliverBatchBodyAndSignature(t *testing.T) {
	rc := newReceiver(t, status(http.StatusOK, ""))
	c := NewClient(nil)
	ep := endpoint(t, rc)
	snaps := [][]byte{snapshot("u_1", 1), []byte("  " + string(snapshot("ann@example.com", 3)) + "\n"), snapshot("u_3", 2)}

	if err := c.DeliverBatch(context.Background(), ep, fast, nil, "user", snaps); err != nil {
		t.Fatalf("DeliverBatch: %v", err)
	}
	hits := rc.Hits()
	if len(hits) != 1 {
		t.Fatalf("requests = %d, want 1", len(hits))
	}
	h := hits[0]

	// Exact shape: each element is the single-delivery body, in order.
	want := []byte(`{"type":"batch","data":[`)
	for i, s := range snaps {
		m, err := newMessage("user", s)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			want = append(want, ',')
		}
		want = append(want, m.body...)
	}
	want = append(want, `]}`...)
	if !bytes.Equal(h.body, want) {
		t.Fatalf("body:\n got %s\nwant %s", h.body, want)
	}
	var batch struct {
		Type string            `json:"type"`
		Data []json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(h.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&batch); err != nil || batch.Type != "batch" || len(batch.Data) != 3 {
		t.Fatalf("batch %s: type %q, %d events, %v", h.body, batch.Type, len(batch.Data), err)
	}
	var types []string
	for i, raw := range batch.Data {
		var ev event
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !bytes.Equal(ev.Data, bytes.TrimSpace(snaps[i])) || ev.Timestamp != "2026-11-25T10:05:00.5+01:00" {
			t.Errorf("event %d: data %s, timestamp %s", i, ev.Data, ev.Timestamp)
		}
		types = append(types, ev.Type)
	}
	if fmt.Sprint(types) != "[user.created user.updated user.updated]" {
		t.Errorf("types = %v", types)
	}

	if err := Verify(ep.Secret, h.header, h.body, time.Minute, time.Now()); err != nil {
		t.Fatalf("receiver rejects the batch signature: %v", err)
	}
	if err := Verify(ep.Secret, h.header, want[:len(want)-2], time.Minute, time.Now()); err == nil {
		t.Fatal("signature does not cover the whole body")
	}
	id := h.header.Get("webhook-id")
	if !batchIDRe.MatchString(id) {
		t.Fatalf("webhook-id %q, want msg_batch_<32 hex>", id)
	}
	if ct := h.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	// Same set in another order: same id; another version: another id.
	reordered := [][]byte{snaps[2], snaps[0], snaps[1]}
	changed := [][]byte{snaps[0], snapshot("ann@example.com", 4), snaps[2]}
	for _, b := range [][][]byte{reordered, changed} {
		if err := c.DeliverBatch(context.Background(), ep, fast, nil, "user", b); err != nil {
			t.Fatal(err)
		}
	}
	hits = rc.Hits()
	if got := hits[1].header.Get("webhook-id"); got != id {
		t.Errorf("reordered batch: webhook-id %s, want %s", got, id)
	}
	if got := hits[2].header.Get("webhook-id"); got == id || !batchIDRe.MatchString(got) {
		t.Errorf("batch with a new version: webhook-id %s (first batch %s)", got, id)
	}
}

func TestBatchID(t *testing.T) {
	a, b, c := messageID("user", "u_1", 1), messageID("user", "u_2", 7), messageID("user", "u_3", 2)
	id := batchID([]string{a, b, c})
	if !batchIDRe.MatchString(id) {
		t.Fatalf("batchID = %s", id)
	}
	if batchID([]string{c, a, b}) != id || batchID([]string{a, b, c, a}) != id {
		t.Error("batchID depends on order or repeats")
	}
	for _, other := range [][]string{{a, b}, {a, b, messageID("user", "u_3", 3)}, {a, b, messageID("campaign", "u_3", 2)}} {
		if batchID(other) == id {
			t.Errorf("batchID(%q) = batchID of another set", other)
		}
	}
}

// batch_size 1 must be indistinguishable from Deliver.
func TestDeliverBatchOfOneIsDeliver(t *testing.T) {
	rc := newReceiver(t, status(http.StatusOK, ""))
	c := NewClient(nil)
	c.now = func() time.Time { return time.Unix(1_800_000_000, 0) }
	ep := endpoint(t, rc)
	snap := snapshot("u_42", 3)

	if err := c.Deliver(context.Background(), ep, fast, "user", snap); err != nil {
		t.Fatal(err)
	}
	if err := c.DeliverBatch(context.Background(), ep, fast, nil, "user", [][]byte{snap}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeliverBatch(context.Background(), ep, fast, &testGate{}, "user", [][]byte{snap}); err != nil {
		t.Fatal(err)
	}
	hits := rc.Hits()
	if len(hits) != 3 {
		t.Fatalf("requests = %d, want 3", len(hits))
	}
	if id := hits[0].header.Get("webhook-id"); id != "msg_user_u_42_v3" {
		t.Errorf("Deliver webhook-id %q", id)
	}
	for i, h := range hits[1:] {
		if !bytes.Equal(h.body, hits[0].body) {
			t.Errorf("batch %d body:\n got %s\nwant %s", i+1, h.body, hits[0].body)
		}
		for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", "Content-Type", "User-Agent", "Content-Length"} {
			if got, want := h.header.Values(k), hits[0].header.Values(k); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("batch %d %s = %q, Deliver sent %q", i+1, k, got, want)
			}
		}
	}
}

func TestDeliverBatchInvalidSnapshot(t *testing.T) {
	rc := newReceiver(t, status(http.StatusOK, ""))
	c := NewClient(nil)
	ep := endpoint(t, rc)
	noVersion := []byte(`{"id": "u_3", "updated_at": "2026-11-25T10:05:00Z"}`)
	g := &testGate{}

	for _, tc := range []struct {
		snaps [][]byte
		index int
	}{
		{[][]byte{snapshot("u_1", 1), snapshot("u_2", 2), noVersion}, 2},
		{[][]byte{snapshot("u_1", 1), []byte("not json"), noVersion}, 1},
		{[][]byte{noVersion}, 0},
	} {
		err := c.DeliverBatch(context.Background(), ep, fast, g, "user", tc.snaps)
		re := asRetryError(t, err, retry.InvalidInput)
		var bie *BatchInputError
		if !errors.As(err, &bie) || bie.Index != tc.index {
			t.Fatalf("error %v: want a *BatchInputError with Index %d, got %+v", err, tc.index, bie)
		}
		if re.Attempts != 0 || !strings.Contains(err.Error(), fmt.Sprintf("[%d]", tc.index)) {
			t.Errorf("attempts %d, message %q", re.Attempts, err)
		}
	}

	// A bad entity type spoils every snapshot: no index to single out.
	err := c.DeliverBatch(context.Background(), ep, fast, g, "User", [][]byte{snapshot("u_1", 1), snapshot("u_2", 1)})
	asRetryError(t, err, retry.InvalidInput)
	var bie *BatchInputError
	if errors.As(err, &bie) {
		t.Errorf("bad entity type blamed on snapshot %d", bie.Index)
	}

	if err := c.DeliverBatch(context.Background(), ep, fast, g, "user", nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	if n := len(rc.Hits()); n != 0 {
		t.Fatalf("%d requests made for invalid input", n)
	}
	if waits, dones := g.counts(); waits != 0 || len(dones) != 0 {
		t.Fatalf("gate consulted for invalid input: %d waits, %d dones", waits, len(dones))
	}
}

// Wait comes before every attempt, retries included, and Done after it
// with what it got.
func TestGateAroundEveryAttempt(t *testing.T) {
	tr := &trace{}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		tr.add("hit " + strconv.Itoa(n))
		switch n {
		case 1: // hang past RequestTimeout
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 3:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case 4:
			w.Header().Set("Retry-After", "7") // passed on, though 500's Retry-After is not honoured
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	})
	g := &testGate{trace: tr}
	p := fast
	p.MaxAttempts, p.RequestTimeout = 6, 250*time.Millisecond
	if err := NewClient(nil).DeliverBatch(context.Background(), endpoint(t, rc), p, g, "user", [][]byte{snapshot("u_1", 2), snapshot("u_2", 2)}); err != nil {
		t.Fatalf("DeliverBatch: %v", err)
	}
	want := "wait, hit 1, done 0, wait, hit 2, done 503, wait, hit 3, done 429, wait, hit 4, done 500, wait, hit 5, done 202"
	if got := tr.String(); got != want {
		t.Fatalf("sequence:\n got %s\nwant %s", got, want)
	}
	waits, dones := g.counts()
	if hits := len(rc.Hits()); waits != hits || len(dones) != hits {
		t.Fatalf("%d waits, %d dones for %d requests", waits, len(dones), hits)
	}
	if d := dones[0]; d.err == nil || d.status != 0 || strings.Contains(d.err.Error(), "querytoken") {
		t.Errorf("timed-out attempt: Done(%d, %s, %v), want a redacted error", d.status, d.retryAfter, d.err)
	}
	for i, want := range []doneCall{{503, 0, nil}, {429, 0, nil}, {500, 7 * time.Second, nil}, {202, 0, nil}} {
		if d := dones[i+1]; d != want {
			t.Errorf("attempt %d: Done(%d, %s, %v), want Done(%d, %s, nil)", i+2, d.status, d.retryAfter, d.err, want.status, want.retryAfter)
		}
	}
}

// The Retry-After of a response that ends the delivery reaches the gate,
// which may hold the endpoint that long.
func TestGateGetsRetryAfterOfLastAttempt(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	g := &testGate{}
	err := NewClient(nil).DeliverBatch(context.Background(), endpoint(t, rc), fast, g, "user", [][]byte{snapshot("u_1", 2)})
	re := asRetryError(t, err, retry.Exhausted)
	waits, dones := g.counts()
	if re.Attempts != 1 || waits != 1 || len(dones) != 1 || dones[0] != (doneCall{429, time.Hour, nil}) {
		t.Fatalf("attempts %d, waits %d, dones %+v", re.Attempts, waits, dones)
	}
}

// A gate holding a delivery (open circuit) longer than MaxElapsed, and
// than RequestTimeout, does not time it out; the attempt made after the
// hold is signed then, not before.
func TestGateHoldDoesNotCountTowardMaxElapsed(t *testing.T) {
	rc := newReceiver(t, failThen(http.StatusServiceUnavailable))
	c := NewClient(nil)
	var clock atomic.Int64
	clock.Store(1_800_000_000)
	c.now = func() time.Time { return time.Unix(clock.Load(), 0) }
	ep := endpoint(t, rc)

	p := Policy{MaxAttempts: 5, InitialInterval: 5 * time.Millisecond, MaxInterval: 5 * time.Millisecond, MaxElapsed: 100 * time.Millisecond, RequestTimeout: 150 * time.Millisecond}
	const hold = 300 * time.Millisecond // > MaxElapsed and > RequestTimeout
	held := make(chan int, 2)
	releases := []chan struct{}{make(chan struct{}), make(chan struct{})}
	g := &testGate{hold: func(ctx context.Context, n int) error {
		held <- n
		select {
		case <-releases[n-1]:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}

	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.DeliverBatch(context.Background(), ep, p, g, "user", [][]byte{snapshot("u_1", 2)}) }()
	for i, ts := range []int64{1_800_000_100, 1_800_000_200} {
		select {
		case n := <-held:
			if n != i+1 {
				t.Fatalf("hold %d reported as Wait %d", i+1, n)
			}
		case err := <-done:
			t.Fatalf("delivery ended during hold %d: %v", i+1, err)
		}
		time.Sleep(hold) // the time the gate holds, not synchronisation
		clock.Store(ts)
		close(releases[i])
	}
	if err := <-done; err != nil {
		t.Fatalf("delivery held by its gate failed: %v", err)
	}
	if elapsed := time.Since(start); elapsed < 2*hold {
		t.Fatalf("took %s: the gate did not hold it", elapsed)
	}
	hits := rc.Hits()
	if len(hits) != 2 {
		t.Fatalf("requests = %d, want 2", len(hits))
	}
	for i, h := range hits {
		want := strconv.Itoa(1_800_000_100 + 100*i)
		if ts := h.header.Get("webhook-timestamp"); ts != want {
			t.Errorf("attempt %d: webhook-timestamp %s, want %s (signed when the gate let it go)", i+1, ts, want)
		}
		tsn, _ := strconv.ParseInt(want, 10, 64)
		if err := Verify(ep.Secret, h.header, h.body, time.Minute, time.Unix(tsn, 0)); err != nil {
			t.Errorf("attempt %d: %v", i+1, err)
		}
	}
	if _, dones := g.counts(); len(dones) != 2 || dones[0].status != 503 || dones[1].status != 200 {
		t.Errorf("dones = %+v", dones)
	}
}

func TestGateWaitInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name      string
		holdAt    int   // the Wait that blocks
		wantHits  int   // requests made before
		cancelErr error // what the caller's ctx ends with: Canceled (cancel) or DeadlineExceeded
	}{
		{"before first attempt", 1, 0, context.Canceled},
		{"before retry", 2, 1, context.Canceled},
		{"caller deadline", 2, 1, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, status(http.StatusBadGateway, ""))
			held := make(chan struct{}, 1)
			g := &testGate{hold: func(ctx context.Context, n int) error {
				if n < tc.holdAt {
					return nil
				}
				held <- struct{}{}
				<-ctx.Done()
				return ctx.Err()
			}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelErr == context.DeadlineExceeded {
				// MaxElapsed (5s) is far off; the caller's deadline ends the hold.
				ctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() {
				done <- NewClient(nil).DeliverBatch(ctx, endpoint(t, rc), fast, g, "user", [][]byte{snapshot("u_1", 2), snapshot("u_2", 2)})
			}()
			select {
			case <-held:
			case err := <-done:
				t.Fatalf("delivery ended without Wait %d: %v", tc.holdAt, err)
			}
			if tc.cancelErr == context.Canceled {
				cancel()
			}
			select {
			case err := <-done:
				assertInterrupted(t, err, tc.cancelErr)
			case <-time.After(5 * time.Second):
				t.Fatal("delivery did not end with its context")
			}
			waits, dones := g.counts()
			if hits := len(rc.Hits()); hits != tc.wantHits || waits != tc.holdAt || len(dones) != tc.wantHits {
				t.Fatalf("%d requests, %d waits, %d dones; want %d, %d, %d", hits, waits, len(dones), tc.wantHits, tc.holdAt, tc.wantHits)
			}
		})
	}
}

// A gate refusing on its own (not its context) ends the delivery with its
// error, not as a failure of the endpoint.
func TestGateRefuses(t *testing.T) {
	rc := newReceiver(t, status(http.StatusServiceUnavailable, ""))
	errOpen := errors.New("circuit open")
	g := &testGate{hold: func(_ context.Context, n int) error {
		if n == 2 {
			return errOpen
		}
		return nil
	}}
	err := NewClient(nil).DeliverBatch(context.Background(), endpoint(t, rc), fast, g, "user", [][]byte{snapshot("u_1", 2)})
	if !errors.Is(err, errOpen) {
		t.Fatalf("error %v does not wrap the gate's", err)
	}
	var re *retry.Error
	if errors.As(err, &re) || retry.Terminal(err) {
		t.Fatalf("gate refusal reported as a delivery failure: %v", err)
	}
	if hits := len(rc.Hits()); hits != 1 {
		t.Fatalf("requests = %d, want 1", hits)
	}
}

// The per-call gate and retries keep using the shared pool's connections.
func TestDeliverBatchReusesConnections(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("later"))
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	c := NewClient(nil)
	ep := endpoint(t, rc)
	g := &testGate{}
	for i := range 3 {
		if err := c.DeliverBatch(context.Background(), ep, fast, g, "user", [][]byte{snapshot("u_1", i+1), snapshot("u_2", i+1)}); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	if hits, conns := len(rc.Hits()), rc.conns.Load(); hits != 6 || conns != 1 {
		t.Fatalf("%d connections for %d requests, want 1 for 6", conns, hits)
	}
}
