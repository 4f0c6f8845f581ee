// Package mapping turns an entity snapshot into a vendor's record: a set of
// vendor fields, each an expression over the entity (expr-lang syntax),
// compiled once when the config loads and evaluated per record.
package mapping

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Spec is a mapping as written in config: vendor field → expression.
type Spec map[string]string

// Merge returns defaults with overrides applied: an override replaces the
// default of its field or adds a field; an empty expression removes one.
func Merge(defaults, overrides Spec) Spec {
	out := maps.Clone(defaults)
	if out == nil {
		out = Spec{}
	}
	for field, e := range overrides {
		if strings.TrimSpace(e) == "" {
			delete(out, field)
			continue
		}
		out[field] = e
	}
	return out
}

// FieldError is a field whose expression does not compile or evaluate.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %s: %v", e.Field, e.Err) }

func (e *FieldError) Unwrap() error { return e.Err }

// Mapping is a compiled Spec.
type Mapping struct {
	fields []compiled
}

type compiled struct {
	name string
	prog *vm.Program
}

// Compile checks every expression of spec against sample, an entity of the
// type the mapping applies to, so a misspelt field is an error now rather
// than a null in a vendor later. It reports every failing field.
func Compile(spec Spec, sample map[string]any) (*Mapping, error) {
	m := &Mapping{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(spec)) {
		prog, err := expr.Compile(spec[name], expr.Env(sample), firstNameFunc(), lastNameFunc())
		if err != nil {
			errs = append(errs, &FieldError{Field: name, Err: firstLine(err)})
			continue
		}
		m.fields = append(m.fields, compiled{name: name, prog: prog})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// Apply evaluates every field over entity. A field that fails to evaluate
// fails the record: sending it half-mapped would write wrong data.
func (m *Mapping) Apply(entity map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(m.fields))
	for _, f := range m.fields {
		v, err := expr.Run(f.prog, entity)
		if err != nil {
			return nil, &FieldError{Field: f.name, Err: firstLine(err)}
		}
		out[f.name] = v
	}
	return out, nil
}

// Field evaluates one field over entity; ok is false when the mapping has
// no such field.
func (m *Mapping) Field(name string, entity map[string]any) (v any, ok bool, err error) {
	for _, f := range m.fields {
		if f.name != name {
			continue
		}
		v, err := expr.Run(f.prog, entity)
		if err != nil {
			return nil, true, &FieldError{Field: f.name, Err: firstLine(err)}
		}
		return v, true, nil
	}
	return nil, false, nil
}

// Fields lists the mapped vendor fields, sorted.
func (m *Mapping) Fields() []string {
	names := make([]string, len(m.fields))
	for i, f := range m.fields {
		names[i] = f.name
	}
	return names
}

// firstNameFunc and lastNameFunc are helpers mappings may call besides
// expr's built-ins. They split a display name the way CRMs want it: the
// last word is the last name, the rest the first name; a single word is a
// last name (Salesforce requires LastName, never FirstName).
func firstNameFunc() expr.Option {
	return expr.Function("firstName", func(params ...any) (any, error) {
		first, _ := splitName(params[0])
		return first, nil
	}, new(func(string) string), new(func(any) string))
}

func lastNameFunc() expr.Option {
	return expr.Function("lastName", func(params ...any) (any, error) {
		_, last := splitName(params[0])
		return last, nil
	}, new(func(string) string), new(func(any) string))
}

func splitName(v any) (first, last string) {
	s, _ := v.(string)
	words := strings.Fields(s)
	switch len(words) {
	case 0:
		return "", ""
	case 1:
		return "", words[0]
	default:
		return strings.Join(words[:len(words)-1], " "), words[len(words)-1]
	}
}

// firstLine keeps expr's error to its message: the source excerpt it adds
// spans lines, which reads badly in a config error list.
func firstLine(err error) error {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return errors.New(msg)
}
