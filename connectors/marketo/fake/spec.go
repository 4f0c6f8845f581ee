package fake

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/synchub/synchub/internal/openapicheck"
)

// spec checks requests against Marketo's Swagger 2.0 files
// (swagger-mapi.json, the Lead Database, and swagger-identity.json),
// merged and converted to OpenAPI 3, at the fake's URL. Extra properties
// are allowed, as the files do not forbid them, which is what lets lead
// fields through the Lead schema (README: it lists only response fields).
type spec struct{ *openapicheck.Spec }

// loadDoc loads the files in a folder once per process: tests start many
// fakes.
var loadDoc = openapicheck.OncePerKey(func(dir string) (*openapicheck.Spec, error) {
	doc, err := openapicheck.LoadSwagger2Files(openapicheck.Options{Relax: relax},
		filepath.Join(dir, "swagger-mapi.json"), filepath.Join(dir, "swagger-identity.json"))
	if err != nil {
		return nil, err
	}
	// The files' host is localhost:8080 and their basePath "/": the
	// real API sits at the root of https://<munchkin-id>.mktorest.com.
	return openapicheck.NewSpec(doc, ""), nil
})

func loadSpec(dir string) (*spec, error) {
	if dir == "" {
		return nil, fmt.Errorf("shared/specs/marketo not found above the working directory; use WithSpecDir")
	}
	s, err := loadDoc(filepath.Clean(dir))
	if err != nil {
		return nil, err
	}
	return &spec{s}, nil
}

// relax patches the known error of the files that touches requests
// (shared/specs/marketo/README.md, "Known quirks"; vendor-apis.md §3.5):
// CustomActivity, the item of the Add Custom Activities request
// (POST /rest/v1/activities/external.json), requires the response-only
// fields id and errors, types attributes[].value as object and requires
// attributes[].name although the API also takes apiName, so the
// documented request is rejected. Attribute itself is left alone: the
// Activity and LeadChange responses use it too.
func relax(doc *openapi3.T) error {
	ref := doc.Components.Schemas["CustomActivity"]
	if ref == nil || ref.Value == nil {
		return errors.New("no CustomActivity schema")
	}
	ca := ref.Value
	ca.Required = slices.DeleteFunc(ca.Required, func(f string) bool { return f == "id" || f == "errors" })
	attrs := ca.Properties["attributes"]
	if attrs == nil || attrs.Value == nil || attrs.Value.Items == nil || attrs.Value.Items.Value == nil {
		return errors.New("no CustomActivity.attributes[] schema")
	}
	attr := *attrs.Value.Items.Value // a copy of Attribute, for CustomActivity only
	attr.Required = slices.DeleteFunc(slices.Clone(attr.Required), func(f string) bool { return f == "name" })
	attr.Properties = maps.Clone(attr.Properties)
	attr.Properties["value"] = openapi3.NewSchemaRef("", &openapi3.Schema{Description: "Value of the attribute: any JSON value"})
	attrs.Value.Items = openapi3.NewSchemaRef("", &attr)
	return nil
}

// check returns r's deviations from the spec; found is false when the
// spec has no such operation.
func (s *spec) check(r *http.Request, body []byte) (problems []string, found bool) {
	err := s.Check(r, body)
	var e *openapicheck.Error
	switch {
	case err == nil:
		return nil, true
	case errors.Is(err, openapicheck.ErrUnknownOperation):
		return nil, false
	case errors.As(err, &e):
		return e.Problems, true
	}
	return []string{err.Error()}, true
}
