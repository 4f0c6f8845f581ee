package aggregate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/synchub/synchub/event"
	"github.com/synchub/synchub/router/aggregate"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func mustDecode(t *testing.T, s string) event.Envelope {
	t.Helper()
	env, err := event.Decode([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return env
}

func ev(t *testing.T, typ string, minute int, payload string) event.Envelope {
	return mustDecode(t, fmt.Sprintf(`{"event_type":%q,"entity_id":"u_1","timestamp":%q,"event":%s}`,
		typ, t0.Add(time.Duration(minute)*time.Minute).Format(time.RFC3339), payload))
}

func TestApplyUserFold(t *testing.T) {
	u, err := aggregate.ApplyUser(nil, ev(t, "userCreated", 0, `{"name":"Ann Lee","email":"ann@x","roles":["admin"],"organization_id":"org_a"}`), aggregate.Source{Partition: 3, Offset: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := &aggregate.User{ID: "u_1", Type: "user", OrganizationID: "org_a", Version: 1, CreatedAt: t0, UpdatedAt: t0,
		Source: aggregate.Source{Partition: 3, Offset: 10}, Name: "Ann Lee", Email: "ann@x", Roles: []string{"admin"},
		PreviousEmails: []string{}, EmailVersion: 1, RecentLogins: []aggregate.Login{}, RecentFailedLogins: []aggregate.FailedLogin{}}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("created\n got %+v\nwant %+v", u, want)
	}

	upd, err := aggregate.ApplyUser(u, ev(t, "userUpdated", 1, `{"email":"ann@new"}`), aggregate.Source{Partition: 3, Offset: 11})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Email != "ann@new" || upd.Name != "Ann Lee" || upd.Version != 2 || upd.Source.Offset != 11 || !upd.UpdatedAt.Equal(t0.Add(time.Minute)) || !upd.CreatedAt.Equal(t0) {
		t.Fatalf("updated %+v", upd)
	}
	if !reflect.DeepEqual(upd.PreviousEmails, []string{"ann@x"}) || upd.EmailVersion != 2 {
		t.Fatalf("previous emails %q, email version %d; want [ann@x] and 2, the version of the change", upd.PreviousEmails, upd.EmailVersion)
	}
	if u.Email != "ann@x" || u.Version != 1 || len(u.PreviousEmails) != 0 {
		t.Fatalf("fold modified its input: %+v", u)
	}

	roles, err := aggregate.ApplyUser(upd, ev(t, "userUpdated", 2, `{"roles":[]}`), aggregate.Source{Offset: 12})
	if err != nil || len(roles.Roles) != 0 || roles.Roles == nil || roles.EmailVersion != 2 {
		t.Fatalf("roles cleared: %+v, email version %d (want still 2), %v", roles.Roles, roles.EmailVersion, err)
	}

	in, err := aggregate.ApplyUser(roles, ev(t, "userLoggedIn", 3, `{"ip":"1.2.3.4","user_agent":"ua"}`), aggregate.Source{Offset: 13})
	if err != nil {
		t.Fatal(err)
	}
	if in.LoginsCount != 1 || in.LastLoginAt == nil || !in.LastLoginAt.Equal(t0.Add(3*time.Minute)) ||
		!reflect.DeepEqual(in.RecentLogins, []aggregate.Login{{Timestamp: t0.Add(3 * time.Minute), IP: "1.2.3.4", UserAgent: "ua"}}) {
		t.Fatalf("login %+v", in)
	}

	failed, err := aggregate.ApplyUser(in, ev(t, "userFailedLogin", 4, `{"ip":"5.6.7.8","reason":"bad password"}`), aggregate.Source{Offset: 14})
	if err != nil {
		t.Fatal(err)
	}
	if failed.LoginsFailedCount != 1 || failed.LoginsCount != 1 || failed.Version != 5 ||
		!reflect.DeepEqual(failed.RecentFailedLogins, []aggregate.FailedLogin{{Timestamp: t0.Add(4 * time.Minute), IP: "5.6.7.8", Reason: "bad password"}}) {
		t.Fatalf("failed login %+v", failed)
	}
}

func TestApplyUserRecentListsAreBounded(t *testing.T) {
	u, err := aggregate.ApplyUser(nil, ev(t, "userCreated", 0, `{"organization_id":"o"}`), aggregate.Source{})
	if err != nil {
		t.Fatal(err)
	}
	var history []*aggregate.User
	for i := 1; i <= 25; i++ {
		u, err = aggregate.ApplyUser(u, ev(t, "userLoggedIn", i, fmt.Sprintf(`{"ip":"10.0.0.%d"}`, i)), aggregate.Source{Offset: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, u)
	}
	if u.LoginsCount != 25 || len(u.RecentLogins) != aggregate.RecentLimit {
		t.Fatalf("count %d, recent %d", u.LoginsCount, len(u.RecentLogins))
	}
	if first, last := u.RecentLogins[0].IP, u.RecentLogins[len(u.RecentLogins)-1].IP; first != "10.0.0.16" || last != "10.0.0.25" {
		t.Fatalf("recent window %s..%s, want 10.0.0.16..10.0.0.25 (newest last)", first, last)
	}
	// Earlier snapshots must not be rewritten by later folds sharing arrays.
	if got := history[11].RecentLogins[9].IP; got != "10.0.0.12" {
		t.Fatalf("snapshot 12 was modified: newest is %s", got)
	}
}

func TestApplyUserRejectsEventsThatDoNotFit(t *testing.T) {
	if _, err := aggregate.ApplyUser(nil, ev(t, "userUpdated", 0, `{"name":"x"}`), aggregate.Source{}); !errors.Is(err, aggregate.ErrUnknownEntity) {
		t.Fatalf("update of unknown user: %v", err)
	}
	if _, err := aggregate.ApplyUser(nil, ev(t, "userLoggedIn", 0, `{}`), aggregate.Source{}); !errors.Is(err, aggregate.ErrUnknownEntity) {
		t.Fatalf("login of unknown user: %v", err)
	}
	u, _ := aggregate.ApplyUser(nil, ev(t, "userCreated", 0, `{"organization_id":"o"}`), aggregate.Source{})
	if _, err := aggregate.ApplyUser(u, ev(t, "userCreated", 1, `{"organization_id":"o"}`), aggregate.Source{Offset: 1}); !errors.Is(err, aggregate.ErrAlreadyExists) {
		t.Fatalf("second create: %v", err)
	}
}

func TestApplyUserPreviousEmails(t *testing.T) {
	u, err := aggregate.ApplyUser(nil, ev(t, "userCreated", 0, `{"email":"a@x","organization_id":"o"}`), aggregate.Source{})
	if err != nil {
		t.Fatal(err)
	}
	minute := 0
	step := func(payload string) *aggregate.User {
		t.Helper()
		minute++
		next, err := aggregate.ApplyUser(u, ev(t, "userUpdated", minute, payload), aggregate.Source{Offset: int64(minute)})
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	want := func(got *aggregate.User, email string, prev ...string) {
		t.Helper()
		if prev == nil {
			prev = []string{}
		}
		if got.Email != email || !reflect.DeepEqual(got.PreviousEmails, prev) {
			t.Fatalf("email %q previous %q, want %q %q", got.Email, got.PreviousEmails, email, prev)
		}
	}
	u = step(`{"name":"Ann"}`)
	want(u, "a@x")
	u = step(`{"email":"a@x"}`) // the same address: nothing to remember
	want(u, "a@x")
	u = step(`{"email":"b@x"}`)
	want(u, "b@x", "a@x")
	u = step(`{"email":"c@x"}`)
	want(u, "c@x", "a@x", "b@x")
	kept := u
	u = step(`{"email":"a@x"}`) // back to a former address: it leaves the list
	want(u, "a@x", "b@x", "c@x")
	want(kept, "c@x", "a@x", "b@x") // the fold never rewrites its input
	u = step(`{"email":"B@X"}`)     // same mailbox, other case: one entry, the newest spelling
	want(u, "B@X", "c@x", "a@x")
	u = step(`{"email":"b@x"}`) // a case-only change remembers nothing
	want(u, "b@x", "c@x", "a@x")
	// More changes than the cap: the oldest addresses go, the newest
	// PreviousEmailsLimit stay, oldest first.
	const changes = aggregate.PreviousEmailsLimit + 5
	for i := range changes {
		u = step(fmt.Sprintf(`{"email":"n%d@x"}`, i))
	}
	if len(u.PreviousEmails) != aggregate.PreviousEmailsLimit {
		t.Fatalf("%d previous emails, want the cap %d: %q", len(u.PreviousEmails), aggregate.PreviousEmailsLimit, u.PreviousEmails)
	}
	var newest []string
	for i := changes - 1 - aggregate.PreviousEmailsLimit; i < changes-1; i++ {
		newest = append(newest, fmt.Sprintf("n%d@x", i))
	}
	want(u, fmt.Sprintf("n%d@x", changes-1), newest...)
	// Back to a remembered address: it leaves the list, the current one joins.
	back := newest[2]
	again := append(slices.Delete(slices.Clone(newest), 2, 3), fmt.Sprintf("n%d@x", changes-1))
	u = step(fmt.Sprintf(`{"email":%q}`, back))
	want(u, back, again...)
}

// TestPreviousEmailsCoverACatchUpBacklog: the chain the router's catch-up
// test met (a user changing address eight times while its deliveries were
// coalesced into one) is within the cap, so the vendor's record under the
// original address can still be found.
func TestPreviousEmailsCoverACatchUpBacklog(t *testing.T) {
	u, err := aggregate.ApplyUser(nil, ev(t, "userCreated", 0, `{"email":"orig@x","organization_id":"o"}`), aggregate.Source{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 8; i++ {
		u, err = aggregate.ApplyUser(u, ev(t, "userUpdated", i, fmt.Sprintf(`{"email":"e%d@x"}`, i)), aggregate.Source{Offset: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(u.PreviousEmails) != 8 || u.PreviousEmails[0] != "orig@x" {
		t.Fatalf("previous emails %q, want 8 starting with the original address", u.PreviousEmails)
	}
}

func TestUserSnapshotWithoutPreviousEmailsRestores(t *testing.T) {
	// A snapshot published before previous_emails existed.
	old := `{"id":"u_1","type":"user","organization_id":"o","version":3,"created_at":"2026-11-25T10:00:00Z",
		"updated_at":"2026-11-25T10:02:00Z","source":{"partition":0,"offset":2},"name":"Ann","email":"a@x",
		"roles":[],"logins_count":0,"logins_failed_count":0,"last_login_at":null,"recent_logins":[],"recent_failed_logins":[]}`
	var u aggregate.User
	if err := json.Unmarshal([]byte(old), &u); err != nil {
		t.Fatal(err)
	}
	if u.ID != "u_1" || u.Email != "a@x" || u.PreviousEmails != nil {
		t.Fatalf("restored %+v", u)
	}
	in, err := aggregate.ApplyUser(&u, ev(t, "userLoggedIn", 3, `{}`), aggregate.Source{Offset: 3})
	if err != nil {
		t.Fatal(err)
	}
	if in.PreviousEmails == nil || len(in.PreviousEmails) != 0 {
		t.Fatalf("previous emails after a fold of an old snapshot: %#v, want []", in.PreviousEmails)
	}
	moved, err := aggregate.ApplyUser(&u, ev(t, "userUpdated", 3, `{"email":"b@x"}`), aggregate.Source{Offset: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(moved.PreviousEmails, []string{"a@x"}) {
		t.Fatalf("previous emails %q, want [a@x]", moved.PreviousEmails)
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	if v, ok := m["previous_emails"].([]any); !ok || len(v) != 0 {
		t.Fatalf("previous_emails encodes as %v, want []", m["previous_emails"])
	}
}
