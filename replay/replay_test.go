package replay_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/internal/hubtest"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/replay"
	"github.com/synchub/synchub/retry"
	"github.com/synchub/synchub/router"
)

const partitions = 4

// cluster is an in-process broker with the hub's topics.
type cluster struct {
	*hubtest.Broker
	t *testing.T
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return &cluster{Broker: hubtest.StartBroker(t, partitions, router.Topics()), t: t}
}

// snapshot writes version v of user id of org to entity.user and returns
// where it landed.
func (c *cluster) snapshot(id, org string, v int, name string) (int32, int64) {
	c.t.Helper()
	value := fmt.Sprintf(`{"id":%q,"type":"user","organization_id":%q,"version":%d,"name":%q,"email":"%s@example.com"}`, id, org, v, name, id)
	p := partitionOf(id)
	return p, c.Send(kafka.EntityTopic("user"), id, []byte(value), p, userHeaders(org, v), time.Time{})
}

// userHeaders are the headers of version v of a user of org.
func userHeaders(org string, v int) map[string]string {
	return map[string]string{kafka.HeaderEntityType: "user", kafka.HeaderVersion: strconv.Itoa(v), kafka.HeaderOrganizationID: org}
}

// partitionOf spreads test users over the partitions by their number.
func partitionOf(id string) int32 {
	n, _ := strconv.Atoi(strings.TrimPrefix(id, "u_"))
	return int32(n % partitions)
}

// deadLetter writes a DLQ record for the snapshot at (p, off) the way the
// connector middleware does.
func (c *cluster) deadLetter(connector, id, org string, v int, p int32, off int64, class retry.Class, msg string, replays int, at time.Time) {
	c.t.Helper()
	err := failure(class, msg)
	h := retry.DeadLetterHeaders(retry.Origin{Topic: kafka.EntityTopic("user"), Partition: p, Offset: off, Connector: connector, Customer: org}, err, replays, at)
	maps.Copy(h, userHeaders(org, v))
	c.Send(kafka.DLQTopic(connector), id, fmt.Appendf(nil, `{"id":%q,"version":%d}`, id, v), 0, h, at)
}

// failure is the error a connector fails a record with.
func failure(class retry.Class, msg string) error {
	return &retry.Error{Class: class, Attempts: 1, HTTPStatus: 400, Err: errors.New(msg)}
}

func header(m *sarama.ConsumerMessage, name string) string {
	for _, h := range m.Headers {
		if string(h.Key) == name {
			return string(h.Value)
		}
	}
	return ""
}

// layoutConfig has webhook for org_a and org_b and intercom for org_a;
// org_c has webhook disabled.
func layoutConfig(t *testing.T, addr string) *config.Config {
	t.Helper()
	yaml := fmt.Sprintf(`kafka: {brokers: [%q], partitions: %d}
customers:
  - id: org_a
    connectors:
      webhook: {enabled: true, url: "http://127.0.0.1:1/a", secret_env: S}
      intercom: {enabled: true, token_env: T}
  - id: org_b
    connectors:
      webhook: {enabled: true, url: "http://127.0.0.1:1/b", secret_env: S}
  - id: org_c
    connectors:
      webhook: {enabled: false, url: "http://127.0.0.1:1/c", secret_env: S}
`, addr, partitions)
	cfg, err := config.Parse([]byte(yaml), func(name string) (string, bool) {
		return map[string]string{"S": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "T": "tok"}[name], true
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newOps(t *testing.T, c *cluster, cfg *config.Config, now time.Time) *replay.Ops {
	t.Helper()
	ops, err := replay.New(replay.Deps{
		Brokers: []string{c.Addr}, Config: func() *config.Config { return cfg },
		Connectors: router.Connectors(), Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ops.Close() })
	return ops
}

// fixture is a DLQ with known contents:
//
//	u_1 org_a v1,v2 permanent "bad email" (two records, one entity), current v3
//	u_2 org_a v1 exhausted "timeout", current v1, dead-lettered 10 days ago
//	u_3 org_b v1 permanent "bad email", current v2
//	u_4 org_a v1 permanent, already replayed 3 times
//	u_5 org_c v1 permanent (webhook disabled for org_c)
//	u_6 org_a v1 permanent, entity since deleted
type fixture struct {
	*cluster
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	c := newCluster(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f := &fixture{cluster: c, now: now}
	p, o1 := c.snapshot("u_1", "org_a", 1, "Ann")
	_, o2 := c.snapshot("u_1", "org_a", 2, "Ann B")
	c.snapshot("u_1", "org_a", 3, "Ann Current")
	p2, o := c.snapshot("u_2", "org_a", 1, "Bob")
	c.deadLetter("webhook", "u_2", "org_a", 1, p2, o, retry.Exhausted, "timeout", 0, now.Add(-10*24*time.Hour))
	c.deadLetter("webhook", "u_1", "org_a", 1, p, o1, retry.Permanent, "HTTP 400: bad email", 0, now.Add(-2*time.Hour))
	c.deadLetter("webhook", "u_1", "org_a", 2, p, o2, retry.Permanent, "HTTP 400: bad email", 0, now.Add(-90*time.Minute))
	p3, o3 := c.snapshot("u_3", "org_b", 1, "Cid")
	c.snapshot("u_3", "org_b", 2, "Cid Current")
	c.deadLetter("webhook", "u_3", "org_b", 1, p3, o3, retry.Permanent, "HTTP 400: bad email", 0, now.Add(-time.Hour))
	p4, o4 := c.snapshot("u_4", "org_a", 1, "Dee")
	c.deadLetter("webhook", "u_4", "org_a", 1, p4, o4, retry.Permanent, "HTTP 400: no", 3, now.Add(-30*time.Minute))
	p5, o5 := c.snapshot("u_5", "org_c", 1, "Eve")
	c.deadLetter("webhook", "u_5", "org_c", 1, p5, o5, retry.Permanent, "HTTP 400: no", 0, now.Add(-20*time.Minute))
	p6, o6 := c.snapshot("u_6", "org_a", 1, "Fay")
	c.Send(kafka.EntityTopic("user"), "u_6", nil, p6, nil, time.Time{}) // deleted: a tombstone
	c.deadLetter("webhook", "u_6", "org_a", 1, p6, o6, retry.Permanent, "HTTP 400: no", 0, now.Add(-10*time.Minute))
	return f
}

func TestListGroupsByConnectorCustomerAndReason(t *testing.T) {
	f := newFixture(t)
	ops := newOps(t, f.cluster, layoutConfig(t, f.Addr), f.now)
	groups, err := ops.List(context.Background(), replay.Filter{Connector: "webhook"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range groups {
		line := fmt.Sprintf("%s/%s %d pending %d", g.Connector, g.Customer, g.Records, g.Pending)
		for _, r := range g.Reasons {
			line += fmt.Sprintf(" [%d %s %d e.g. %s]", r.Records, r.ErrorClass, r.HTTPStatus, r.Example)
		}
		got = append(got, line)
	}
	badEmail, no, timeout := failure(retry.Permanent, "HTTP 400: bad email"), failure(retry.Permanent, "HTTP 400: no"), failure(retry.Exhausted, "timeout")
	want := []string{
		// Grouped by class and status, the first message as the example.
		fmt.Sprintf("webhook/org_a 5 pending 5 [4 permanent 400 e.g. %v] [1 exhausted 400 e.g. %v]", badEmail, timeout),
		fmt.Sprintf("webhook/org_b 1 pending 1 [1 permanent 400 e.g. %v]", badEmail),
		fmt.Sprintf("webhook/org_c 1 pending 1 [1 permanent 400 e.g. %v]", no),
	}
	if !slices.Equal(got, want) {
		t.Errorf("list:\n got %q\nwant %q", got, want)
	}
	if g := groups[0]; !g.Oldest.Equal(f.now.Add(-10*24*time.Hour)) || !g.Newest.Equal(f.now.Add(-10*time.Minute)) {
		t.Errorf("org_a oldest/newest = %s/%s", g.Oldest, g.Newest)
	}
	all, err := ops.List(context.Background(), replay.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Errorf("list of every connector has %d groups, want the webhook's 3", len(all))
	}
	if _, err := ops.List(context.Background(), replay.Filter{Connector: "nope"}); !errors.Is(err, replay.ErrUsage) {
		t.Errorf("unknown connector: err = %v, want ErrUsage", err)
	}
}

func TestFiltersSelectExactlyWhatTheyName(t *testing.T) {
	f := newFixture(t)
	ops := newOps(t, f.cluster, layoutConfig(t, f.Addr), f.now)
	cases := []struct {
		name   string
		filter replay.Filter
		want   []string // keys, in DLQ order
	}{
		{"all", replay.Filter{Connector: "webhook"}, []string{"u_2", "u_1", "u_1", "u_3", "u_4", "u_5", "u_6"}},
		{"customer", replay.Filter{Connector: "webhook", Customer: "org_b"}, []string{"u_3"}},
		{"error class", replay.Filter{Connector: "webhook", ErrorClass: "exhausted"}, []string{"u_2"}},
		{"key", replay.Filter{Connector: "webhook", Key: "u_1"}, []string{"u_1", "u_1"}},
		{"since", replay.Filter{Connector: "webhook", Since: f.now.Add(-time.Hour)}, []string{"u_3", "u_4", "u_5", "u_6"}},
		{"until", replay.Filter{Connector: "webhook", Until: f.now.Add(-time.Hour)}, []string{"u_2", "u_1", "u_1"}},
		{"since and until", replay.Filter{Connector: "webhook", Since: f.now.Add(-2 * time.Hour), Until: f.now.Add(-time.Hour)}, []string{"u_1", "u_1"}},
		{"other connector", replay.Filter{Connector: "hubspot"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := ops.Show(context.Background(), tc.filter, 0)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, r := range recs {
				keys = append(keys, r.Key)
			}
			if !slices.Equal(keys, tc.want) {
				t.Errorf("keys = %q, want %q", keys, tc.want)
			}
		})
	}
	recs, err := ops.Show(context.Background(), replay.Filter{Connector: "webhook", Key: "u_3"}, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("show u_3: %v, %d records", err, len(recs))
	}
	r := recs[0]
	if r.Reason != failure(retry.Permanent, "HTTP 400: bad email").Error() || r.ErrorClass != "permanent" || r.HTTPStatus != 400 || r.Customer != "org_b" ||
		r.Origin.Topic != "entity.user" || r.Version != 1 || r.Headers[retry.HeaderExceptionMsg] != r.Reason {
		t.Errorf("record = %+v", r)
	}
	if limited, _ := ops.Show(context.Background(), replay.Filter{Connector: "webhook"}, 2); len(limited) != 2 {
		t.Errorf("limit 2 gave %d records", len(limited))
	}
}

func TestReplaySendsCurrentSnapshotsOnceAndLeavesWhatItMust(t *testing.T) {
	f := newFixture(t)
	ops := newOps(t, f.cluster, layoutConfig(t, f.Addr), f.now)
	ctx := context.Background()

	dry, err := ops.Replay(ctx, replay.Filter{Connector: "webhook"}, replay.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.Read(kafka.RetryTopic("webhook"))); n != 0 {
		t.Fatalf("dry run wrote %d records", n)
	}
	var progress [][2]int
	sum, err := ops.Replay(ctx, replay.Filter{Connector: "webhook"}, replay.Options{Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) }})
	if err != nil {
		t.Fatal(err)
	}
	dry.DryRun = false
	if fmt.Sprint(dry) != fmt.Sprint(sum) {
		t.Errorf("dry run said %+v, the run did %+v", dry, sum)
	}
	wantSkipped := map[string]int{replay.SkipMaxReplays: 1, replay.SkipDisabled: 1, replay.SkipGone: 1}
	if sum.Matched != 7 || sum.Replayed != 3 || sum.Answered != 4 || fmt.Sprint(sum.Skipped) != fmt.Sprint(wantSkipped) {
		t.Errorf("summary = %+v, want 7 matched, 3 replayed answering 4, skipped %v", sum, wantSkipped)
	}
	if len(sum.Left) != 1 || sum.Left[0].Key != "u_4" || sum.Left[0].ReplayCount != 3 {
		t.Errorf("left = %+v, want u_4 replayed 3 times", sum.Left)
	}
	if len(progress) == 0 || progress[len(progress)-1] != [2]int{3, 3} {
		t.Errorf("progress = %v, want it to end at 3 of 3", progress)
	}

	retried := f.Read(kafka.RetryTopic("webhook"))
	got := map[string]string{}
	for _, m := range retried {
		got[string(m.Key)] = fmt.Sprintf("v%s %s org=%s replay_of=%d replays=%s p=%d",
			header(m, kafka.HeaderVersion), nameOf(m.Value), header(m, kafka.HeaderOrganizationID),
			len(strings.Split(header(m, replay.HeaderReplayOf), ",")), header(m, retry.HeaderReplayCount), m.Partition)
	}
	want := map[string]string{
		"u_1": "v3 Ann Current org=org_a replay_of=2 replays=1 p=1",
		"u_2": "v1 Bob org=org_a replay_of=1 replays=1 p=2",
		"u_3": "v2 Cid Current org=org_b replay_of=1 replays=1 p=3",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(retried) != 3 {
		t.Errorf("retry topic:\n got %v\nwant %v", got, want)
	}

	again, err := ops.Replay(ctx, replay.Filter{Connector: "webhook"}, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Replayed != 0 || again.Skipped[replay.SkipReplayed] != 4 {
		t.Errorf("second run = %+v, want nothing replayed and 4 already replayed", again)
	}
	if n := len(f.Read(kafka.RetryTopic("webhook"))); n != 3 {
		t.Errorf("retry topic has %d records after the second run, want still 3", n)
	}
	listed, _ := ops.List(ctx, replay.Filter{Connector: "webhook", Customer: "org_a"})
	if len(listed) != 1 || listed[0].Pending != 2 {
		t.Errorf("org_a after replay: %+v, want 2 pending (u_4 and u_6)", listed)
	}

	// A replayed record that fails again is dead-lettered with its replay
	// count, and a later run replays it with one more.
	m := retried[0]
	f.deadLetter("webhook", string(m.Key), header(m, kafka.HeaderOrganizationID), 3, m.Partition, m.Offset, retry.Permanent, "HTTP 400: still", 1, f.now)
	if left, _ := ops.Replay(ctx, replay.Filter{Connector: "webhook", Key: string(m.Key)}, replay.Options{MaxReplays: 1}); left.Replayed != 0 || len(left.Left) != 1 {
		t.Errorf("max_replays 1 still replayed: %+v", left)
	}
	third, err := ops.Replay(ctx, replay.Filter{Connector: "webhook", Key: string(m.Key)}, replay.Options{MaxReplays: 2})
	if err != nil || third.Replayed != 1 {
		t.Fatalf("replay of the failed replay: %+v, %v", third, err)
	}
	var counts []string
	for _, r := range f.Read(kafka.RetryTopic("webhook")) {
		if string(r.Key) == string(m.Key) {
			counts = append(counts, header(r, retry.HeaderReplayCount))
		}
	}
	if !slices.Equal(counts, []string{"1", "2"}) {
		t.Errorf("replay counts of %s's retry records = %q, want [1 2]", m.Key, counts)
	}
}

func nameOf(v []byte) string {
	_, after, _ := strings.Cut(string(v), `"name":"`)
	name, _, _ := strings.Cut(after, `"`)
	return name
}

func TestPurgeDeletesOnlyRecordsOlderThanTheAge(t *testing.T) {
	f := newFixture(t)
	ops := newOps(t, f.cluster, layoutConfig(t, f.Addr), f.now)
	ctx := context.Background()
	dry, err := ops.Purge(ctx, "webhook", 3*time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	if dry.Purged != 1 || len(f.Read(kafka.DLQTopic("webhook"))) != 7 {
		t.Fatalf("dry run: %+v; it must count 1 and delete nothing", dry)
	}
	sum, err := ops.Purge(ctx, "webhook", 3*time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	left := f.Read(kafka.DLQTopic("webhook"))
	if sum.Purged != 1 || len(left) != 6 || string(left[0].Key) != "u_1" {
		t.Errorf("purge: %+v, %d left starting with %s; want u_2 alone purged", sum, len(left), left[0].Key)
	}
	if _, err := ops.Purge(ctx, "webhook", 0, false); !errors.Is(err, replay.ErrUsage) {
		t.Errorf("zero age: %v, want ErrUsage", err)
	}
}

func TestResyncSendsEveryCurrentEntityOfTheCustomer(t *testing.T) {
	f := newFixture(t)
	cfg := layoutConfig(t, f.Addr)
	ops := newOps(t, f.cluster, cfg, f.now)
	ctx := context.Background()
	sum, err := ops.Resync(ctx, "webhook", "org_a", replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// u_1, u_2 and u_4 of org_a; u_6 was deleted.
	var keys []string
	for _, m := range f.Read(kafka.RetryTopic("webhook")) {
		keys = append(keys, string(m.Key)+"@v"+header(m, kafka.HeaderVersion))
		if header(m, replay.HeaderResync) == "" || header(m, replay.HeaderReplayOf) != "" {
			t.Errorf("resync record headers: %v", m.Headers)
		}
	}
	slices.Sort(keys)
	if sum.Matched != 3 || sum.Replayed != 3 || !slices.Equal(keys, []string{"u_1@v3", "u_2@v1", "u_4@v1"}) {
		t.Errorf("resync: %+v, sent %q", sum, keys)
	}
	for _, bad := range []struct{ connector, customer string }{{"webhook", "org_c"}, {"webhook", "org_x"}, {"hubspot", "org_a"}, {"nope", "org_a"}} {
		if _, err := ops.Resync(ctx, bad.connector, bad.customer, replay.Options{}); !errors.Is(err, replay.ErrUsage) {
			t.Errorf("resync %s/%s: err = %v, want ErrUsage", bad.connector, bad.customer, err)
		}
	}
}

func TestParseTimeAndAge(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"2026-11-20T10:00:00Z": time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC),
		"90m":                  now.Add(-90 * time.Minute),
		"7d":                   now.Add(-7 * 24 * time.Hour),
	} {
		got, err := replay.ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5h", "xd", "2026-13-01"} {
		if _, err := replay.ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}
