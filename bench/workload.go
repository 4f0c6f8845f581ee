package main

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// workload generates seed events and remembers each user's version, so the
// version an event produces is known when it is produced.
type workload struct {
	rng   *rand.Rand
	users []userState
	n     int // events generated so far; numbers event ids
}

// userState is what the generator knows of one user.
type userState struct {
	id, org string
	version int64 // 0 until created
}

// event is one generated event.
type event struct {
	user, org string
	version   int64 // the user's version once the event is applied
	value     []byte
}

// endpointKey is the receiver's key for the event's user.
func (e event) endpointKey() string { return e.org + "/" + e.user }

// newWorkload returns a generator for users spread round-robin over
// customers.
func newWorkload(seed uint64, users, customers int) *workload {
	w := &workload{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := range users {
		w.users = append(w.users, userState{id: fmt.Sprintf("u_%05d", i), org: customerID(i % customers)})
	}
	return w
}

// backlog returns n events: a userCreated for every user, then random
// events of random users, all stamped with at.
func (w *workload) backlog(n int, at time.Time) []event {
	events := make([]event, 0, n)
	for i := range w.users {
		events = append(events, w.created(i, at))
	}
	for len(events) < n {
		events = append(events, w.random(at))
	}
	return events
}

// created is the userCreated event of the i-th user.
func (w *workload) created(i int, at time.Time) event {
	u := &w.users[i]
	u.version = 1
	w.n++
	value := fmt.Sprintf(`{"id":"evt_%d","event_type":"userCreated","entity_id":%q,"actor_id":%q,"timestamp":%q,`+
		`"event":{"name":"User %d","email":"%s@example.com","roles":["member"],"organization_id":%q}}`,
		w.n, u.id, u.id, stamp(at), i, u.id, u.org)
	return event{user: u.id, org: u.org, version: u.version, value: []byte(value)}
}

// random is a login (60%), failed login (20%) or profile update (20%) of a
// random created user, stamped with at.
func (w *workload) random(at time.Time) event {
	u := &w.users[w.rng.IntN(len(w.users))]
	u.version++
	w.n++
	var value string
	switch k := w.rng.IntN(10); {
	case k < 6:
		value = fmt.Sprintf(`{"id":"evt_%d","event_type":"userLoggedIn","entity_id":%q,"timestamp":%q,`+
			`"event":{"ip":"10.%d.%d.%d","user_agent":"synchub-bench"}}`,
			w.n, u.id, stamp(at), w.rng.IntN(256), w.rng.IntN(256), w.rng.IntN(256))
	case k < 8:
		value = fmt.Sprintf(`{"id":"evt_%d","event_type":"userFailedLogin","entity_id":%q,"timestamp":%q,`+
			`"event":{"ip":"10.0.0.1","reason":"bad password"}}`, w.n, u.id, stamp(at))
	default:
		value = fmt.Sprintf(`{"id":"evt_%d","event_type":"userUpdated","entity_id":%q,"timestamp":%q,`+
			`"event":{"name":"Renamed %d","email":"%s+%d@example.com"}}`, w.n, u.id, stamp(at), w.n, u.id, w.n)
	}
	return event{user: u.id, org: u.org, version: u.version, value: []byte(value)}
}

// stamp formats an event timestamp; the aggregator copies it into the
// snapshot's updated_at.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
