package fake

import (
	_ "embed"
	"net/http"
	"sync"

	"github.com/synchub/synchub/internal/openapicheck"
)

// openapiYAML is the hand-written Salesforce subset the fake checks requests
// against (Salesforce publishes no static OpenAPI document for its REST
// API, vendor-apis.md §2.5).
//
//go:embed openapi.yaml
var openapiYAML []byte

// loadDoc parses openapiYAML once per process; every Server shares it.
var loadDoc = sync.OnceValues(func() (*openapicheck.Spec, error) {
	doc, err := openapicheck.Load(openapiYAML, openapicheck.Options{})
	if err != nil {
		return nil, err
	}
	return openapicheck.NewSpec(doc, ""), nil
})

// spec checks requests against openapiYAML served at the fake's URL.
type spec struct{ *openapicheck.Spec }

func loadSpec() (*spec, error) {
	s, err := loadDoc()
	if err != nil {
		return nil, err
	}
	return &spec{s}, nil
}

// validate checks r (whose body has been read into body) against the
// operation the document declares for its method and path.
func (s *spec) validate(r *http.Request, body []byte) error {
	return s.Check(r, body)
}
