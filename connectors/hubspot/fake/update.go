package fake

import (
	"net/http"
	"time"
)

// update is POST /crm/v3/objects/{type}/batch/update: each input names an
// existing contact by idProperty (email, or hs_object_id when absent) and
// sets the properties given, the unique email included, as HubSpot does:
//   - an id no contact has fails that input with OBJECT_NOT_FOUND (context
//     ids), the others stand, and the answer is 207;
//   - an email another contact already has fails the input with CONFLICT
//     ("Contact already exists. Existing ID: …");
//   - Reject applies to the email the contact would end with;
//   - more than MaxInputs inputs or a repeated id refuse the whole batch
//     with 400 VALIDATION_ERROR.
//
// HubSpot's exact answer for unknown ids in a batch update is not in
// vendor-apis.md (unverified): per-input OBJECT_NOT_FOUND in a 207 is the
// shape its batch read documents.
func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Inputs []upsertInput `json:"inputs"`
	}
	if !s.batchBody(w, r, &in) {
		return
	}
	if !checkInputs(w, in.Inputs, true) {
		return
	}

	now := time.Now().UTC().Format(time.RFC3339Nano)
	results := []map[string]any{}
	errs := []map[string]any{}
	inputError := func(x upsertInput, category, message string) {
		errs = append(errs, inputError(x.ObjectWriteTraceID, category, message, x.ID))
	}
	s.mu.Lock()
	for _, x := range in.Inputs {
		key, found := s.find(x.IDProperty, x.ID)
		if !found {
			inputError(x, "OBJECT_NOT_FOUND", notFound)
			continue
		}
		email := key
		if e, ok := x.Properties["email"]; ok && e != "" {
			email = e
		}
		if msg, bad := s.rejects[email]; bad {
			inputError(x, "VALIDATION_ERROR", msg)
			continue
		}
		if email != key {
			if _, taken := s.records[email]; taken {
				inputError(x, "CONFLICT", "Contact already exists. Existing ID: "+s.objectIDs[email])
				continue
			}
			s.records[email], s.objectIDs[email] = s.records[key], s.objectIDs[key]
			delete(s.records, key)
			delete(s.objectIDs, key)
		}
		rec := s.records[email]
		for k, v := range x.Properties {
			rec[k] = v
		}
		rec["email"] = email
		results = append(results, s.result(email, allProperties(rec), now))
	}
	s.mu.Unlock()
	writeBatch(w, results, errs, now)
}

// find returns the email a contact is held under, looked up by idProperty
// (email, or hs_object_id when empty); s.mu is held.
func (s *Server) find(idProperty, id string) (string, bool) {
	if idProperty == "email" {
		_, ok := s.records[id]
		return id, ok
	}
	for email, oid := range s.objectIDs {
		if oid == id {
			return email, true
		}
	}
	return "", false
}
