//go:build e2e

package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synchub/synchub/internal/hubtest"
	"github.com/synchub/synchub/kafka"
)

// synchub runs an operator command of the binary and returns its exit
// code and output.
func (h *hub) synchub(args ...string) (int, string) {
	h.t.Helper()
	cmd := exec.Command(binary, append(args, "--config", h.config)...)
	out, err := cmd.CombinedOutput()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return 0, string(out)
}

// admin calls the admin API with token (none when empty).
func (h *hub) admin(method, path, token, body string) (int, map[string]any) {
	h.t.Helper()
	return hubtest.Admin(h.t, "http://"+h.httpAddr, method, path, token, body)
}

func TestDeadLetterReplayThroughTheBinary(t *testing.T) {
	customers := []string{"org_bad", "org_good"}
	r, url := receiver(t, customers)
	var broken atomic.Bool
	broken.Store(true)
	r.Status = func(customer string, _ int) int {
		if customer == "org_bad" && broken.Load() {
			return http.StatusBadRequest
		}
		return http.StatusOK
	}
	h := newHub(t, url, customers)
	h.adminToken = "e2e-admin-token"
	h.writeConfig(url, customers)
	h.start()
	lines, want := workload(21, customers, 100, 1500)
	h.produce(lines)
	bad := map[string]bool{"org_bad": true}
	hubtest.Eventually(t, time.Minute, "org_good delivered", func() bool {
		done, total := delivered(r, want, bad)
		return done == total
	})

	// Every org_bad user's final version is dead-lettered.
	finalDead := func() int {
		code, out := h.synchub("dlq", "show", "--connector", "webhook", "--customer", "org_bad", "--limit", "0", "--json")
		if code != 0 {
			t.Fatalf("dlq show: exit %d\n%s", code, out)
		}
		var shown struct {
			Records []struct {
				Key     string `json:"key"`
				Version int64  `json:"version"`
				Reason  string `json:"reason"`
			} `json:"records"`
		}
		if err := json.Unmarshal([]byte(out), &shown); err != nil {
			t.Fatalf("dlq show --json: %v\n%s", err, out)
		}
		n := 0
		for _, rec := range shown.Records {
			if w := want[rec.Key]; w != nil && w.version == rec.Version {
				n++
			}
			if !strings.Contains(rec.Reason, "400") {
				t.Fatalf("record %s has reason %q, want the 400", rec.Key, rec.Reason)
			}
		}
		return n
	}
	hubtest.Eventually(t, time.Minute, "org_bad's final versions dead-lettered", func() bool { return finalDead() == 50 })

	code, out := h.synchub("dlq", "list")
	if code != 0 || !strings.Contains(out, "org_bad") || !strings.Contains(out, "permanent") || strings.Contains(out, "org_good") {
		t.Fatalf("dlq list: exit %d\n%s", code, out)
	}
	if code, body := h.admin("GET", "/v1/dlq?connector=webhook", "", ""); code != http.StatusUnauthorized {
		t.Errorf("admin list without token: %d %v", code, body)
	}
	if code, body := h.admin("GET", "/v1/dlq?connector=webhook", "e2e-admin-token", ""); code != http.StatusOK || len(body["groups"].([]any)) != 1 {
		t.Errorf("admin list: %d %v", code, body)
	}
	if code, body := h.admin("POST", "/v1/dlq/webhook/replay", "wrong", `{"customer":"org_bad"}`); code != http.StatusUnauthorized {
		t.Errorf("admin replay with a wrong token: %d %v", code, body)
	}

	broken.Store(false)
	goodBefore := r.Requests("org_good")
	code, out = h.synchub("dlq", "replay", "--connector", "webhook", "--customer", "org_bad", "--dry-run")
	if code != 0 || !strings.Contains(out, "would send 50 current snapshots") || len(h.readTopic(kafka.RetryTopic("webhook"))) != 0 {
		t.Fatalf("dlq replay --dry-run: exit %d\n%s", code, out)
	}
	code, out = h.synchub("dlq", "replay", "--connector", "webhook", "--customer", "org_bad")
	if code != 0 || !strings.Contains(out, "sent 50 current snapshots") {
		t.Fatalf("dlq replay: exit %d\n%s", code, out)
	}
	hubtest.Eventually(t, time.Minute, "org_bad delivered after replay", func() bool {
		done, total := delivered(r, want, nil)
		return done == total
	})
	checkFinal(t, r, want, nil)
	deliveries := func(customer string) int {
		n := 0
		for _, d := range r.Deliveries() {
			if d.Customer == customer {
				n++
			}
		}
		return n
	}
	orgBad := func() int { return deliveries("org_bad") }
	if n := orgBad(); n != 50 {
		t.Errorf("org_bad got %d deliveries, want one per user (50)", n)
	}

	code, out = h.synchub("dlq", "replay", "--connector", "webhook", "--customer", "org_bad")
	if code != 0 || !strings.Contains(out, "sent 0 current snapshots") || !strings.Contains(out, "already replayed") {
		t.Errorf("second dlq replay: exit %d\n%s", code, out)
	}
	if code, body := h.admin("POST", "/v1/dlq/webhook/replay", "e2e-admin-token", `{"customer":"org_bad"}`); code != http.StatusOK || body["replayed"] != float64(0) {
		t.Errorf("admin replay after the CLI's: %d %v", code, body)
	}
	if n := len(h.readTopic(kafka.RetryTopic("webhook"))); n != 50 {
		t.Errorf("retry topic holds %d records, want the first run's 50", n)
	}
	if n := orgBad(); n != 50 {
		t.Errorf("org_bad got %d deliveries after the second run, want 50", n)
	}
	if g := r.Requests("org_good"); g != goodBefore {
		t.Errorf("org_good got %d extra requests from the replay", g-goodBefore)
	}

	goodDeliveries := deliveries("org_good")
	code, out = h.synchub("resync", "--connector", "webhook", "--customer", "org_good")
	if code != 0 || !strings.Contains(out, "sent 50 current snapshots") {
		t.Fatalf("resync: exit %d\n%s", code, out)
	}
	hubtest.Eventually(t, time.Minute, "org_good resent", func() bool { return deliveries("org_good") == goodDeliveries+50 })
	checkFinal(t, r, want, nil)
	if n := orgBad(); n != 50 {
		t.Errorf("resync of org_good sent org_bad %d deliveries", n-50)
	}
}
