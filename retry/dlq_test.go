package retry_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/synchub/synchub/retry"
)

func TestDeadLetterHeaders(t *testing.T) {
	first := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	now := first.Add(time.Minute)
	origin := retry.Origin{Topic: "entity.user", Partition: 3, Offset: 42, Connector: "webhook", Customer: "org_a"}
	tests := []struct {
		name string
		err  error
		want map[string]string
	}{
		{
			name: "classified",
			err:  fmt.Errorf("webhook of org_a: %w", &retry.Error{Class: retry.Permanent, HTTPStatus: 400, Attempts: 1, FirstFailedAt: first, Err: errors.New("bad request")}),
			want: map[string]string{
				retry.HeaderTopic: "entity.user", retry.HeaderPartition: "3", retry.HeaderOffset: "42",
				retry.HeaderConnectorName: "webhook", retry.HeaderConnector: "webhook", retry.HeaderCustomer: "org_a",
				retry.HeaderErrorClass: "permanent", retry.HeaderHTTPStatus: "400", retry.HeaderAttempts: "1",
				retry.HeaderFirstFailedAt: "2026-11-25T10:00:00Z", retry.HeaderReplayCount: "2",
				retry.HeaderExceptionClass: "synchub.permanent(*errors.errorString)",
				retry.HeaderExceptionMsg:   "webhook of org_a: permanent after 1 attempt(s), HTTP 400: bad request",
			},
		},
		{
			name: "unclassified",
			err:  errors.New("boom"),
			want: map[string]string{
				retry.HeaderErrorClass: "transient", retry.HeaderAttempts: "1", retry.HeaderFirstFailedAt: "2026-11-25T10:01:00Z",
				retry.HeaderExceptionClass: "*errors.errorString", retry.HeaderExceptionMsg: "boom",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := retry.DeadLetterHeaders(origin, tc.err, 2, now)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if _, ok := got[retry.HeaderHTTPStatus]; ok && tc.name == "unclassified" {
				t.Error("http status header without a status")
			}
		})
	}
}

func TestTerminal(t *testing.T) {
	for class, want := range map[retry.Class]bool{retry.Permanent: true, retry.Exhausted: true, retry.InvalidInput: true, retry.InvalidMapping: true, retry.Transient: false} {
		if got := retry.Terminal(fmt.Errorf("wrapped: %w", &retry.Error{Class: class, Err: errors.New("x")})); got != want {
			t.Errorf("Terminal(%s) = %v, want %v", class, got, want)
		}
	}
	if retry.Terminal(errors.New("unclassified")) {
		t.Error("an unclassified error must not be terminal")
	}
}
