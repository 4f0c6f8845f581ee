package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/synchub/synchub/retry"
)

// ErrHeld is returned for records held back because their endpoint is down:
// they are not dead-lettered but delivered again once it answers.
var ErrHeld = errors.New("endpoint down: record held for redelivery")

// record is one entity version waiting for its pair's next request.
type record struct {
	id      string
	version int64
	// item is what the target sends: the snapshot, or the mapped record.
	item any
	// resend delivers the record even when its version was delivered
	// already (never when a newer one was).
	resend bool
	done   chan error // receives the record's outcome once
}

// pair batches, rate-limits and sends the records of one customer and
// entity type. Records of one entity never wait side by side: a newer
// snapshot supersedes a waiting older one (coalescing).
type pair struct {
	route      Route
	entityType string
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

// deliveredVersion is the newest version of entity id delivered, 0 if none.
func (p *pair) deliveredVersion(id string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delivered[id]
}

// submit queues r and waits for its outcome.
func (p *pair) submit(ctx context.Context, r *record) error {
	p.mu.Lock()
	if v, ok := p.delivered[r.id]; ok && (r.version < v || r.version == v && !r.resend) {
		p.mu.Unlock()
		return nil // this or a newer version already reached the endpoint
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
		for _, r := range batch {
			r.done <- p.ctx.Err()
		}
		return
	}
	defer func() { <-p.sem }()
	items := make([]any, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	p.requests(1)
	started := p.gate.clock.Now()
	errs := p.route.Target.Send(p.ctx, p.gate.forDelivery(), p.entityType, items)
	var ok []*record
	for i, r := range batch {
		err := errs[i]
		switch {
		case err == nil:
			ok = append(ok, r)
		case retry.ClassOf(err) == retry.Exhausted && !p.gate.upSince(started):
			err = fmt.Errorf("%w: %v", ErrHeld, err)
		}
		r.done <- err
	}
	p.markDelivered(ok)
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
