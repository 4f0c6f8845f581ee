package connectors_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/synchub/synchub/connectors"
)

func TestPolicyOr(t *testing.T) {
	d := connectors.Policy{MaxAttempts: 5, InitialInterval: time.Second, MaxInterval: 30 * time.Second, MaxElapsed: time.Minute, RequestTimeout: 10 * time.Second}
	tests := []struct {
		name string
		in   connectors.Policy
		want connectors.Policy
	}{
		{"all unset", connectors.Policy{}, d},
		{"negative is unset", connectors.Policy{MaxAttempts: -1}, d},
		{"set fields kept", connectors.Policy{MaxAttempts: 2, RequestTimeout: time.Second},
			connectors.Policy{MaxAttempts: 2, InitialInterval: time.Second, MaxInterval: 30 * time.Second, MaxElapsed: time.Minute, RequestTimeout: time.Second}},
		{"max interval never below initial", connectors.Policy{InitialInterval: time.Minute},
			connectors.Policy{MaxAttempts: 5, InitialInterval: time.Minute, MaxInterval: time.Minute, MaxElapsed: time.Minute, RequestTimeout: 10 * time.Second}},
	}
	for _, tc := range tests {
		if got := tc.in.Or(d); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestRecordFormer(t *testing.T) {
	var long []string
	for i := range 30 {
		long = append(long, fmt.Sprintf("a%d@x", i))
	}
	for _, tc := range []struct {
		name   string
		key    string
		former []string
		want   []string
	}{
		{"none", "a@x", nil, nil},
		{"empty and the key itself skipped", "a@x", []string{"", "A@X", "b@x", "a@x"}, []string{"b@x"}},
		{"repeats once, first spelling, newest first", "a@x", []string{"c@x", "B@x", "C@X", "b@x"}, []string{"c@x", "B@x"}},
		{"no cap", "z@x", long, long},
	} {
		got := connectors.Record{Key: tc.key, FormerKeys: tc.former}.Former()
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: Former() = %q, want %q", tc.name, got, tc.want)
		}
	}
}
