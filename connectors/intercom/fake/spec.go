package fake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Spec checks requests against Intercom's OpenAPI description.
//
// It is a small validator of its own rather than kin-openapi's
// openapi3filter: the module's go.sum lacks kin-openapi's dependencies
// (go.yaml.in/yaml/v4, jsonpointer, jsonschema), and go.sum is not this
// package's to change. It covers what the connector can get wrong: the
// operation exists for the path and method, required and enum-bound
// header/path parameters, and the JSON body against the operation's
// schema ($ref, oneOf, anyOf, allOf, type, nullable, required, enum,
// properties, items). Whole-document validation is not attempted: the
// 2.14 document fails it on an unrelated schema (README).
type Spec struct {
	doc   map[string]any
	paths []specPath
}

type specPath struct {
	segs []string // "{x}" for a parameter
	item map[string]any
}

// LoadSpec reads the OpenAPI YAML at path.
func LoadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("spec %s: %w", path, err)
	}
	paths, _ := doc["paths"].(map[string]any)
	if len(paths) == 0 {
		return nil, fmt.Errorf("spec %s: no paths", path)
	}
	s := &Spec{doc: doc}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	// Literal segments win over parameters (/contacts/find_by_external_id/{x}
	// before /contacts/{id}/{y}): more literal segments first.
	sort.Slice(keys, func(i, j int) bool {
		return literals(keys[i]) > literals(keys[j]) || literals(keys[i]) == literals(keys[j]) && keys[i] < keys[j]
	})
	for _, k := range keys {
		item, _ := paths[k].(map[string]any)
		s.paths = append(s.paths, specPath{segs: strings.Split(strings.Trim(k, "/"), "/"), item: item})
	}
	return s, nil
}

func literals(p string) int {
	n := 0
	for _, s := range strings.Split(strings.Trim(p, "/"), "/") {
		if !strings.HasPrefix(s, "{") {
			n++
		}
	}
	return n
}

// Check validates one request; body is its (already read) body.
func (s *Spec) Check(r *http.Request, body []byte) error {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var op map[string]any
	var item map[string]any
	params := map[string]string{}
	for _, p := range s.paths {
		if len(p.segs) != len(segs) {
			continue
		}
		got := map[string]string{}
		ok := true
		for i, seg := range p.segs {
			if strings.HasPrefix(seg, "{") {
				got[strings.Trim(seg, "{}")] = segs[i]
			} else if seg != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			item, params = p.item, got
			op, _ = p.item[strings.ToLower(r.Method)].(map[string]any)
			break
		}
	}
	if item == nil {
		return fmt.Errorf("no path %s in the spec", r.URL.Path)
	}
	if op == nil {
		return fmt.Errorf("no %s %s in the spec", r.Method, r.URL.Path)
	}
	var errs []error
	plist, _ := op["parameters"].([]any)
	if ip, ok := item["parameters"].([]any); ok {
		plist = append(plist, ip...)
	}
	for _, p := range plist {
		pm, _ := s.resolve(p).(map[string]any)
		name, _ := pm["name"].(string)
		in, _ := pm["in"].(string)
		var v string
		var present bool
		switch in {
		case "header":
			v = r.Header.Get(name)
			present = v != ""
		case "path":
			v, present = params[name]
		case "query":
			present = r.URL.Query().Has(name)
			v = r.URL.Query().Get(name)
		default:
			continue
		}
		if req, _ := pm["required"].(bool); req && !present {
			errs = append(errs, fmt.Errorf("%s parameter %s is required", in, name))
			continue
		}
		if present {
			if sch, ok := pm["schema"]; ok {
				if err := s.validate(sch, v, in+" "+name); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if rb, ok := s.resolve(op["requestBody"]).(map[string]any); ok {
		content, _ := rb["content"].(map[string]any)
		media, _ := content["application/json"].(map[string]any)
		switch {
		case len(body) == 0:
			if req, _ := rb["required"].(bool); req {
				errs = append(errs, errors.New("request body is required"))
			}
		case media == nil:
			errs = append(errs, errors.New("the operation takes no JSON body"))
		case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
			errs = append(errs, fmt.Errorf("Content-Type %q, want application/json", r.Header.Get("Content-Type")))
		default:
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				errs = append(errs, fmt.Errorf("body is not JSON: %v", err))
			} else if err := s.validate(media["schema"], v, "body"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// resolve follows a local $ref.
func (s *Spec) resolve(v any) any {
	for range 16 {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return v
		}
		var cur any = s.doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cm, _ := cur.(map[string]any)
			cur = cm[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
		}
		v = cur
	}
	return v
}

func (s *Spec) validate(schema any, v any, at string) error {
	sch, ok := s.resolve(schema).(map[string]any)
	if !ok || len(sch) == 0 {
		return nil
	}
	if v == nil {
		if n, _ := sch["nullable"].(bool); n {
			return nil
		}
		if _, typed := sch["type"]; typed {
			return fmt.Errorf("%s: null is not allowed", at)
		}
	}
	if one, ok := sch["oneOf"].([]any); ok {
		n := 0
		var first error
		for _, alt := range one {
			if err := s.validate(alt, v, at); err == nil {
				n++
			} else if first == nil {
				first = err
			}
		}
		if n != 1 {
			if n == 0 {
				return first
			}
			return fmt.Errorf("%s matches %d oneOf alternatives", at, n)
		}
	}
	if anyOf, ok := sch["anyOf"].([]any); ok {
		var first error
		matched := false
		for _, alt := range anyOf {
			if err := s.validate(alt, v, at); err == nil {
				matched = true
				break
			} else if first == nil {
				first = err
			}
		}
		if !matched {
			return fmt.Errorf("%s matches no anyOf alternative: %w", at, first)
		}
	}
	if all, ok := sch["allOf"].([]any); ok {
		for _, alt := range all {
			if err := s.validate(alt, v, at); err != nil {
				return err
			}
		}
	}
	if enum, ok := sch["enum"].([]any); ok && v != nil {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
		}
	}
	typ, _ := sch["type"].(string)
	switch typ {
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: %T, want string", at, v)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			return fmt.Errorf("%s: %v, want integer", at, v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("%s: %T, want number", at, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %T, want boolean", at, v)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, want array", at, v)
		}
		for i, e := range a {
			if err := s.validate(sch["items"], e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	}
	obj, isObj := v.(map[string]any)
	if typ == "object" && !isObj {
		return fmt.Errorf("%s: %T, want object", at, v)
	}
	if isObj {
		if req, ok := sch["required"].([]any); ok {
			for _, k := range req {
				if _, ok := obj[fmt.Sprint(k)]; !ok {
					return fmt.Errorf("%s: %v is required", at, k)
				}
			}
		}
		props, _ := sch["properties"].(map[string]any)
		for k, pv := range obj {
			if ps, ok := props[k]; ok {
				if err := s.validate(ps, pv, at+"."+k); err != nil {
					return err
				}
			} else if ap, ok := sch["additionalProperties"].(bool); ok && !ap {
				return fmt.Errorf("%s: unknown property %s", at, k)
			}
		}
	}
	return nil
}
