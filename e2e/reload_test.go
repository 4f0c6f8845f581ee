//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/synchub/synchub/internal/hubtest"
)

func TestLiveConfig(t *testing.T) {
	customers := []string{"org_1", "org_2"}
	r, url := receiver(t, customers)
	h := newHub(t, url, customers)
	h.disabled = map[string]bool{"org_2": true}
	h.writeConfig(url, customers)
	h.start()

	created := func(from, to int) []string {
		var lines []string
		for i := from; i < to; i++ {
			for _, org := range customers {
				id := fmt.Sprintf("%s_u%d", org, i)
				lines = append(lines, fmt.Sprintf(`%s	{"event_type":"userCreated","entity_id":%q,"timestamp":"2026-11-25T10:00:00Z","event":{"name":"N","email":"%s@x","organization_id":%q}}`, id, id, id, org))
			}
		}
		return lines
	}
	h.produce(created(0, 20))
	hubtest.Eventually(t, 30*time.Second, "org_1 delivered", func() bool { return len(r.Latest("org_1")) == 20 })
	if n := r.Requests("org_2"); n != 0 {
		t.Fatalf("disabled org_2 received %d requests", n)
	}

	// Turn org_2 on in the running hub.
	h.disabled = nil
	h.writeConfig(url, customers)
	hubtest.Eventually(t, 30*time.Second, "reload logged", func() bool { return strings.Contains(h.logs.String(), `"msg":"config reloaded"`) })
	start := time.Now()
	h.produce(created(20, 40))
	hubtest.Eventually(t, 30*time.Second, "org_2 delivery starts", func() bool { return len(r.Latest("org_2")) == 20 })
	t.Logf("org_2 delivering %v after its connector was enabled", time.Since(start).Round(time.Millisecond))

	// A broken edit changes nothing and says why.
	good, err := os.ReadFile(h.config)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), "partitions: 8", "partitions: 8\n  colour: blue", 1)
	if err := os.WriteFile(h.config, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	hubtest.Eventually(t, 30*time.Second, "broken config rejected", func() bool {
		return strings.Contains(h.logs.String(), "config rejected") && strings.Contains(h.logs.String(), `unknown key \"colour\"`)
	})
	h.produce(created(40, 50))
	hubtest.Eventually(t, 30*time.Second, "both still delivered under the running config", func() bool {
		return len(r.Latest("org_1")) == 50 && len(r.Latest("org_2")) == 30
	})

	// Turning org_1 off stops its delivery.
	h.disabled = map[string]bool{"org_1": true}
	h.writeConfig(url, customers)
	hubtest.Eventually(t, 30*time.Second, "second reload", func() bool { return strings.Count(h.logs.String(), `"msg":"config reloaded"`) == 2 })
	before := r.Requests("org_1")
	h.produce(created(50, 60))
	hubtest.Eventually(t, 30*time.Second, "org_2 still delivered", func() bool { return len(r.Latest("org_2")) == 40 })
	if got := r.Requests("org_1"); got != before {
		t.Errorf("disabled org_1 received %d more requests", got-before)
	}
	if !h.alive() {
		t.Fatal("synchub exited")
	}
}
