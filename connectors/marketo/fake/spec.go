package fake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// spec is the part of Marketo's Swagger 2.0 files the fake checks
// requests against: operations, their query and body parameters, and
// the body schemas.
//
// It is a small validator of its own rather than kin-openapi's
// openapi2conv + openapi3filter: the module's go.sum lacks kin-openapi's
// dependencies (jsonpointer, jsonschema, yaml v4), and this package may
// not change go.mod or go.sum. It checks what the connector can get
// wrong: the path and method, required and enumerated query parameters,
// and the body's types, required properties and enums. Extra properties
// are allowed, as Swagger 2.0 does by default, which is what lets lead
// fields through the Lead schema (README: it lists only response fields).
type spec struct {
	paths       []specPath
	definitions map[string]*schema
}

type specPath struct {
	segments []string // "{x}" matches any one segment
	ops      map[string]*operation
}

type operation struct {
	OperationID string      `json:"operationId"`
	Parameters  []parameter `json:"parameters"`
}

type parameter struct {
	Name     string  `json:"name"`
	In       string  `json:"in"`
	Required bool    `json:"required"`
	Type     any     `json:"type"`
	Enum     []any   `json:"enum"`
	Schema   *schema `json:"schema"`
}

type schema struct {
	Ref        string             `json:"$ref"`
	Type       any                `json:"type"`
	Required   []string           `json:"required"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
	Enum       []any              `json:"enum"`
}

type swaggerFile struct {
	Swagger     string                           `json:"swagger"`
	Paths       map[string]map[string]*operation `json:"paths"`
	Definitions map[string]*schema               `json:"definitions"`
}

func loadSpec(dir string) (*spec, error) {
	if dir == "" {
		return nil, fmt.Errorf("shared/specs/marketo not found above the working directory; use WithSpecDir")
	}
	s := &spec{definitions: map[string]*schema{}}
	for _, name := range []string{"swagger-mapi.json", "swagger-identity.json"} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		var f swaggerFile
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if f.Swagger != "2.0" {
			return nil, fmt.Errorf("%s: not a Swagger 2.0 file", name)
		}
		for p, ops := range f.Paths {
			sp := specPath{segments: strings.Split(strings.Trim(p, "/"), "/"), ops: map[string]*operation{}}
			for method, op := range ops {
				sp.ops[strings.ToUpper(method)] = op
			}
			s.paths = append(s.paths, sp)
		}
		for n, d := range f.Definitions {
			s.definitions[n] = d
		}
	}
	// Literal segments beat templates ("/rest/v1/leads/describe.json"
	// before "/rest/v1/leads/{id}.json").
	slices.SortFunc(s.paths, func(a, b specPath) int { return templated(a) - templated(b) })
	return s, nil
}

func templated(p specPath) int {
	n := 0
	for _, s := range p.segments {
		if strings.Contains(s, "{") {
			n++
		}
	}
	return n
}

func (p specPath) match(path string) bool {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) != len(p.segments) {
		return false
	}
	for i, t := range p.segments {
		if open := strings.IndexByte(t, '{'); open >= 0 {
			close := strings.IndexByte(t, '}')
			prefix, suffix := t[:open], t[close+1:]
			if !strings.HasPrefix(segs[i], prefix) || !strings.HasSuffix(segs[i], suffix) || len(segs[i]) <= len(prefix)+len(suffix) {
				return false
			}
			continue
		}
		if t != segs[i] {
			return false
		}
	}
	return true
}

// check returns r's deviations from the spec; found is false when the
// spec has no such operation.
func (s *spec) check(r *http.Request, body []byte) (problems []string, found bool) {
	var op *operation
	for _, p := range s.paths {
		if p.match(r.URL.Path) {
			op = p.ops[r.Method]
			break
		}
	}
	if op == nil {
		return nil, false
	}
	q := r.URL.Query()
	for _, prm := range op.Parameters {
		switch prm.In {
		case "query":
			v, ok := q[prm.Name]
			if !ok {
				if prm.Required {
					problems = append(problems, fmt.Sprintf("query parameter %s is required", prm.Name))
				}
				continue
			}
			if len(prm.Enum) > 0 && !slices.ContainsFunc(prm.Enum, func(e any) bool { return fmt.Sprint(e) == v[0] }) {
				problems = append(problems, fmt.Sprintf("query parameter %s=%q is not one of %v", prm.Name, v[0], prm.Enum))
			}
		case "body":
			if len(body) == 0 {
				if prm.Required {
					problems = append(problems, "request body is required")
				}
				continue
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				problems = append(problems, fmt.Sprintf("Content-Type %q is not application/json", ct))
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				problems = append(problems, "body is not JSON: "+err.Error())
				continue
			}
			problems = append(problems, s.validate(v, prm.Schema, "body", 0)...)
		}
	}
	return problems, true
}

func (s *spec) validate(v any, sc *schema, at string, depth int) []string {
	if sc == nil || depth > 32 {
		return nil
	}
	if sc.Ref != "" {
		d, ok := s.definitions[strings.TrimPrefix(sc.Ref, "#/definitions/")]
		if !ok {
			return []string{fmt.Sprintf("%s: unresolved %s", at, sc.Ref)}
		}
		return s.validate(v, d, at, depth+1)
	}
	if v == nil {
		return nil // Swagger 2.0 has no nullable; Marketo accepts null to blank a field
	}
	var problems []string
	typ, _ := sc.Type.(string)
	okType := true
	switch typ {
	case "object":
		m, ok := v.(map[string]any)
		okType = ok
		if ok {
			for _, req := range sc.Required {
				if _, has := m[req]; !has {
					problems = append(problems, fmt.Sprintf("%s.%s is required", at, req))
				}
			}
			for k, pv := range m {
				problems = append(problems, s.validate(pv, sc.Properties[k], at+"."+k, depth+1)...)
			}
		}
	case "array":
		a, ok := v.([]any)
		okType = ok
		for i, item := range a {
			problems = append(problems, s.validate(item, sc.Items, fmt.Sprintf("%s[%d]", at, i), depth+1)...)
		}
	case "string":
		_, okType = v.(string)
	case "boolean":
		_, okType = v.(bool)
	case "integer":
		f, ok := v.(float64)
		okType = ok && f == float64(int64(f))
	case "number":
		_, okType = v.(float64)
	}
	if !okType {
		return append(problems, fmt.Sprintf("%s is not of type %s", at, typ))
	}
	if len(sc.Enum) > 0 && !slices.ContainsFunc(sc.Enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		problems = append(problems, fmt.Sprintf("%s=%v is not one of %v", at, v, sc.Enum))
	}
	return problems
}
