package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/synchub/synchub/connectors/webhook"
	"github.com/synchub/synchub/kafka"
)

// produceTimeout bounds waiting for the broker to acknowledge produced events.
const produceTimeout = 2 * time.Minute

// burstInterval is how often the steady phase produces the events due.
const burstInterval = 10 * time.Millisecond

// bench is one mode's run: its broker, receiver, producer, hub and workload.
type bench struct {
	o        options
	m        mode
	logf     func(string, ...any)
	recv     *receiver
	prod     *producer
	gen      *workload
	hub      *hub
	yaml     string
	secret   string
	broker   string         // address
	cleanups []func() error // run in reverse order by tearDown
}

// runMode runs both phases of mode m on fresh infrastructure and tears it
// down again. The peak RSS is the whole process's (broker, hub, receiver and
// load generator) during this mode.
func runMode(ctx context.Context, o options, m mode, logf func(string, ...any)) (res modeResult, err error) {
	runtime.GC()
	debug.FreeOSMemory()
	rssReset := resetPeakRSS()
	b, err := setUp(o, m, logf)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, b.tearDown()) }()

	res = modeResult{Name: m.name, Description: m.description, ConfigYAML: b.yaml}
	if res.CatchUp, err = b.catchUp(ctx); err != nil {
		return res, err
	}
	if res.CatchUp.Complete && o.steadyRate > 0 && o.steadyFor > 0 {
		if res.Steady, err = b.steady(ctx); err != nil {
			return res, err
		}
	}
	res.Regressions, res.RegressionExamples, res.BadSignatures, res.BadBodies, res.Misrouted = b.recv.problems()
	if rssReset != nil {
		logf("%s: peak RSS not measured: %v", m.name, rssReset)
	} else if peak, err := peakRSS(); err != nil {
		logf("%s: peak RSS not measured: %v", m.name, err)
	} else {
		res.PeakRSSMiB = float64(peak) / (1 << 20)
	}
	return res, nil
}

// setUp starts the broker, the receiver and the producer and creates the
// topics; on error it tears down what it started.
func setUp(o options, m mode, logf func(string, ...any)) (_ *bench, err error) {
	b := &bench{o: o, m: m, logf: logf, gen: newWorkload(o.seed, o.users, o.customers)}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.tearDown())
		}
	}()
	dir, err := os.MkdirTemp("", "synchub-bench-")
	if err != nil {
		return nil, err
	}
	b.cleanups = append(b.cleanups, func() error { return os.RemoveAll(dir) })
	broker, err := kafka.StartEmbedded("127.0.0.1:0", dir)
	if err != nil {
		return nil, err
	}
	b.cleanups = append(b.cleanups, func() error { broker.Close(); return nil })
	b.broker = broker.Addr()

	if b.secret, err = newSecret(); err != nil {
		return nil, err
	}
	key, err := webhook.ParseSecret(b.secret)
	if err != nil {
		return nil, err
	}
	b.recv = newReceiver(key, o.latency)
	srv := httptest.NewServer(b.recv)
	b.cleanups = append(b.cleanups, func() error { srv.Close(); return nil })
	b.yaml = configYAML(m, o, b.broker, srv.URL)

	if err := createTopics(b.broker, o.partitions); err != nil {
		return nil, err
	}
	if b.prod, err = newProducer(b.broker); err != nil {
		return nil, err
	}
	b.cleanups = append(b.cleanups, func() error { b.prod.close(); return nil })
	return b, nil
}

// tearDown stops everything setUp and catchUp started, newest first.
func (b *bench) tearDown() error {
	var errs []error
	if b.hub != nil {
		errs = append(errs, b.hub.stop())
		b.hub = nil
	}
	for _, c := range slices.Backward(b.cleanups) {
		errs = append(errs, c())
	}
	b.cleanups = nil
	return errors.Join(errs...)
}

// newSecret returns a random Standard Webhooks secret.
func newSecret() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key), nil
}

// catchUp produces the backlog with the hub stopped, then starts the hub and
// times until every event has been delivered.
func (b *bench) catchUp(ctx context.Context) (catchUpResult, error) {
	res := catchUpResult{Events: b.o.events}
	b.recv.beginPhase(time.Time{})
	b.logf("%s: producing %d backlog events for %d users of %d customers", b.m.name, b.o.events, b.o.users, b.o.customers)
	for _, e := range b.gen.backlog(b.o.events, time.Now()) {
		b.recv.expect(e, time.Time{})
		b.prod.send(e)
	}
	if err := b.prod.flush(ctx, produceTimeout); err != nil {
		return res, err
	}
	done := b.recv.seal()

	cfg, err := parseConfig(b.yaml, b.secret)
	if err != nil {
		return res, err
	}
	b.logf("%s: backlog produced; starting the hub", b.m.name)
	if b.hub, err = startHub(ctx, cfg, b.broker); err != nil {
		return res, err
	}
	start := time.Now()
	b.logf("%s: hub running; catching up", b.m.name)
	if err := b.await(ctx, done, b.o.catchUpTimeout, "catch-up"); err != nil {
		return res, err
	}
	s := b.recv.stats()
	res.Complete = s.complete
	end := s.doneAt
	if !res.Complete {
		end = time.Now()
	}
	elapsed := end.Sub(start)
	res.Seconds = elapsed.Seconds()
	res.EventsPerSecond = float64(b.o.events-s.undelivered) / elapsed.Seconds()
	res.Requests = s.requests
	res.RequestsPerEvent = float64(s.requests) / float64(b.o.events)
	res.SnapshotsDelivered = s.records
	if !s.firstAt.IsZero() {
		res.FirstDeliverySeconds = s.firstAt.Sub(start).Seconds()
	}
	b.logf("%s: caught up %d events in %.2fs (%.0f events/s, %d requests), complete=%t",
		b.m.name, b.o.events, res.Seconds, res.EventsPerSecond, res.Requests, res.Complete)
	return res, nil
}

// steady produces at the configured rate for the configured time, each
// event stamped with its produce time, then waits for its deliveries.
func (b *bench) steady(ctx context.Context) (steadyResult, error) {
	total := int(float64(b.o.steadyRate) * b.o.steadyFor.Seconds())
	res := steadyResult{TargetRate: float64(b.o.steadyRate), Events: total}
	start := time.Now()
	b.recv.beginPhase(start)
	b.logf("%s: steady phase: %d events/s for %v", b.m.name, b.o.steadyRate, b.o.steadyFor)
	ticker := time.NewTicker(burstInterval)
	defer ticker.Stop()
	for sent := 0; sent < total; {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case now := <-ticker.C:
			due := min(total, int(float64(b.o.steadyRate)*now.Sub(start).Seconds()))
			for ; sent < due; sent++ {
				at := time.Now()
				e := b.gen.random(at)
				b.recv.expect(e, at)
				b.prod.send(e)
			}
		}
	}
	produced := time.Now()
	res.ProduceSeconds = produced.Sub(start).Seconds()
	res.AchievedRate = float64(total) / res.ProduceSeconds
	if err := b.prod.flush(ctx, produceTimeout); err != nil {
		return res, err
	}
	b.logf("%s: steady events produced; waiting for their deliveries", b.m.name)
	done := b.recv.seal()
	if err := b.await(ctx, done, b.o.drainTimeout, "steady deliveries"); err != nil {
		return res, err
	}
	b.fillSteady(&res, produced)
	return res, nil
}

// fillSteady completes res from the receiver's view of the steady phase.
func (b *bench) fillSteady(res *steadyResult, produced time.Time) {
	s := b.recv.stats()
	res.Complete = s.complete
	res.Delivered = res.Events - s.undelivered
	if s.complete {
		res.DrainSeconds = max(0, s.doneAt.Sub(produced).Seconds())
	} else {
		res.DrainSeconds = time.Since(produced).Seconds()
	}
	res.Requests = s.requests
	res.RequestsPerEvent = float64(s.requests) / float64(max(res.Events, 1))
	res.P50Ms = millis(percentile(s.eventLatencies, 0.50))
	res.P99Ms = millis(percentile(s.eventLatencies, 0.99))
	res.MaxMs = millis(percentile(s.eventLatencies, 1))
	res.SnapshotP50Ms = millis(percentile(s.snapshotLatencies, 0.50))
	res.SnapshotP99Ms = millis(percentile(s.snapshotLatencies, 0.99))
	b.logf("%s: steady: p50 %.1fms p99 %.1fms, %d/%d delivered, %d requests, complete=%t",
		b.m.name, res.P50Ms, res.P99Ms, res.Delivered, res.Events, res.Requests, res.Complete)
}

// await waits for done, giving up quietly after timeout (the phase is then
// reported incomplete) and with an error if ctx ends.
func (b *bench) await(ctx context.Context, done <-chan struct{}, timeout time.Duration, what string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-t.C:
			b.logf("%s: %s not complete after %v; reporting what arrived", b.m.name, what, timeout)
			return nil
		case <-progress.C:
			open, requests := b.recv.progress()
			b.logf("%s: %s: %d events still undelivered, %d requests so far", b.m.name, what, open, requests)
		case <-ctx.Done():
			return fmt.Errorf("%s interrupted: %w", what, ctx.Err())
		}
	}
}
