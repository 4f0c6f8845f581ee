// Package fake is an in-process HubSpot that behaves like the real CRM v3
// batch upsert API on the points the connector depends on: OAuth tokens
// that expire (401 EXPIRED_AUTHENTICATION), a static private-app token,
// the 100-input batch limit, idempotent upsert keyed on idProperty, 207
// multi-status with per-input StandardErrors, 429 with
// X-HubSpot-RateLimit-* headers, HubSpot's error body, and the batch read
// and batch update by email that find a contact and move it to a new
// address. Every API
// request is validated against openapi.yaml, the team's own description of
// those shapes.
package fake

import (
	"bytes"
	"crypto/rand"
	_ "embed"
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

// Credentials the fake accepts. Tests configure the connector with them.
const (
	ClientID        = "fake-client-id"
	ClientSecret    = "fake-client-secret"
	RefreshToken    = "fake-refresh-token"
	PrivateAppToken = "pat-na1-fake-private-app-token"
)

// MaxInputs is HubSpot's batch limit for CRM object batch endpoints.
const MaxInputs = 100

//go:embed openapi.yaml
var specYAML []byte

// Server is a fake HubSpot. Its methods are safe for concurrent use.
type Server struct {
	ts    *httptest.Server
	check func(*http.Request) error

	mu           sync.Mutex
	records      map[string]map[string]any // idProperty value → properties
	objectIDs    map[string]string         // idProperty value → hs_object_id
	nextID       int
	tokens       map[string]time.Time // OAuth access token → expiry
	tokenTTL     time.Duration
	rateWindow   time.Duration
	requests     int
	tokenReqs    int
	maxBatch     int
	failNext     int
	throttleNext int
	rejects      map[string]string
	flaky        map[string]int // key → upserts left to fail transiently
	omitMissing  bool           // batch read leaves unknown ids out silently
	readReqs     int
}

// New starts a fake HubSpot; Close it when done.
func New() *Server {
	s := &Server{
		records:    map[string]map[string]any{},
		objectIDs:  map[string]string{},
		nextID:     1000,
		tokens:     map[string]time.Time{},
		tokenTTL:   30 * time.Minute,
		rateWindow: 10 * time.Second,
		rejects:    map[string]string{},
		flaky:      map[string]int{},
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	check, err := newValidator(specYAML, "http://"+s.ts.Listener.Addr().String())
	if err != nil {
		// The spec is embedded: failing to load it is a bug in this package.
		panic(fmt.Sprintf("hubspot fake: openapi.yaml: %v", err))
	}
	s.check = check
	s.ts.Start()
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.ts.Close() }

// URL is the base URL, standing in for https://api.hubapi.com.
func (s *Server) URL() string { return s.ts.URL }

// Records returns a copy of what the fake holds: idProperty value → properties.
func (s *Server) Records() map[string]map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]any, len(s.records))
	for k, v := range s.records {
		m := make(map[string]any, len(v))
		for f, x := range v {
			m[f] = x
		}
		out[k] = m
	}
	return out
}

// Requests counts API requests, token requests excluded.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// TokenRequests counts token endpoint requests.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenReqs
}

// MaxBatch is the most inputs accepted in one request so far.
func (s *Server) MaxBatch() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxBatch
}

// FailNext makes the next n API requests fail with 503.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// ThrottleNext makes the next n API requests get 429 TEN_SECONDLY_ROLLING.
func (s *Server) ThrottleNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleNext = n
}

// ExpireTokens makes every OAuth access token issued so far expired. The
// private-app token is static, as HubSpot's is.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for t := range s.tokens {
		s.tokens[t] = past
	}
}

// Reject makes every upsert of key fail with a per-input VALIDATION_ERROR
// carrying message.
func (s *Server) Reject(key, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects[key] = message
}

// FailInput makes the next n upserts of key fail with a per-input
// INTERNAL_ERROR in a 207, the rest of the batch stored.
func (s *Server) FailInput(key string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flaky[key] = n
}

// SetTokenTTL sets expires_in of tokens issued from now on (HubSpot: 1800 s).
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTTL = d
}

// SetRateWindow sets X-HubSpot-RateLimit-Interval-Milliseconds (HubSpot:
// 10 s), so tests can keep the back-off after a 429 short.
func (s *Server) SetRateWindow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateWindow = d
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/__records":
		writeJSON(w, http.StatusOK, s.Records())
	case r.URL.Path == "/oauth/v1/token" || r.URL.Path == "/oauth/v3/token":
		s.token(w, r)
	case strings.HasPrefix(r.URL.Path, "/crm/v3/objects/") && strings.HasSuffix(r.URL.Path, "/batch/update"):
		s.update(w, r)
	case strings.HasPrefix(r.URL.Path, "/crm/v3/objects/") && strings.HasSuffix(r.URL.Path, "/batch/read"):
		s.read(w, r)
	case strings.HasPrefix(r.URL.Path, "/crm/v3/objects/"):
		s.upsert(w, r)
	default:
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Unable to route "+r.Method+" "+r.URL.Path, nil)
	}
}

// validate checks r against the spec, the body left readable.
func (s *Server) validate(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Unreadable body", nil)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := s.check(r); err != nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON on line 1: "+err.Error(), nil)
		return nil, false
	}
	return body, true
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenReqs++
	s.mu.Unlock()
	if _, ok := s.validate(w, r); !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, "invalid_request", "unparsable form")
		return
	}
	f := r.PostForm
	if f.Get("client_id") != ClientID || f.Get("client_secret") != ClientSecret {
		writeOAuthError(w, "invalid_client", "The client ID or secret is invalid")
		return
	}
	if f.Get("grant_type") != "refresh_token" || f.Get("refresh_token") != RefreshToken {
		writeOAuthError(w, "BAD_REFRESH_TOKEN", "missing or unknown refresh token")
		return
	}
	tok := "CJ" + randomHex(24)
	s.mu.Lock()
	ttl := s.tokenTTL
	s.tokens[tok] = time.Now().Add(ttl)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  tok,
		"refresh_token": RefreshToken,
		"expires_in":    int(ttl / time.Second),
		"token_type":    "bearer",
	})
}

type upsertInput struct {
	ID                 string            `json:"id"`
	IDProperty         string            `json:"idProperty"`
	ObjectWriteTraceID string            `json:"objectWriteTraceId"`
	Properties         map[string]string `json:"properties"`
}

// admit counts an API request and applies auth and the injected throttle
// and outage; on true the caller serves it.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	if !s.authorize(w, r) {
		return false
	}
	s.mu.Lock()
	throttle, fail, window := s.throttleNext > 0, false, s.rateWindow
	if throttle {
		s.throttleNext--
	} else if s.failNext > 0 {
		s.failNext--
		fail = true
	}
	s.mu.Unlock()
	if throttle {
		h := w.Header()
		h.Set("X-HubSpot-RateLimit-Max", "100")
		h.Set("X-HubSpot-RateLimit-Remaining", "0")
		h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", strconv.FormatInt(window.Milliseconds(), 10))
		writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
			"errorType": "RATE_LIMIT", "correlationId": uuid(), "policyName": "TEN_SECONDLY_ROLLING",
			"requestId": randomHex(16),
		})
		return false
	}
	if fail {
		writeError(w, http.StatusServiceUnavailable, "INTERNAL_ERROR", "Service temporarily unavailable", nil)
		return false
	}
	return true
}

// batchBody admits a batch request, checks it against the spec and decodes
// its body into in; more than MaxInputs inputs refuse the whole batch with
// 400 VALIDATION_ERROR. On false the answer is written.
func (s *Server) batchBody(w http.ResponseWriter, r *http.Request, in any) bool {
	if !s.admit(w, r) {
		return false
	}
	body, ok := s.validate(w, r)
	if !ok {
		return false
	}
	var count struct {
		Inputs []json.RawMessage `json:"inputs"`
	}
	err := json.Unmarshal(body, &count)
	if err == nil {
		err = json.Unmarshal(body, in)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: "+err.Error(), nil)
		return false
	}
	if len(count.Inputs) > MaxInputs {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR",
			fmt.Sprintf("Too many inputs: %d. The limit is %d.", len(count.Inputs), MaxInputs), nil)
		return false
	}
	s.mu.Lock()
	s.maxBatch = max(s.maxBatch, len(count.Inputs))
	s.mu.Unlock()
	return true
}

// checkInputs refuses, with 400 VALIDATION_ERROR, a batch naming an id
// twice (HubSpot refuses those) or by an idProperty the fake does not
// model: email, and for an existing object (byObjectID) hs_object_id, the
// default when idProperty is absent.
func checkInputs(w http.ResponseWriter, inputs []upsertInput, byObjectID bool) bool {
	seen := map[string]bool{}
	for _, x := range inputs {
		if !idPropertyKnown(w, x.IDProperty, byObjectID) {
			return false
		}
		if seen[x.ID] {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Duplicate IDs found in batch input: ["+x.ID+"]", nil)
			return false
		}
		seen[x.ID] = true
	}
	return true
}

// idPropertyKnown refuses, with 400 VALIDATION_ERROR, an idProperty the
// fake does not model (see checkInputs).
func idPropertyKnown(w http.ResponseWriter, p string, byObjectID bool) bool {
	if p == "email" || byObjectID && (p == "" || p == "hs_object_id") {
		return true
	}
	writeError(w, http.StatusBadRequest, "VALIDATION_ERROR",
		fmt.Sprintf("Property %q is not a unique property the fake supports; use email", p), nil)
	return false
}

// inputError is a 207's StandardError for the inputs with ids.
func inputError(trace, category, message string, ids ...string) map[string]any {
	e := map[string]any{
		"status": "error", "category": category, "message": message,
		"context": map[string][]string{"ids": ids},
		"errors":  []any{}, "links": map[string]string{},
	}
	if trace != "" {
		e["objectWriteTraceId"] = trace
	}
	return e
}

// result is the answer's entry for the contact held under key, with props
// as its properties; s.mu is held.
func (s *Server) result(key string, props map[string]string, now string) map[string]any {
	return map[string]any{
		"id": s.objectIDs[key], "properties": props,
		"createdAt": now, "updatedAt": now, "archived": false,
	}
}

// allProperties are rec's values as HubSpot's string properties.
func allProperties(rec map[string]any) map[string]string {
	props := map[string]string{}
	for k, v := range rec {
		props[k] = fmt.Sprint(v)
	}
	return props
}

// writeBatch answers a batch request: 200, or 207 when errs is not empty.
func writeBatch(w http.ResponseWriter, results, errs []map[string]any, now string) {
	resp := map[string]any{"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
	status := http.StatusOK
	if len(errs) > 0 {
		status = http.StatusMultiStatus
		resp["errors"] = errs
		resp["numErrors"] = len(errs)
	}
	writeJSON(w, status, resp)
}

func (s *Server) upsert(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Inputs []upsertInput `json:"inputs"`
	}
	if !s.batchBody(w, r, &in) {
		return
	}
	// Only contacts by email are modelled; hs_object_id upserts would need
	// objects the fake never creates by id.
	if !checkInputs(w, in.Inputs, false) {
		return
	}

	now := time.Now().UTC().Format(time.RFC3339Nano)
	results := []map[string]any{}
	errs := []map[string]any{}
	s.mu.Lock()
	for _, x := range in.Inputs {
		if msg, bad := s.rejects[x.ID]; bad {
			errs = append(errs, inputError(x.ObjectWriteTraceID, "VALIDATION_ERROR", msg, x.ID))
			continue
		}
		if s.flaky[x.ID] > 0 {
			s.flaky[x.ID]--
			errs = append(errs, inputError(x.ObjectWriteTraceID, "INTERNAL_ERROR", "Internal error while writing "+x.ID, x.ID))
			continue
		}
		rec, exists := s.records[x.ID]
		if !exists {
			rec = map[string]any{}
			s.records[x.ID] = rec
			s.nextID++
			s.objectIDs[x.ID] = strconv.Itoa(s.nextID)
		}
		// HubSpot updates only the properties sent; the rest are kept.
		for k, v := range x.Properties {
			rec[k] = v
		}
		rec["email"] = x.ID
		res := s.result(x.ID, allProperties(rec), now)
		res["new"] = !exists
		results = append(results, res)
	}
	s.mu.Unlock()
	writeBatch(w, results, errs, now)
}

// authorize checks the bearer token as HubSpot does: an expired OAuth token
// gets EXPIRED_AUTHENTICATION, anything unknown INVALID_AUTHENTICATION.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		writeError(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION",
			"Authentication credentials not found. This API supports OAuth 2.0 authentication.", nil)
		return false
	}
	if tok == PrivateAppToken {
		return true
	}
	s.mu.Lock()
	exp, known := s.tokens[tok]
	s.mu.Unlock()
	switch {
	case !known:
		writeError(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION",
			"Authentication credentials not found. This API supports OAuth 2.0 authentication.", nil)
		return false
	case !time.Now().Before(exp):
		ago := int(time.Since(exp) / time.Second)
		writeError(w, http.StatusUnauthorized, "EXPIRED_AUTHENTICATION",
			fmt.Sprintf("The OAuth token used to make this call expired %d second(s) ago.", ago), nil)
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, status int, category, message string, ctx map[string][]string) {
	body := map[string]any{"status": "error", "message": message, "correlationId": uuid(), "category": category}
	if ctx != nil {
		body["context"] = ctx
	}
	writeJSON(w, status, body)
}

// writeOAuthError is the token endpoint's own shape, unlike the CRM APIs'.
func writeOAuthError(w http.ResponseWriter, status, message string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"status": status, "message": message, "correlationId": uuid()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
