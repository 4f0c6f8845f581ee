// Package fake is a fake Marketo instance (Identity and Sync Leads) that
// behaves like the real API where the connector depends on it, and checks
// every request it receives against Marketo's published Swagger specs.
//
// Behaviour copied from Marketo (shared/reference/vendor-apis.md §3):
//   - GET|POST /identity/oauth/token?grant_type=client_credentials&
//     client_id=…&client_secret=… issues 3600 s tokens, returning the same
//     token with its remaining lifespan until it expires; bad credentials
//     get HTTP 401.
//   - API calls take "Authorization: Bearer <token>" (or the deprecated
//     access_token query parameter). Missing, unknown or expired tokens
//     get HTTP 200 {"success":false,"errors":[{"code":"60x",…}]}.
//   - POST /rest/v1/leads.json upserts by lookupField (createOrUpdate,
//     createOnly, updateOnly), at most 300 leads and 1 MB per call; leads
//     it refuses come back "skipped" with reasons[] (record-level 1xxx
//     codes), the others are stored.
//   - POST /rest/v1/leads.json with action updateOnly and lookupField id
//     updates leads by id, email included; like Marketo it does not keep
//     emails unique, and a lookup matching several leads is 1007.
//   - GET /rest/v1/leads.json?filterType=…&filterValues=… (Get Leads by
//     Filter Type) returns the matching leads, at most 300 values.
//   - Rate limit: 100 calls per 20 s (606) and 10 in flight (615), as
//     HTTP 200 success:false with no headers.
//
// GET /__records (not Marketo) returns the held leads as JSON.
package fake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// MaxBatch is Marketo's limit of leads per Sync Leads call.
	MaxBatch = 300
	// MaxPayload is Marketo's 1 MB request limit.
	MaxPayload = 1 << 20
	// TokenTTL is how long a Marketo access token lives.
	TokenTTL = 3600 * time.Second
)

// standardFields are lead fields every Marketo instance has; a lead with
// any other field is skipped with 1006, as Marketo does for fields the
// instance lacks.
var standardFields = []string{
	"email", "firstName", "lastName", "middleName", "salutation", "title", "phone", "mobilePhone",
	"company", "website", "address", "city", "state", "country", "postalCode", "leadSource",
	"leadStatus", "externalCompanyId", "externalSalesPersonId", "unsubscribed", "marketingSuspended",
	"dateOfBirth", "industry", "numberOfEmployees", "annualRevenue", "department",
}

// Option configures a Server.
type Option func(*Server)

// WithSpecDir names the folder holding swagger-mapi.json and
// swagger-identity.json. Default: the first shared/specs/marketo found
// walking up from the working directory.
func WithSpecDir(dir string) Option { return func(s *Server) { s.specDir = dir } }

// WithCredentials sets the client id and secret Identity accepts
// (default "client-id", "client-secret").
func WithCredentials(id, secret string) Option {
	return func(s *Server) { s.clientID, s.clientSecret = id, secret }
}

// WithFields adds custom lead fields the instance knows.
func WithFields(names ...string) Option {
	return func(s *Server) {
		for _, n := range names {
			s.fields[n] = true
		}
	}
}

// WithRateLimit sets the calls allowed per window (default 100 per 20 s).
func WithRateLimit(calls int, window time.Duration) Option {
	return func(s *Server) { s.rateCalls, s.rateWindow = calls, window }
}

type lead struct {
	id     int64
	fields map[string]any
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	srv          *httptest.Server
	spec         *spec
	specDir      string
	clientID     string
	clientSecret string
	rateCalls    int
	rateWindow   time.Duration

	mu           sync.Mutex
	fields       map[string]bool
	tokens       map[string]time.Time // token → expiry
	current      string               // the token Identity hands out until it expires
	leads        map[int64]*lead      // id → lead
	nextID       int64
	requests     int
	tokenCalls   int
	maxBatch     int
	failNext     int
	throttleNext int
	rejects      map[string]string
	calls        []time.Time // API call times in the rate window
	inFlight     int
	violations   []string
}

// New starts a fake Marketo instance; Close it when done. It panics if
// the specs cannot be found or loaded: a fake that cannot check requests
// would pass tests it should fail.
func New(opts ...Option) *Server {
	s := &Server{
		clientID: "client-id", clientSecret: "client-secret",
		rateCalls: 100, rateWindow: 20 * time.Second,
		fields: map[string]bool{}, tokens: map[string]time.Time{},
		leads: map[int64]*lead{}, rejects: map[string]string{},
	}
	for _, f := range standardFields {
		s.fields[f] = true
	}
	for _, o := range opts {
		o(s)
	}
	if s.specDir == "" {
		s.specDir = findSpecDir()
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	spec, err := loadSpec(s.specDir)
	if err != nil {
		s.srv.Close()
		panic(fmt.Sprintf("marketo fake: %v", err))
	}
	s.spec = spec
	return s
}

func findSpecDir() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		cand := filepath.Join(dir, "shared", "specs", "marketo")
		if _, err := os.Stat(filepath.Join(cand, "swagger-mapi.json")); err == nil {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the instance's base URL.
func (s *Server) URL() string { return s.srv.URL }

// Records returns the held leads: email → fields. Marketo does not keep
// emails unique (an update by id may give a lead another's address); a
// lead whose email another lead with a lower id has already, or that has
// none, is listed as "<email>#<id>", so a duplicate shows.
func (s *Server) Records() map[string]map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]any, len(s.leads))
	ids := make([]int64, 0, len(s.leads))
	for id := range s.leads {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	for _, id := range ids {
		l := s.leads[id]
		f := make(map[string]any, len(l.fields))
		for n, v := range l.fields {
			f[n] = v
		}
		k, _ := l.fields["email"].(string)
		if _, dup := out[k]; dup || k == "" {
			k = fmt.Sprintf("%s#%d", k, id)
		}
		out[k] = f
	}
	return out
}

// find returns the leads whose field holds value (emails compared
// case-insensitively, as Marketo does), by id; s.mu is held.
func (s *Server) find(field, value string) []*lead {
	var out []*lead
	for _, l := range s.leads {
		if l.value(field) != "" && strings.EqualFold(l.value(field), value) {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].id < out[b].id })
	return out
}

// value is the lead's field as a string ("" if unset).
func (l *lead) value(field string) string {
	if field == "id" {
		return strconv.FormatInt(l.id, 10)
	}
	v, ok := l.fields[field]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// Requests counts API calls received, Identity calls excluded.
func (s *Server) Requests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.requests }

// TokenRequests counts Identity calls.
func (s *Server) TokenRequests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.tokenCalls }

// MaxBatch is the most leads accepted in one call so far.
func (s *Server) MaxBatch() int { s.mu.Lock(); defer s.mu.Unlock(); return s.maxBatch }

// FailNext makes the next n API calls fail with HTTP 502.
func (s *Server) FailNext(n int) { s.mu.Lock(); defer s.mu.Unlock(); s.failNext = n }

// ThrottleNext makes the next n API calls get 606.
func (s *Server) ThrottleNext(n int) { s.mu.Lock(); defer s.mu.Unlock(); s.throttleNext = n }

// ExpireTokens expires every token issued so far: API calls with them get
// 602 and Identity issues a new one.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.tokens[t] = time.Time{}
	}
	s.current = ""
}

// Reject makes the instance skip the lead with this lookup value, with
// reason code 1003 and message.
func (s *Server) Reject(key, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects[key] = message
}

// Violations lists the requests that broke the spec or the API's rules.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

func (s *Server) violation(format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.violations = append(s.violations, msg)
	s.mu.Unlock()
	return msg
}

func requestID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:2]) + "#" + hex.EncodeToString(b[2:])
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// response is the envelope of every REST answer. The spec's
// ResponseOfLead requires errors, result and warnings on every answer;
// Marketo's examples often leave the empty ones out, and the connector
// reads both, so the fake sends all of them to match the spec.
func response(success bool, result any, errs ...apiError) map[string]any {
	if result == nil {
		result = []any{}
	}
	return map[string]any{
		"requestId": requestID(), "success": success, "result": result,
		"errors": append([]apiError{}, errs...), "warnings": []any{},
	}
}

// writeFailure answers as Marketo does for a failed call: HTTP 200.
func writeFailure(w http.ResponseWriter, code, message string) {
	writeJSON(w, http.StatusOK, response(false, nil, apiError{Code: code, Message: message}))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/__records" && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, s.Records())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayload+1))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if r.URL.Path == "/identity/oauth/token" {
		s.identity(w, r)
		return
	}
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	if len(body) > MaxPayload {
		http.Error(w, "<html><body><h1>413 Request Entity Too Large</h1></body></html>", http.StatusRequestEntityTooLarge)
		return
	}
	if !s.checkSpec(w, r, body) {
		return
	}
	if !s.authorized(w, r) || !s.admit(w) {
		return
	}
	defer func() { s.mu.Lock(); s.inFlight--; s.mu.Unlock() }()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/rest/v1/leads.json":
		s.syncLeads(w, body)
	case r.Method == http.MethodGet && r.URL.Path == "/rest/v1/leads.json":
		s.getLeads(w, r)
	default:
		// The spec knows the path but the fake does not implement it.
		writeFailure(w, "610", "Requested resource not found")
	}
}

// checkSpec validates r against the specs and answers for it if it fails.
func (s *Server) checkSpec(w http.ResponseWriter, r *http.Request, body []byte) bool {
	problems, found := s.spec.check(r, body)
	if !found {
		s.violation("%s %s: no such operation in the spec", r.Method, r.URL.Path)
		writeJSON(w, http.StatusNotFound, response(false, nil, apiError{Code: "610", Message: "Requested resource not found"}))
		return false
	}
	if len(problems) > 0 {
		msg := s.violation("%s %s does not match the spec: %s", r.Method, r.URL.Path, strings.Join(problems, "; "))
		// Marketo answers malformed requests with 609 "Invalid JSON".
		writeFailure(w, "609", "Invalid JSON: "+msg)
		return false
	}
	return true
}

func (s *Server) identity(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenCalls++
	s.mu.Unlock()
	if !s.checkSpec(w, r, nil) {
		return
	}
	q := r.URL.Query()
	if q.Get("client_id") != s.clientID || q.Get("client_secret") != s.clientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "Bad client credentials"})
		return
	}
	s.mu.Lock()
	now := time.Now()
	if s.current == "" || !now.Before(s.tokens[s.current]) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		h := hex.EncodeToString(b[:])
		s.current = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:] + ":int"
		s.tokens[s.current] = now.Add(TokenTTL)
	}
	tok, left := s.current, s.tokens[s.current].Sub(now)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "bearer",
		"expires_in": int64(left / time.Second), "scope": "apis@synchub.test",
	})
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok := r.URL.Query().Get("access_token")
	if h := r.Header.Get("Authorization"); h != "" {
		var ok bool
		if tok, ok = strings.CutPrefix(h, "Bearer "); !ok {
			writeFailure(w, "601", "Access token invalid")
			return false
		}
	}
	if tok == "" {
		writeFailure(w, "600", "Access token missing")
		return false
	}
	s.mu.Lock()
	exp, ok := s.tokens[tok]
	s.mu.Unlock()
	switch {
	case !ok:
		writeFailure(w, "601", "Access token invalid")
		return false
	case !time.Now().Before(exp):
		writeFailure(w, "602", "Access token expired")
		return false
	}
	return true
}

// admit applies the injected failures and Marketo's rate and concurrency
// limits. On true, the caller owes an inFlight decrement.
func (s *Server) admit(w http.ResponseWriter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		http.Error(w, "<html><body><h1>502 Bad Gateway</h1></body></html>", http.StatusBadGateway)
		return false
	}
	now := time.Now()
	keep := s.calls[:0]
	for _, t := range s.calls {
		if now.Sub(t) < s.rateWindow {
			keep = append(keep, t)
		}
	}
	s.calls = keep
	if s.throttleNext > 0 || len(s.calls) >= s.rateCalls {
		if s.throttleNext > 0 {
			s.throttleNext--
		}
		// Throttled calls do not count against the rate.
		writeFailure(w, "606", fmt.Sprintf("Max rate limit '%d' exceeded with in '%d' secs", s.rateCalls, int(s.rateWindow/time.Second)))
		return false
	}
	if s.inFlight >= 10 {
		writeFailure(w, "615", "Concurrent access limit reached")
		return false
	}
	s.calls = append(s.calls, now)
	s.inFlight++
	return true
}

type syncRequest struct {
	Action      string           `json:"action"`
	LookupField string           `json:"lookupField"`
	Input       []map[string]any `json:"input"`
}

type result struct {
	ID      int64      `json:"id,omitempty"`
	Status  string     `json:"status"`
	Reasons []apiError `json:"reasons,omitempty"`
}

func skipped(code, message string) result {
	return result{Status: "skipped", Reasons: []apiError{{Code: code, Message: message}}}
}

func (s *Server) syncLeads(w http.ResponseWriter, body []byte) {
	var req syncRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeFailure(w, "609", "Invalid JSON")
		return
	}
	if req.Action == "" {
		req.Action = "createOrUpdate"
	}
	if req.LookupField == "" {
		req.LookupField = "email"
	}
	if req.Action == "createDuplicate" {
		writeFailure(w, "1003", "createDuplicate is not supported by the fake")
		return
	}
	if len(req.Input) > MaxBatch {
		// Marketo refuses the whole call (response-level 1003).
		s.violation("Sync Leads with %d leads (limit %d)", len(req.Input), MaxBatch)
		writeFailure(w, "1003", fmt.Sprintf("Batch size %d exceeds the limit of %d", len(req.Input), MaxBatch))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxBatch = max(s.maxBatch, len(req.Input))
	results := make([]result, len(req.Input))
	seen := map[string]bool{}
	for i, in := range req.Input {
		results[i] = s.syncLead(req, in, seen)
	}
	writeJSON(w, http.StatusOK, response(true, results))
}

// syncLead applies one lead; s.mu is held. With lookupField "id" (only
// for updateOnly, as Marketo requires) the lead is named by its id, which
// is not a field to store.
func (s *Server) syncLead(req syncRequest, in map[string]any, seen map[string]bool) result {
	kv, ok := in[req.LookupField]
	key, isString := kv.(string)
	if !ok || kv == nil || (isString && key == "") {
		return skipped("1003", fmt.Sprintf("Value for lookup field '%s' not found", req.LookupField))
	}
	if !isString {
		key = fmt.Sprint(kv)
	}
	byID := req.LookupField == "id"
	if _, hasID := in["id"]; hasID && !(byID && req.Action == "updateOnly") {
		s.violations = append(s.violations, fmt.Sprintf("Sync Leads %s by %s with an id in the input (only updateOnly by id takes one)", req.Action, req.LookupField))
		return skipped("1003", "id is only allowed with action updateOnly")
	}
	var unknown []string
	for f := range in {
		if !s.fields[f] && !(byID && f == "id") {
			unknown = append(unknown, f)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return skipped("1006", fmt.Sprintf("Field '%s' not found", strings.Join(unknown, "', '")))
	}
	if seen[strings.ToLower(key)] {
		return skipped("1036", "Duplicate lead in input")
	}
	seen[strings.ToLower(key)] = true
	email, _ := in["email"].(string)
	if msg, ok := s.rejects[key]; ok {
		return skipped("1003", msg)
	}
	if msg, ok := s.rejects[email]; ok && email != "" {
		return skipped("1003", msg)
	}
	matches := s.find(req.LookupField, key)
	if len(matches) > 1 {
		return skipped("1007", "Multiple lead match lookup criteria")
	}
	exists := len(matches) == 1
	switch {
	case exists && req.Action == "createOnly":
		return skipped("1005", "Lead already exists")
	case !exists && req.Action == "updateOnly":
		return skipped("1004", "Lead not found")
	case exists:
		l := matches[0]
		for f, v := range in {
			if f != "id" {
				l.fields[f] = v
			}
		}
		return result{ID: l.id, Status: "updated"}
	}
	s.nextID++
	l := &lead{id: s.nextID, fields: map[string]any{}}
	for f, v := range in {
		l.fields[f] = v
	}
	s.leads[l.id] = l
	return result{ID: l.id, Status: "created"}
}

// MaxFilterValues is the most values Get Leads by Filter Type takes.
const MaxFilterValues = 300

// getLeads is Get Leads by Filter Type: GET /rest/v1/leads.json?
// filterType=…&filterValues=a,b (comma-separated, at most 300) with
// optional fields (default id, email, firstName, lastName, updatedAt,
// createdAt), batchSize (at most 300) and nextPageToken. Leads come back
// by id, each with the fields asked for that it has; more than batchSize
// adds a nextPageToken. An unknown filterType is 1003.
func (s *Server) getLeads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filterType := q.Get("filterType")
	var values []string
	for _, v := range q["filterValues"] {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				values = append(values, x)
			}
		}
	}
	if len(values) > MaxFilterValues {
		s.violation("Get Leads with %d filter values (limit %d)", len(values), MaxFilterValues)
		writeFailure(w, "1003", fmt.Sprintf("Too many filter values: %d, the limit is %d", len(values), MaxFilterValues))
		return
	}
	fields := []string{"id", "email", "firstName", "lastName", "updatedAt", "createdAt"}
	if f := q.Get("fields"); f != "" {
		fields = strings.Split(f, ",")
	}
	size := MaxBatch
	if b := q.Get("batchSize"); b != "" {
		n, err := strconv.Atoi(b)
		if err != nil || n < 1 || n > MaxBatch {
			writeFailure(w, "1003", "Invalid batchSize "+b)
			return
		}
		size = n
	}
	offset := 0
	if t := q.Get("nextPageToken"); t != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(t, "page-"))
		if err != nil || n < 0 {
			writeFailure(w, "1003", "Invalid nextPageToken")
			return
		}
		offset = n
	}
	s.mu.Lock()
	if filterType != "id" && !s.fields[filterType] {
		s.mu.Unlock()
		writeFailure(w, "1003", fmt.Sprintf("Invalid filterType '%s'", filterType))
		return
	}
	var found []*lead
	seen := map[int64]bool{}
	for _, v := range values {
		for _, l := range s.find(filterType, v) {
			if !seen[l.id] {
				seen[l.id] = true
				found = append(found, l)
			}
		}
	}
	sort.Slice(found, func(a, b int) bool { return found[a].id < found[b].id })
	results := []map[string]any{}
	for _, l := range found[min(offset, len(found)):min(offset+size, len(found))] {
		m := map[string]any{"id": l.id}
		for _, f := range fields {
			if v, ok := l.fields[f]; ok && f != "id" {
				m[f] = v
			}
		}
		results = append(results, m)
	}
	s.mu.Unlock()
	resp := response(true, results)
	if offset+size < len(found) {
		resp["nextPageToken"] = "page-" + strconv.Itoa(offset+size)
	}
	writeJSON(w, http.StatusOK, resp)
}
