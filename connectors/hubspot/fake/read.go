package fake

import (
	"fmt"
	"net/http"
	"time"
)

// notFound is HubSpot's message for ids that name no object.
const notFound = "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid."

// OmitMissingOnRead makes batch reads leave ids no contact has out of the
// results without naming them in errors (a plain 200), the other answer
// HubSpot gives for them; by default they are named in a 207.
func (s *Server) OmitMissingOnRead(omit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.omitMissing = omit
}

// ReadRequests counts batch read requests.
func (s *Server) ReadRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readReqs
}

// read is POST /crm/v3/objects/{type}/batch/read: each input names a
// contact by idProperty (email, or hs_object_id when absent), and the
// answer holds the contacts found with the properties asked for, as
// HubSpot documents it:
//   - the contacts found are in results, each with its hs_object_id as id
//     and the properties asked for (HubSpot adds hs_object_id, createdate
//     and lastmodifieddate);
//   - ids no contact has are named together in one OBJECT_NOT_FOUND error
//     (context ids) of a 207, or, after OmitMissingOnRead, simply left out
//     of a 200: HubSpot answers either way;
//   - more than MaxInputs inputs refuse the whole batch with 400
//     VALIDATION_ERROR.
func (s *Server) read(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IDProperty string   `json:"idProperty"`
		Properties []string `json:"properties"`
		Inputs     []struct {
			ID string `json:"id"`
		} `json:"inputs"`
	}
	if !s.batchBody(w, r, &in) {
		return
	}
	if !idPropertyKnown(w, in.IDProperty, true) {
		return
	}

	now := time.Now().UTC().Format(time.RFC3339Nano)
	results := []map[string]any{}
	var missing []string
	s.mu.Lock()
	s.readReqs++
	omit := s.omitMissing
	returned := map[string]bool{}
	for _, x := range in.Inputs {
		key, found := s.find(in.IDProperty, x.ID)
		if !found {
			missing = append(missing, x.ID)
			continue
		}
		if returned[key] {
			continue // one result per contact
		}
		returned[key] = true
		rec := s.records[key]
		props := map[string]string{"hs_object_id": s.objectIDs[key], "createdate": now, "lastmodifieddate": now}
		for _, p := range in.Properties {
			if v, ok := rec[p]; ok {
				props[p] = fmt.Sprint(v)
			}
		}
		results = append(results, s.result(key, props, now))
	}
	s.mu.Unlock()
	var errs []map[string]any
	if len(missing) > 0 && !omit {
		errs = append(errs, inputError("", "OBJECT_NOT_FOUND", notFound, missing...))
	}
	writeBatch(w, results, errs, now)
}
