package fake

import (
	"bytes"
	"io"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/synchub/synchub/internal/openapicheck"
)

// loadDoc parses a spec once per process, however many fakes start.
var loadDoc = openapicheck.OncePerKey(func(spec string) (*openapi3.T, error) {
	return openapicheck.Load([]byte(spec), openapicheck.Options{})
})

// newValidator loads spec with its servers replaced by serverURL, and
// returns a check of a request (its body left readable) against it.
// Security is not checked here: the fake authorizes itself so it can
// answer with HubSpot's own 401s.
func newValidator(spec []byte, serverURL string) (func(*http.Request) error, error) {
	doc, err := loadDoc(string(spec))
	if err != nil {
		return nil, err
	}
	c, err := openapicheck.NewChecker(doc, serverURL)
	if err != nil {
		return nil, err
	}
	return func(r *http.Request) error {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		return c.Check(r, body)
	}, nil
}
