package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/router"
)

// createTopics creates the hub's topics, so that events produced before the
// hub starts land on the configured number of partitions.
func createTopics(brokerAddr string, partitions int) error {
	admin, err := sarama.NewClusterAdmin([]string{brokerAddr}, kafka.SaramaConfig("bench-admin"))
	if err != nil {
		return fmt.Errorf("creating Kafka admin: %w", err)
	}
	return errors.Join(kafka.EnsureTopics(admin, int32(partitions), router.Topics()), admin.Close())
}

// producer sends events to the events topic, keyed by user, through an
// asynchronous Sarama producer configured as the hub's clients are.
type producer struct {
	ap      sarama.AsyncProducer
	sent    atomic.Int64
	acked   atomic.Int64
	drained sync.WaitGroup

	mu  sync.Mutex
	err error // the first failed produce
}

// newProducer connects a producer to the broker at brokerAddr.
func newProducer(brokerAddr string) (*producer, error) {
	cfg := kafka.SaramaConfig("bench")
	cfg.ChannelBufferSize = 4096
	ap, err := sarama.NewAsyncProducer([]string{brokerAddr}, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating producer: %w", err)
	}
	p := &producer{ap: ap}
	p.drained.Add(2)
	go p.drainSuccesses()
	go p.drainErrors()
	return p, nil
}

func (p *producer) drainSuccesses() {
	defer p.drained.Done()
	for range p.ap.Successes() {
		p.acked.Add(1)
	}
}

func (p *producer) drainErrors() {
	defer p.drained.Done()
	for e := range p.ap.Errors() {
		p.mu.Lock()
		if p.err == nil {
			p.err = e.Err
		}
		p.mu.Unlock()
		p.acked.Add(1)
	}
}

// send queues e; flush waits for the broker's answer.
func (p *producer) send(e event) {
	p.sent.Add(1)
	p.ap.Input() <- &sarama.ProducerMessage{
		Topic: kafka.TopicEvents, Key: sarama.StringEncoder(e.user), Value: sarama.ByteEncoder(e.value),
	}
}

// flush waits until every event sent has been acknowledged, and reports
// the first that failed.
func (p *producer) flush(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for p.acked.Load() < p.sent.Load() {
		if time.Now().After(deadline) {
			return fmt.Errorf("producer: %d of %d events unacknowledged after %v", p.sent.Load()-p.acked.Load(), p.sent.Load(), timeout)
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return fmt.Errorf("producing events: %w", p.err)
	}
	return nil
}

// close flushes what is queued and stops the producer.
func (p *producer) close() {
	p.ap.AsyncClose()
	p.drained.Wait()
}

// hub is a running synchub pipeline.
type hub struct {
	h      *router.Hub
	cancel context.CancelFunc
	runErr chan error
}

// startHub builds the hub for cfg on the broker at brokerAddr and returns
// once its handlers run.
func startHub(ctx context.Context, cfg *config.Config, brokerAddr string) (*hub, error) {
	h, err := router.New(router.Deps{
		Config: cfg, Brokers: []string{brokerAddr},
		Registry: prometheus.NewRegistry(), Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("building hub: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	running := &hub{h: h, cancel: cancel, runErr: make(chan error, 1)}
	go func() { running.runErr <- h.Run(runCtx) }()
	select {
	case <-h.Running():
		return running, nil
	case err := <-running.runErr:
		cancel()
		return nil, errors.Join(fmt.Errorf("hub stopped at start: %w", err), h.Close())
	case <-time.After(time.Minute):
		return nil, errors.Join(errors.New("hub not running after a minute"), running.stop())
	}
}

// stop closes the hub and waits for it to return.
func (h *hub) stop() error {
	h.cancel()
	err := h.h.Close()
	return errors.Join(err, <-h.runErr)
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
