package fake

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Spec checks requests against Mailchimp's OpenAPI description. The file
// is 3 MB, so it is read on first use and one Spec can serve many fakes.
//
// kin-openapi would be the natural checker, but its dependencies are not in
// the module's go.sum; this covers what the connector sends: routing by
// path template, path and query parameters, basic auth, the JSON content
// type and the body against its schema (type, required, enum, properties,
// additionalProperties, items, allOf/anyOf/oneOf, nullable).
type Spec struct {
	path string
	once sync.Once
	err  error
	base string // the servers entry's path, "/3.0"
	ops  []operation
	doc  map[string]any
}

type operation struct {
	method   string
	segments []string // "{name}" for parameters
	literals int
	op       map[string]any
	params   []any // path-level parameters
}

// LoadSpec returns a Spec reading path on first use.
func LoadSpec(path string) *Spec { return &Spec{path: path} }

func (s *Spec) load() error {
	s.once.Do(func() {
		raw, err := os.ReadFile(s.path)
		if err != nil {
			s.err = fmt.Errorf("fake: mailchimp spec: %w", err)
			return
		}
		if err := json.Unmarshal(raw, &s.doc); err != nil {
			s.err = fmt.Errorf("fake: mailchimp spec: %w", err)
			return
		}
		s.base = "/3.0"
		if servers, _ := s.doc["servers"].([]any); len(servers) > 0 {
			if srv, _ := servers[0].(map[string]any); srv != nil {
				if u, err := url.Parse(fmt.Sprint(srv["url"])); err == nil {
					s.base = strings.TrimRight(u.Path, "/")
				}
			}
		}
		relax(s.doc)
		paths, _ := s.doc["paths"].(map[string]any)
		for tmpl, item := range paths {
			pi, _ := item.(map[string]any)
			pathParams, _ := pi["parameters"].([]any)
			segs := strings.Split(strings.Trim(tmpl, "/"), "/")
			lit := 0
			for _, sg := range segs {
				if !strings.HasPrefix(sg, "{") {
					lit++
				}
			}
			for m, op := range pi {
				o, ok := op.(map[string]any)
				if !ok || m == "parameters" {
					continue
				}
				s.ops = append(s.ops, operation{method: strings.ToUpper(m), segments: segs, literals: lit, op: o, params: pathParams})
			}
		}
		// Literal segments win over parameters: /lists/{id}/members before
		// /lists/{id}/{anything}.
		slices.SortFunc(s.ops, func(a, b operation) int { return b.literals - a.literals })
	})
	return s.err
}

// relax patches the spec's known errors (README in the spec folder):
// merge_fields values are typed object, yet Mailchimp takes strings and
// numbers there.
func relax(doc map[string]any) {
	comps, _ := doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	for _, sc := range schemas {
		m, _ := sc.(map[string]any)
		props, _ := m["properties"].(map[string]any)
		if mf, ok := props["merge_fields"].(map[string]any); ok {
			if _, ok := mf["additionalProperties"]; ok {
				mf["additionalProperties"] = map[string]any{}
			}
		}
	}
}

// Check reports how r (with its body already read) departs from the spec:
// nil if it conforms. Paths the spec does not know are an error.
func (s *Spec) Check(r *http.Request, body []byte) error {
	if err := s.load(); err != nil {
		return err
	}
	p, ok := strings.CutPrefix(r.URL.Path, s.base+"/")
	if !ok {
		return fmt.Errorf("path %s is outside %s", r.URL.Path, s.base)
	}
	segs := strings.Split(strings.Trim(p, "/"), "/")
	var op *operation
	pathVals := map[string]string{}
	for i := range s.ops {
		o := &s.ops[i]
		if o.method != r.Method || len(o.segments) != len(segs) {
			continue
		}
		vals, ok := match(o.segments, segs)
		if ok {
			op, pathVals = o, vals
			break
		}
	}
	if op == nil {
		return fmt.Errorf("%s %s is not in the spec", r.Method, r.URL.Path)
	}
	var errs []error
	if err := s.checkAuth(r); err != nil {
		errs = append(errs, err)
	}
	params := append(slices.Clone(op.params), asSlice(op.op["parameters"])...)
	for _, pa := range params {
		pm := s.resolve(pa)
		name, _ := pm["name"].(string)
		required, _ := pm["required"].(bool)
		schema := s.resolve(pm["schema"])
		switch pm["in"] {
		case "path":
			if pathVals[name] == "" {
				errs = append(errs, fmt.Errorf("path parameter %s is empty", name))
			}
		case "query":
			vs, present := r.URL.Query()[name]
			if !present {
				if required {
					errs = append(errs, fmt.Errorf("query parameter %s is required", name))
				}
				continue
			}
			for _, v := range vs {
				if err := s.checkScalar(schema, v); err != nil {
					errs = append(errs, fmt.Errorf("query parameter %s: %w", name, err))
				}
			}
		case "header":
			if required && r.Header.Get(name) == "" {
				errs = append(errs, fmt.Errorf("header %s is required", name))
			}
		}
	}
	if rb := s.resolve(op.op["requestBody"]); rb != nil {
		errs = append(errs, s.checkBody(rb, r.Header.Get("Content-Type"), body)...)
	}
	return errors.Join(errs...)
}

func match(tmpl, segs []string) (map[string]string, bool) {
	vals := map[string]string{}
	for i, t := range tmpl {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			v, err := url.PathUnescape(segs[i])
			if err != nil {
				return nil, false
			}
			vals[t[1:len(t)-1]] = v
			continue
		}
		if t != segs[i] {
			return nil, false
		}
	}
	return vals, true
}

// checkAuth applies the spec's global basicAuth requirement; the fake
// itself checks the key. Mailchimp also takes a bearer key.
func (s *Spec) checkAuth(r *http.Request) error {
	if _, ok := s.doc["security"]; !ok {
		return nil
	}
	if _, _, ok := r.BasicAuth(); ok {
		return nil
	}
	if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		return nil
	}
	return errors.New("no basic (or bearer) authorization")
}

func (s *Spec) checkBody(rb map[string]any, contentType string, body []byte) []error {
	required, _ := rb["required"].(bool)
	if len(body) == 0 {
		if required {
			return []error{errors.New("request body is required")}
		}
		return nil
	}
	content, _ := rb["content"].(map[string]any)
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return []error{fmt.Errorf("content type %q does not parse", contentType)}
	}
	media, ok := content[mt].(map[string]any)
	if !ok {
		return []error{fmt.Errorf("content type %s is not one the operation takes", mt)}
	}
	if !strings.HasSuffix(mt, "json") {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return []error{fmt.Errorf("body is not JSON: %v", err)}
	}
	return s.checkValue("body", media["schema"], v)
}

// resolve follows local $refs.
func (s *Spec) resolve(v any) map[string]any {
	m, _ := v.(map[string]any)
	for range 32 {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur any = s.doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			cm, _ := cur.(map[string]any)
			cur = cm[part]
		}
		m, _ = cur.(map[string]any)
	}
	return m
}

func (s *Spec) checkScalar(schema map[string]any, v string) error {
	switch schema["type"] {
	case "boolean":
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("%q is not a boolean", v)
		}
	case "integer":
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
	case "number":
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
	}
	return nil
}

func (s *Spec) checkValue(at string, schemaV any, v any) []error {
	schema := s.resolve(schemaV)
	if len(schema) == 0 {
		return nil
	}
	if v == nil {
		if n, _ := schema["nullable"].(bool); n {
			return nil
		}
		if _, typed := schema["type"]; typed {
			return []error{fmt.Errorf("%s is null", at)}
		}
	}
	var errs []error
	for _, sub := range asSlice(schema["allOf"]) {
		errs = append(errs, s.checkValue(at, sub, v)...)
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		alts := asSlice(schema[key])
		if len(alts) > 0 && !slices.ContainsFunc(alts, func(alt any) bool { return len(s.checkValue(at, alt, v)) == 0 }) {
			errs = append(errs, fmt.Errorf("%s matches no schema of %s", at, key))
		}
	}
	if enum := asSlice(schema["enum"]); len(enum) > 0 && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		errs = append(errs, fmt.Errorf("%s: %v is not one of %v", at, v, enum))
	}
	t, _ := schema["type"].(string)
	switch t {
	case "string":
		if _, ok := v.(string); !ok {
			return append(errs, fmt.Errorf("%s: want a string, got %T", at, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return append(errs, fmt.Errorf("%s: want a boolean, got %T", at, v))
		}
	case "integer", "number":
		f, ok := v.(float64)
		if !ok {
			return append(errs, fmt.Errorf("%s: want a %s, got %T", at, t, v))
		}
		if t == "integer" && f != float64(int64(f)) {
			errs = append(errs, fmt.Errorf("%s: %v is not an integer", at, f))
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return append(errs, fmt.Errorf("%s: want an array, got %T", at, v))
		}
		for i, item := range arr {
			errs = append(errs, s.checkValue(fmt.Sprintf("%s[%d]", at, i), schema["items"], item)...)
		}
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return append(errs, fmt.Errorf("%s: want an object, got %T", at, v))
		}
		for _, req := range asSlice(schema["required"]) {
			if _, ok := obj[fmt.Sprint(req)]; !ok {
				errs = append(errs, fmt.Errorf("%s.%v is required", at, req))
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for k, val := range obj {
			if ps, ok := props[k]; ok {
				errs = append(errs, s.checkValue(at+"."+k, ps, val)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, fmt.Errorf("%s.%s is not a known property", at, k))
				}
			case map[string]any:
				errs = append(errs, s.checkValue(at+"."+k, ap, val)...)
			}
		}
	}
	return errs
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
