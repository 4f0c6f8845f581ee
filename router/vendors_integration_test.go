package router_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/connectors/connectortest"
	hubspotfake "github.com/synchub/synchub/connectors/hubspot/fake"
	intercomfake "github.com/synchub/synchub/connectors/intercom/fake"
	mailchimpfake "github.com/synchub/synchub/connectors/mailchimp/fake"
	marketofake "github.com/synchub/synchub/connectors/marketo/fake"
	salesforcefake "github.com/synchub/synchub/connectors/salesforce/fake"
	"github.com/synchub/synchub/internal/hubtest"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/retry"
	"github.com/synchub/synchub/router"
)

// The specs the fakes that have one check every request against, relative
// to this package.
const (
	marketoSpecDir   = "../../shared/specs/marketo"
	mailchimpSpec    = "../../shared/specs/mailchimp/openapi.json"
	intercomSpecFile = "../../shared/specs/intercom/api.intercom.io.yaml"
)

// The marketo fake's credentials (it takes them as options).
const (
	marketoClientID     = "mkto-client-id"
	marketoClientSecret = "mkto-client-secret"
)

// vendorOrg is the customer each test gives to each vendor.
var vendorOrg = map[string]string{
	config.ConnectorHubSpot:    "org_hubspot",
	config.ConnectorSalesforce: "org_salesforce",
	config.ConnectorMarketo:    "org_marketo",
	config.ConnectorMailchimp:  "org_mailchimp",
	config.ConnectorIntercom:   "org_intercom",
}

// vendorFakes are one fake per vendor a test uses, each the vendor of its
// own customer (vendorOrg).
type vendorFakes struct {
	t          *testing.T
	hubspot    *hubspotfake.Server
	salesforce *salesforcefake.Server
	marketo    *marketofake.Server
	mailchimp  *mailchimpfake.Server
	intercom   *intercomfake.Server
}

// startFakes starts the fakes of vendors; at the end of the test each must
// have seen only requests its vendor's spec allows.
func startFakes(t *testing.T, vendors ...string) *vendorFakes {
	t.Helper()
	f := &vendorFakes{t: t}
	for _, v := range vendors {
		switch v {
		case config.ConnectorHubSpot:
			f.hubspot = hubspotfake.New()
			t.Cleanup(f.hubspot.Close)
		case config.ConnectorSalesforce:
			f.salesforce = salesforcefake.New()
			t.Cleanup(func() {
				if v := f.salesforce.Violations(); len(v) > 0 {
					t.Errorf("salesforce: requests outside its spec: %q", v)
				}
				f.salesforce.Close()
			})
		case config.ConnectorMarketo:
			f.marketo = marketofake.New(marketofake.WithSpecDir(marketoSpecDir), marketofake.WithCredentials(marketoClientID, marketoClientSecret))
			t.Cleanup(func() {
				if v := f.marketo.Violations(); len(v) > 0 {
					t.Errorf("marketo: requests outside its spec or rules: %q", v)
				}
				f.marketo.Close()
			})
		case config.ConnectorMailchimp:
			f.mailchimp = mailchimpfake.New(mailchimpfake.WithSpecFile(mailchimpSpec))
			t.Cleanup(func() {
				if v := f.mailchimp.SpecViolations(); len(v) > 0 {
					t.Errorf("mailchimp: requests outside its spec: %q", v)
				}
				f.mailchimp.Close()
			})
		case config.ConnectorIntercom:
			f.intercom = intercomfake.New(intercomfake.WithSpecFile(intercomSpecFile))
			t.Cleanup(func() {
				if v := f.intercom.SpecErrors(); len(v) > 0 {
					t.Errorf("intercom: requests outside its spec: %q", v)
				}
				f.intercom.Close()
			})
		default:
			t.Fatalf("no fake for %q", v)
		}
	}
	return f
}

// fake returns the fake of vendor as the connector contract sees it.
func (f *vendorFakes) fake(vendor string) connectortest.Fake {
	switch vendor {
	case config.ConnectorHubSpot:
		return f.hubspot
	case config.ConnectorSalesforce:
		return f.salesforce
	case config.ConnectorMarketo:
		return f.marketo
	case config.ConnectorMailchimp:
		return f.mailchimp
	case config.ConnectorIntercom:
		return f.intercom
	}
	f.t.Fatalf("no fake for %q", vendor)
	return nil
}

// fastRetry keeps the vendors' retries short; the defaults ride out
// minutes.
const fastRetry = "        retry: {max_attempts: 1000, initial_interval: 5ms, max_interval: 50ms, max_elapsed: 1m}\n"

// config is a config with one customer per started fake (vendorOrg), each
// with only that vendor's connector, enabled as enabled says, pointed at
// its fake with the fake's credentials, all named by *_env variables.
func (f *vendorFakes) config(brokerAddr string, enabled map[string]bool) *config.Config {
	f.t.Helper()
	env := map[string]string{}
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%q]\n  partitions: 4\ncustomers:\n", brokerAddr)
	customer := func(vendor string) {
		fmt.Fprintf(&b, "  - id: %s\n    connectors:\n      %s:\n        enabled: %t\n", vendorOrg[vendor], vendor, enabled[vendor])
	}
	if f.hubspot != nil {
		customer(config.ConnectorHubSpot)
		// OAuth mode, so the access tokens expire.
		fmt.Fprintf(&b, "        base_url: %s\n        client_id_env: HUBSPOT_CLIENT_ID\n        client_secret_env: HUBSPOT_CLIENT_SECRET\n        refresh_token_env: HUBSPOT_REFRESH_TOKEN\n", f.hubspot.URL())
		b.WriteString(fastRetry)
		env["HUBSPOT_CLIENT_ID"], env["HUBSPOT_CLIENT_SECRET"], env["HUBSPOT_REFRESH_TOKEN"] = hubspotfake.ClientID, hubspotfake.ClientSecret, hubspotfake.RefreshToken
	}
	if f.salesforce != nil {
		customer(config.ConnectorSalesforce)
		fmt.Fprintf(&b, "        login_url: %s\n        client_id_env: SF_CLIENT_ID\n        client_secret_env: SF_CLIENT_SECRET\n        refresh_token_env: SF_REFRESH_TOKEN\n        object: %s\n        external_id_field: %s\n",
			f.salesforce.URL(), salesforcefake.Object, salesforcefake.ExternalIDField)
		b.WriteString(fastRetry)
		env["SF_CLIENT_ID"], env["SF_CLIENT_SECRET"], env["SF_REFRESH_TOKEN"] = salesforcefake.ClientID, salesforcefake.ClientSecret, salesforcefake.RefreshToken
	}
	if f.marketo != nil {
		customer(config.ConnectorMarketo)
		fmt.Fprintf(&b, "        base_url: %s\n        client_id_env: MARKETO_CLIENT_ID\n        client_secret_env: MARKETO_CLIENT_SECRET\n", f.marketo.URL())
		b.WriteString(fastRetry)
		env["MARKETO_CLIENT_ID"], env["MARKETO_CLIENT_SECRET"] = marketoClientID, marketoClientSecret
	}
	if f.mailchimp != nil {
		customer(config.ConnectorMailchimp)
		// The config names the host; the fake's URL has the /3.0 root.
		fmt.Fprintf(&b, "        base_url: %s\n        api_key_env: MAILCHIMP_API_KEY\n        list_id: %s\n", strings.TrimSuffix(f.mailchimp.URL(), "/3.0"), f.mailchimp.ListID())
		b.WriteString(fastRetry)
		env["MAILCHIMP_API_KEY"] = f.mailchimp.APIKey()
	}
	if f.intercom != nil {
		customer(config.ConnectorIntercom)
		fmt.Fprintf(&b, "        base_url: %s\n        token_env: INTERCOM_TOKEN\n", f.intercom.URL())
		b.WriteString(fastRetry)
		env["INTERCOM_TOKEN"] = f.intercom.Token()
	}
	cfg, err := config.Parse([]byte(b.String()), func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	if err != nil {
		f.t.Fatalf("config: %v\n%s", err, b.String())
	}
	return cfg
}

// user is what a workload has made of one user so far.
type user struct {
	id, org, name, email string
	// emails are every address the user had, the current one last.
	emails []string
}

// workload builds events and keeps each user's state as the aggregator
// should fold it.
type workload struct {
	users   map[string]*user
	pending []*sarama.ProducerMessage
	n       int
}

func newWorkload() *workload { return &workload{users: map[string]*user{}} }

var workloadStart = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func (w *workload) add(id, eventType, payload string) {
	w.n++
	ts := workloadStart.Add(time.Duration(w.n) * time.Second).Format(time.RFC3339)
	v := fmt.Sprintf(`{"event_type":%q,"entity_id":%q,"timestamp":%q,"event":%s}`, eventType, id, ts, payload)
	w.pending = append(w.pending, &sarama.ProducerMessage{
		Topic: kafka.TopicEvents, Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(v),
	})
}

func (w *workload) create(id, org, name string) {
	email := id + "@example.com"
	w.users[id] = &user{id: id, org: org, name: name, email: email, emails: []string{email}}
	w.add(id, "userCreated", fmt.Sprintf(`{"name":%q,"email":%q,"organization_id":%q}`, name, email, org))
}

func (w *workload) rename(id, name string) {
	w.users[id].name = name
	w.add(id, "userUpdated", fmt.Sprintf(`{"name":%q}`, name))
}

func (w *workload) changeEmail(id, email string) {
	u := w.users[id]
	u.email = email
	u.emails = append(u.emails, email)
	w.add(id, "userUpdated", fmt.Sprintf(`{"email":%q}`, email))
}

func (w *workload) login(id string) {
	w.add(id, "userLoggedIn", fmt.Sprintf(`{"ip":"10.0.%d.%d"}`, w.n/250%250, w.n%250))
}

// produce sends the pending events, in order, and returns how many.
func (w *workload) produce(e *env) int {
	e.t.Helper()
	n := len(w.pending)
	for len(w.pending) > 0 {
		chunk := w.pending[:min(len(w.pending), 1000)]
		if err := e.producer.SendMessages(chunk); err != nil {
			e.t.Fatalf("producing: %v", err)
		}
		w.pending = w.pending[len(chunk):]
	}
	return n
}

// of returns org's users, by id.
func (w *workload) of(org string) []*user {
	var out []*user
	for _, u := range w.users {
		if u.org == org {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b *user) int { return strings.Compare(a.id, b.id) })
	return out
}

// expected is what vendor should hold for u: its upsert key and fields.
func expected(vendor string, u *user) (key string, fields map[string]string) {
	return hubtest.VendorRecord(vendor, u.id, u.name, u.email)
}

// differences lists how recs, a vendor's records, differ from holding
// exactly users' latest state: one record per user, under its latest key,
// with its latest fields, and no other record. A vendor keyed by email
// must have moved a user's record when the address changed, not left one
// behind at the old address.
func differences(vendor string, recs map[string]map[string]any, users []*user) []string {
	var diffs []string
	want := map[string]bool{}
	former := map[string]string{}
	for _, u := range users {
		key, _ := expected(vendor, u)
		want[key] = true
		for _, e := range u.emails[:len(u.emails)-1] {
			former[e] = u.id
		}
		diffs = append(diffs, hubtest.VendorDiff(vendor, recs, u.id, u.name, u.email)...)
	}
	for key := range recs {
		switch {
		case want[key]:
		case former[key] != "":
			diffs = append(diffs, fmt.Sprintf("stale record %s, a former address of %s: %v", key, former[key], recs[key]))
		default:
			diffs = append(diffs, fmt.Sprintf("unexpected record %s: %v", key, recs[key]))
		}
	}
	slices.Sort(diffs)
	return diffs
}

// eventuallyHolds waits until the fake of each vendor holds exactly the
// latest state of its customer's users; on a timeout it logs what still
// differs.
func eventuallyHolds(t *testing.T, timeout time.Duration, fakes *vendorFakes, w *workload, vendors ...string) {
	t.Helper()
	var last []string
	done := false
	defer func() {
		if !done {
			t.Logf("%d differences left, the first: %q", len(last), last[:min(len(last), 10)])
		}
	}()
	hubtest.Eventually(t, timeout, fmt.Sprintf("%v to hold every user's latest state", vendors), func() bool {
		last = nil
		for _, v := range vendors {
			d := differences(v, fakes.fake(v).Records(), w.of(vendorOrg[v]))
			for _, x := range d {
				last = append(last, v+": "+x)
			}
		}
		return len(last) == 0
	})
	done = true
}

func deadLettered(reg *prometheus.Registry, connector, org string) float64 {
	return counter(reg, "synchub_connector_records_total", map[string]string{"connector": connector, "customer": org, "outcome": "dead_lettered"})
}

// vendorLimit is the most records one request may carry per vendor.
var vendorLimit = map[string]int{
	config.ConnectorHubSpot:    hubspotfake.MaxInputs,
	config.ConnectorSalesforce: salesforcefake.MaxRecords,
	config.ConnectorMarketo:    marketofake.MaxBatch,
	config.ConnectorMailchimp:  1, // PUT /lists/{id}/members/{hash}: one member
	config.ConnectorIntercom:   1, // no batch endpoint
}

func TestVendorsReceiveEveryUsersLatestState(t *testing.T) {
	vendors := router.VendorConnectors()
	fakes := startFakes(t, vendors...)
	e := newEnv(t)
	enabled := map[string]bool{}
	for _, v := range vendors {
		enabled[v] = true
	}
	e.cfg = fakes.config(e.broker.Addr(), enabled)
	_, reg, _ := e.start()

	const users, events = 500, 10_000
	r := rand.New(rand.NewPCG(1, 2))
	w := newWorkload()
	ids := make([]string, users)
	for i := range users {
		ids[i] = fmt.Sprintf("u%04d", i)
		w.create(ids[i], vendorOrg[vendors[i%len(vendors)]], hubtest.RandomName(r))
	}
	emailChanges := 0
	for n := users; n < events; n++ {
		id := ids[r.IntN(users)]
		switch x := r.IntN(20); {
		case x < 7:
			w.rename(id, hubtest.RandomName(r))
		case x < 10:
			emailChanges++
			w.changeEmail(id, fmt.Sprintf("%s.%d@example.com", id, n))
		default:
			w.login(id)
		}
	}
	start := time.Now()
	produced := w.produce(e)
	if produced != events {
		t.Fatalf("produced %d events, want %d", produced, events)
	}
	eventuallyHolds(t, 50*time.Second, fakes, w, vendors...)
	t.Logf("%d events (%d email changes) for %d users delivered to %d vendors in %v", events, emailChanges, users, len(vendors), time.Since(start).Round(time.Millisecond))

	for _, v := range vendors {
		f := fakes.fake(v)
		if got, limit := f.MaxBatch(), vendorLimit[v]; got < 1 || got > limit {
			t.Errorf("%s: largest request carried %d records, want 1..%d", v, got, limit)
		}
		if n := deadLettered(reg, v, vendorOrg[v]); n != 0 {
			t.Errorf("%s: %v records dead-lettered", v, n)
		}
		if got, want := len(f.Records()), len(w.of(vendorOrg[v])); got != want {
			t.Errorf("%s: %d records for %d users", v, got, want)
		}
		t.Logf("%s: %d requests, largest %d records", v, f.Requests(), f.MaxBatch())
	}
	if n := fakes.mailchimp.MaxInFlight(); n > mailchimpfake.MaxConnections {
		t.Errorf("mailchimp: %d requests at once, its limit is %d", n, mailchimpfake.MaxConnections)
	}
	if got := outcome(reg, "applied"); got != events {
		t.Errorf("aggregator applied %v events, want %d", got, events)
	}
}

func TestExpiredTokenMidRunCostsNoRecord(t *testing.T) {
	vendors := []string{config.ConnectorHubSpot, config.ConnectorSalesforce}
	fakes := startFakes(t, vendors...)
	e := newEnv(t)
	e.cfg = fakes.config(e.broker.Addr(), map[string]bool{config.ConnectorHubSpot: true, config.ConnectorSalesforce: true})
	_, reg, _ := e.start()

	const perOrg = 60
	r := rand.New(rand.NewPCG(3, 4))
	w := newWorkload()
	id := func(v string, i int) string { return fmt.Sprintf("%s_u%03d", v, i) }
	for _, v := range vendors {
		for i := range perOrg / 2 {
			w.create(id(v, i), vendorOrg[v], hubtest.RandomName(r))
			w.login(id(v, i))
		}
	}
	w.produce(e)
	eventuallyHolds(t, 30*time.Second, fakes, w, vendors...)

	tokens := map[string]int{config.ConnectorHubSpot: fakes.hubspot.TokenRequests(), config.ConnectorSalesforce: fakes.salesforce.TokenRequests()}
	fakes.hubspot.ExpireTokens()
	fakes.salesforce.ExpireTokens()
	for _, v := range vendors {
		for i := range perOrg / 2 {
			w.rename(id(v, i), hubtest.RandomName(r))
		}
		for i := perOrg / 2; i < perOrg; i++ {
			w.create(id(v, i), vendorOrg[v], hubtest.RandomName(r))
		}
	}
	w.produce(e)
	eventuallyHolds(t, 30*time.Second, fakes, w, vendors...)

	if got := fakes.hubspot.TokenRequests(); got <= tokens[config.ConnectorHubSpot] {
		t.Errorf("hubspot: %d token requests, as many as before the expiry: the expired token was not replaced", got)
	}
	if got := fakes.salesforce.TokenRequests(); got <= tokens[config.ConnectorSalesforce] {
		t.Errorf("salesforce: %d token requests, as many as before the expiry: the ended session was not replaced", got)
	}
	for _, v := range vendors {
		if n := deadLettered(reg, v, vendorOrg[v]); n != 0 {
			t.Errorf("%s: %v records dead-lettered", v, n)
		}
		if dlq := e.readAll(kafka.DLQTopic(v)); len(dlq) != 0 {
			t.Errorf("%s: %d records in %s, the first %s: %v", v, len(dlq), kafka.DLQTopic(v), dlq[0].Key, headers(dlq[0]))
		}
	}
}

func TestVendorRejectionIsDeadLetteredWithItsMessage(t *testing.T) {
	vendors := []string{config.ConnectorHubSpot, config.ConnectorMarketo}
	fakes := startFakes(t, vendors...)
	e := newEnv(t)
	e.cfg = fakes.config(e.broker.Addr(), map[string]bool{config.ConnectorHubSpot: true, config.ConnectorMarketo: true})
	_, reg, _ := e.start()

	const perOrg, message = 20, "synthetic: bad address"
	r := rand.New(rand.NewPCG(5, 6))
	w := newWorkload()
	rejected := map[string]*user{}
	for _, v := range vendors {
		for i := range perOrg {
			id := fmt.Sprintf("%s_u%03d", v, i)
			w.create(id, vendorOrg[v], hubtest.RandomName(r))
			if i == 7 {
				// One version only, so exactly one dead letter.
				rejected[v] = w.users[id]
				key, _ := expected(v, w.users[id])
				fakes.fake(v).Reject(key, message)
				continue
			}
			w.login(id)
		}
	}
	w.produce(e)
	// The others are delivered: everyone but the rejected user, and no
	// record of it.
	accepted := newWorkload()
	for id, u := range w.users {
		if u != rejected[config.ConnectorHubSpot] && u != rejected[config.ConnectorMarketo] {
			accepted.users[id] = u
		}
	}
	eventuallyHolds(t, 30*time.Second, fakes, accepted, vendors...)

	for _, v := range vendors {
		t.Run(v, func(t *testing.T) {
			org, u := vendorOrg[v], rejected[v]
			hubtest.Eventually(t, 30*time.Second, "the rejected record counted as dead-lettered", func() bool { return deadLettered(reg, v, org) == 1 })
			var dlq []*sarama.ConsumerMessage
			hubtest.Eventually(t, 30*time.Second, "the rejected record in "+kafka.DLQTopic(v), func() bool {
				dlq = e.readAll(kafka.DLQTopic(v))
				return len(dlq) > 0
			})
			if len(dlq) != 1 {
				t.Fatalf("%d records in %s, want 1", len(dlq), kafka.DLQTopic(v))
			}
			m := dlq[0]
			if string(m.Key) != u.id {
				t.Errorf("dead letter key %q, want %q", m.Key, u.id)
			}
			h := headers(m)
			want := map[string]string{
				retry.HeaderErrorClass: "permanent", retry.HeaderCustomer: org, retry.HeaderConnector: v,
				retry.HeaderConnectorName: v, retry.HeaderTopic: kafka.EntityTopic("user"), retry.HeaderReplayCount: "0",
			}
			for k, x := range want {
				if h[k] != x {
					t.Errorf("header %s = %q, want %q", k, h[k], x)
				}
			}
			if msg := h[retry.HeaderExceptionMsg]; !strings.Contains(msg, message) {
				t.Errorf("header %s = %q, want the vendor's message %q in it", retry.HeaderExceptionMsg, msg, message)
			}
			if !strings.Contains(string(m.Value), fmt.Sprintf("%q", u.id)) || !strings.Contains(string(m.Value), u.email) {
				t.Errorf("dead letter value %s, want the user's snapshot", m.Value)
			}
		})
	}
}

// offsets is a client for asking how far consumer groups have committed.
func offsets(t *testing.T, addr string) sarama.Client {
	t.Helper()
	client, err := sarama.NewClient([]string{addr}, kafka.SaramaConfig("test-offsets"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func TestEnablingAConnectorLiveStartsDelivery(t *testing.T) {
	const vendor = config.ConnectorIntercom
	org := vendorOrg[vendor]
	fakes := startFakes(t, vendor)
	e := newEnv(t)
	on, off := fakes.config(e.broker.Addr(), map[string]bool{vendor: true}), fakes.config(e.broker.Addr(), map[string]bool{vendor: false})
	e.cfg = off
	hub, reg, _ := e.start()
	client := offsets(t, e.broker.Addr())
	group, entities := "synchub.connector."+vendor, kafka.EntityTopic("user")

	const users = 30
	r := rand.New(rand.NewPCG(7, 8))
	w := newWorkload()
	id := func(i int) string { return fmt.Sprintf("u%03d", i) }
	applied := 0
	for i := range users {
		w.create(id(i), org, hubtest.RandomName(r))
	}
	applied += w.produce(e)
	hubtest.Eventually(t, 30*time.Second, "users created while intercom is off", func() bool { return outcome(reg, "applied") == float64(applied) })
	if n := fakes.intercom.Requests(); n != 0 {
		t.Fatalf("intercom got %d requests while disabled", n)
	}

	// Enabled live: the intercom stage starts and delivers new events
	// (and, its group being new, the users as they are).
	if err := hub.Reconfigure(on); err != nil {
		t.Fatalf("enabling intercom: %v", err)
	}
	for i := range users {
		w.rename(id(i), hubtest.RandomName(r))
		if i%3 == 0 {
			w.changeEmail(id(i), fmt.Sprintf("%s.new@example.com", id(i)))
		}
	}
	applied += w.produce(e)
	eventuallyHolds(t, 30*time.Second, fakes, w, vendor)
	hubtest.Eventually(t, 30*time.Second, "the intercom stage to commit what it delivered", func() bool { return hubtest.CaughtUp(t, client, group, entities) })
	before := fakes.intercom.Requests()
	enabledState := map[string]user{}
	for _, u := range w.of(org) {
		enabledState[u.id] = *u
	}

	// Disabled live: the stage reads on but sends nothing.
	if err := hub.Reconfigure(off); err != nil {
		t.Fatalf("disabling intercom: %v", err)
	}
	skippedBefore := counter(reg, "synchub_connector_records_total", map[string]string{"connector": vendor, "customer": org, "outcome": "skipped"})
	for i := range users {
		w.rename(id(i), "Late "+hubtest.RandomName(r))
	}
	applied += w.produce(e)
	hubtest.Eventually(t, 30*time.Second, "the late renames applied", func() bool { return outcome(reg, "applied") == float64(applied) })
	hubtest.Eventually(t, 30*time.Second, "the intercom stage to read past the late renames", func() bool { return hubtest.CaughtUp(t, client, group, entities) })
	if n := fakes.intercom.Requests(); n != before {
		t.Errorf("intercom got %d requests after it was disabled", n-before)
	}
	if got := counter(reg, "synchub_connector_records_total", map[string]string{"connector": vendor, "customer": org, "outcome": "skipped"}); got <= skippedBefore {
		t.Errorf("the intercom stage skipped %v records after it was disabled, want some", got-skippedBefore)
	}
	recs := fakes.intercom.Records()
	for _, u := range enabledState {
		if got := fmt.Sprint(recs[u.id]["name"]); got != u.name {
			t.Errorf("%s: name %q after the connector was disabled, want %q as when it was enabled", u.id, got, u.name)
		}
	}
}

// Once an endpoint has the version where a user's address changed, later
// updates of that user cost one request each: the record no longer carries
// former keys, so the connector looks nothing up and moves nothing.
func TestAMovedRecordIsNotLookedUpAgain(t *testing.T) {
	vendors := []string{config.ConnectorHubSpot, config.ConnectorMailchimp}
	fakes := startFakes(t, vendors...)
	e := newEnv(t)
	e.cfg = fakes.config(e.broker.Addr(), map[string]bool{config.ConnectorHubSpot: true, config.ConnectorMailchimp: true})
	e.start()
	w := newWorkload()
	for _, v := range vendors {
		id := v + "_u"
		w.create(id, vendorOrg[v], "Ann Lee")
		w.changeEmail(id, id+".new@example.com")
	}
	w.produce(e)
	eventuallyHolds(t, 30*time.Second, fakes, w, vendors...)
	for _, v := range vendors {
		f, id := fakes.fake(v), v+"_u"
		const renames = 3
		before := f.Requests()
		for i := range renames {
			w.rename(id, fmt.Sprintf("Ann Lee %d", i))
			w.produce(e)
			eventuallyHolds(t, 30*time.Second, fakes, w, v)
		}
		if got := f.Requests() - before; got != renames {
			t.Errorf("%s: %d requests for %d updates after the move, want one each", v, got, renames)
		}
	}
}
