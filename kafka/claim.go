package kafka

import (
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// claimLoop emits the records of one claimed partition. It alone owns its
// state; the goroutine of each message out reports the outcome on results.
//
// Scheduling: records wait per key (busy keys hold their successors back)
// and ready keys queue per lane; lanes take turns while fewer than
// MaxInFlight messages are out and the lane has fewer than
// MaxInFlightPerLane. The commit point is the lowest offset not finished,
// so a restart resumes below anything still out.
type claimLoop struct {
	h     *groupHandler
	sess  sarama.ConsumerGroupSession
	claim sarama.ConsumerGroupClaim
	cfg   *SubscriberConfig

	// holdUntil is the offset up to which records are only collected, not
	// emitted (coalescing a redelivery window); -1 when not holding.
	holdUntil int64

	busy     map[string]bool
	waiting  map[string][]*claimEntry
	lanes    map[string]*lane
	order    []string // lanes in turn order
	turn     int
	inFlight int
	pending  int
	offsets  offsetTracker
	results  chan claimResult
}

type claimEntry struct {
	rec  *sarama.ConsumerMessage
	key  string
	lane string
}

type claimResult struct {
	e     *claimEntry
	acked bool
}

type lane struct {
	inFlight int
	ready    []string // keys with a waiting record and none out
}

func newClaimLoop(h *groupHandler, sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, holdUntil int64) *claimLoop {
	return &claimLoop{
		h: h, sess: sess, claim: claim, cfg: &h.s.cfg, holdUntil: holdUntil,
		busy: map[string]bool{}, waiting: map[string][]*claimEntry{}, lanes: map[string]*lane{},
		// Every message out reports exactly once, so this never blocks.
		results: make(chan claimResult, h.s.cfg.MaxInFlight),
	}
}

func (l *claimLoop) run() error {
	in := l.claim.Messages()
	for {
		if l.holdUntil < 0 {
			if !l.dispatch() {
				return l.stop()
			}
		}
		if in == nil && l.inFlight == 0 && l.pending == 0 {
			return nil
		}
		read := in
		if l.pending >= l.cfg.MaxPending {
			read = nil
			l.holdUntil = -1
		}
		select {
		case rec, ok := <-read:
			if !ok {
				in = nil
				l.holdUntil = -1
				continue
			}
			l.add(rec)
			if rec.Offset >= l.holdUntil {
				l.holdUntil = -1
			}
		case r := <-l.results:
			l.finish(r)
		case <-l.sess.Context().Done():
			return l.stop()
		}
	}
}

func (l *claimLoop) add(rec *sarama.ConsumerMessage) {
	e := &claimEntry{rec: rec, key: string(rec.Key), lane: l.laneOf(rec)}
	if rec.Key == nil {
		// Records without a key have no order to keep among themselves.
		e.key = "\x00" + strconv.FormatInt(rec.Offset, 10)
	}
	l.offsets.add(rec.Offset)
	queue := l.waiting[e.key]
	if l.cfg.Coalesce && len(queue) > 0 {
		// The newer snapshot makes the waiting one moot. It keeps the
		// lane the key is queued in.
		l.offsets.done(queue[0].rec.Offset)
		e.lane = queue[0].lane
		queue[0] = e
		return
	}
	l.waiting[e.key] = append(queue, e)
	l.pending++
	if len(queue) == 0 && !l.busy[e.key] {
		l.laneFor(e.lane).ready = append(l.laneFor(e.lane).ready, e.key)
	}
}

func (l *claimLoop) laneOf(rec *sarama.ConsumerMessage) string {
	if l.cfg.LaneHeader == "" {
		return ""
	}
	for _, h := range rec.Headers {
		if h != nil && string(h.Key) == l.cfg.LaneHeader {
			return string(h.Value)
		}
	}
	return ""
}

func (l *claimLoop) laneFor(name string) *lane {
	ln, ok := l.lanes[name]
	if !ok {
		ln = &lane{}
		l.lanes[name] = ln
		l.order = append(l.order, name)
	}
	return ln
}

// dispatch emits ready records while there is room. It reports false if the
// session ended while it was handing one over.
func (l *claimLoop) dispatch() bool {
	for l.inFlight < l.cfg.MaxInFlight && len(l.order) > 0 {
		emitted := false
		for range len(l.order) {
			name := l.order[l.turn%len(l.order)]
			l.turn++
			ln := l.lanes[name]
			if len(ln.ready) == 0 || ln.inFlight >= l.cfg.MaxInFlightPerLane {
				continue
			}
			key := ln.ready[0]
			ln.ready = ln.ready[1:]
			e := l.waiting[key][0]
			if len(l.waiting[key]) == 1 {
				delete(l.waiting, key)
			} else {
				l.waiting[key] = l.waiting[key][1:]
			}
			l.pending--
			l.busy[key] = true
			ln.inFlight++
			l.inFlight++
			if !l.emit(e) {
				return false
			}
			emitted = true
			break
		}
		if !emitted {
			return true
		}
	}
	return true
}

// emit hands e's message to the router and starts waiting for its outcome.
func (l *claimLoop) emit(e *claimEntry) bool {
	msg := newMessage(l.h.ctx, e.rec)
	select {
	case l.h.out <- msg:
	case <-l.sess.Context().Done():
		l.results <- claimResult{e: e}
		return false
	}
	go l.await(e, msg)
	return true
}

// await waits for msg's outcome, sending it again after each Nack.
func (l *claimLoop) await(e *claimEntry, msg interface {
	Acked() <-chan struct{}
	Nacked() <-chan struct{}
}) {
	for {
		select {
		case <-msg.Acked():
			l.results <- claimResult{e: e, acked: true}
			return
		case <-msg.Nacked():
		case <-l.h.ctx.Done():
			select {
			case <-msg.Acked():
				l.results <- claimResult{e: e, acked: true}
			default:
				l.results <- claimResult{e: e}
			}
			return
		}
		select {
		case <-time.After(l.cfg.NackResendSleep):
		case <-l.sess.Context().Done():
			l.results <- claimResult{e: e}
			return
		}
		next := newMessage(l.h.ctx, e.rec)
		select {
		case l.h.out <- next:
			msg = next
		case <-l.sess.Context().Done():
			l.results <- claimResult{e: e}
			return
		}
	}
}

func (l *claimLoop) finish(r claimResult) {
	l.inFlight--
	l.lanes[r.e.lane].inFlight--
	delete(l.busy, r.e.key)
	if !r.acked {
		return
	}
	before := l.offsets.commitPoint()
	l.offsets.done(r.e.rec.Offset)
	if after := l.offsets.commitPoint(); after != before {
		l.sess.MarkOffset(l.claim.Topic(), l.claim.Partition(), after, "")
	}
	if len(l.waiting[r.e.key]) > 0 {
		ln := l.lanes[l.waiting[r.e.key][0].lane]
		ln.ready = append(ln.ready, r.e.key)
	}
}

// stop waits up to RevokeGrace for the messages still out, so OnRevoke
// rarely runs while a handler still uses the partition, and keeps the
// commits of those that finish.
func (l *claimLoop) stop() error {
	grace := time.NewTimer(l.cfg.RevokeGrace)
	defer grace.Stop()
	for l.inFlight > 0 {
		select {
		case r := <-l.results:
			l.finish(r)
		case <-grace.C:
			return nil
		}
	}
	return nil
}

// offsetTracker knows which read offsets are finished. Offsets are added in
// increasing order.
type offsetTracker struct {
	open     []int64 // read, in order; finished ones are dropped from the front
	finished map[int64]bool
	next     int64
}

func (t *offsetTracker) add(off int64) {
	t.open = append(t.open, off)
	t.next = off + 1
}

func (t *offsetTracker) done(off int64) {
	if t.finished == nil {
		t.finished = map[int64]bool{}
	}
	t.finished[off] = true
	for len(t.open) > 0 && t.finished[t.open[0]] {
		delete(t.finished, t.open[0])
		t.open = t.open[1:]
	}
}

// commitPoint is the offset to resume from: the lowest unfinished one, or
// the next to read when all are finished.
func (t *offsetTracker) commitPoint() int64 {
	if len(t.open) > 0 {
		return t.open[0]
	}
	return t.next
}
