// Package fake is an in-process Intercom (API 2.14) for tests: contacts
// created by POST /contacts, a 409 "conflict" naming the existing id for a
// duplicate external_id or email, PUT /contacts/{id}, GET
// /contacts/find_by_external_id/{external_id}, bearer-token auth with 401
// "unauthorized", 429 "rate_limit_exceeded" with X-RateLimit-* headers, and
// error bodies in Intercom's error.list shape. With WithSpec or
// WithSpecFile every API request is also checked against the OpenAPI
// description; a request that fails is answered 400 "bad_request" and
// recorded (SpecErrors).
//
// GET /__records returns what the fake holds, external_id → fields, as
// JSON (no auth; not part of Intercom).
package fake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Token is the access token the fake accepts unless WithToken says otherwise.
const Token = "fake-intercom-token"

// Option configures a Server.
type Option func(*Server)

// WithSpec checks requests against s.
func WithSpec(s *Spec) Option { return func(f *Server) { f.spec = s } }

// WithSpecFile loads the OpenAPI YAML at path (New panics if it cannot,
// as httptest does when it cannot listen).
func WithSpecFile(path string) Option {
	return func(f *Server) {
		s, err := LoadSpec(path)
		if err != nil {
			panic(fmt.Sprintf("fake intercom: %v", err))
		}
		f.spec = s
	}
}

// WithToken sets the accepted access token.
func WithToken(tok string) Option { return func(f *Server) { f.token = tok } }

type contact struct {
	id     string
	fields map[string]any
}

// Server is the fake. It is safe for concurrent use.
type Server struct {
	srv   *httptest.Server
	spec  *Spec
	token string

	mu         sync.Mutex
	byID       map[string]*contact
	byExternal map[string]*contact
	byEmail    map[string]*contact
	rejected   map[string]string
	requests   int
	maxBatch   int
	failNext   int
	throttle   int
	specErrs   []string
	nextID     int
}

// New starts a fake.
func New(opts ...Option) *Server {
	f := &Server{
		token:      Token,
		byID:       map[string]*contact{},
		byExternal: map[string]*contact{},
		byEmail:    map[string]*contact{},
		rejected:   map[string]string{},
	}
	for _, o := range opts {
		o(f)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// Close shuts the server down.
func (f *Server) Close() { f.srv.Close() }

// URL is the base URL to configure the client with.
func (f *Server) URL() string { return f.srv.URL }

// Token is the access token the fake accepts.
func (f *Server) Token() string { return f.token }

// Records returns external_id → the contact's fields.
func (f *Server) Records() map[string]map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]map[string]any, len(f.byExternal))
	for k, c := range f.byExternal {
		m := make(map[string]any, len(c.fields))
		for fk, fv := range c.fields {
			m[fk] = fv
		}
		out[k] = m
	}
	return out
}

// Requests counts API requests (GET /__records excluded).
func (f *Server) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// MaxBatch is the most contacts one request carried: always 1, since
// Intercom has no batch endpoint; 0 before any write.
func (f *Server) MaxBatch() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxBatch
}

// FailNext makes the next n API requests fail with 500 server_error.
func (f *Server) FailNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext += n
}

// ThrottleNext makes the next n API requests get 429 rate_limit_exceeded.
func (f *Server) ThrottleNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttle += n
}

// ExpireTokens does nothing: Intercom tokens do not expire (they live
// until the app is uninstalled or the token revoked), so there is no
// expiry for a client to recover from. Use Revoke to simulate a revoked
// token.
func (f *Server) ExpireTokens() {}

// Revoke makes the current token invalid, as uninstalling the app does.
func (f *Server) Revoke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = "revoked:" + f.token
}

// Reject makes creates and updates of the contact with this external_id
// fail with 400 parameter_invalid carrying message.
func (f *Server) Reject(key, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejected[key] = message
}

// SpecErrors lists the requests that failed the spec check.
func (f *Server) SpecErrors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.specErrs...)
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, errs ...apiError) {
	writeJSON(w, status, map[string]any{"type": "error.list", "request_id": requestID(), "errors": errs})
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/__records" && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, f.Records())
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))

	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++

	if r.Header.Get("Authorization") != "Bearer "+f.token {
		writeErr(w, http.StatusUnauthorized, apiError{Code: "unauthorized", Message: "Access Token Invalid"})
		return
	}
	// Authenticated responses carry the rate-limit headers; the window is
	// 10 s as on the real API.
	reset := time.Now().Truncate(10 * time.Second).Add(10 * time.Second)
	w.Header().Set("X-RateLimit-Limit", "167")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	if f.throttle > 0 {
		f.throttle--
		// Throttles here are synthetic, so the reset is the next second
		// rather than the 10 s window's end: tests should not wait 10 s.
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Unix()+1, 10))
		writeErr(w, http.StatusTooManyRequests, apiError{Code: "rate_limit_exceeded", Message: "Exceeded rate limit of 167 in 10_seconds"})
		return
	}
	w.Header().Set("X-RateLimit-Remaining", "166")
	if f.failNext > 0 {
		f.failNext--
		writeErr(w, http.StatusInternalServerError, apiError{Code: "server_error", Message: "Server Error"})
		return
	}
	if f.spec != nil {
		if err := f.spec.Check(r, body); err != nil {
			f.specErrs = append(f.specErrs, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
			writeErr(w, http.StatusBadRequest, apiError{Code: "bad_request", Message: err.Error()})
			return
		}
	}

	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && len(segs) == 1 && segs[0] == "contacts":
		f.create(w, body)
	case r.Method == http.MethodPut && len(segs) == 2 && segs[0] == "contacts":
		f.update(w, segs[1], body)
	case r.Method == http.MethodGet && len(segs) == 3 && segs[0] == "contacts" && segs[1] == "find_by_external_id":
		c, ok := f.byExternal[segs[2]]
		if !ok {
			writeErr(w, http.StatusNotFound, apiError{Code: "not_found", Message: "User Not Found"})
			return
		}
		writeJSON(w, http.StatusOK, f.view(c))
	default:
		writeErr(w, http.StatusNotFound, apiError{Code: "not_found", Message: "Resource Not Found"})
	}
}

func decodeFields(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	// Numbers as written, so unix timestamps compare equal to what was sent.
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func (f *Server) view(c *contact) map[string]any {
	m := map[string]any{"type": "contact", "id": c.id}
	for k, v := range c.fields {
		m[k] = v
	}
	return m
}

func (f *Server) create(w http.ResponseWriter, body []byte) {
	m, err := decodeFields(body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, apiError{Code: "parameter_invalid", Message: "Invalid JSON"})
		return
	}
	f.maxBatch = max(f.maxBatch, 1)
	ext, _ := m["external_id"].(string)
	email, _ := m["email"].(string)
	if role, _ := m["role"].(string); role == "lead" && ext != "" {
		writeErr(w, http.StatusBadRequest, apiError{Code: "parameter_invalid", Message: "External ID is not supported for leads", Field: "external_id"})
		return
	}
	if msg, ok := f.rejected[ext]; ok {
		writeErr(w, http.StatusBadRequest, apiError{Code: "parameter_invalid", Message: msg})
		return
	}
	existing := f.byExternal[ext]
	if existing == nil && email != "" {
		existing = f.byEmail[strings.ToLower(email)]
	}
	if existing != nil {
		writeErr(w, http.StatusConflict, apiError{Code: "conflict", Message: "A contact matching those details already exists with id=" + existing.id})
		return
	}
	f.nextID++
	c := &contact{id: fmt.Sprintf("63a07ddf05a32042%08x", f.nextID), fields: m}
	f.index(c)
	writeJSON(w, http.StatusOK, f.view(c))
}

func (f *Server) index(c *contact) {
	f.byID[c.id] = c
	if ext, _ := c.fields["external_id"].(string); ext != "" {
		f.byExternal[ext] = c
	}
	if email, _ := c.fields["email"].(string); email != "" {
		f.byEmail[strings.ToLower(email)] = c
	}
}

func (f *Server) unindex(c *contact) {
	if ext, _ := c.fields["external_id"].(string); ext != "" && f.byExternal[ext] == c {
		delete(f.byExternal, ext)
	}
	if email, _ := c.fields["email"].(string); email != "" && f.byEmail[strings.ToLower(email)] == c {
		delete(f.byEmail, strings.ToLower(email))
	}
}

func (f *Server) update(w http.ResponseWriter, id string, body []byte) {
	c, ok := f.byID[id]
	if !ok {
		writeErr(w, http.StatusNotFound, apiError{Code: "not_found", Message: "User Not Found"})
		return
	}
	m, err := decodeFields(body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, apiError{Code: "parameter_invalid", Message: "Invalid JSON"})
		return
	}
	f.maxBatch = max(f.maxBatch, 1)
	ext, _ := c.fields["external_id"].(string)
	if newExt, ok := m["external_id"].(string); ok {
		if msg, rej := f.rejected[newExt]; rej {
			writeErr(w, http.StatusBadRequest, apiError{Code: "parameter_invalid", Message: msg})
			return
		}
		if o := f.byExternal[newExt]; o != nil && o != c {
			writeErr(w, http.StatusConflict, apiError{Code: "conflict", Message: "A contact matching those details already exists with id=" + o.id})
			return
		}
	}
	if msg, rej := f.rejected[ext]; rej {
		writeErr(w, http.StatusBadRequest, apiError{Code: "parameter_invalid", Message: msg})
		return
	}
	if email, ok := m["email"].(string); ok {
		if o := f.byEmail[strings.ToLower(email)]; o != nil && o != c {
			writeErr(w, http.StatusConflict, apiError{Code: "conflict", Message: "A contact matching those details already exists with id=" + o.id})
			return
		}
	}
	f.unindex(c)
	for k, v := range m {
		c.fields[k] = v
	}
	f.index(c)
	writeJSON(w, http.StatusOK, f.view(c))
}
