package router_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/internal/hubtest"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/retry"
	"github.com/synchub/synchub/router"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// env is one test's broker, receiver and config.
type env struct {
	t        *testing.T
	broker   *kafka.Embedded
	receiver *hubtest.Receiver
	cfg      *config.Config
	producer sarama.SyncProducer
}

func newEnv(t *testing.T, customers ...string) *env {
	t.Helper()
	broker, err := kafka.StartEmbedded("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	rcv, url := hubtest.Serve(t, testSecret, customers)

	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%q]\n  partitions: 4\ncustomers:\n", broker.Addr())
	for _, c := range customers {
		fmt.Fprintf(&b, "  - id: %s\n    connectors:\n      webhook:\n        enabled: true\n        url: %s/hooks/%s\n        secret_env: SECRET\n"+
			"        retry: {max_attempts: 1000, initial_interval: 5ms, max_interval: 50ms, max_elapsed: 1m}\n", c, url, c)
	}
	cfg, err := config.Parse([]byte(b.String()), func(string) (string, bool) { return testSecret, true })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, b.String())
	}
	producer, err := sarama.NewSyncProducer([]string{broker.Addr()}, kafka.SaramaConfig("test-producer"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = producer.Close() })
	return &env{t: t, broker: broker, receiver: rcv, cfg: cfg, producer: producer}
}

// start runs a hub until the test ends or stop is called.
func (e *env) start() (hub *router.Hub, reg *prometheus.Registry, stop func()) {
	e.t.Helper()
	reg = prometheus.NewRegistry()
	hub, err := router.New(router.Deps{
		Config: e.cfg, Brokers: []string{e.broker.Addr()}, Registry: reg,
		Logger: zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel)), NackResendSleep: 20 * time.Millisecond,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- hub.Run(context.Background()) }()
	<-hub.Running()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		if err := hub.Close(); err != nil {
			e.t.Errorf("closing hub: %v", err)
		}
		<-done
	}
	e.t.Cleanup(stop)
	return hub, reg, stop
}

func (e *env) produce(key, value string) {
	e.t.Helper()
	if _, _, err := e.producer.SendMessage(&sarama.ProducerMessage{
		Topic: kafka.TopicEvents, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(value),
	}); err != nil {
		e.t.Fatal(err)
	}
}

func userCreated(id, org, name string) string {
	return fmt.Sprintf(`{"event_type":"userCreated","entity_id":%q,"timestamp":"2026-11-25T10:00:00Z","event":{"name":%q,"email":"%s@example.com","organization_id":%q}}`, id, name, id, org)
}

func loggedIn(id string, n int) string {
	return fmt.Sprintf(`{"event_type":"userLoggedIn","entity_id":%q,"timestamp":"2026-11-25T10:%02d:00Z","event":{"ip":"10.0.0.%d"}}`, id, n%60, n%250)
}

func outcome(reg *prometheus.Registry, name string) float64 {
	return counter(reg, "synchub_aggregate_events_total", map[string]string{"outcome": name})
}

// counter returns the value of the series of metric with these labels.
func counter(reg *prometheus.Registry, metric string, labels map[string]string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// readAll reads a topic from the start to its current end.
func (e *env) readAll(topic string) []*sarama.ConsumerMessage {
	e.t.Helper()
	client, err := sarama.NewClient([]string{e.broker.Addr()}, kafka.SaramaConfig("test-reader"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		err := kafka.ReadPartition(context.Background(), client, topic, p, func(m *sarama.ConsumerMessage) error {
			out = append(out, m)
			return nil
		})
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

func headers(m *sarama.ConsumerMessage) map[string]string {
	h := map[string]string{}
	for _, r := range m.Headers {
		h[string(r.Key)] = string(r.Value)
	}
	return h
}

func TestAggregatesAndDeliversEveryUsersFinalState(t *testing.T) {
	e := newEnv(t, "org_a", "org_b")
	_, _, _ = e.start()
	const users, logins = 40, 5
	for u := range users {
		org := []string{"org_a", "org_b"}[u%2]
		id := fmt.Sprintf("u_%d", u)
		e.produce(id, userCreated(id, org, "User "+strconv.Itoa(u)))
	}
	for n := range logins {
		for u := range users {
			id := fmt.Sprintf("u_%d", u)
			e.produce(id, loggedIn(id, n))
		}
	}
	done := func() bool {
		for _, org := range []string{"org_a", "org_b"} {
			latest := e.receiver.Latest(org)
			if len(latest) != users/2 {
				return false
			}
			for _, s := range latest {
				if s.Version != logins+1 {
					return false
				}
			}
		}
		return true
	}
	hubtest.Eventually(t, 30*time.Second, "every user's final version delivered", done)
	for _, org := range []string{"org_a", "org_b"} {
		for id, s := range e.receiver.Latest(org) {
			if s.LoginsCount != logins || s.OrganizationID != org || s.Name == "" {
				t.Errorf("%s/%s: %+v", org, id, s)
			}
		}
	}
	if r := e.receiver.Regressions(); len(r) > 0 {
		t.Errorf("older versions after newer ones: %v", r)
	}
	if n := e.receiver.BadSignatures(); n > 0 {
		t.Errorf("%d deliveries failed signature verification", n)
	}
	// Each snapshot lands on the partition number of the events that made it.
	eventPartition := map[string]int32{}
	for _, m := range e.readAll(kafka.TopicEvents) {
		eventPartition[string(m.Key)] = m.Partition
	}
	snapshots := e.readAll(kafka.EntityTopic("user"))
	if len(snapshots) != users*(logins+1) {
		t.Errorf("entity.user has %d snapshots, want %d", len(snapshots), users*(logins+1))
	}
	for _, m := range snapshots {
		if want := eventPartition[string(m.Key)]; m.Partition != want {
			t.Errorf("user %s snapshot on partition %d, its events are on %d", m.Key, m.Partition, want)
		}
	}
}

func TestRestartRestoresStateAndNeverCountsTwice(t *testing.T) {
	e := newEnv(t, "org_a")
	_, reg, stop := e.start()
	const users = 10
	for u := range users {
		id := fmt.Sprintf("u_%d", u)
		e.produce(id, userCreated(id, "org_a", "U"))
		e.produce(id, loggedIn(id, 1))
		e.produce(id, loggedIn(id, 2))
	}
	hubtest.Eventually(t, 30*time.Second, "first run applies all events", func() bool { return outcome(reg, "applied") == 3*users })
	stop()
	snapshotsBefore := len(e.readAll(kafka.EntityTopic("user")))

	// Forget the aggregator's committed offsets, as a crash before any
	// commit would: the next run reads every event again.
	admin, err := sarama.NewClusterAdmin([]string{e.broker.Addr()}, kafka.SaramaConfig("test-admin"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.DeleteConsumerGroup(router.GroupAggregate); err != nil {
		t.Fatalf("deleting group: %v", err)
	}

	hub, reg, _ := e.start()
	for u := range users {
		id := fmt.Sprintf("u_%d", u)
		e.produce(id, loggedIn(id, 3))
	}
	hubtest.Eventually(t, 30*time.Second, "second run applies the new logins", func() bool { return outcome(reg, "applied") == users })
	if got := outcome(reg, "duplicate"); got != 3*users {
		t.Errorf("second run skipped %v replayed events, want %d", got, 3*users)
	}
	if got := hub.Aggregator.Users(); got != users {
		t.Errorf("restored %d users, want %d", got, users)
	}
	if got := len(e.readAll(kafka.EntityTopic("user"))); got != snapshotsBefore+users {
		t.Errorf("entity.user has %d snapshots, want %d (replayed events must not publish)", got, snapshotsBefore+users)
	}
	hubtest.Eventually(t, 30*time.Second, "final logins delivered", func() bool {
		latest := e.receiver.Latest("org_a")
		for u := range users {
			if latest[fmt.Sprintf("u_%d", u)].LoginsCount != 3 {
				return false
			}
		}
		return true
	})
}

func TestInvalidEventsGoToEventsInvalidWithReason(t *testing.T) {
	e := newEnv(t, "org_a")
	_, reg, _ := e.start()
	bad := map[string]string{
		"k1": `not json`,
		"k2": `{"event_type":"userCreated","entity_id":"u","timestamp":"2026-11-25T10:00:00Z","event":{"name":"no org"}}`,
		"k3": `{"event_type":"userUpdated","entity_id":"ghost","timestamp":"2026-11-25T10:00:00Z","event":{"name":"x"}}`,
		"k4": `{"event_type":"userLoggedIn","entity_id":"u","timestamp":"last tuesday"}`,
	}
	for k, v := range bad {
		e.produce(k, v)
	}
	e.produce("u_ok", `{"event_type":"userMovedToMars","entity_id":"u_ok","timestamp":"2026-11-25T10:00:00Z"}`)
	e.produce("u_ok", userCreated("u_ok", "org_a", "Fine"))
	hubtest.Eventually(t, 30*time.Second, "good event delivered", func() bool { return len(e.receiver.Latest("org_a")) == 1 })
	hubtest.Eventually(t, 30*time.Second, "all invalid events counted", func() bool { return outcome(reg, "invalid") == float64(len(bad)) })
	if got := outcome(reg, "unknown_type"); got != 1 {
		t.Errorf("unknown types counted %v, want 1", got)
	}
	got := map[string]*sarama.ConsumerMessage{}
	for _, m := range e.readAll(kafka.TopicEventsInvalid) {
		got[string(m.Key)] = m
	}
	wantReason := map[string]string{"k1": "not a JSON object", "k2": "organization_id is required", "k3": "unknown entity", "k4": "not RFC 3339"}
	for k, v := range bad {
		m, ok := got[k]
		if !ok {
			t.Errorf("%s missing from events.invalid", k)
			continue
		}
		if string(m.Value) != v {
			t.Errorf("%s: bytes changed: %q", k, m.Value)
		}
		if reason := headers(m)[kafka.HeaderError]; !strings.Contains(reason, wantReason[k]) {
			t.Errorf("%s: reason %q, want it to contain %q", k, reason, wantReason[k])
		}
	}
}

func TestRejectedRecordsAreDeadLetteredWithHeaders(t *testing.T) {
	e := newEnv(t, "org_bad", "org_good")
	e.receiver.Status = func(customer string, _ int) int {
		if customer == "org_bad" {
			return http.StatusBadRequest
		}
		return http.StatusOK
	}
	_, reg, _ := e.start()
	for u := range 6 {
		id := fmt.Sprintf("u_%d", u)
		e.produce(id, userCreated(id, []string{"org_bad", "org_good"}[u%2], "U"))
	}
	hubtest.Eventually(t, 30*time.Second, "good customer delivered", func() bool { return len(e.receiver.Latest("org_good")) == 3 })
	hubtest.Eventually(t, 30*time.Second, "bad customer dead-lettered", func() bool {
		return counter(reg, "synchub_connector_records_total", map[string]string{"customer": "org_bad", "outcome": "dead_lettered"}) == 3
	})
	dlq := e.readAll(kafka.DLQTopic("webhook"))
	if len(dlq) != 3 {
		t.Fatalf("%d records in the DLQ, want 3", len(dlq))
	}
	for _, m := range dlq {
		h := headers(m)
		want := map[string]string{
			retry.HeaderTopic: "entity.user", retry.HeaderConnectorName: "webhook", retry.HeaderConnector: "webhook",
			retry.HeaderCustomer: "org_bad", retry.HeaderErrorClass: "permanent", retry.HeaderHTTPStatus: "400",
			retry.HeaderAttempts: "1", retry.HeaderReplayCount: "0",
		}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("DLQ header %s = %q, want %q", k, h[k], v)
			}
		}
		for _, k := range []string{retry.HeaderPartition, retry.HeaderOffset, retry.HeaderExceptionClass, retry.HeaderExceptionMsg, retry.HeaderFirstFailedAt} {
			if h[k] == "" {
				t.Errorf("DLQ header %s missing", k)
			}
		}
		if !strings.HasPrefix(string(m.Key), "u_") {
			t.Errorf("DLQ record key %q, want the entity id", m.Key)
		}
		for k, v := range h {
			if strings.Contains(v, strings.TrimPrefix(testSecret, "whsec_")) {
				t.Errorf("header %s leaks the secret", k)
			}
		}
	}
}
