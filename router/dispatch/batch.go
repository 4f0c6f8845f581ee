package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/synchub/synchub/connectors/webhook"
	"github.com/synchub/synchub/retry"
)

// ErrHeld is returned for records held back because their endpoint is down:
// they are not dead-lettered but delivered again once it answers.
var ErrHeld = errors.New("endpoint down: record held for redelivery")

// record is one snapshot waiting for its pair's next request.
type record struct {
	id      string
	version int64
	payload []byte
	done    chan error // receives the record's outcome once
}

// pair batches, rate-limits and sends the records of one customer and
// entity type. Records of one entity never wait side by side: a newer
// snapshot supersedes a waiting older one (coalescing).
type pair struct {
	route      WebhookRoute
	entityType string
	client     Deliverer
	gate       *gate
	linger     time.Duration
	sem        chan struct{} // bounds requests in flight
	ctx        context.Context
	requests   func(n int)

	mu        sync.Mutex
	waiting   []*record
	timer     *time.Timer
	delivered map[string]int64 // newest version delivered per entity
}

// submit queues r and waits for its outcome.
func (p *pair) submit(ctx context.Context, r *record) error {
	p.mu.Lock()
	if v, ok := p.delivered[r.id]; ok && r.version <= v {
		p.mu.Unlock()
		return nil // a newer version already reached the endpoint
	}
	queued := false
	for i, w := range p.waiting {
		if w.id != r.id {
			continue
		}
		if w.version > r.version {
			p.mu.Unlock()
			return nil
		}
		w.done <- nil // superseded before it was sent
		p.waiting[i] = r
		queued = true
		break
	}
	if !queued {
		p.waiting = append(p.waiting, r)
	}
	switch {
	case len(p.waiting) >= max(p.route.BatchSize, 1):
		p.flushLocked()
	case p.timer == nil:
		p.timer = time.AfterFunc(p.linger, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.flushLocked()
		})
	}
	p.mu.Unlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pair) flushLocked() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if len(p.waiting) == 0 {
		return
	}
	batch := p.waiting
	p.waiting = nil
	go p.send(batch)
}

// send delivers batch, resolving every record's outcome.
func (p *pair) send(batch []*record) {
	select {
	case p.sem <- struct{}{}:
	case <-p.ctx.Done():
		resolve(batch, p.ctx.Err())
		return
	}
	defer func() { <-p.sem }()
	for len(batch) > 0 {
		payloads := make([][]byte, len(batch))
		for i, r := range batch {
			payloads[i] = r.payload
		}
		p.requests(1)
		started := p.gate.clock.Now()
		err := p.client.DeliverBatch(p.ctx, p.route.Endpoint, p.route.Policy, p.gate.forDelivery(), p.entityType, payloads)
		var bad *webhook.BatchInputError
		if errors.As(err, &bad) && len(batch) > 1 {
			// Only that record is undeliverable; the others go again.
			batch[bad.Index].done <- err
			batch = append(batch[:bad.Index:bad.Index], batch[bad.Index+1:]...)
			continue
		}
		if err == nil {
			p.markDelivered(batch)
		} else if retry.ClassOf(err) == retry.Exhausted && !p.gate.upSince(started) {
			err = fmt.Errorf("%w: %v", ErrHeld, err)
		}
		resolve(batch, err)
		return
	}
}

func (p *pair) markDelivered(batch []*record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range batch {
		if r.version > p.delivered[r.id] {
			p.delivered[r.id] = r.version
		}
	}
}

func resolve(batch []*record, err error) {
	for _, r := range batch {
		r.done <- err
	}
}
