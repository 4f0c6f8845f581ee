package fake

import (
	"context"
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// newValidator loads spec with its servers replaced by serverURL, and
// returns a check of a request against it. Security is not checked here:
// the fake authorizes itself so it can answer with HubSpot's own 401s.
func newValidator(spec []byte, serverURL string) (func(*http.Request) error, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	doc.Servers = openapi3.Servers{{URL: serverURL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return func(r *http.Request) error {
		route, params, err := router.FindRoute(r)
		if err != nil {
			return fmt.Errorf("no such operation: %w", err)
		}
		return openapi3filter.ValidateRequest(r.Context(), &openapi3filter.RequestValidationInput{
			Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		})
	}, nil
}
