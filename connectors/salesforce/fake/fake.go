// Package fake is a local Salesforce that behaves like the real REST API on
// the points the connector relies on (vendor-apis.md §2): the OAuth
// refresh-token flow at /services/oauth2/token, access tokens that stop
// working when the session ends (401 INVALID_SESSION_ID), the sObject
// Collections upsert by external ID with its 200-record limit, per-record
// results and errors, the 403 REQUEST_LIMIT_EXCEEDED throttle, and error
// bodies as a JSON array of {message, errorCode, fields}.
//
// Every request is first checked against openapi.yaml (embedded); a request
// outside the spec gets a 400 with errorCode SPEC_VIOLATION, which no real
// org sends, and is kept for Violations.
//
// It serves one object, Contact, with the external ID field Hub_Id__c, and
// GET /__records lists what it holds as JSON.
package fake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Credentials the fake accepts in the refresh-token flow.
const (
	ClientID     = "fake-client-id"
	ClientSecret = "fake-client-secret"
	RefreshToken = "fake-refresh-token"
)

// The object and external ID field the fake serves, and its batch limit.
const (
	Object          = "Contact"
	ExternalIDField = "Hub_Id__c"
	MaxRecords      = 200
)

// Server is the fake. It is safe for concurrent use.
type Server struct {
	srv  *httptest.Server
	spec *spec

	mu         sync.Mutex
	tokens     map[string]time.Time // issued access token → when its session ends (zero: ended)
	timeout    time.Duration        // session timeout; 0: sessions end only by ExpireTokens
	tokenSeq   int
	records    map[string]map[string]any // external id → fields
	ids        map[string]string         // external id → Salesforce Id
	requests   int
	maxBatch   int
	failNext   int
	throttle   int
	rejects    map[string]string
	violations []string
	tokenCalls int
}

// New starts a fake on a local port; Close stops it.
func New() *Server {
	sp, err := loadSpec()
	if err != nil {
		panic("fake: embedded openapi.yaml: " + err.Error())
	}
	s := &Server{
		spec:    sp,
		tokens:  map[string]time.Time{},
		records: map[string]map[string]any{},
		ids:     map[string]string{},
		rejects: map[string]string{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is both the login URL and the instance_url the fake hands out.
func (s *Server) URL() string { return s.srv.URL }

// Records returns a copy of what the fake holds: external id → fields.
func (s *Server) Records() map[string]map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]any, len(s.records))
	for k, v := range s.records {
		f := make(map[string]any, len(v))
		for fk, fv := range v {
			f[fk] = fv
		}
		out[k] = f
	}
	return out
}

// Requests counts API requests, token requests excluded.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// TokenRequests counts token requests.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

// MaxBatch is the most records seen in one upsert request, including a
// request refused for exceeding the limit, so a test asserting
// MaxBatch() <= 200 catches a connector that overshoots.
func (s *Server) MaxBatch() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxBatch
}

// FailNext makes the next n API requests answer 503 SERVER_UNAVAILABLE.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext += n
}

// ThrottleNext makes the next n API requests answer 403
// REQUEST_LIMIT_EXCEEDED, without Retry-After, as Salesforce does.
func (s *Server) ThrottleNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle += n
}

// ExpireTokens ends every session issued so far.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.tokens[t] = time.Time{}
	}
}

// SetSessionTimeout makes sessions issued from now on end d after they
// were issued, as the org's session timeout does (0: never).
func (s *Server) SetSessionTimeout(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timeout = d
}

// Reject makes every upsert of key fail with a
// FIELD_CUSTOM_VALIDATION_EXCEPTION carrying message, as a validation
// rule of the org would.
func (s *Server) Reject(key, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects[key] = message
}

// Violations lists the requests that did not match openapi.yaml.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

var upsertPath = regexp.MustCompile(`^/services/data/v([0-9]+\.[0-9])/composite/sobjects/([^/]+)/([^/]+)$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/__records" && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Records())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		sfError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "cannot read the body")
		return
	}
	if r.URL.Path == "/services/oauth2/token" {
		s.token(w, r, body)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/services/data/") {
		s.mu.Lock()
		s.requests++
		s.mu.Unlock()
	}
	m := upsertPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		sfError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	if r.Method != http.MethodPatch {
		sfError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+r.Method+"' not allowed. Allowed are PATCH")
		return
	}
	s.mu.Lock()
	fail, throttle := s.failNext > 0, false
	if fail {
		s.failNext--
	}
	s.mu.Unlock()
	if fail {
		sfError(w, http.StatusServiceUnavailable, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
		return
	}
	if !s.authorized(r) {
		sfError(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	}
	s.mu.Lock()
	if s.throttle > 0 {
		s.throttle--
		throttle = true
	}
	s.mu.Unlock()
	if throttle {
		sfError(w, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
		return
	}
	var req struct {
		AllOrNone bool             `json:"allOrNone"`
		Records   []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		sfError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected character in the body")
		return
	}
	s.mu.Lock()
	s.maxBatch = max(s.maxBatch, len(req.Records))
	s.mu.Unlock()
	if len(req.Records) > MaxRecords {
		sfError(w, http.StatusBadRequest, "EXCEEDED_ID_LIMIT",
			fmt.Sprintf("record limit reached. cannot submit more than %d records in this operation", MaxRecords))
		return
	}
	if err := s.spec.validate(r, body); err != nil {
		s.violation(w, r, err)
		return
	}
	if m[2] != Object {
		sfError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	if m[3] != ExternalIDField {
		sfError(w, http.StatusBadRequest, "INVALID_FIELD",
			"Provided external ID field does not exist or is not accessible: "+m[3])
		return
	}
	if req.AllOrNone {
		// The connector relies on per-record outcomes; all-or-none would
		// roll back the good records with the bad.
		sfError(w, http.StatusBadRequest, "INVALID_FIELD", "fake: allOrNone=true is not supported")
		return
	}
	results := make([]saveResult, len(req.Records))
	s.mu.Lock()
	for i, rec := range req.Records {
		results[i] = s.upsertOne(rec)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/100000", s.Requests()))
	_ = json.NewEncoder(w).Encode(results)
}

type saveResult struct {
	ID      *string     `json:"id"`
	Success bool        `json:"success"`
	Errors  []saveError `json:"errors"`
	Created bool        `json:"created,omitempty"`
}

type saveError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

func failed(code, msg string, fields ...string) saveResult {
	if fields == nil {
		fields = []string{}
	}
	return saveResult{Errors: []saveError{{StatusCode: code, Message: msg, Fields: fields}}}
}

// upsertOne applies one record; s.mu is held.
func (s *Server) upsertOne(rec map[string]any) saveResult {
	attrs, _ := rec["attributes"].(map[string]any)
	if attrs["type"] != Object {
		return failed("INVALID_TYPE", fmt.Sprintf("sObject type '%v' is not supported in this operation", attrs["type"]))
	}
	key, _ := rec[ExternalIDField].(string)
	if key == "" {
		return failed("MISSING_ARGUMENT", ExternalIDField+" not specified", ExternalIDField)
	}
	if _, ok := rec["Id"]; ok {
		return failed("INVALID_FIELD", "Id cannot be set on an upsert by external ID", "Id")
	}
	if msg, ok := s.rejects[key]; ok {
		return failed("FIELD_CUSTOM_VALIDATION_EXCEPTION", msg)
	}
	prev, exists := s.records[key]
	next := map[string]any{}
	for k, v := range prev {
		next[k] = v
	}
	for k, v := range rec {
		if k != "attributes" {
			next[k] = v
		}
	}
	if ln, _ := next["LastName"].(string); strings.TrimSpace(ln) == "" {
		return failed("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", "LastName")
	}
	if !exists {
		s.ids[key] = fmt.Sprintf("003%015d", len(s.ids)+1)
	}
	s.records[key] = next
	id := s.ids[key]
	return saveResult{ID: &id, Success: true, Errors: []saveError{}, Created: !exists}
}

func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(s.tokens[tok])
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, body []byte) {
	s.mu.Lock()
	s.tokenCalls++
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "must use HTTP POST")
		return
	}
	if err := s.spec.validate(r, body); err != nil {
		s.mu.Lock()
		s.violations = append(s.violations, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
		s.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	form := map[string]string{}
	if q, err := url.ParseQuery(string(body)); err == nil {
		for k := range q {
			form[k] = q.Get(k)
		}
	}
	switch {
	case form["client_id"] != ClientID:
		oauthError(w, http.StatusBadRequest, "invalid_client_id", "client identifier invalid")
		return
	case form["client_secret"] != ClientSecret:
		oauthError(w, http.StatusBadRequest, "invalid_client", "invalid client credentials")
		return
	case form["refresh_token"] != RefreshToken:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "expired access/refresh token")
		return
	}
	s.mu.Lock()
	s.tokenSeq++
	tok := fmt.Sprintf("00Dfake!session.%d.%d", s.tokenSeq, time.Now().UnixNano())
	end := time.Now().Add(100 * 365 * 24 * time.Hour)
	if s.timeout > 0 {
		end = time.Now().Add(s.timeout)
	}
	s.tokens[tok] = end
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"access_token": tok,
		"instance_url": s.srv.URL,
		"id":           s.srv.URL + "/id/00Dfake/005fake",
		"issued_at":    strconv.FormatInt(time.Now().UnixMilli(), 10),
		"signature":    "fake-signature",
		"token_type":   "Bearer",
		"scope":        "api refresh_token",
	})
}

func (s *Server) violation(w http.ResponseWriter, r *http.Request, err error) {
	s.mu.Lock()
	s.violations = append(s.violations, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
	s.mu.Unlock()
	sfError(w, http.StatusBadRequest, "SPEC_VIOLATION", err.Error())
}

// sfError writes Salesforce's error body: a JSON array, not an object.
func sfError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode([]map[string]any{{"message": msg, "errorCode": code, "fields": []string{}}})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
