package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/synchub/synchub/replay"
)

// Operator is the dead-letter operations the admin API serves.
type Operator interface {
	List(ctx context.Context, f replay.Filter) ([]replay.Group, error)
	Show(ctx context.Context, f replay.Filter, limit int) ([]replay.Record, error)
	Replay(ctx context.Context, f replay.Filter, opts replay.Options) (replay.Summary, error)
	Purge(ctx context.Context, connector string, olderThan time.Duration, dryRun bool) (replay.PurgeSummary, error)
	Resync(ctx context.Context, connector, customer string, opts replay.Options) (replay.Summary, error)
}

// admin serves /v1/dlq and /v1/resync.
type admin struct {
	ops   Operator
	token string
	now   func() time.Time
}

func (a *admin) routes(mux *http.ServeMux) {
	mux.Handle("GET /v1/dlq", a.authorized(a.list))
	mux.Handle("GET /v1/dlq/{connector}/records", a.authorized(a.show))
	mux.Handle("POST /v1/dlq/{connector}/replay", a.authorized(a.replay))
	mux.Handle("POST /v1/dlq/{connector}/purge", a.authorized(a.purge))
	mux.Handle("POST /v1/resync", a.authorized(a.resync))
}

// authorized lets a request through only with the admin bearer token. With
// no token configured every admin request is refused.
func (a *admin) authorized(next func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case a.token == "":
			writeError(w, http.StatusUnauthorized, "the admin API is off: set http.admin_token_env to the variable holding its token")
			return
		case !ok || subtle.ConstantTimeCompare([]byte(given), []byte(a.token)) != 1:
			w.Header().Set("WWW-Authenticate", `Bearer realm="synchub"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		if err := next(w, r); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, replay.ErrUsage) || errors.Is(err, errBadRequest) {
				status = http.StatusBadRequest
			}
			writeError(w, status, err.Error())
		}
	})
}

var errBadRequest = errors.New("bad request")

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// filter builds a filter from a request's strings.
func (a *admin) filter(connector string, q filterQuery) (replay.Filter, error) {
	f := replay.Filter{Connector: connector, Customer: q.Customer, ErrorClass: q.ErrorClass, Key: q.Key}
	var err error
	if f.Since, err = replay.ParseTime(q.Since, a.now()); err != nil {
		return f, fmt.Errorf("%w: since: %v", errBadRequest, err)
	}
	if f.Until, err = replay.ParseTime(q.Until, a.now()); err != nil {
		return f, fmt.Errorf("%w: until: %v", errBadRequest, err)
	}
	return f, nil
}

// filterQuery is a filter as query parameters or JSON strings carry it.
type filterQuery struct {
	Customer   string `json:"customer"`
	ErrorClass string `json:"error_class"`
	Since      string `json:"since"`
	Until      string `json:"until"`
	Key        string `json:"key"`
}

func queryFilter(r *http.Request) filterQuery {
	q := r.URL.Query()
	return filterQuery{Customer: q.Get("customer"), ErrorClass: q.Get("error_class"), Since: q.Get("since"), Until: q.Get("until"), Key: q.Get("key")}
}

func (a *admin) list(w http.ResponseWriter, r *http.Request) error {
	f, err := a.filter(r.URL.Query().Get("connector"), queryFilter(r))
	if err != nil {
		return err
	}
	groups, err := a.ops.List(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": nonNil(groups)})
	return nil
}

func (a *admin) show(w http.ResponseWriter, r *http.Request) error {
	f, err := a.filter(r.PathValue("connector"), queryFilter(r))
	if err != nil {
		return err
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 0 {
			return fmt.Errorf("%w: limit must be a number ≥ 0, got %q", errBadRequest, s)
		}
	}
	records, err := a.ops.Show(r.Context(), f, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": nonNil(records)})
	return nil
}

// request is the JSON body of the POST operations; each uses its part.
type request struct {
	filterQuery
	Connector  string `json:"connector"`
	OlderThan  string `json:"older_than"`
	DryRun     bool   `json:"dry_run"`
	MaxReplays int    `json:"max_replays"`
}

func decodeRequest(r *http.Request) (request, error) {
	var req request
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return req, fmt.Errorf("%w: body: %v", errBadRequest, err)
	}
	return req, nil
}

func (a *admin) replay(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeRequest(r)
	if err != nil {
		return err
	}
	f, err := a.filter(r.PathValue("connector"), req.filterQuery)
	if err != nil {
		return err
	}
	sum, err := a.ops.Replay(r.Context(), f, replay.Options{DryRun: req.DryRun, MaxReplays: req.MaxReplays})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sum)
	return nil
}

func (a *admin) purge(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeRequest(r)
	if err != nil {
		return err
	}
	if req.OlderThan == "" {
		return fmt.Errorf("%w: older_than is required, like \"7d\"", errBadRequest)
	}
	age, err := replay.ParseAge(req.OlderThan)
	if err != nil {
		return fmt.Errorf("%w: older_than: %v", errBadRequest, err)
	}
	sum, err := a.ops.Purge(r.Context(), r.PathValue("connector"), age, req.DryRun)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sum)
	return nil
}

func (a *admin) resync(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeRequest(r)
	if err != nil {
		return err
	}
	if req.Connector == "" || req.Customer == "" {
		return fmt.Errorf("%w: connector and customer are required", errBadRequest)
	}
	sum, err := a.ops.Resync(r.Context(), req.Connector, req.Customer, replay.Options{DryRun: req.DryRun})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sum)
	return nil
}

// nonNil makes an empty result encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
