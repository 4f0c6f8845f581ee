package openapicheck_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/synchub/synchub/internal/openapicheck"
)

const petsYAML = `
openapi: 3.0.3
info: {title: pets, version: "1"}
servers: [{url: "https://pets.example.com/v2"}]
security: [{key: []}]
paths:
  /pets/{id}:
    put:
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
        - {name: mode, in: query, schema: {type: string, enum: [merge, replace]}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [name, tags]
              properties:
                name: {type: string}
                age: {type: integer}
                tags: {type: object, additionalProperties: {type: object}}
      responses:
        "200": {description: ok}
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-Key}
`

func load(t *testing.T, o openapicheck.Options) *openapi3.T {
	t.Helper()
	doc, err := openapicheck.Load([]byte(petsYAML), o)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func put(url, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPut, url, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestCheck(t *testing.T) {
	c, err := openapicheck.NewChecker(load(t, openapicheck.Options{}), "http://127.0.0.1:8080/v2")
	if err != nil {
		t.Fatal(err)
	}
	const base = "http://127.0.0.1:8080/v2/pets/"
	for _, tc := range []struct {
		name, url, body string
		want            []string // substrings of the error; none: valid
		unknown         bool
	}{
		{name: "valid", url: base + "7?mode=merge", body: `{"name":"Rex","age":3,"tags":{"a":{}}}`},
		{name: "wrong-typed body", url: base + "7", body: `{"name":"Rex","age":"three","tags":{}}`,
			want: []string{"body.age: value must be an integer"}},
		{name: "missing required field", url: base + "7", body: `{"tags":{}}`,
			want: []string{"body.name is required"}},
		{name: "several problems", url: base + "7", body: `{"name":1}`,
			want: []string{"body.name: value must be a string", "body.tags is required"}},
		{name: "nested", url: base + "7", body: `{"name":"Rex","tags":{"a":"x"}}`,
			want: []string{"body.tags.a: value must be an object"}},
		{name: "query enum", url: base + "7?mode=sideways", body: `{"name":"Rex","tags":{}}`,
			want: []string{"query parameter mode: value is not one of the allowed values"}},
		{name: "path type", url: base + "rex", body: `{"name":"Rex","tags":{}}`,
			want: []string{"path parameter id:"}},
		{name: "no body", url: base + "7", body: "",
			want: []string{"body: value is required but missing"}},
		{name: "unknown path", url: "http://127.0.0.1:8080/v2/cats/7", body: `{}`,
			want: []string{"PUT /v2/cats/7"}, unknown: true},
		{name: "outside the prefix", url: "http://127.0.0.1:8080/pets/7", body: `{"name":"Rex","tags":{}}`,
			want: []string{"PUT /pets/7"}, unknown: true},
		{name: "another host", url: "http://other:8080/v2/pets/7", body: `{"name":"Rex","tags":{}}`, unknown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := put(tc.url, tc.body)
			err := c.Check(r, []byte(tc.body))
			if len(tc.want) == 0 && !tc.unknown {
				if err != nil {
					t.Fatalf("valid request refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid request passed")
			}
			t.Log(err)
			if got := errors.Is(err, openapicheck.ErrUnknownOperation); got != tc.unknown {
				t.Errorf("errors.Is(%v, ErrUnknownOperation) = %v", err, got)
			}
			var e *openapicheck.Error
			if !tc.unknown && (!errors.As(err, &e) || len(e.Problems) != len(tc.want)) {
				t.Errorf("%v: want %d problems", err, len(tc.want))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestCheckLeavesRequestAlone(t *testing.T) {
	c, err := openapicheck.NewChecker(load(t, openapicheck.Options{}), "http://h/v2")
	if err != nil {
		t.Fatal(err)
	}
	r := put("http://h/v2/pets/1", "unread")
	if err := c.Check(r, []byte(`{"name":"a","tags":{}}`)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	if n, _ := r.Body.Read(b); string(b[:n]) != "unread" {
		t.Errorf("r.Body was consumed or replaced: %q", b[:n])
	}
}

func TestRelaxAndSkipValidate(t *testing.T) {
	relaxed := load(t, openapicheck.Options{Relax: func(doc *openapi3.T) error {
		tags := doc.Paths.Value("/pets/{id}").Put.RequestBody.Value.Content.Get("application/json").Schema.Value.Properties["tags"]
		tags.Value.AdditionalProperties.Schema = openapi3.NewSchemaRef("", &openapi3.Schema{})
		return nil
	}})
	c, err := openapicheck.NewChecker(relaxed, "http://h/v2")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"name":"Rex","tags":{"a":"x"}}`
	if err := c.Check(put("http://h/v2/pets/7", body), []byte(body)); err != nil {
		t.Errorf("relaxed schema still refuses: %v", err)
	}

	broken := strings.Replace(petsYAML, "age: {type: integer}", "age: {type: array}", 1) // array without items
	if _, err := openapicheck.Load([]byte(broken), openapicheck.Options{}); err == nil {
		t.Error("an invalid document loaded")
	}
	if _, err := openapicheck.Load([]byte(broken), openapicheck.Options{SkipValidate: true}); err != nil {
		t.Errorf("SkipValidate: %v", err)
	}
	if _, err := openapicheck.Load([]byte(petsYAML), openapicheck.Options{Relax: func(*openapi3.T) error { return errors.New("gone") }}); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("a failing Relax: %v", err)
	}
}

const swaggerA = `{"swagger":"2.0","info":{"title":"a","version":"1"},"host":"localhost:8080","basePath":"/",
 "paths":{"/rest/things.json":{"post":{"consumes":["application/json"],
  "parameters":[{"in":"body","name":"b","required":true,"schema":{"$ref":"#/definitions/Things"}}],
  "responses":{"200":{"description":"ok"}}}}},
 "definitions":{"Things":{"type":"object","required":["input"],"properties":{"input":{"type":"array","items":{"type":"string"}}}}}}`

const swaggerB = `{"swagger":"2.0","info":{"title":"b","version":"1"},"host":"localhost:8080","basePath":"/",
 "paths":{"/identity/token":{"get":{"parameters":[{"name":"grant_type","in":"query","required":true,"type":"string","enum":["client_credentials"]}],
  "responses":{"200":{"description":"ok"}}}}}}`

func TestSwagger2(t *testing.T) {
	doc, err := openapicheck.LoadSwagger2(openapicheck.Options{}, []byte(swaggerA), []byte(swaggerB))
	if err != nil {
		t.Fatal(err)
	}
	c, err := openapicheck.NewChecker(doc, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	ok := `{"input":["a"]}`
	if err := c.Check(put("http://127.0.0.1:1/rest/things.json", ok), []byte(ok)); !errors.Is(err, openapicheck.ErrUnknownOperation) {
		t.Errorf("PUT on a POST-only path: %v", err)
	}
	post := func(body string) error {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:1/rest/things.json", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return c.Check(r, []byte(body))
	}
	if err := post(ok); err != nil {
		t.Errorf("valid body: %v", err)
	}
	if err := post(`{"input":[1]}`); err == nil || !strings.Contains(err.Error(), "body.input.0: value must be a string") {
		t.Errorf("wrong-typed item: %v", err)
	}
	get := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:1/identity/token?grant_type=client_credentials", nil)
	if err := c.Check(get, nil); err != nil {
		t.Errorf("the second document's path: %v", err)
	}
	get = httptest.NewRequest(http.MethodGet, "http://127.0.0.1:1/identity/token", nil)
	if err := c.Check(get, nil); err == nil || !strings.Contains(err.Error(), "query parameter grant_type: value is required but missing") {
		t.Errorf("missing query parameter: %v", err)
	}
	if _, err := openapicheck.LoadSwagger2(openapicheck.Options{}, []byte(swaggerA), []byte(swaggerA)); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("the same path twice: %v", err)
	}
	if _, err := openapicheck.LoadSwagger2(openapicheck.Options{}, []byte(petsYAML)); err == nil {
		t.Error("an OpenAPI 3 document loaded as Swagger 2.0")
	}
}

func TestSpecPerHost(t *testing.T) {
	doc := load(t, openapicheck.Options{})
	spec := openapicheck.NewSpec(doc, "/v2/")
	body := `{"name":"Rex","tags":{}}`
	var wg sync.WaitGroup
	for range 2 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := spec.Check(r, []byte(body)); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
			}
		}))
		defer srv.Close()
		for _, path := range []string{"/v2/pets/1", "/v2/pets/x", "/pets/1"} {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPut, srv.URL+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if want := map[bool]int{true: 200, false: 400}[path == "/v2/pets/1"]; resp.StatusCode != want {
					t.Errorf("%s%s: HTTP %d, want %d", srv.URL, path, resp.StatusCode, want)
				}
			})
		}
	}
	wg.Wait()
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "https://pets.example.com/v2" {
		t.Errorf("the shared document's servers changed: %v", doc.Servers)
	}
}

func TestOncePerKey(t *testing.T) {
	var calls atomic.Int32
	f := openapicheck.OncePerKey(func(k string) (int, error) {
		calls.Add(1)
		if k == "bad" {
			return 0, errors.New("bad")
		}
		return len(k), nil
	})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if v, err := f("four"); v != 4 || err != nil {
				t.Errorf("f(four) = %d, %v", v, err)
			}
			if _, err := f("bad"); err == nil {
				t.Error("f(bad) did not fail")
			}
		})
	}
	wg.Wait()
	if calls.Load() != 2 {
		t.Errorf("load ran %d times, want once per key", calls.Load())
	}
}
