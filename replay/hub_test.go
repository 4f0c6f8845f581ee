package replay_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/synchub/synchub/api"
	"github.com/synchub/synchub/config"
	intercomfake "github.com/synchub/synchub/connectors/intercom/fake"
	"github.com/synchub/synchub/internal/hubtest"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/replay"
	"github.com/synchub/synchub/router"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// running is a hub on an in-process broker: org_bad and org_good have the
// webhook, org_bad also has Intercom.
type running struct {
	*cluster
	cfg      *config.Config
	receiver *hubtest.Receiver
	intercom *intercomfake.Server
	hub      *router.Hub
	// broken makes org_bad's webhook answer 400.
	broken atomic.Bool
}

func startHub(t *testing.T) *running {
	t.Helper()
	r := &running{cluster: newCluster(t)}
	receiver, hooks := hubtest.Serve(t, secret, []string{"org_bad", "org_good"})
	r.receiver = receiver
	r.receiver.Status = func(customer string, _ int) int {
		if customer == "org_bad" && r.broken.Load() {
			return http.StatusBadRequest
		}
		return http.StatusOK
	}
	r.intercom = intercomfake.New()
	t.Cleanup(r.intercom.Close)
	fast := "retry: {max_attempts: 100, initial_interval: 5ms, max_interval: 50ms, max_elapsed: 1m}"
	yaml := fmt.Sprintf(`kafka: {brokers: [%q], partitions: %d}
http: {admin_token_env: ADMIN}
customers:
  - id: org_bad
    connectors:
      webhook: {enabled: true, url: "%s/hooks/org_bad", secret_env: S, %s}
      intercom: {enabled: true, base_url: %q, token_env: T, %s}
  - id: org_good
    connectors:
      webhook: {enabled: true, url: "%s/hooks/org_good", secret_env: S, %s}
`, r.Addr, partitions, hooks, fast, r.intercom.URL(), fast, hooks, fast)
	env := map[string]string{"S": secret, "T": r.intercom.Token(), "ADMIN": "admin-token"}
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	r.cfg = cfg
	hub, err := router.New(router.Deps{
		Config: cfg, Brokers: []string{r.Addr}, Registry: prometheus.NewRegistry(),
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), NackResendSleep: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- hub.Run(context.Background()) }()
	<-hub.Running()
	t.Cleanup(func() {
		if err := hub.Close(); err != nil {
			t.Errorf("closing hub: %v", err)
		}
		<-done
	})
	r.hub = hub
	return r
}

func (r *running) event(id, body string) {
	r.t.Helper()
	r.Send(kafka.TopicEvents, id, []byte(body), partitionOf(id), nil, time.Time{})
}

// users creates n users per customer and renames each twice, so each
// ends at version 3 named "<id> final".
func (r *running) users(n int) {
	for _, org := range []string{"org_bad", "org_good"} {
		for i := range n {
			id := fmt.Sprintf("u_%s_%d", strings.TrimPrefix(org, "org_"), i)
			r.event(id, fmt.Sprintf(`{"event_type":"userCreated","entity_id":%q,"timestamp":"2026-11-25T10:00:00Z","event":{"name":"%s first","email":"%s@example.com","organization_id":%q}}`, id, id, id, org))
			r.event(id, fmt.Sprintf(`{"event_type":"userUpdated","entity_id":%q,"timestamp":"2026-11-25T10:01:00Z","event":{"name":"%s second"}}`, id, id))
			r.event(id, fmt.Sprintf(`{"event_type":"userUpdated","entity_id":%q,"timestamp":"2026-11-25T10:02:00Z","event":{"name":"%s final"}}`, id, id))
		}
	}
}

// finalState says whether the receiver holds every user of org at its
// last version.
func (r *running) finalState(org string, n int) bool {
	latest := r.receiver.Latest(org)
	if len(latest) != n {
		return false
	}
	for id, s := range latest {
		if s.Version != 3 || s.Name != id+" final" {
			return false
		}
	}
	return true
}

func TestReplayAfterTheEndpointIsFixedDeliversLatestStateOnce(t *testing.T) {
	const n = 20
	r := startHub(t)
	r.broken.Store(true)
	r.users(n)
	hubtest.Eventually(t, 30*time.Second, "org_good delivered", func() bool { return r.finalState("org_good", n) })
	hubtest.Eventually(t, 30*time.Second, "intercom has org_bad's users", func() bool { return len(r.intercom.Records()) == n })
	ops := newOps(t, r.cluster, r.cfg, time.Now())
	ctx := context.Background()
	// Every org_bad user's last version is dead-lettered once the DLQ
	// holds a version-3 record for each.
	hubtest.Eventually(t, 30*time.Second, "org_bad's final versions dead-lettered", func() bool {
		recs, err := ops.Show(ctx, replay.Filter{Connector: "webhook", Customer: "org_bad"}, 0)
		finals := map[string]bool{}
		for _, rec := range recs {
			if rec.Version == 3 {
				finals[rec.Key] = true
			}
		}
		return err == nil && len(finals) == n
	})
	if d := r.receiver.Latest("org_bad"); len(d) != 0 {
		t.Fatalf("org_bad received %d users while broken", len(d))
	}
	groups, err := ops.List(ctx, replay.Filter{Connector: "webhook"})
	if err != nil || len(groups) != 1 || groups[0].Customer != "org_bad" || groups[0].Reasons[0].ErrorClass != "permanent" ||
		groups[0].Reasons[0].HTTPStatus != 400 || !strings.Contains(groups[0].Reasons[0].Example, "400") {
		t.Fatalf("list = %+v, %v; want org_bad's records with the 400 as reason", groups, err)
	}
	dead := groups[0].Records
	r.broken.Store(false)
	goodBefore, intercomBefore := r.receiver.Requests("org_good"), r.intercom.Requests()

	dry, err := ops.Replay(ctx, replay.Filter{Connector: "webhook", Customer: "org_bad"}, replay.Options{DryRun: true})
	if err != nil || dry.Replayed != n || dry.Answered != dead {
		t.Fatalf("dry run = %+v, %v; want %d entities answering %d records", dry, err, n, dead)
	}
	if got := len(r.Read(kafka.RetryTopic("webhook"))); got != 0 {
		t.Fatalf("dry run wrote %d retry records", got)
	}
	sum, err := ops.Replay(ctx, replay.Filter{Connector: "webhook", Customer: "org_bad"}, replay.Options{})
	if err != nil || sum.Replayed != n {
		t.Fatalf("replay = %+v, %v", sum, err)
	}
	hubtest.Eventually(t, 30*time.Second, "org_bad delivered after replay", func() bool { return r.finalState("org_bad", n) })
	deliveries := func() int {
		count := 0
		for _, d := range r.receiver.Deliveries() {
			if d.Customer == "org_bad" {
				count++
			}
		}
		return count
	}
	if got := deliveries(); got != n {
		t.Errorf("org_bad received %d deliveries, want exactly one per user (%d)", got, n)
	}

	again, err := ops.Replay(ctx, replay.Filter{Connector: "webhook", Customer: "org_bad"}, replay.Options{})
	if err != nil || again.Replayed != 0 || again.Skipped[replay.SkipReplayed] != dead {
		t.Errorf("second replay = %+v, %v; want nothing sent, %d already replayed", again, err, dead)
	}
	if got := len(r.Read(kafka.RetryTopic("webhook"))); got != n {
		t.Errorf("retry topic has %d records, want %d", got, n)
	}
	// The retry topic is drained when its group has committed to its end;
	// only then do the request counts below say nothing more will come.
	hubtest.Eventually(t, 30*time.Second, "retry topic consumed", func() bool {
		return r.CaughtUp("synchub.connector.webhook.retry", kafka.RetryTopic("webhook"))
	})
	if got := deliveries(); got != n {
		t.Errorf("org_bad received %d deliveries after the second run, want %d", got, n)
	}
	if g, i := r.receiver.Requests("org_good"), r.intercom.Requests(); g != goodBefore || i != intercomBefore {
		t.Errorf("others saw extra requests: org_good %d→%d, intercom %d→%d", goodBefore, g, intercomBefore, i)
	}
	if reg := r.receiver.Regressions(); len(reg) > 0 {
		t.Errorf("older versions after newer: %v", reg)
	}
}

func TestResyncResendsEveryEntityOfOneCustomerToOneConnector(t *testing.T) {
	const n = 10
	r := startHub(t)
	r.users(n)
	hubtest.Eventually(t, 30*time.Second, "both delivered", func() bool { return r.finalState("org_bad", n) && r.finalState("org_good", n) })
	hubtest.Eventually(t, 30*time.Second, "intercom delivered", func() bool { return len(r.intercom.Records()) == n })
	ops := newOps(t, r.cluster, r.cfg, time.Now())
	before := len(r.receiver.Deliveries())
	goodBefore, intercomBefore := r.receiver.Requests("org_good"), r.intercom.Requests()
	if dry, err := ops.Resync(context.Background(), "webhook", "org_bad", replay.Options{DryRun: true}); err != nil || dry.Replayed != n {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	sum, err := ops.Resync(context.Background(), "webhook", "org_bad", replay.Options{})
	if err != nil || sum.Replayed != n {
		t.Fatalf("resync = %+v, %v", sum, err)
	}
	hubtest.Eventually(t, 30*time.Second, "org_bad's users sent again", func() bool { return len(r.receiver.Deliveries()) == before+n })
	hubtest.Eventually(t, 30*time.Second, "retry topic consumed", func() bool {
		return r.CaughtUp("synchub.connector.webhook.retry", kafka.RetryTopic("webhook"))
	})
	if got := len(r.receiver.Deliveries()); got != before+n {
		t.Errorf("%d deliveries after resync, want %d", got, before+n)
	}
	if g, i := r.receiver.Requests("org_good"), r.intercom.Requests(); g != goodBefore || i != intercomBefore {
		t.Errorf("others saw extra requests: org_good %d→%d, intercom %d→%d", goodBefore, g, intercomBefore, i)
	}
}

func TestAdminAPIServesTheOperationsOnlyWithTheToken(t *testing.T) {
	f := newFixture(t)
	cfg := layoutConfig(t, f.Addr)
	ops := newOps(t, f.cluster, cfg, f.now)
	srv := httptest.NewServer(api.NewHandler(api.Deps{
		Ready: func() error { return nil }, Registry: prometheus.NewRegistry(),
		Admin: ops, AdminToken: "s3cret", Now: func() time.Time { return f.now },
	}))
	t.Cleanup(srv.Close)
	call := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		return hubtest.Admin(t, srv.URL, method, path, token, body)
	}
	endpoints := [][2]string{
		{"GET", "/v1/dlq"}, {"GET", "/v1/dlq/webhook/records"}, {"POST", "/v1/dlq/webhook/replay"},
		{"POST", "/v1/dlq/webhook/purge"}, {"POST", "/v1/resync"},
	}
	for _, e := range endpoints {
		for _, tok := range []string{"", "wrong"} {
			if code, body := call(e[0], e[1], tok, "{}"); code != http.StatusUnauthorized || body["error"] == nil {
				t.Errorf("%s %s with token %q: %d %v, want 401 with an error", e[0], e[1], tok, code, body)
			}
		}
	}
	if n := len(f.Read(kafka.RetryTopic("webhook"))); n != 0 {
		t.Fatalf("refused requests wrote %d retry records", n)
	}

	code, body := call("GET", "/v1/dlq?connector=webhook&customer=org_b", "s3cret", "")
	if groups, _ := body["groups"].([]any); code != 200 || len(groups) != 1 {
		t.Errorf("list: %d %v", code, body)
	}
	code, body = call("GET", "/v1/dlq/webhook/records?key=u_1&since=3h", "s3cret", "")
	recs, _ := body["records"].([]any)
	if code != 200 || len(recs) != 2 {
		t.Fatalf("show: %d %v", code, body)
	}
	if rec := recs[0].(map[string]any); !strings.Contains(rec["reason"].(string), "bad email") || rec["error_class"] != "permanent" {
		t.Errorf("show record: %v", rec)
	}
	code, body = call("POST", "/v1/dlq/webhook/replay", "s3cret", `{"customer":"org_a","dry_run":true}`)
	if code != 200 || body["replayed"] != float64(2) || body["dry_run"] != true {
		t.Errorf("replay dry run: %d %v", code, body)
	}
	code, body = call("POST", "/v1/dlq/webhook/replay", "s3cret", `{"customer":"org_b"}`)
	if code != 200 || body["replayed"] != float64(1) || len(f.Read(kafka.RetryTopic("webhook"))) != 1 {
		t.Errorf("replay: %d %v", code, body)
	}
	code, body = call("POST", "/v1/dlq/webhook/purge", "s3cret", `{"older_than":"7d","dry_run":true}`)
	if code != 200 || body["purged"] != float64(1) || len(f.Read(kafka.DLQTopic("webhook"))) != 7 {
		t.Errorf("purge dry run: %d %v", code, body)
	}
	code, body = call("POST", "/v1/resync", "s3cret", `{"connector":"webhook","customer":"org_b","dry_run":true}`)
	if code != 200 || body["replayed"] != float64(1) {
		t.Errorf("resync dry run: %d %v", code, body)
	}
	for _, bad := range [][3]string{
		{"GET", "/v1/dlq?connector=nope", ""},
		{"GET", "/v1/dlq/webhook/records?since=yesterday", ""},
		{"POST", "/v1/dlq/webhook/replay", `{"customer":"org_a","bogus":1}`},
		{"POST", "/v1/dlq/webhook/purge", `{}`},
		{"POST", "/v1/resync", `{"connector":"webhook"}`},
	} {
		if code, body := call(bad[0], bad[1], "s3cret", bad[2]); code != http.StatusBadRequest || body["error"] == nil {
			t.Errorf("%s %s %s: %d %v, want 400 with an error", bad[0], bad[1], bad[2], code, body)
		}
	}
}
