// Package router builds the hub's Watermill router: the Kafka clients, the
// aggregate stage on events and one connector stage per connector, each with
// its own consumer group and the middleware stack of middleware.go.
package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/connectors/webhook"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/router/aggregate"
	"github.com/synchub/synchub/router/dispatch"
)

// Consumer groups. One per stage: two stages sharing a group would split the
// partitions between them instead of each seeing every record.
const (
	GroupAggregate   = "synchub.aggregate"
	groupConnector   = "synchub.connector."
	groupRetrySuffix = ".retry"
)

// aggregateInFlight is how many events of one partition the aggregator
// folds at once (different entities only).
const aggregateInFlight = 256

// Deps is what the hub needs from its composition root.
type Deps struct {
	Config   *config.Config
	Brokers  []string
	Registry *prometheus.Registry
	Logger   *zap.Logger
	// Now is the clock for dead-letter timestamps; default time.Now.
	Now func() time.Time
	// NackResendSleep overrides how long a failed record waits before it is
	// tried again in place (default 500ms).
	NackResendSleep time.Duration
}

// Hub is the running pipeline.
type Hub struct {
	Router     *message.Router
	Aggregator *aggregate.Handler

	client        sarama.Client
	pub           message.Publisher
	subs          []message.Subscriber
	closers       []func()
	webhookClient *webhook.Client
	metrics       *dispatch.Metrics
	deps          Deps
	wlog          watermill.LoggerAdapter

	mu     sync.Mutex
	stages map[string]*dispatch.Stage
	config atomic.Pointer[config.Config] // the config in force
}

// Topics are the topics the hub creates at start.
func Topics() []kafka.TopicSpec {
	return kafka.HubTopics([]string{aggregate.EntityUser}, Connectors())
}

// Connectors names every connector the hub has, each with its dead-letter
// and retry topics.
func Connectors() []string {
	return append([]string{dispatch.ConnectorWebhook}, VendorConnectors()...)
}

// New creates the topics and builds the router. Run it with Run.
func New(d Deps) (*Hub, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	wlog := NewLogger(d.Logger)
	client, err := sarama.NewClient(d.Brokers, kafka.SaramaConfig("synchub"))
	if err != nil {
		return nil, fmt.Errorf("connecting to Kafka at %v: %w", d.Brokers, err)
	}
	h := &Hub{client: client, deps: d, wlog: wlog, stages: map[string]*dispatch.Stage{}}
	h.config.Store(d.Config)
	if err := h.build(d, wlog); err != nil {
		return nil, errors.Join(err, h.Close())
	}
	return h, nil
}

func (h *Hub) build(d Deps, wlog watermill.LoggerAdapter) error {
	admin, err := sarama.NewClusterAdminFromClient(h.client)
	if err != nil {
		return fmt.Errorf("creating Kafka admin: %w", err)
	}
	// Not admin.Close: it would close the shared client.
	if err := kafka.EnsureTopics(admin, int32(d.Config.Kafka.Partitions), Topics()); err != nil {
		return err
	}
	pub, err := kafka.NewPublisher(d.Brokers, "synchub", wlog)
	if err != nil {
		return err
	}
	h.pub = pub
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, wlog)
	if err != nil {
		return fmt.Errorf("creating router: %w", err)
	}
	h.Router = r
	if err := h.addAggregate(d, wlog); err != nil {
		return err
	}
	return h.addConnectors()
}

func (h *Hub) addAggregate(d Deps, wlog watermill.LoggerAdapter) error {
	read := func(ctx context.Context, topic string, partition int32, fn func([]byte) error) error {
		return kafka.ReadPartition(ctx, h.client, topic, partition, func(m *sarama.ConsumerMessage) error { return fn(m.Value) })
	}
	agg, err := aggregate.NewHandler(h.pub, read, d.Registry, d.Logger.Named("aggregate"))
	if err != nil {
		return err
	}
	h.Aggregator = agg
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers: d.Brokers, Group: GroupAggregate, ClientID: "synchub-aggregate",
		NackResendSleep: d.NackResendSleep,
		// Entities fold independently, so events of different users run
		// at once; the producer batches their snapshots.
		MaxInFlight: aggregateInFlight,
		OnAssign:    agg.Assign, OnRevoke: agg.Revoke,
	}, wlog)
	if err != nil {
		return err
	}
	h.subs = append(h.subs, sub)
	h.Router.AddConsumerHandler("aggregate.user", kafka.TopicEvents, sub, agg.Handle)
	return nil
}

// webhookRoutes builds the webhook routes of cfg's customers.
func webhookRoutes(cfg *config.Config, client dispatch.Deliverer) (map[string]dispatch.Route, error) {
	routes := make(map[string]dispatch.Route)
	for _, c := range cfg.Customers {
		w := c.Connectors.Webhook
		if w == nil || !w.Enabled {
			continue
		}
		secret, err := webhook.ParseSecret(w.Secret)
		if err != nil {
			return nil, fmt.Errorf("customer %s webhook secret (%s): %w", c.ID, w.SecretEnv, err)
		}
		route := dispatch.Route{
			Target: dispatch.WebhookTarget{
				Client:   client,
				Endpoint: webhook.Endpoint{URL: w.URL, Secret: secret},
				Policy: webhook.Policy{
					MaxAttempts:     w.Retry.MaxAttempts,
					InitialInterval: w.Retry.InitialInterval.D(),
					MaxInterval:     w.Retry.MaxInterval.D(),
					MaxElapsed:      w.Retry.MaxElapsed.D(),
					RequestTimeout:  w.Timeout.D(),
				},
			},
			Entities:       w.Entities,
			BatchSize:      w.BatchSize,
			MaxConcurrency: w.MaxConcurrency,
			Circuit:        dispatch.Circuit{Failures: w.Circuit.Failures, OpenFor: w.Circuit.OpenFor.D()},
		}
		if rl := w.RateLimit; rl != nil {
			route.RateLimit = &dispatch.RateLimit{Requests: rl.Requests, Per: rl.Per.D()}
		}
		routes[c.ID] = route
	}
	return routes, nil
}

// routes builds every connector's routes for cfg, all or nothing.
func (h *Hub) routes(cfg *config.Config) (map[string]map[string]dispatch.Route, error) {
	all := map[string]map[string]dispatch.Route{}
	web, err := webhookRoutes(cfg, h.webhookClient)
	if err != nil {
		return nil, err
	}
	all[dispatch.ConnectorWebhook] = web
	for _, name := range VendorConnectors() {
		r, err := vendorRoutes(cfg, name, h.deps.Logger)
		if err != nil {
			return nil, err
		}
		all[name] = r
	}
	return all, nil
}

func (h *Hub) addConnectors() error {
	h.webhookClient = webhook.NewClient(h.deps.Logger.Named("webhook"))
	metrics, err := dispatch.NewMetrics(h.deps.Registry)
	if err != nil {
		return err
	}
	h.metrics = metrics
	all, err := h.routes(h.deps.Config)
	if err != nil {
		return err
	}
	for name, routes := range all {
		if name == dispatch.ConnectorWebhook || len(routes) > 0 {
			if err := h.addStage(name, routes); err != nil {
				return err
			}
		}
	}
	return nil
}

// addStage adds the connector stage of name: a consumer group on the entity
// topic and one on its retry topic, its lanes per customer and its
// dead-letter topic. A stage
// exists once some customer enables its connector.
func (h *Hub) addStage(name string, routes map[string]dispatch.Route) error {
	d, dc := h.deps, h.deps.Config.Dispatch
	stage := dispatch.NewStage(name, routes, dc.Linger.D(), h.metrics)
	log := d.Logger.Named(name)
	stage.OnCircuit = func(customer, from, to string) {
		log.Warn("circuit "+to, zap.String("customer", customer), zap.String("from", from),
			zap.String("meaning", map[string]string{"open": "endpoint down: records held, probing", "half-open": "probing", "closed": "endpoint answering: delivering"}[to]))
	}
	mws, err := ConnectorMiddlewares(name, h.pub, d.Now)
	if err != nil {
		return err
	}
	// The retry topic, where replays and resyncs put records for this
	// connector alone, has a consumer group of its own: sharing the entity
	// topic's group would make every rebalance of one stall the other.
	for _, in := range []struct{ handler, topic, group string }{
		{"connector." + name + ".user", kafka.EntityTopic(aggregate.EntityUser), groupConnector + name},
		{"connector." + name + ".retry", kafka.RetryTopic(name), groupConnector + name + groupRetrySuffix},
	} {
		sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
			Brokers: d.Brokers, Group: in.group, ClientID: "synchub-" + name,
			NackResendSleep:    d.NackResendSleep,
			MaxInFlight:        dc.MaxInFlight,
			MaxInFlightPerLane: dc.MaxInFlightPerCustomer,
			MaxPending:         dc.MaxPending,
			LaneHeader:         kafka.HeaderOrganizationID,
			Coalesce:           dc.CoalesceEnabled(),
		}, h.wlog)
		if err != nil {
			return err
		}
		h.subs = append(h.subs, sub)
		handler := h.Router.AddConsumerHandler(in.handler, in.topic, sub, stage.Handle)
		handler.AddMiddleware(mws...)
	}
	h.closers = append(h.closers, stage.Close)
	h.stages[name] = stage
	return nil
}

// Reconfigure applies the customer part of cfg to the running hub: which
// customers have which connectors, their settings and mappings. It applies
// all of it or, on an error, none. A connector no customer had at start
// gets its stage now. Kafka, HTTP and dispatch settings take effect at the
// next start.
func (h *Hub) Reconfigure(cfg *config.Config) error {
	all, err := h.routes(cfg)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	added := false
	for name, routes := range all {
		if stage, ok := h.stages[name]; ok {
			stage.SetRoutes(routes)
			continue
		}
		if len(routes) > 0 {
			if err := h.addStage(name, routes); err != nil {
				return err
			}
			added = true
		}
	}
	if added {
		if err := h.Router.RunHandlers(context.Background()); err != nil {
			return err
		}
	}
	h.config.Store(cfg)
	return nil
}

// Config returns the config in force: the one the hub started with, or the
// last one Reconfigure applied.
func (h *Hub) Config() *config.Config { return h.config.Load() }

// Run runs the router until ctx is done or Close is called.
func (h *Hub) Run(ctx context.Context) error { return h.Router.Run(ctx) }

// Running is closed once every handler runs.
func (h *Hub) Running() chan struct{} { return h.Router.Running() }

// Ready reports whether the hub can do its work: handlers running and the
// broker answering.
func (h *Hub) Ready() error {
	select {
	case <-h.Router.Running():
	default:
		return errors.New("handlers not running yet")
	}
	if h.Router.IsClosed() {
		return errors.New("router closed")
	}
	if err := h.client.RefreshMetadata(); err != nil {
		return fmt.Errorf("broker unreachable: %w", err)
	}
	return nil
}

// Close stops the router, then the clients it used.
func (h *Hub) Close() error {
	var errs []error
	if h.Router != nil {
		errs = append(errs, h.Router.Close())
	}
	for _, c := range h.closers {
		c()
	}
	for _, s := range h.subs {
		errs = append(errs, s.Close())
	}
	if h.pub != nil {
		errs = append(errs, h.pub.Close())
	}
	errs = append(errs, h.client.Close())
	return errors.Join(errs...)
}
