package aggregate_test

import (
	"errors"
	"fmt"
	"reflect"
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
		RecentLogins: []aggregate.Login{}, RecentFailedLogins: []aggregate.FailedLogin{}}
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
	if u.Email != "ann@x" || u.Version != 1 {
		t.Fatalf("fold modified its input: %+v", u)
	}

	roles, err := aggregate.ApplyUser(upd, ev(t, "userUpdated", 2, `{"roles":[]}`), aggregate.Source{Offset: 12})
	if err != nil || len(roles.Roles) != 0 || roles.Roles == nil {
		t.Fatalf("roles cleared: %+v %v", roles.Roles, err)
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
