// Package openapicheck checks HTTP requests against an OpenAPI description
// with kin-openapi. The vendor fakes under connectors/*/fake use it to
// refuse requests their vendor's published (or, for HubSpot and
// Salesforce, hand-written) description does not allow.
//
// A document is loaded once (Load, LoadFile, LoadSwagger2Files), with the
// vendor spec's known errors patched in memory by Options.Relax, and can
// then be shared: a Checker is built per server URL (the fake's own, path
// prefix included) and never changes the document. Security requirements
// are not checked: each fake authorizes requests itself so that it can
// answer with its vendor's own 401s.
package openapicheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Options say how to prepare a loaded document.
type Options struct {
	// Relax edits the document after loading and before validation: the
	// place to patch a vendor description's known errors. Each edit should
	// cite where the error is documented.
	Relax func(*openapi3.T) error
	// SkipValidate leaves out doc.Validate, for a document that fails it
	// on parts the fake never checks requests against.
	SkipValidate bool
}

// Load parses an OpenAPI 3 document, JSON or YAML, and prepares it.
func Load(data []byte, o Options) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, err
	}
	return prepare(doc, o)
}

// LoadFile reads and loads the OpenAPI 3 document at path.
func LoadFile(path string, o Options) (*openapi3.T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc, err := Load(data, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

// LoadSwagger2 merges Swagger 2.0 documents (JSON) into one, converts it
// to OpenAPI 3 and prepares it. The documents must not define the same
// path or component twice.
func LoadSwagger2(o Options, data ...[]byte) (*openapi3.T, error) {
	var merged *openapi2.T
	for i, d := range data {
		var doc openapi2.T
		if err := json.Unmarshal(d, &doc); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if doc.Swagger != "2.0" {
			return nil, fmt.Errorf("document %d: swagger %q, want 2.0", i+1, doc.Swagger)
		}
		if merged == nil {
			merged = &doc
			continue
		}
		if err := mergeSwagger2(merged, &doc); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
	}
	if merged == nil {
		return nil, errors.New("no Swagger 2.0 document")
	}
	doc, err := openapi2conv.ToV3(merged)
	if err != nil {
		return nil, err
	}
	return prepare(doc, o)
}

// LoadSwagger2Files reads the Swagger 2.0 files at paths and loads them
// as LoadSwagger2 does.
func LoadSwagger2Files(o Options, paths ...string) (*openapi3.T, error) {
	data := make([][]byte, len(paths))
	for i, p := range paths {
		d, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		data[i] = d
	}
	doc, err := LoadSwagger2(o, data...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(paths, ", "), err)
	}
	return doc, nil
}

func mergeSwagger2(dst, src *openapi2.T) error {
	if err := mergeInto(&dst.Paths, src.Paths, "path"); err != nil {
		return err
	}
	if err := mergeInto(&dst.Definitions, src.Definitions, "definition"); err != nil {
		return err
	}
	if err := mergeInto(&dst.Parameters, src.Parameters, "parameter"); err != nil {
		return err
	}
	if err := mergeInto(&dst.Responses, src.Responses, "response"); err != nil {
		return err
	}
	return mergeInto(&dst.SecurityDefinitions, src.SecurityDefinitions, "security definition")
}

func mergeInto[M ~map[string]V, V any](dst *M, src M, what string) error {
	if len(src) > 0 && *dst == nil {
		*dst = make(M, len(src))
	}
	for k, v := range src {
		if _, dup := (*dst)[k]; dup {
			return fmt.Errorf("%s %s is defined twice", what, k)
		}
		(*dst)[k] = v
	}
	return nil
}

func prepare(doc *openapi3.T, o Options) (*openapi3.T, error) {
	if o.Relax != nil {
		if err := o.Relax(doc); err != nil {
			return nil, fmt.Errorf("relax: %w", err)
		}
	}
	if !o.SkipValidate {
		if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
			return nil, fmt.Errorf("invalid document: %w", err)
		}
	}
	return doc, nil
}

// OncePerKey wraps load so that it runs at most once per key for the life
// of the process: later calls with the same key share the first call's
// result, error included. Fakes use it so that the many fakes a test run
// starts parse a large description once.
func OncePerKey[K comparable, V any](load func(K) (V, error)) func(K) (V, error) {
	var m sync.Map // K → func() (V, error)
	return func(k K) (V, error) {
		f, ok := m.Load(k)
		if !ok {
			f, _ = m.LoadOrStore(k, sync.OnceValues(func() (V, error) { return load(k) }))
		}
		return f.(func() (V, error))()
	}
}

// ErrUnknownOperation is the error (under errors.Is) for a request whose
// method and path the document does not describe.
var ErrUnknownOperation = errors.New("no such operation in the spec")

// Error is a request's departure from the document, one problem per entry
// ("body.status_if_new is required", "query parameter grant_type: ...").
type Error struct {
	Problems []string
}

func (e *Error) Error() string { return strings.Join(e.Problems, "; ") }

// Checker checks requests against a document served at one URL.
type Checker struct {
	router routers.Router
}

// NewChecker returns a Checker for doc with its servers replaced by
// serverURL, the fake's URL with any path prefix the real API has
// (Mailchimp's "/3.0"). doc itself is not changed, so one loaded document
// can serve many fakes.
func NewChecker(doc *openapi3.T, serverURL string) (*Checker, error) {
	d := *doc // shallow: the copy shares paths and components, read-only
	d.Servers = openapi3.Servers{{URL: strings.TrimRight(serverURL, "/")}}
	router, err := gorillamux.NewRouter(&d)
	if err != nil {
		return nil, err
	}
	return &Checker{router: router}, nil
}

// Check validates r, whose body has already been read into body; r is not
// changed. It returns nil, an error wrapping ErrUnknownOperation, or an
// *Error listing every problem found.
func (c *Checker) Check(r *http.Request, body []byte) error {
	req := r.WithContext(r.Context()) // a shallow copy to give a fresh body
	req.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s (%v)", ErrUnknownOperation, r.Method, r.URL.Path, err)
	}
	err = openapi3filter.ValidateRequest(r.Context(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
			MultiError:          true,
			SkipSettingDefaults: true,
		},
	})
	if err != nil {
		return &Error{Problems: describe("", err)}
	}
	return nil
}

// describe turns kin-openapi's errors into short lines naming where the
// problem is: "body.merge_fields.FNAME: value must be a string".
func describe(at string, err error) []string {
	switch e := err.(type) {
	case openapi3.MultiError:
		var out []string
		for _, x := range e {
			out = append(out, describe(at, x)...)
		}
		return out
	case *openapi3filter.RequestError:
		switch {
		case e.Parameter != nil:
			at = e.Parameter.In + " parameter " + e.Parameter.Name
		case e.RequestBody != nil:
			at = "body"
		}
		switch inner := e.Err.(type) {
		case nil:
			return []string{join(at, e.Reason)}
		case *openapi3.SchemaError, openapi3.MultiError:
			return describe(at, inner)
		}
		reason := e.Err.Error()
		if e.Reason != "" && e.Reason != reason {
			reason = e.Reason + ": " + reason
		}
		return []string{join(at, reason)}
	case *openapi3.SchemaError:
		for _, k := range e.JSONPointer() {
			at += "." + k
		}
		at = strings.TrimPrefix(at, ".")
		if e.SchemaField == "required" {
			return []string{at + " is required"}
		}
		var inner []string
		switch {
		case e.Origin != nil:
			inner = describe(at, e.Origin)
			if e.Reason == "" {
				return inner
			}
		case e.SchemaField == "anyOf" && e.Schema != nil:
			// kin-openapi does not say why the alternatives failed.
			for _, alt := range e.Schema.AnyOf {
				if alt.Value == nil {
					continue
				}
				if err := alt.Value.VisitJSON(e.Value, openapi3.MultiErrors()); err != nil {
					inner = append(inner, describe(at, err)...)
				}
			}
		}
		if len(inner) == 0 {
			return []string{join(at, e.Reason)}
		}
		// oneOf, anyOf, allOf: the reason, then what the alternatives lack.
		slices.Sort(inner)
		return []string{join(at, e.Reason+" ("+strings.Join(slices.Compact(inner), "; ")+")")}
	case interface{ Unwrap() []error }:
		var out []string
		for _, x := range e.Unwrap() {
			out = append(out, describe(at, x)...)
		}
		return out
	case interface{ Unwrap() error }:
		// Such as "doesn't match schema due to: <errors>" around the
		// errors of a oneOf's alternatives.
		var se *openapi3.SchemaError
		if inner := e.Unwrap(); inner != nil && errors.As(inner, &se) {
			return describe(at, inner)
		}
	}
	return []string{join(at, err.Error())}
}

func join(at, msg string) string {
	if at == "" {
		return msg
	}
	return at + ": " + msg
}

// Spec is a loaded document that many fakes share. Each request is checked
// against the document with its servers replaced by the fake's URL, the
// one the request was sent to plus the API's base path, with one Checker
// built per such URL.
type Spec struct {
	checker func(serverURL string) (*Checker, error)
	base    string
}

// NewSpec shares doc; base is the path prefix of the API's root ("/3.0"
// for Mailchimp, "" when the API sits at the host's root).
func NewSpec(doc *openapi3.T, base string) *Spec {
	return &Spec{
		checker: OncePerKey(func(u string) (*Checker, error) { return NewChecker(doc, u) }),
		base:    strings.TrimRight(base, "/"),
	}
}

// Check validates r, whose body has already been read into body, as
// Checker.Check does.
func (s *Spec) Check(r *http.Request, body []byte) error {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c, err := s.checker(scheme + "://" + r.Host + s.base)
	if err != nil {
		return err
	}
	return c.Check(r, body)
}
