//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartupFactsAndCleanShutdown(t *testing.T) {
	_, url := receiver(t, []string{"org_1"})
	h := newHub(t, url, []string{"org_1"})
	h.start()

	facts := map[string]map[string]any{}
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil {
			facts[entry["msg"].(string)] = entry
		}
	}
	if got := facts["embedded Kafka broker listening"]["addr"]; got != h.brokerAddr {
		t.Errorf("broker address logged as %v, want %s", got, h.brokerAddr)
	}
	if got := facts["http listening"]["addr"]; got != h.httpAddr {
		t.Errorf("http address logged as %v, want %s", got, h.httpAddr)
	}
	if c := facts["customer"]; c["id"] != "org_1" || jsonString(c["connectors"]) != `["webhook"]` {
		t.Errorf("customer fact %v", c)
	}
	if strings.Contains(h.logs.String(), strings.TrimPrefix(secret, "whsec_")) {
		t.Error("start-up logs contain the webhook secret")
	}

	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("synchub did not stop within 30s of SIGTERM")
	}
	if code := h.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(h.logs.String(), `"msg":"stopped"`) {
		t.Error("no 'stopped' log line after SIGTERM")
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
