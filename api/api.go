// Package api serves the hub's HTTP endpoints: health, readiness,
// Prometheus metrics, and the admin API (dead-letter operations and resync)
// behind a bearer token.
package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadinessFunc returns nil when the hub can do its work.
type ReadinessFunc func() error

// Deps is what the HTTP handler serves.
type Deps struct {
	Ready    ReadinessFunc
	Registry *prometheus.Registry
	// Admin runs the admin API's operations; nil leaves the API out.
	Admin Operator
	// AdminToken is the bearer token the admin API requires; empty refuses
	// every admin request.
	AdminToken string
	// Now is the clock for relative times like since=24h; default time.Now.
	Now func() time.Time
}

// NewHandler returns the HTTP handler of the hub.
func NewHandler(d Deps) http.Handler {
	ready, reg := d.Ready, d.Registry
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if d.Admin != nil {
		if d.Now == nil {
			d.Now = time.Now
		}
		(&admin{ops: d.Admin, token: d.AdminToken, now: d.Now}).routes(mux)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
