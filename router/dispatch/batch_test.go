package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/synchub/synchub/connectors/webhook"
	"github.com/synchub/synchub/retry"
)

// recorder is a Deliverer that keeps every batch and answers with answer.
type recorder struct {
	mu      sync.Mutex
	batches [][]string // "id@version" per record
	answer  func(batch []string) error
}

func (r *recorder) DeliverBatch(_ context.Context, _ webhook.Endpoint, _ webhook.Policy, gate webhook.Gate, _ string, snapshots [][]byte) error {
	if err := gate.Wait(context.Background()); err != nil {
		return err
	}
	var batch []string
	for _, s := range snapshots {
		var v struct {
			ID      string `json:"id"`
			Version int64  `json:"version"`
		}
		_ = json.Unmarshal(s, &v)
		batch = append(batch, fmt.Sprintf("%s@%d", v.ID, v.Version))
	}
	r.mu.Lock()
	r.batches = append(r.batches, batch)
	r.mu.Unlock()
	var err error
	if r.answer != nil {
		err = r.answer(batch)
	}
	if err == nil {
		gate.Done(200, 0, nil)
	} else {
		gate.Done(503, 0, nil)
	}
	return err
}

func (r *recorder) all() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.batches...)
}

func newTestPair(d Deliverer, batchSize int, linger time.Duration) *pair {
	return &pair{
		route: Route{Target: WebhookTarget{Client: d}, BatchSize: batchSize}, entityType: "user",
		gate:   newGate("t", nil, Circuit{Failures: 100, OpenFor: time.Second}, realClock{}, nil),
		linger: linger, sem: make(chan struct{}, 4), ctx: context.Background(),
		requests: func(int) {}, delivered: map[string]int64{},
	}
}

func rec(id string, v int64) *record {
	return &record{id: id, version: v, item: []byte(fmt.Sprintf(`{"id":%q,"version":%d}`, id, v)), done: make(chan error, 1)}
}

// submitAll submits records concurrently and returns their outcomes by
// "id@version".
func submitAll(p *pair, recs ...*record) map[string]error {
	var mu sync.Mutex
	out := map[string]error{}
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.submit(context.Background(), r)
			mu.Lock()
			out[fmt.Sprintf("%s@%d", r.id, r.version)] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func TestBatchFlushesAtSizeAndAfterLinger(t *testing.T) {
	d := &recorder{}
	p := newTestPair(d, 3, time.Hour)
	outcomes := submitAll(p, rec("a", 1), rec("b", 1), rec("c", 1))
	if got := d.all(); len(got) != 1 || len(got[0]) != 3 {
		t.Fatalf("batches %v, want one of three sent at batch_size without waiting for linger", got)
	}
	for k, err := range outcomes {
		if err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}

	d2 := &recorder{}
	p2 := newTestPair(d2, 100, 10*time.Millisecond)
	start := time.Now()
	submitAll(p2, rec("a", 1), rec("b", 1))
	if got := d2.all(); len(got) != 1 || len(got[0]) != 2 {
		t.Fatalf("batches %v, want one partial batch after linger", got)
	}
	if time.Since(start) < 10*time.Millisecond {
		t.Error("partial batch went out before linger")
	}
}

func TestBatchCoalescesAndDropsOlderVersions(t *testing.T) {
	d := &recorder{}
	p := newTestPair(d, 2, time.Hour)
	older := rec("a", 1)
	olderDone := make(chan error, 1)
	go func() { olderDone <- p.submit(context.Background(), older) }()
	for {
		p.mu.Lock()
		n := len(p.waiting)
		p.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	newerDone := make(chan error, 1)
	go func() { newerDone <- p.submit(context.Background(), rec("a", 2)) }()
	if err := <-olderDone; err != nil {
		t.Errorf("superseded record: %v, want nil (nothing to deliver)", err)
	}
	outcomes := submitAll(p, rec("b", 1))
	outcomes["a@2"] = <-newerDone
	if got := d.all(); len(got) != 1 || fmt.Sprint(got[0]) != "[a@2 b@1]" && fmt.Sprint(got[0]) != "[b@1 a@2]" {
		t.Fatalf("batches %v, want a@2 and b@1 once each", got)
	}
	for k, err := range outcomes {
		if err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	// Once a@2 reached the endpoint, a@1 arriving late is dropped unsent.
	if err := p.submit(context.Background(), rec("a", 1)); err != nil {
		t.Fatal(err)
	}
	if got := d.all(); len(got) != 1 {
		t.Errorf("an older version was sent after a newer one: %v", got)
	}
}

// A replayed or resynced record (resend) goes out again even when its
// version was delivered, but never when a newer one was.
func TestResendDeliversTheSameVersionAgainButNeverAnOlder(t *testing.T) {
	d := &recorder{}
	p := newTestPair(d, 1, 0)
	resend := func(id string, v int64) *record { r := rec(id, v); r.resend = true; return r }
	for _, r := range []*record{rec("a", 2), rec("a", 2), resend("a", 2), resend("a", 1), resend("a", 3)} {
		if err := p.submit(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(d.all()); got != "[[a@2] [a@2] [a@3]]" {
		t.Errorf("sent %s, want a@2, a@2 again as a resend, then a@3", got)
	}
}

func TestBatchOutcomesPerRecord(t *testing.T) {
	// The second record of the first batch is malformed: only it fails,
	// and the rest go again without it.
	d := &recorder{}
	d.answer = func(batch []string) error {
		if len(batch) == 3 {
			return &retry.Error{Class: retry.InvalidInput, Err: &webhook.BatchInputError{Index: 1, Err: errors.New("bad")}}
		}
		return nil
	}
	p := newTestPair(d, 3, time.Hour)
	r1, r2, r3 := rec("a", 1), rec("b", 1), rec("c", 1)
	out := submitAll(p, r1, r2, r3)
	var bad error
	for k, err := range out {
		if err != nil {
			if bad != nil {
				t.Errorf("more than one record failed: %s: %v", k, err)
			}
			bad = err
		}
	}
	if !retry.Terminal(bad) {
		t.Errorf("malformed record outcome %v, want terminal", bad)
	}
	if got := d.all(); len(got) != 2 || len(got[1]) != 2 {
		t.Errorf("batches %v, want the two good records resent", got)
	}
}

func TestExhaustedDuringOutageIsHeldNotDeadLettered(t *testing.T) {
	exhausted := &retry.Error{Class: retry.Exhausted, HTTPStatus: 503, Attempts: 20, Err: errors.New("503")}
	d := &recorder{answer: func([]string) error { return exhausted }}
	p := newTestPair(d, 1, 0)
	err := p.submit(context.Background(), rec("a", 1))
	if !errors.Is(err, ErrHeld) || retry.Terminal(err) {
		t.Fatalf("outage outcome %v, want held (not terminal)", err)
	}

	// The endpoint answers others, but this record keeps failing: it is
	// the record, so it is dead-lettered.
	d.answer = func(batch []string) error {
		if batch[0] == "poison@1" {
			return exhausted
		}
		return nil
	}
	d.answer = func(batch []string) error {
		if batch[0] == "poison@1" {
			// Another record of the pair goes through while this one fails.
			mark := time.Now()
			if err := p.submit(context.Background(), rec("ok2", 1)); err != nil {
				t.Error(err)
			}
			if !p.gate.upSince(mark) {
				t.Error("a success did not count as the endpoint being up")
			}
			return exhausted
		}
		return nil
	}
	err = p.submit(context.Background(), rec("poison", 1))
	if !retry.Terminal(err) {
		t.Fatalf("record failing while the endpoint answers others: %v, want terminal", err)
	}
}
