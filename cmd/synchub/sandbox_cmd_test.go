package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/router"
)

// somePort returns a port that was free a moment ago, low enough for the
// sandbox's six.
func somePort(t *testing.T) int {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if p+len(sandboxOrder) <= 65535 {
			return p
		}
	}
}

// startTestSandbox starts a sandbox on some free consecutive ports.
func startTestSandbox(t *testing.T) (*sandbox, int) {
	t.Helper()
	var lastErr error
	for range 20 {
		p := somePort(t)
		sb, err := startSandbox("127.0.0.1", p)
		if err == nil {
			t.Cleanup(sb.Close)
			return sb, p
		}
		lastErr = err
	}
	t.Fatalf("no free ports for the sandbox: %v", lastErr)
	return nil, 0
}

// exportLine matches the credentials of one line of the sandbox's output.
var exportLine = regexp.MustCompile(`export (.*?)(?:  #.*)?$`)

// sandboxEnv sets the variables the sandbox printed.
func sandboxEnv(t *testing.T, printed string) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(printed), "\n") {
		m := exportLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
			n++
		}
	}
	if n != 9 {
		t.Fatalf("%d variables exported, want 9:\n%s", n, printed)
	}
}

func TestSandboxPrintsEveryServer(t *testing.T) {
	sb, port := startTestSandbox(t)
	var out bytes.Buffer
	sb.print(&out)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(sandboxOrder) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(sandboxOrder), out.String())
	}
	for i, name := range sandboxOrder {
		base := fmt.Sprintf("http://127.0.0.1:%d", port+i)
		want := fmt.Sprintf("%-10s base_url=%s  records=%s/__records  export SANDBOX_%s_", name, base, base, strings.ToUpper(name))
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], want)
		}
	}
	assertContains(t, out.String(), "export SANDBOX_HUBSPOT_TOKEN=pat-na1-fake-private-app-token\n",
		"SANDBOX_SALESFORCE_CLIENT_ID=fake-client-id SANDBOX_SALESFORCE_CLIENT_SECRET=fake-client-secret SANDBOX_SALESFORCE_REFRESH_TOKEN=fake-refresh-token\n",
		"SANDBOX_WEBHOOK_SECRET=whsec_")
}

// TestSandboxConfigEndToEnd sends a user through every customer of
// configs/sandbox.yaml (moved to the test's ports) as the hub would, and
// finds it in each server's /__records.
func TestSandboxConfigEndToEnd(t *testing.T) {
	sb, port := startTestSandbox(t)
	var out bytes.Buffer
	sb.print(&out)
	sandboxEnv(t, out.String())

	data, err := os.ReadFile(sandboxConfig)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := range sandboxOrder {
		text = strings.ReplaceAll(text, "127.0.0.1:"+strconv.Itoa(7100+i), "127.0.0.1:"+strconv.Itoa(port+i))
	}
	path := writeFile(t, "sandbox.yaml", text)
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range sandboxOrder {
		t.Run(name, func(t *testing.T) {
			customer := "org_" + name
			email := name + "@example.com"
			snap := fmt.Sprintf(`{"id":"u_%s","type":"user","organization_id":%q,"version":1,"created_at":"2026-11-25T10:00:00Z",
"updated_at":"2026-11-25T10:00:00Z","source":{"partition":0,"offset":1},"name":"Ann Lee","email":%q,"roles":[],
"logins_count":0,"logins_failed_count":0,"last_login_at":null,"recent_logins":[],"recent_failed_logins":[]}`, name, customer, email)
			route, err := router.Route(cfg, customer, name, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			item, err := route.Target.Prepare("user", []byte(snap), 0)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if errs := route.Target.Send(ctx, connectors.OpenGate{}, "user", []any{item}); errs[0] != nil {
				t.Fatalf("send: %v", errs[0])
			}
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/__records", port+i))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			var records any
			if err := json.NewDecoder(resp.Body).Decode(&records); err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(records)
			if !strings.Contains(string(got), `"`+email+`"`) {
				t.Errorf("records of %s lack %s: %s", name, email, got)
			}
			if name == "hubspot" && !strings.Contains(string(got), `"company":"org_hubspot"`) {
				t.Errorf("hubspot record lacks the mapping override: %s", got)
			}
		})
	}
}

func TestSandboxWebhookRejectsBadSignature(t *testing.T) {
	_, port := startTestSandbox(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hooks/org_webhook", port+len(sandboxOrder)-1)
	resp, err := http.Post(url, "application/json", strings.NewReader(`{"type":"user.created"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned webhook: %d, want 401", resp.StatusCode)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSandboxCommandRunsUntilStopped(t *testing.T) {
	var code int
	for range 20 {
		port := somePort(t)
		ctx, cancel := context.WithCancel(context.Background())
		var out, errb syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"sandbox", "--listen", "127.0.0.1", "--port", strconv.Itoa(port)}, stdio{out: &out, errOut: &errb})
		}()
		deadline := time.After(30 * time.Second)
		for !strings.Contains(out.String(), "sandbox running") {
			select {
			case code = <-done:
				cancel()
				if !strings.Contains(errb.String(), "address already in use") {
					t.Fatalf("exit %d before running: %s", code, errb.String())
				}
			case <-deadline:
				cancel()
				t.Fatal("sandbox did not start")
			case <-time.After(10 * time.Millisecond):
				continue
			}
			break
		}
		if !strings.Contains(out.String(), "sandbox running") {
			continue // ports taken meanwhile: try others
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/__records", port))
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		cancel()
		if code = <-done; code != exitOK {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			t.Error("hubspot port still open after stop")
		}
		return
	}
	t.Fatal("no free ports for the sandbox")
}

func TestSandboxBadPort(t *testing.T) {
	if code, _, _ := runCLI(t, "sandbox", "--port", "65533"); code != exitUsage {
		t.Errorf("port 65533: exit %d, want %d", code, exitUsage)
	}
}

// The sandbox's Mailchimp audience is configs/sandbox.yaml's list_id.
func TestSandboxListIDMatchesConfig(t *testing.T) {
	setSandboxEnv(t)
	cfg, err := config.Load(filepath.Clean(sandboxConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Customers {
		if m := c.Connectors.Mailchimp; m != nil && m.ListID != sandboxListID {
			t.Errorf("%s list_id %q, want %q", c.ID, m.ListID, sandboxListID)
		}
	}
}
