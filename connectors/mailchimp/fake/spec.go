package fake

import (
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/synchub/synchub/internal/openapicheck"
)

// Spec checks requests against Mailchimp's OpenAPI description. The file
// is 3 MB, so it is read on first use, once per process for each path, and
// one Spec can serve many fakes.
type Spec struct {
	path string
}

// LoadSpec returns a Spec reading path on first use.
func LoadSpec(path string) *Spec { return &Spec{path: path} }

// loadDoc parses each file once per process, however many Specs and fakes
// use it.
var loadDoc = openapicheck.OncePerKey(func(path string) (*openapicheck.Spec, error) {
	doc, err := openapicheck.LoadFile(path, openapicheck.Options{Relax: relax})
	if err != nil {
		return nil, err
	}
	// The servers entry is https://server.api.mailchimp.com/3.0; the
	// fake's URL keeps the /3.0 (README).
	return openapicheck.NewSpec(doc, "/3.0"), nil
})

// relax patches the description's known error (shared/specs/mailchimp/
// README.md, "Known quirk"; vendor-apis.md §4.5): merge_fields values are
// typed object, so a normal {"FNAME":"Ann"} is rejected, yet Mailchimp
// takes strings and numbers there (and an object for an address). Every
// schema with such a merge_fields property gets values of any type.
func relax(doc *openapi3.T) error {
	for _, sc := range doc.Components.Schemas {
		if sc.Value == nil {
			continue
		}
		mf := sc.Value.Properties["merge_fields"]
		if mf == nil || mf.Value == nil {
			continue
		}
		if ap := mf.Value.AdditionalProperties.Schema; ap != nil && ap.Value != nil && ap.Value.Type.Is(openapi3.TypeObject) {
			mf.Value.AdditionalProperties.Schema = openapi3.NewSchemaRef("", &openapi3.Schema{Description: ap.Value.Description})
		}
	}
	return nil
}

// Check reports how r (with its body already read) departs from the spec:
// nil if it conforms. Paths the spec does not know are an error.
func (s *Spec) Check(r *http.Request, body []byte) error {
	spec, err := loadDoc(s.path)
	if err != nil {
		return fmt.Errorf("fake: mailchimp spec: %w", err)
	}
	return spec.Check(r, body)
}
