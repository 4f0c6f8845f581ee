// Package fake is a local Mailchimp Marketing API (v3.0) that behaves like
// the real one on the points the connector depends on
// (shared/reference/vendor-apis.md §4):
//
//   - auth: HTTP Basic with any user and the API key as password (or
//     "Bearer <key>"); a wrong or revoked key is 401 "API Key Invalid".
//     Keys never expire, so ExpireTokens is a no-op; RevokeKey simulates
//     the only real way a key stops working.
//   - PUT /3.0/lists/{list_id}/members/{subscriber_hash} upserts one
//     member, idempotent by subscriber hash (md5 of the lower-cased
//     email); status_if_new applies to new members only. An unknown list
//     is 404, a hash that is not the body's email's is 400.
//   - PATCH /3.0/lists/{list_id}/members/{subscriber_hash} updates an
//     existing member (404 if none); a new email_address moves it to that
//     address's hash, or is 400 "Member Exists" if another member has it.
//   - POST /3.0/lists/{list_id} (batch subscribe) takes at most 500
//     members, with per-member errors[] in its 200 answer; more is 400.
//   - concurrency: more than 10 requests in flight is 429 "Too Many
//     Requests", as is ThrottleNext; FailNext is a 500.
//   - errors are application/problem+json {type,title,status,detail,instance}.
//   - with WithSpec, every API request is checked against the OpenAPI
//     description; a non-conforming one gets 400 "Invalid Resource" and is
//     listed by SpecViolations.
//
// GET /__records (no auth, not counted) returns Records as JSON.
package fake

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

const (
	// MaxConnections is Mailchimp's limit of simultaneous connections.
	MaxConnections = 10
	// MaxBatchSubscribe is the most members POST /lists/{id} takes.
	MaxBatchSubscribe = 500
	errorsDoc         = "https://mailchimp.com/developer/marketing/docs/errors/"
)

// Server is the fake. It is safe for concurrent use.
type Server struct {
	srv    *httptest.Server
	spec   *Spec
	apiKey string
	listID string

	mu         sync.Mutex
	members    map[string]map[string]any // subscriber hash → member
	rejects    map[string]string         // subscriber hash → detail
	revoked    bool
	requests   int
	maxBatch   int
	inFlight   int
	maxFlight  int
	failNext   int
	throttle   int
	violations []string
}

// Option configures New.
type Option func(*Server)

// WithSpec checks every API request against spec (see LoadSpec).
func WithSpec(spec *Spec) Option { return func(s *Server) { s.spec = spec } }

// WithSpecFile checks every API request against the OpenAPI file at path.
func WithSpecFile(path string) Option { return WithSpec(LoadSpec(path)) }

// New starts a fake with one audience (ListID) and one valid key (APIKey).
func New(opts ...Option) *Server {
	s := &Server{
		apiKey:  randomHex(16) + "-us7",
		listID:  randomHex(5),
		members: map[string]map[string]any{},
		rejects: map[string]string{},
	}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// URL is the API root the connector is configured with, /3.0 included.
func (s *Server) URL() string { return s.srv.URL + "/3.0" }

// APIKey is the key the fake accepts.
func (s *Server) APIKey() string { return s.apiKey }

// ListID is the fake's one audience.
func (s *Server) ListID() string { return s.listID }

// Records returns the members: email → fields as the connector maps them
// (email_address, status, and each merge field at top level).
func (s *Server) Records() map[string]map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]any, len(s.members))
	for _, m := range s.members {
		f := map[string]any{"email_address": m["email_address"], "status": m["status"]}
		if mf, ok := m["merge_fields"].(map[string]any); ok {
			maps.Copy(f, mf)
		}
		out[fmt.Sprint(m["email_address"])] = f
	}
	return out
}

// Requests counts the API requests received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// MaxBatch is the most members one request carried.
func (s *Server) MaxBatch() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxBatch
}

// MaxInFlight is the most requests that were in flight at once.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxFlight
}

// FailNext makes the next n API requests fail with a 500.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext += n
}

// ThrottleNext makes the next n API requests get 429 Too Many Requests.
func (s *Server) ThrottleNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle += n
}

// ExpireTokens does nothing: Mailchimp API keys and OAuth tokens do not
// expire, so the contract's token-expiry case must cost nothing here.
func (s *Server) ExpireTokens() {}

// RevokeKey makes the API key invalid from now on (401 API Key Invalid).
func (s *Server) RevokeKey() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// Reject makes every upsert of the member with email key fail with 400
// "Forgotten Email Not Subscribed" and message as detail.
func (s *Server) Reject(key, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects[hash(key)] = message
}

// SpecViolations lists the requests that did not conform to the spec.
func (s *Server) SpecViolations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

func hash(email string) string {
	sum := md5.Sum([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// reply is an answer decided under the lock and written after it.
type reply struct {
	status int
	body   any
}

func problem(status int, title, detail string) reply {
	return reply{status, map[string]any{
		"type": errorsDoc, "title": title, "status": status, "detail": detail,
		"instance": randomHex(4) + "-" + randomHex(2) + "-" + randomHex(2) + "-" + randomHex(2) + "-" + randomHex(6),
	}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/__records" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Records())
		return
	}
	s.mu.Lock()
	s.inFlight++
	s.maxFlight = max(s.maxFlight, s.inFlight)
	s.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	var rep reply
	if err != nil {
		rep = problem(http.StatusBadRequest, "Invalid Resource", "The request body could not be read.")
	} else {
		rep = s.handle(r, body)
	}
	// Leave the in-flight count before answering: a client may send its
	// next request as soon as it reads this one's answer.
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	ct := "application/json; charset=utf-8"
	if rep.status >= 400 {
		ct = "application/problem+json; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(rep.status)
	if rep.body != nil {
		_ = json.NewEncoder(w).Encode(rep.body)
	}
}

func (s *Server) handle(r *http.Request, body []byte) reply {
	var specErr error
	if s.spec != nil {
		specErr = s.spec.Check(r, body) // before the lock: the first call loads 3 MB
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	switch {
	case s.inFlight > MaxConnections:
		return problem(http.StatusTooManyRequests, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")
	case s.throttle > 0:
		s.throttle--
		return problem(http.StatusTooManyRequests, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")
	case s.failNext > 0:
		s.failNext--
		return problem(http.StatusInternalServerError, "Internal Server Error", "An unexpected internal error has occurred. Please contact Support for more information.")
	}
	if !s.authorized(r) {
		return problem(http.StatusUnauthorized, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the wrong datacenter.")
	}
	if specErr != nil {
		s.violations = append(s.violations, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, specErr))
		return problem(http.StatusBadRequest, "Invalid Resource", "The resource submitted could not be validated: "+strings.ReplaceAll(specErr.Error(), "\n", "; "))
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/3.0/")
	if !ok {
		return problem(http.StatusNotFound, "Resource Not Found", "The requested resource could not be found.")
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "ping" && r.Method == http.MethodGet:
		return reply{http.StatusOK, map[string]any{"health_status": "Everything's Chimpy!"}}
	case len(parts) == 4 && parts[0] == "lists" && parts[2] == "members":
		if parts[1] != s.listID {
			return problem(http.StatusNotFound, "Resource Not Found", "The requested resource could not be found.")
		}
		if r.Method != http.MethodPut && r.Method != http.MethodPatch {
			return problem(http.StatusMethodNotAllowed, "Method Not Allowed", "The requested method and resource are not compatible. See the Allow header for this resource's available methods.")
		}
		s.maxBatch = max(s.maxBatch, 1)
		var in map[string]any
		if err := json.Unmarshal(body, &in); err != nil {
			return problem(http.StatusBadRequest, "Invalid Resource", "The resource submitted could not be validated: the body is not JSON.")
		}
		if r.Method == http.MethodPatch {
			return s.patch(parts[3], in)
		}
		return s.put(parts[3], in)
	case len(parts) == 2 && parts[0] == "lists":
		if parts[1] != s.listID {
			return problem(http.StatusNotFound, "Resource Not Found", "The requested resource could not be found.")
		}
		if r.Method != http.MethodPost {
			return problem(http.StatusMethodNotAllowed, "Method Not Allowed", "The requested method and resource are not compatible.")
		}
		return s.batchSubscribe(body)
	}
	return problem(http.StatusNotFound, "Resource Not Found", "The requested resource could not be found.")
}

func (s *Server) authorized(r *http.Request) bool {
	if s.revoked {
		return false
	}
	if _, key, ok := r.BasicAuth(); ok {
		return key == s.apiKey
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && tok == s.apiKey
}

// put is the member upsert, with s.mu held.
func (s *Server) put(pathHash string, in map[string]any) reply {
	email, _ := in["email_address"].(string)
	if !strings.Contains(email, "@") || strings.ContainsAny(strings.TrimSpace(email), " ,;") {
		return problem(http.StatusBadRequest, "Invalid Resource", "Please provide a valid email address.")
	}
	h := hash(email)
	// The path may also be the email itself (the spec says so).
	if pathHash != h && !strings.EqualFold(pathHash, email) {
		return problem(http.StatusBadRequest, "Invalid Resource", "The resource submitted could not be validated: the subscriber hash does not match the email address.")
	}
	if msg, ok := s.rejects[h]; ok {
		return problem(http.StatusBadRequest, "Forgotten Email Not Subscribed", msg)
	}
	m, ok := s.members[h]
	if !ok {
		st, _ := in["status_if_new"].(string)
		if st == "" {
			return problem(http.StatusBadRequest, "Invalid Resource", "The resource submitted could not be validated. For field-specific details, see the 'errors' array.")
		}
		m = map[string]any{"id": h, "email_address": email, "status": st, "list_id": s.listID, "merge_fields": map[string]any{}}
		s.members[h] = m
	}
	s.apply(m, in)
	return reply{http.StatusOK, m}
}

// patch is the member update, with s.mu held: the member must exist (404
// otherwise), and an email_address in the body changes its address, so its
// subscriber hash, unless another member has that address (400 "Member
// Exists", as a POST of an existing address gets).
func (s *Server) patch(pathID string, in map[string]any) reply {
	h := pathID
	if strings.Contains(pathID, "@") {
		h = hash(pathID)
	}
	m, ok := s.members[h]
	if !ok {
		return problem(http.StatusNotFound, "Resource Not Found", "The requested resource could not be found.")
	}
	if v, has := in["email_address"]; has {
		email, _ := v.(string)
		if !strings.Contains(email, "@") || strings.ContainsAny(strings.TrimSpace(email), " ,;") {
			return problem(http.StatusBadRequest, "Invalid Resource", "Please provide a valid email address.")
		}
		nh := hash(email)
		if msg, bad := s.rejects[nh]; bad {
			return problem(http.StatusBadRequest, "Forgotten Email Not Subscribed", msg)
		}
		if nh != h {
			if _, taken := s.members[nh]; taken {
				return problem(http.StatusBadRequest, "Member Exists", email+" is already a list member. Use PUT to insert or update list members.")
			}
			delete(s.members, h)
			s.members[nh] = m
			m["id"] = nh
		}
		m["email_address"] = email
	}
	s.apply(m, in)
	return reply{http.StatusOK, m}
}

// apply writes the fields of in onto member m.
func (s *Server) apply(m, in map[string]any) {
	if st, ok := in["status"].(string); ok && st != "" {
		m["status"] = st
	}
	mf, _ := m["merge_fields"].(map[string]any)
	if inMF, ok := in["merge_fields"].(map[string]any); ok {
		maps.Copy(mf, inMF)
	}
	for k, v := range in {
		switch k {
		case "email_address", "status", "status_if_new", "merge_fields":
		default:
			m[k] = v
		}
	}
}

// batchSubscribe is POST /lists/{id}, with s.mu held.
func (s *Server) batchSubscribe(body []byte) reply {
	var in struct {
		Members        []map[string]any `json:"members"`
		UpdateExisting bool             `json:"update_existing"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return problem(http.StatusBadRequest, "Invalid Resource", "The resource submitted could not be validated: the body is not JSON.")
	}
	if len(in.Members) > MaxBatchSubscribe {
		return problem(http.StatusBadRequest, "Invalid Resource", fmt.Sprintf("The resource submitted could not be validated. For field-specific details, see the 'errors' array. members: Schema describes array, maximum %d items", MaxBatchSubscribe))
	}
	s.maxBatch = max(s.maxBatch, len(in.Members))
	var created, updated, errs []any
	for _, mem := range in.Members {
		email, _ := mem["email_address"].(string)
		h := hash(email)
		fail := func(code, msg string) {
			errs = append(errs, map[string]any{"email_address": email, "error": msg, "error_code": code, "field": "", "field_message": ""})
		}
		switch m, exists := s.members[h]; {
		case !strings.Contains(email, "@"):
			fail("ERROR_GENERIC", "Please provide a valid email address.")
		case s.rejects[h] != "":
			fail("ERROR_GENERIC", s.rejects[h])
		case exists && !in.UpdateExisting:
			fail("ERROR_CONTACT_EXISTS", email+" is already a list member. Use PUT to insert or update list members.")
		case exists:
			s.apply(m, mem)
			updated = append(updated, m)
		default:
			st, _ := mem["status"].(string)
			m = map[string]any{"id": h, "email_address": email, "status": st, "list_id": s.listID, "merge_fields": map[string]any{}}
			s.members[h] = m
			s.apply(m, mem)
			created = append(created, m)
		}
	}
	return reply{http.StatusOK, map[string]any{
		"new_members": created, "updated_members": updated, "errors": errs,
		"total_created": len(created), "total_updated": len(updated), "error_count": len(errs),
	}}
}
