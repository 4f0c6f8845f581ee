//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// prismPath is where `make e2e-deps` installs Stoplight Prism (npm ci in
// e2e/prism, pinned by its package-lock.json), relative to this package.
const prismPath = "prism/node_modules/.bin/prism"

// prismBinary returns Prism's path. Without it the test fails in CI (the
// validator is the point of the test) and is skipped elsewhere.
func prismBinary(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(prismPath)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		msg := "Stoplight Prism is not installed at e2e/" + prismPath + ": run `make e2e-deps` (npm ci in e2e/prism)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return abs
}

// sharedSpecs finds shared/specs walking up from the working directory, as
// the fakes do: the checkout sits beside shared/ (CI clones it so).
func sharedSpecs(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		cand := filepath.Join(dir, "shared", "specs")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("shared/specs not found above the working directory: the checkout must sit beside shared/ (as in CI)")
		}
		dir = parent
	}
}

// prism is one `prism proxy <spec> <upstream> --errors` process: it refuses
// a request its spec does not allow with 422 and reports how a response
// departs from the spec in the sl-violations header.
type prism struct {
	name   string
	url    string
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
}

func startPrism(t *testing.T, bin, name, spec, upstream string) *prism {
	t.Helper()
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	p := &prism{name: name, url: "http://" + addr, logs: &syncBuffer{}, exited: make(chan struct{})}
	// warn: the violations are logged, not every request (logging each costs
	// CPU the hub would otherwise have).
	p.cmd = exec.Command(bin, "proxy", spec, upstream, "--errors", "--host", host, "--port", port, "--verboseLevel", "warn")
	p.cmd.Env = append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting prism for %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("prism %s logs:\n%s", name, tail(p.logs.String(), 20))
		}
	})
	return p
}

// waitReady polls until Prism answers HTTP (any status: it has loaded its
// spec and listens).
func (p *prism) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.exited:
			t.Fatalf("prism %s exited during start-up:\n%s", p.name, tail(p.logs.String(), 30))
		default:
		}
		if resp, err := client.Get(p.url + "/"); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prism %s not answering after %v:\n%s", p.name, timeout, tail(p.logs.String(), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exchange is one request the hub sent a vendor and its answer, as the
// recording proxy saw them.
type exchange struct {
	method, path string
	// records is how many records the request carried; -1 for a token
	// request.
	records    int
	status     int
	start, end time.Time
	// violations is Prism's sl-violations header, if any.
	violations string
	// body is the answer when Prism refused the request (422) or reported
	// a violation.
	body string
	// throttled: the answer was the vendor's throttle signal; wait is how
	// long it asked the client to hold off (0: no wait stated).
	throttled bool
	wait      time.Duration
}

// recorder sits between the hub and Prism: it records every request and
// forwards it to the Prism that route names.
type recorder struct {
	t      *testing.T
	vendor string
	srv    *httptest.Server
	client *http.Client
	// route returns the Prism base URL and the path to send a request to.
	route func(r *http.Request) (base, path string)
	// count says how many records a request carries (-1: a token request).
	count func(r *http.Request, body []byte) int
	// throttle reads the vendor's throttle signal from an answer.
	throttle func(status int, h http.Header, body []byte, now time.Time) (bool, time.Duration)

	mu  sync.Mutex
	log []exchange
}

func newRecorder(t *testing.T, vendor string) *recorder {
	rec := &recorder{t: t, vendor: vendor, client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}}
	rec.srv = httptest.NewServer(http.HandlerFunc(rec.serve))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) URL() string { return rec.srv.URL }

// hopHeaders are not forwarded.
var hopHeaders = map[string]bool{"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Transfer-Encoding": true, "Upgrade": true, "Te": true, "Trailer": true}

func (rec *recorder) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	base, path := rec.route(r)
	target := base + path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for k, v := range r.Header {
		if !hopHeaders[k] {
			out.Header[k] = v
		}
	}
	x := exchange{method: r.Method, path: r.URL.Path, records: rec.count(r, body), start: start}
	resp, err := rec.client.Do(out)
	if err != nil {
		x.status, x.end, x.body = http.StatusBadGateway, time.Now(), err.Error()
		rec.add(x)
		http.Error(w, "recorder: "+err.Error(), http.StatusBadGateway)
		return
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		http.Error(w, "recorder: "+err.Error(), http.StatusBadGateway)
		return
	}
	x.status, x.end = resp.StatusCode, time.Now()
	x.violations = resp.Header.Get("sl-violations")
	if x.violations != "" || x.status == http.StatusUnprocessableEntity {
		x.body = string(respBody)
	}
	if x.records >= 0 {
		x.throttled, x.wait = rec.throttle(resp.StatusCode, resp.Header, respBody, x.end)
	}
	rec.add(x)
	for k, v := range resp.Header {
		if !hopHeaders[k] && k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)
}

func (rec *recorder) add(x exchange) {
	rec.mu.Lock()
	rec.log = append(rec.log, x)
	rec.mu.Unlock()
}

func (rec *recorder) exchanges() []exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]exchange(nil), rec.log...)
}

// countJSONArray counts the elements of the array field of a JSON body
// (-2 if the body is not such an object: the test reports it).
func countJSONArray(body []byte, field string) int {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return -2
	}
	var a []json.RawMessage
	if json.Unmarshal(m[field], &a) != nil {
		return -2
	}
	return len(a)
}

// summary is a short, printable account of the exchanges.
func summary(xs []exchange) string {
	statuses := map[int]int{}
	for _, x := range xs {
		statuses[x.status]++
	}
	return fmt.Sprintf("%d requests, statuses %v", len(xs), statuses)
}

// trimmed shortens s for a log line.
func trimmed(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// group is exchanges that share a problem: how many, and the first.
type group struct {
	n int
	x exchange
}

// grouped groups xs by method, status and what key says of them, in order
// of first appearance: the same violation repeats on every request.
func grouped(xs []exchange, key func(exchange) string) []group {
	var out []group
	at := map[string]int{}
	for _, x := range xs {
		k := fmt.Sprintf("%s %d %s", x.method, x.status, key(x))
		if i, ok := at[k]; ok {
			out[i].n++
			continue
		}
		at[k] = len(out)
		out = append(out, group{n: 1, x: x})
	}
	return out
}
