package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/retry"
)

// maxReadInputs is HubSpot's limit on ids per batch read.
const maxReadInputs = 100

// moveOutcome is what a batch update did with one record.
type moveOutcome int

const (
	moved      moveOutcome = iota // HubSpot updated the contact: done
	upsertInst                    // leave it to the normal upsert
	moveFailed                    // out holds the record's error: done
)

// move moves the records that have former keys from the contact HubSpot
// holds under a former key to their Key, and returns which records are
// settled (out holds their result); the others go through the normal
// upsert.
//
//  1. POST /crm/v3/objects/{type}/batch/read with idProperty (email) and,
//     as inputs, every former key of every such record, at most 100 per
//     request, finds which former keys HubSpot holds a contact under. An id
//     HubSpot has no contact for is either named in a 207's errors
//     (OBJECT_NOT_FOUND, context.ids) or simply left out of the results:
//     either way it is not found.
//  2. Each record is moved from its newest former key found, through POST
//     /crm/v3/objects/{type}/batch/update with idProperty, id that former
//     key and the record's properties, the new email among them; a contact
//     two records would move goes to the first only.
//
// So records with former keys cost one read per 100 former keys and one
// update per BatchSize records found, however long their chains; records
// without former keys cost nothing.
//   - A record none of whose former keys HubSpot holds goes to the upsert.
//   - An update input answered OBJECT_NOT_FOUND (the contact went away
//     since the read) or CONFLICT (the new email already belongs to
//     another contact) goes to the upsert, which creates or updates the
//     contact under the new email: the one under the former key, if any,
//     stays as it is.
//   - A read refused permanently as a whole (the app lacks the
//     crm.objects.contacts.read scope, say), or an update refused as a
//     whole with a 4xx other than 401 and 403 (HubSpot's answer to an
//     update it cannot apply, shapes of which are not all documented),
//     sends its records to the upsert: moving is an improvement on the
//     upsert, never a reason to lose a record.
//   - Any other failure (transient ones outlasting Policy, refused
//     credentials, ctx ending, an update input error) settles the records
//     involved with that error, classified as the upsert's are, and no
//     upsert is tried: upserting without the move would leave the old
//     contact behind, while the dispatch stage retries the whole record
//     later.
func (c *Client) move(ctx context.Context, gate connectors.Gate, recs []connectors.Record, out []error) map[int]bool {
	done := map[int]bool{}
	var pending []int
	var ids []string
	inRead := map[string]bool{}
	for i, r := range recs {
		fk := r.Former()
		if r.Key == "" || len(fk) == 0 {
			continue
		}
		pending = append(pending, i)
		for _, k := range fk {
			if lk := strings.ToLower(k); !inRead[lk] {
				inRead[lk] = true
				ids = append(ids, k)
			}
		}
	}
	if len(pending) == 0 {
		return done
	}
	found, failed := c.read(ctx, gate, ids)

	var movers []int
	var from []string
	claimed := map[string]bool{}
	for _, i := range pending {
		for _, k := range recs[i].Former() {
			lk := strings.ToLower(k)
			if err, bad := failed[lk]; bad {
				// Whether a contact is held under k is unknown: moving
				// from an older key, or upserting, could leave it behind.
				out[i], done[i] = err, true
				break
			}
			if !found[lk] {
				continue
			}
			if !claimed[lk] {
				claimed[lk] = true
				movers, from = append(movers, i), append(from, k)
			}
			break
		}
	}

	var batch []int
	var batchFrom []string
	seen := map[string]bool{}
	flush := func() {
		if len(batch) == 0 {
			return
		}
		for n, res := range c.updateBatch(ctx, gate, recs, batch, batchFrom, out) {
			if res != upsertInst {
				done[batch[n]] = true
			}
		}
		batch, batchFrom, seen = batch[:0], batchFrom[:0], map[string]bool{}
	}
	for n, i := range movers {
		id, key := strings.ToLower(from[n]), strings.ToLower(recs[i].Key)
		if seen[id] || seen[key] {
			// HubSpot refuses duplicate ids in a batch, and two moves
			// touching one address in a request have no defined order.
			flush()
		}
		if ctx.Err() != nil {
			break // Upsert reports the interruption for the rest
		}
		batch, batchFrom = append(batch, i), append(batchFrom, from[n])
		seen[id], seen[key] = true, true
		if len(batch) == c.cfg.BatchSize {
			flush()
		}
	}
	flush()
	return done
}

// read looks ids up with batch reads by idProperty, at most maxReadInputs
// per request, and returns the lower-cased ids HubSpot holds a contact
// under, and the error of every id whose request or input failed other
// than with not found. A request refused permanently as a whole (a 403
// for an app without crm.objects.contacts.read, say) finds nothing: its
// records go to the upsert, which reports its own refusal if it has one.
func (c *Client) read(ctx context.Context, gate connectors.Gate, ids []string) (map[string]bool, map[string]error) {
	found, failed := map[string]bool{}, map[string]error{}
	for len(ids) > 0 {
		n := min(len(ids), maxReadInputs)
		c.readBatch(ctx, gate, ids[:n], found, failed)
		ids = ids[n:]
	}
	return found, failed
}

// readInput is one element of the batch read's inputs.
type readInput struct {
	ID string `json:"id"`
}

// readBatch is one batch read of ids; see read.
func (c *Client) readBatch(ctx context.Context, gate connectors.Gate, ids []string, found map[string]bool, failed map[string]error) {
	s, bctx, stop := c.start(ctx, gate, c.log.With(zap.Int("batch_size", len(ids)), zap.String("operation", "batch/read")))
	defer stop()

	inputs := make([]readInput, len(ids))
	for n, id := range ids {
		inputs[n] = readInput{ID: id}
	}
	body, _ := json.Marshal(map[string]any{
		"idProperty":            c.cfg.IDProperty,
		"inputs":                inputs,
		"properties":            []string{c.cfg.IDProperty},
		"propertiesWithHistory": []string{},
	})
	_, resp, err := s.do(ctx, bctx, c.readURL, body)
	if err != nil {
		var re *retry.Error
		if errors.As(err, &re) && re.Class == retry.Permanent {
			// 403 MISSING_SCOPES among others: an app granted only
			// crm.objects.contacts.write can still upsert.
			c.log.Warn("hubspot batch read refused, upserting its records without moving", zap.Error(err))
			return
		}
		for _, id := range ids {
			failed[strings.ToLower(id)] = err
		}
		return
	}
	// 200, or 207 with errors for some ids; ids with no contact may also
	// just be missing from results.
	var br struct {
		Results []struct {
			Properties map[string]*string `json:"properties"`
		} `json:"results"`
		Errors []stdError `json:"errors"`
	}
	if err := json.Unmarshal(resp, &br); err != nil {
		err := s.fail(retry.Permanent, http.StatusOK, fmt.Errorf("hubspot: unreadable batch read answer: %w", err))
		for _, id := range ids {
			failed[strings.ToLower(id)] = err
		}
		return
	}
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		asked[strings.ToLower(id)] = true
	}
	for _, r := range br.Results {
		if v := r.Properties[c.cfg.IDProperty]; v != nil && asked[strings.ToLower(*v)] {
			found[strings.ToLower(*v)] = true
		}
	}
	for _, e := range br.Errors {
		if e.Category == "OBJECT_NOT_FOUND" {
			continue
		}
		class := retry.Permanent
		if transientInput(e) {
			class = retry.Exhausted
		}
		err := s.fail(class, inputStatus(e, http.StatusMultiStatus), fmt.Errorf("hubspot: looking up former keys: %s", e))
		named := e.Context["ids"]
		if len(named) == 0 {
			// Which ids failed is unknown: none of the unfound can be
			// called absent.
			named = ids
		}
		for _, id := range named {
			if lid := strings.ToLower(id); asked[lid] && !found[lid] {
				failed[lid] = err
			}
		}
	}
}

// refusedRequest: an update HubSpot refused as a whole with a 4xx other
// than 401 and 403, whose records are better upserted than lost.
func refusedRequest(err error) bool {
	var re *retry.Error
	return errors.As(err, &re) && re.Class == retry.Permanent && re.HTTPStatus >= 400 && re.HTTPStatus < 500 &&
		re.HTTPStatus != http.StatusUnauthorized && re.HTTPStatus != http.StatusForbidden
}

// updateBatch sends one batch update moving recs[idx[n]] from from[n], and
// returns each record's outcome; out is set for moved and moveFailed.
func (c *Client) updateBatch(ctx context.Context, gate connectors.Gate, recs []connectors.Record, idx []int, from []string, out []error) []moveOutcome {
	res := make([]moveOutcome, len(idx))
	s, bctx, stop := c.start(ctx, gate, c.log.With(zap.Int("batch_size", len(idx)), zap.String("operation", "batch/update")))
	defer stop()

	inputs := make([]input, len(idx))
	byTrace := make(map[string]int, len(idx))
	byID := make(map[string]int, len(idx))
	for n, i := range idx {
		trace := strconv.Itoa(i)
		props := properties(recs[i].Fields)
		props[c.cfg.IDProperty] = recs[i].Key
		inputs[n] = input{IDProperty: c.cfg.IDProperty, ID: from[n], ObjectWriteTraceID: trace, Properties: props}
		byTrace[trace] = n
		byID[strings.ToLower(from[n])] = n
	}
	body, _ := json.Marshal(map[string]any{"inputs": inputs})
	status, resp, err := s.do(ctx, bctx, c.updateURL, body)
	if err != nil {
		if refusedRequest(err) {
			c.log.Warn("hubspot batch update refused, upserting its records instead", zap.Error(err))
			for n := range res {
				res[n] = upsertInst
			}
			return res
		}
		for n, i := range idx {
			out[i], res[n] = err, moveFailed
		}
		return res
	}
	var br struct {
		Errors []stdError `json:"errors"`
	}
	_ = json.Unmarshal(resp, &br)
	failed := map[int]stdError{}
	for _, e := range br.Errors {
		if n, ok := byTrace[e.ObjectWriteTraceID]; ok {
			failed[n] = e
			continue
		}
		for _, id := range e.Context["ids"] {
			if n, ok := byID[strings.ToLower(id)]; ok {
				failed[n] = e
			}
		}
	}
	if status == http.StatusMultiStatus && len(failed) == 0 && len(br.Errors) > 0 {
		// Which inputs failed is unknown; the upsert is right for all of
		// them, moved or not.
		for n := range res {
			res[n] = upsertInst
		}
		return res
	}
	for n, i := range idx {
		e, bad := failed[n]
		switch {
		case !bad:
			out[i], res[n] = nil, moved
		case e.Category == "OBJECT_NOT_FOUND", e.Category == "CONFLICT":
			res[n] = upsertInst
		case transientInput(e):
			out[i], res[n] = s.fail(retry.Exhausted, inputStatus(e, status), fmt.Errorf("hubspot: moving %s to %s: %s", from[n], recs[i].Key, e)), moveFailed
		default:
			out[i], res[n] = s.fail(retry.Permanent, inputStatus(e, status), fmt.Errorf("hubspot: moving %s to %s refused: %s", from[n], recs[i].Key, e)), moveFailed
		}
	}
	return res
}
