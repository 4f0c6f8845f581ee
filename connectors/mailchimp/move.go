package mailchimp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/retry"
)

// formerHashes are the subscriber hashes of r's former keys worth trying
// (connectors.Record.Former): email addresses whose hash is not hash (a
// case-only change is the same member), each once, newest first.
func formerHashes(r connectors.Record, hash string) []string {
	seen := map[string]bool{hash: true}
	var out []string
	for _, k := range r.Former() {
		k = strings.TrimSpace(k)
		if !strings.Contains(k, "@") {
			continue
		}
		h := SubscriberHash(k)
		if seen[h] {
			continue
		}
		seen[h] = true
		out = append(out, h)
	}
	return out
}

// move changes the address of the member held under a former address to
// the record's, PATCH /lists/{list_id}/members/{former hash} with the new
// email_address and the record's other fields, trying the former
// addresses newest first. It reports done when a PATCH stored the record,
// which then needs no PUT.
//
//   - 404 (no member under that address): the next former address, then
//     the normal PUT.
//   - Any other answer not worth retrying, "Member Exists" among them (the
//     new address already belongs to another member: the PUT then updates
//     that member and the one under the former address stays as it is):
//     the normal PUT, which reports its own failure if it has one.
//   - Transient failures are retried per the policy as the PUT's are; when
//     they outlast it, or ctx or the gate interrupt, that error is the
//     record's and no PUT is made: a PUT without the move would leave the
//     old member behind, while the dispatch stage retries the record.
//
// Only records with former addresses pay these requests, one per address
// tried; Mailchimp has no synchronous batch for them.
func (c *Client) move(ctx context.Context, gate connectors.Gate, hash string, putBody []byte, formers []string) (bool, error) {
	var m map[string]any
	if err := json.Unmarshal(putBody, &m); err != nil {
		return false, nil
	}
	delete(m, "status_if_new") // PUT only: PATCH updates an existing member
	body, err := json.Marshal(m)
	if err != nil {
		return false, nil
	}
	for _, former := range formers {
		err := c.request(ctx, gate, http.MethodPatch, former, hash, body)
		if err == nil {
			return true, nil
		}
		var re *retry.Error
		if !errors.As(err, &re) || re.Class != retry.Permanent {
			return false, err
		}
		if re.HTTPStatus == http.StatusNotFound {
			continue
		}
		c.log.Debug("mailchimp member move refused, upserting instead", zap.String("subscriber_hash", hash),
			zap.String("former_hash", former), zap.Error(err))
		return false, nil
	}
	return false, nil
}
