package marketo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/retry"
)

// lookupValues and lookupURL bound one Get Leads by Filter Type call:
// Marketo takes 300 values, and a URI over 8 KB is a 414.
const (
	lookupValues = 100
	lookupURL    = 6 << 10
)

// lookupable: a value filterValues can carry (it is comma-separated).
func lookupable(v string) bool { return !strings.Contains(v, ",") }

// move moves the leads of records that have former keys to their Key, and
// returns idx and raws without the records it settled (out holds their
// result), in order, for the normal createOrUpdate.
//
//  1. One Get Leads by Filter Type call (GET /rest/v1/leads.json?
//     filterType=<lookupField>&filterValues=…, fields id and the lookup
//     field) per 100 values finds the leads under the records' keys and
//     former keys at once.
//  2. A record whose Key already has a lead is left to createOrUpdate:
//     either an earlier attempt moved it, or the new value belongs to
//     another lead, which is then updated while the one under the former
//     key stays as it is. Marketo does not keep the lookup field unique, so
//     moving onto a taken value would make two leads match it (1007).
//  3. Otherwise the newest former key that names exactly one lead (one
//     naming several stops the search: which to move is unknown) has
//     that lead updated by id — Sync Leads with action updateOnly and
//     lookupField id, the record's fields and the new key — which Marketo
//     documents as the way to change a lead's lookup field. A lead two
//     records would move goes to the first only.
//  4. A lead skipped with 1004 (gone since the lookup) or a call refused
//     permanently as a whole (a Read-Only Lead permission missing, say)
//     sends its records to createOrUpdate: moving improves on the upsert,
//     it is never a reason to lose a record. Other per-lead refusals are
//     the record's Permanent error; transient failures that outlast the
//     policy, or ctx ending, settle the records involved with that error
//     and no upsert, which would leave the old lead behind (the dispatch
//     stage retries the record).
//
// Only records with former keys cost these calls.
func (c *Client) move(ctx context.Context, gate connectors.Gate, recs []connectors.Record, idx []int, raws []json.RawMessage, out []error) ([]int, []json.RawMessage) {
	var movers []int // positions in idx
	var values []string
	seen := map[string]bool{}
	addValue := func(v string) {
		if lv := strings.ToLower(v); !seen[lv] && lookupable(v) {
			seen[lv] = true
			values = append(values, v)
		}
	}
	for p, i := range idx {
		if fk := recs[i].Former(); slices.ContainsFunc(fk, lookupable) {
			movers = append(movers, p)
			addValue(recs[i].Key)
			for _, k := range fk {
				addValue(k)
			}
		}
	}
	if len(movers) == 0 {
		return idx, raws
	}
	settled := map[int]bool{} // positions in idx
	leads, err := c.lookup(ctx, gate, values)
	if err != nil {
		var re *retry.Error
		if errors.As(err, &re) && re.Class == retry.Permanent {
			c.log.Warn("marketo lead lookup refused, upserting without moving", zap.Error(err))
			return idx, raws
		}
		for _, p := range movers {
			out[idx[p]], settled[p] = err, true
		}
		return keep(idx, raws, settled)
	}

	var moves []int // positions in idx
	var moveRaws []json.RawMessage
	claimed := map[int64]bool{}
	for _, p := range movers {
		r := recs[idx[p]]
		if len(leads[strings.ToLower(r.Key)]) > 0 {
			continue
		}
		for _, k := range r.Former() {
			ids := leads[strings.ToLower(k)] // none for a key not looked up
			if len(ids) == 0 {
				continue
			}
			if len(ids) == 1 && !claimed[ids[0]] {
				raw, err := withID(raws[p], ids[0])
				if err == nil {
					claimed[ids[0]] = true
					moves = append(moves, p)
					moveRaws = append(moveRaws, raw)
				}
			}
			break
		}
	}
	for len(moves) > 0 {
		n := c.chunkLen(moveRaws)
		d, err := c.syncCall(ctx, gate, "updateOnly", "id", moveRaws[:n])
		var errs []error
		if err == nil {
			errs = d.records(n)
		}
		for j, p := range moves[:n] {
			switch {
			case err != nil:
				var re *retry.Error
				if errors.As(err, &re) && re.Class == retry.Permanent {
					c.log.Warn("marketo lead move refused, upserting instead", zap.Error(err))
					continue
				}
				out[idx[p]], settled[p] = err, true
			case errs[j] == nil:
				out[idx[p]], settled[p] = nil, true
			case skippedWith(d, j, "1004"):
				// The lead is gone: createOrUpdate.
			default:
				out[idx[p]], settled[p] = errs[j], true
			}
		}
		moves, moveRaws = moves[n:], moveRaws[n:]
	}
	return keep(idx, raws, settled)
}

// keep returns idx and raws without the positions in drop.
func keep(idx []int, raws []json.RawMessage, drop map[int]bool) ([]int, []json.RawMessage) {
	var ki []int
	var kr []json.RawMessage
	for p := range idx {
		if !drop[p] {
			ki, kr = append(ki, idx[p]), append(kr, raws[p])
		}
	}
	return ki, kr
}

// withID adds the lead id to an encoded lead.
func withID(raw json.RawMessage, id int64) (json.RawMessage, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	m["id"] = id
	return json.Marshal(m)
}

func skippedWith(d *call, j int, code string) bool {
	if d == nil || j >= len(d.result.Result) {
		return false
	}
	for _, r := range d.result.Result[j].Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// lookup finds the leads whose lookup field holds one of values: lower-cased
// value → lead ids. It follows nextPageToken when a value matches many.
func (c *Client) lookup(ctx context.Context, gate connectors.Gate, values []string) (map[string][]int64, error) {
	found := map[string][]int64{}
	field := c.cfg.LookupField
	for len(values) > 0 {
		n, size := 0, 0
		for n < len(values) && n < lookupValues && (n == 0 || size+len(url.QueryEscape(values[n]))+3 <= lookupURL) {
			size += len(url.QueryEscape(values[n])) + 3
			n++
		}
		q := url.Values{}
		q.Set("filterType", field)
		q.Set("filterValues", strings.Join(values[:n], ","))
		q.Set("fields", "id,"+field)
		q.Set("batchSize", strconv.Itoa(MaxBatch))
		for token := ""; ; {
			if token != "" {
				q.Set("nextPageToken", token)
			}
			d, err := c.do(ctx, gate, "GET", c.cfg.BaseURL+"/rest/v1/leads.json?"+q.Encode(), nil, 0)
			if err != nil {
				return nil, err
			}
			var page struct {
				Result        []map[string]any `json:"result"`
				NextPageToken string           `json:"nextPageToken"`
			}
			if err := json.Unmarshal(d.raw, &page); err != nil {
				return nil, &retry.Error{Class: retry.Permanent, HTTPStatus: 200, Err: fmt.Errorf("marketo: unreadable lead lookup answer: %w", err)}
			}
			for _, l := range page.Result {
				id, ok := l["id"].(float64)
				v, has := l[field]
				if !ok || !has || v == nil {
					continue
				}
				k := strings.ToLower(fmt.Sprint(v))
				found[k] = append(found[k], int64(id))
			}
			if page.NextPageToken == "" || len(page.Result) == 0 {
				break
			}
			token = page.NextPageToken
		}
		values = values[n:]
	}
	return found, nil
}
