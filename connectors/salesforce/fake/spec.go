package fake

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// openapiYAML is the hand-written Salesforce subset the fake checks requests
// against. kin-openapi would be the natural validator, but its own
// dependencies (go.yaml.in/yaml/v4, go-openapi/jsonpointer, gorilla/mux,
// santhosh-tekuri/jsonschema) are not in the module's go.sum, so this file
// carries a small validator for the schema keywords the document uses.
//
//go:embed openapi.yaml
var openapiYAML []byte

// spec is the parsed document. It is built per Server and never changed.
type spec struct {
	doc   map[string]any
	paths []specPath
}

type specPath struct {
	re   *regexp.Regexp
	item map[string]any
}

func loadSpec() (*spec, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		return nil, err
	}
	s := &spec{doc: doc}
	paths, _ := doc["paths"].(map[string]any)
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, tmpl := range keys {
		item, _ := paths[tmpl].(map[string]any)
		pat := regexp.QuoteMeta(tmpl)
		pat = regexp.MustCompile(`\\\{([A-Za-z0-9_]+)\\\}`).ReplaceAllString(pat, `(?P<$1>[^/]+)`)
		s.paths = append(s.paths, specPath{re: regexp.MustCompile("^" + pat + "$"), item: item})
	}
	return s, nil
}

// validate checks r (whose body has been read into body) against the
// operation the document declares for its method and path.
func (s *spec) validate(r *http.Request, body []byte) error {
	for _, p := range s.paths {
		m := p.re.FindStringSubmatch(r.URL.Path)
		if m == nil {
			continue
		}
		op, ok := p.item[strings.ToLower(r.Method)].(map[string]any)
		if !ok {
			return fmt.Errorf("%s %s: method not in the spec", r.Method, r.URL.Path)
		}
		params, _ := op["parameters"].([]any)
		for _, raw := range params {
			prm, _ := raw.(map[string]any)
			name, _ := prm["name"].(string)
			var v string
			var present bool
			switch prm["in"] {
			case "path":
				v, present = m[p.re.SubexpIndex(name)], true
			case "header":
				v = r.Header.Get(name)
				present = v != ""
			case "query":
				present = r.URL.Query().Has(name)
				v = r.URL.Query().Get(name)
			}
			if !present {
				if req, _ := prm["required"].(bool); req {
					return fmt.Errorf("parameter %s (%s) is required", name, prm["in"])
				}
				continue
			}
			if err := s.check(v, prm["schema"], name); err != nil {
				return err
			}
		}
		rb, ok := op["requestBody"].(map[string]any)
		if !ok {
			return nil
		}
		content, _ := rb["content"].(map[string]any)
		ct := r.Header.Get("Content-Type")
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = ct[:i]
		}
		ct = strings.TrimSpace(ct)
		media, ok := content[ct].(map[string]any)
		if !ok {
			return fmt.Errorf("content type %q not in the spec", ct)
		}
		var v any
		switch ct {
		case "application/json":
			if err := json.Unmarshal(body, &v); err != nil {
				return fmt.Errorf("body is not JSON: %v", err)
			}
		case "application/x-www-form-urlencoded":
			form, err := url.ParseQuery(string(body))
			if err != nil {
				return fmt.Errorf("body is not a form: %v", err)
			}
			obj := map[string]any{}
			for k, vs := range form {
				obj[k] = vs[0]
			}
			v = obj
		}
		return s.check(v, media["schema"], "body")
	}
	return fmt.Errorf("%s %s: path not in the spec", r.Method, r.URL.Path)
}

// check validates v against schema: the keywords used in openapi.yaml
// (type, required, properties, additionalProperties: false, items,
// minItems, maxItems, enum, minLength, pattern, $ref).
func (s *spec) check(v any, schema any, at string) error {
	sc, _ := schema.(map[string]any)
	if sc == nil {
		return nil
	}
	if ref, ok := sc["$ref"].(string); ok {
		return s.check(v, s.resolve(ref), at)
	}
	if enum, ok := sc["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
		}
	}
	switch sc["type"] {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object", at)
		}
		req, _ := sc["required"].([]any)
		for _, k := range req {
			if _, ok := obj[k.(string)]; !ok {
				return fmt.Errorf("%s: %s is required", at, k)
			}
		}
		props, _ := sc["properties"].(map[string]any)
		for k, pv := range obj {
			ps, ok := props[k]
			if !ok {
				if ap, ok := sc["additionalProperties"].(bool); ok && !ap {
					return fmt.Errorf("%s: unexpected property %s", at, k)
				}
				continue
			}
			if err := s.check(pv, ps, at+"."+k); err != nil {
				return err
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array", at)
		}
		if n, ok := sc["minItems"].(int); ok && len(arr) < n {
			return fmt.Errorf("%s: %d items, want at least %d", at, len(arr), n)
		}
		if n, ok := sc["maxItems"].(int); ok && len(arr) > n {
			return fmt.Errorf("%s: %d items, want at most %d", at, len(arr), n)
		}
		for i, it := range arr {
			if err := s.check(it, sc["items"], fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a string", at)
		}
		if n, ok := sc["minLength"].(int); ok && len(str) < n {
			return fmt.Errorf("%s: shorter than %d", at, n)
		}
		if pat, ok := sc["pattern"].(string); ok && !regexp.MustCompile(pat).MatchString(str) {
			return fmt.Errorf("%s: does not match %s", at, pat)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want a boolean", at)
		}
	}
	return nil
}

func (s *spec) resolve(ref string) any {
	var cur any = s.doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, _ := cur.(map[string]any)
		cur = m[part]
	}
	return cur
}
