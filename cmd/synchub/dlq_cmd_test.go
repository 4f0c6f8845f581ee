package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synchub/synchub/internal/hubtest"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/retry"
	"github.com/synchub/synchub/router"
)

// dlqEnv is a broker holding one user, u_1 of org_a at version 2, whose
// version 1 was dead-lettered by the webhook two hours ago.
type dlqEnv struct {
	t      *testing.T
	config string
	broker *hubtest.Broker
}

func newDLQEnv(t *testing.T) *dlqEnv {
	t.Helper()
	b := hubtest.StartBroker(t, 2, router.Topics())
	send := func(topic string, value string, headers map[string]string, at time.Time) int64 {
		return b.Send(topic, "u_1", []byte(value), 1, headers, at)
	}
	entity := func(v int) map[string]string {
		return map[string]string{kafka.HeaderEntityType: "user", kafka.HeaderVersion: fmt.Sprint(v), kafka.HeaderOrganizationID: "org_a"}
	}
	off := send(kafka.EntityTopic("user"), `{"id":"u_1","organization_id":"org_a","version":1,"name":"Old"}`, entity(1), time.Now())
	send(kafka.EntityTopic("user"), `{"id":"u_1","organization_id":"org_a","version":2,"name":"Current"}`, entity(2), time.Now())
	failed := time.Now().Add(-2 * time.Hour)
	h := retry.DeadLetterHeaders(retry.Origin{Topic: "entity.user", Partition: 1, Offset: off, Connector: "webhook", Customer: "org_a"},
		&retry.Error{Class: retry.Permanent, Attempts: 1, HTTPStatus: 400, Err: errors.New("HTTP 400: email rejected")}, 0, failed)
	for k, v := range entity(1) {
		h[k] = v
	}
	send(kafka.DLQTopic("webhook"), `{"id":"u_1","version":1}`, h, failed)

	// The secret's variable is not set: the dlq commands never read it.
	path := filepath.Join(t.TempDir(), "synchub.yaml")
	cfg := fmt.Sprintf("kafka: {brokers: [%q], partitions: 2}\ncustomers:\n  - id: org_a\n    connectors:\n      webhook: {enabled: true, url: \"http://127.0.0.1:1/\", secret_env: SYNCHUB_TEST_UNSET_SECRET}\n", b.Addr)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return &dlqEnv{t: t, config: path, broker: b}
}

func (e *dlqEnv) run(stdin string, args ...string) (int, string, string) {
	e.t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, stdio{in: strings.NewReader(stdin), out: &out, errOut: &errb})
	return code, out.String(), errb.String()
}

func (e *dlqEnv) count(topic string) int { return len(e.broker.Read(topic)) }

func TestDLQCommands(t *testing.T) {
	e := newDLQEnv(t)
	cfg := "--config=" + e.config

	code, out, errOut := e.run("", "dlq", "list", cfg)
	if code != exitOK || !strings.Contains(out, "org_a") || !strings.Contains(out, "HTTP 400: email rejected") || !strings.Contains(out, "permanent") {
		t.Fatalf("list: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = e.run("", "dlq", "list", cfg, "--json")
	var listed struct{ Groups []struct{ Customer string } }
	if err := json.Unmarshal([]byte(out), &listed); code != exitOK || err != nil || len(listed.Groups) != 1 {
		t.Fatalf("list --json: %d %v\n%s", code, err, out)
	}
	code, out, _ = e.run("", "dlq", "show", cfg, "--key", "u_1")
	if code != exitOK || !strings.Contains(out, "reason: permanent") || !strings.Contains(out, `"version":1`) || !strings.Contains(out, "pending") {
		t.Fatalf("show: %d\n%s", code, out)
	}
	if code, out, _ = e.run("", "dlq", "show", cfg, "--customer", "org_b"); code != exitOK || !strings.Contains(out, "no dead-lettered records") {
		t.Errorf("show of another customer: %d\n%s", code, out)
	}

	code, out, _ = e.run("", "dlq", "replay", cfg, "--connector", "webhook", "--dry-run")
	if code != exitOK || !strings.Contains(out, "would send 1") || e.count(kafka.RetryTopic("webhook")) != 0 {
		t.Fatalf("replay --dry-run: %d\n%s", code, out)
	}
	code, out, _ = e.run("", "dlq", "replay", cfg, "--connector", "webhook")
	if code != exitOK || !strings.Contains(out, "sent 1 current snapshots") || e.count(kafka.RetryTopic("webhook")) != 1 {
		t.Fatalf("replay: %d\n%s", code, out)
	}
	code, out, _ = e.run("", "dlq", "replay", cfg, "--connector", "webhook", "--json")
	var again struct {
		Replayed int
		Skipped  map[string]int
	}
	if err := json.Unmarshal([]byte(out), &again); code != exitOK || err != nil || again.Replayed != 0 || again.Skipped["already replayed"] != 1 {
		t.Fatalf("second replay: %d %v\n%s", code, err, out)
	}
	if code, out, _ = e.run("", "resync", cfg, "--connector", "webhook", "--customer", "org_a", "--dry-run"); code != exitOK || !strings.Contains(out, "would send 1") {
		t.Errorf("resync --dry-run: %d\n%s", code, out)
	}

	code, _, errOut = e.run("n\n", "dlq", "purge", cfg, "--connector", "webhook", "--older-than", "1h")
	if code != exitFailure || !strings.Contains(errOut, "Delete 1 records") || !strings.Contains(errOut, "cancelled") || e.count(kafka.DLQTopic("webhook")) != 1 {
		t.Fatalf("purge answered no: %d\n%s", code, errOut)
	}
	code, out, _ = e.run("", "dlq", "purge", cfg, "--connector", "webhook", "--older-than", "3h", "--yes")
	if code != exitOK || !strings.Contains(out, "purged 0") || e.count(kafka.DLQTopic("webhook")) != 1 {
		t.Fatalf("purge of nothing older than 3h: %d\n%s", code, out)
	}
	code, out, _ = e.run("y\n", "dlq", "purge", cfg, "--connector", "webhook", "--older-than", "1h")
	if code != exitOK || !strings.Contains(out, "purged 1") || e.count(kafka.DLQTopic("webhook")) != 0 {
		t.Fatalf("purge answered yes: %d\n%s", code, out)
	}
}

func TestDLQCommandUsageErrors(t *testing.T) {
	e := newDLQEnv(t)
	cfg := "--config=" + e.config
	for _, args := range [][]string{
		{"dlq"},
		{"dlq", "frob", cfg},
		{"dlq", "replay", cfg},
		{"dlq", "replay", cfg, "--connector", "nope"},
		{"dlq", "list", cfg, "--since", "yesterday"},
		{"dlq", "purge", cfg, "--connector", "webhook"},
		{"dlq", "purge", cfg, "--connector", "webhook", "--older-than", "1h", "--customer", "org_a"},
		{"resync", cfg, "--connector", "webhook"},
		{"resync", cfg, "--connector", "webhook", "--customer", "org_zzz"},
	} {
		if code, out, errOut := e.run("", args...); code != exitUsage || !strings.Contains(errOut, "synchub:") {
			t.Errorf("%v: exit %d, want %d\n%s%s", args, code, exitUsage, out, errOut)
		}
	}
}

func TestDLQCommandSaysTheBrokerIsNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "synchub.yaml")
	// Port 1 on loopback: nothing listens there.
	if err := os.WriteFile(path, []byte("kafka: {embedded: {listen: 127.0.0.1:1}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"dlq", "list", "--config", path}, stdio{in: strings.NewReader(""), out: &out, errOut: &errb})
	if code != exitFailure || !strings.Contains(errb.String(), "synchub run") {
		t.Errorf("exit %d, stderr %q; want 1 and a hint to start the hub", code, errb.String())
	}
}
