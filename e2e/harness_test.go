//go:build e2e

// Package e2e runs the built synchub binary on its embedded broker, produces
// with kcat (a client nobody here wrote) and receives at webhook servers
// that verify signatures.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synchub/synchub/internal/hubtest"
	"github.com/synchub/synchub/kafka"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "synchub-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "synchub")
	build := exec.Command("go", "build", "-o", binary, "../cmd/synchub")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building synchub:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// hub is one synchub installation: a config, a data dir and, while running,
// a process.
type hub struct {
	t          *testing.T
	dir        string
	brokerAddr string
	httpAddr   string
	config     string
	logs       *syncBuffer
	cmd        *exec.Cmd
	exited     chan struct{}
	// disabled customers get their webhook written with enabled: false.
	disabled map[string]bool
	// env is added to the process's environment (the *_env variables a
	// config names).
	env []string
	// adminToken, when set, turns the admin API on with this token.
	adminToken string
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// newHub writes a config for customers, all pointing at receiver. extra,
// when given, returns more YAML lines for a customer's webhook (indented
// by the caller's 8 spaces).
func newHub(t *testing.T, receiverURL string, customers []string, extra ...func(customer string) string) *hub {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is not installed: run `make e2e-deps` (installs Debian's kcat)")
	}
	h := &hub{t: t, dir: t.TempDir(), brokerAddr: freeAddr(t), httpAddr: freeAddr(t), logs: &syncBuffer{}}
	h.config = filepath.Join(h.dir, "synchub.yaml")
	h.writeConfig(receiverURL, customers, extra...)
	t.Cleanup(func() {
		h.kill()
		if t.Failed() {
			t.Logf("synchub logs:\n%s", tail(h.logs.String(), 60))
		}
	})
	return h
}

// writeConfig (re)writes the hub's config file.
func (h *hub) writeConfig(receiverURL string, customers []string, extra ...func(customer string) string) {
	h.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  embedded: {listen: %q, data_dir: %q}\n  partitions: 8\nhttp:\n  listen: %q\n",
		h.brokerAddr, filepath.Join(h.dir, "kafka"), h.httpAddr)
	if h.adminToken != "" {
		b.WriteString("  admin_token_env: SYNCHUB_ADMIN_TOKEN\n")
	}
	b.WriteString("customers:\n")
	for _, c := range customers {
		fmt.Fprintf(&b, "  - id: %s\n    connectors:\n      webhook:\n        enabled: %t\n        url: %s/hooks/%s\n        secret_env: WEBHOOK_SECRET\n"+
			"        retry: {max_attempts: 2000, initial_interval: 5ms, max_interval: 20ms, max_elapsed: 5m}\n"+
			"        circuit: {failures: 5, open_for: 20ms}\n", c, !h.disabled[c], receiverURL, c)
		for _, e := range extra {
			b.WriteString(e(c))
		}
	}
	// Write then rename, as editors do, so the hub never reads half a file.
	tmp := h.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.config); err != nil {
		h.t.Fatal(err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// start runs the binary and waits until it is ready.
func (h *hub) start() {
	h.t.Helper()
	h.cmd = exec.Command(binary, "run", "--config", h.config)
	h.cmd.Env = append(append(os.Environ(), "WEBHOOK_SECRET="+secret, "SYNCHUB_ADMIN_TOKEN="+h.adminToken), h.env...)
	h.cmd.Stdout, h.cmd.Stderr = h.logs, h.logs
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(h.cmd, h.exited)
	hubtest.Eventually(h.t, 30*time.Second, "synchub ready", func() bool {
		select {
		case <-h.exited:
			h.t.Fatalf("synchub exited during start-up:\n%s", tail(h.logs.String(), 30))
		default:
		}
		return h.get("/readyz") == http.StatusOK
	})
}

func (h *hub) get(path string) int {
	resp, err := http.Get("http://" + h.httpAddr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// kill ends the process with SIGKILL: no shutdown, no final commit.
func (h *hub) kill() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	select {
	case <-h.exited:
	default:
		_ = h.cmd.Process.Signal(syscall.SIGKILL)
		<-h.exited
	}
	h.cmd = nil
}

// alive reports whether the process is still running.
func (h *hub) alive() bool {
	select {
	case <-h.exited:
		return false
	default:
		return true
	}
}

// produce writes "key\tvalue" lines with kcat.
func (h *hub) produce(lines []string) {
	h.t.Helper()
	path := filepath.Join(h.dir, fmt.Sprintf("events-%d.tsv", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kcat", "-P", "-b", h.brokerAddr, "-t", kafka.TopicEvents, "-K", "\t", "-l", path).CombinedOutput()
	if err != nil {
		h.t.Fatalf("kcat: %v\n%s", err, out)
	}
}

// readTopic reads a topic to its end with kcat and returns one line per
// record: key, headers and value separated by tabs.
func (h *hub) readTopic(topic string) []string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kcat", "-C", "-b", h.brokerAddr, "-t", topic, "-e", "-q", "-f", "%k\t%h\t%s\n").Output()
	if err != nil {
		h.t.Fatalf("kcat -C %s: %v", topic, err)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

// receiver starts a signature-verifying webhook receiver for customers.
func receiver(t *testing.T, customers []string) (*hubtest.Receiver, string) {
	t.Helper()
	return hubtest.Serve(t, secret, customers)
}

// expectation is a user's final state as the generator computed it.
type expectation struct {
	org            string
	version        int64
	name, email    string
	logins, failed int64
}

// workload generates seed events for users spread over customers, in
// per-user order, and the state each user must end in.
func workload(seed uint64, customers []string, users, events int) ([]string, map[string]*expectation) {
	rng := rand.New(rand.NewPCG(seed, seed))
	want := map[string]*expectation{}
	var lines []string
	ts := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	next := func() string { ts = ts.Add(time.Second); return ts.Format(time.RFC3339) }
	ids := make([]string, users)
	for i := range users {
		id := fmt.Sprintf("u_%04d", i)
		ids[i] = id
		org := customers[i%len(customers)]
		name := fmt.Sprintf("User %d", i)
		want[id] = &expectation{org: org, version: 1, name: name, email: id + "@example.com"}
		lines = append(lines, fmt.Sprintf(`%s	{"id":"evt_c%d","event_type":"userCreated","entity_id":%q,"actor_id":%q,"timestamp":%q,"event":{"name":%q,"email":"%s@example.com","roles":["member"],"organization_id":%q}}`,
			id, i, id, id, next(), name, id, org))
	}
	for n := users; n < events; n++ {
		id := ids[rng.IntN(users)]
		w := want[id]
		w.version++
		switch k := rng.IntN(10); {
		case k < 6:
			w.logins++
			lines = append(lines, fmt.Sprintf(`%s	{"id":"evt_%d","event_type":"userLoggedIn","entity_id":%q,"timestamp":%q,"event":{"ip":"10.%d.%d.%d","user_agent":"kcat"}}`,
				id, n, id, next(), rng.IntN(256), rng.IntN(256), rng.IntN(256)))
		case k < 8:
			w.failed++
			lines = append(lines, fmt.Sprintf(`%s	{"id":"evt_%d","event_type":"userFailedLogin","entity_id":%q,"timestamp":%q,"event":{"ip":"10.0.0.1","reason":"bad password"}}`,
				id, n, id, next()))
		default:
			w.name = fmt.Sprintf("Renamed %d", n)
			w.email = fmt.Sprintf("%s+%d@example.com", id, n)
			lines = append(lines, fmt.Sprintf(`%s	{"id":"evt_%d","event_type":"userUpdated","entity_id":%q,"timestamp":%q,"event":{"name":%q,"email":%q}}`,
				id, n, id, next(), w.name, w.email))
		}
	}
	return lines, want
}

// delivered reports how many users of the expectation have arrived in
// their final state at the receiver.
func delivered(r *hubtest.Receiver, want map[string]*expectation, skip map[string]bool) (done, total int) {
	latest := map[string]map[string]hubtest.Snapshot{}
	for id, w := range want {
		if skip[w.org] {
			continue
		}
		total++
		if latest[w.org] == nil {
			latest[w.org] = r.Latest(w.org)
		}
		if latest[w.org][id].Version == w.version {
			done++
		}
	}
	return done, total
}

// checkFinal fails the test for every user whose last delivered state is
// not exactly the expected one.
func checkFinal(t *testing.T, r *hubtest.Receiver, want map[string]*expectation, skip map[string]bool) {
	t.Helper()
	bad := 0
	for id, w := range want {
		if skip[w.org] {
			continue
		}
		got := r.Latest(w.org)[id]
		if got.Version != w.version || got.LoginsCount != w.logins || got.LoginsFailed != w.failed || got.Name != w.name || got.Email != w.email || got.OrganizationID != w.org {
			if bad++; bad <= 10 {
				t.Errorf("%s: got %+v, want %+v", id, got, *w)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d users not in their exact final state", bad)
	}
	if reg := r.Regressions(); len(reg) > 0 {
		t.Errorf("%d deliveries of an older version after a newer one, e.g. %v", len(reg), reg[0])
	}
	if n := r.BadSignatures(); n > 0 {
		t.Errorf("%d requests failed signature verification", n)
	}
}
