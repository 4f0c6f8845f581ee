package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a config.
type Problem struct {
	// Path locates the key, like "customers[1].connectors.webhook.url"; empty for the
	// document as a whole.
	Path string
	// Line is the 1-based line of the key, or of its nearest present parent when the key
	// is absent; 0 when unknown.
	Line int
	// Msg says what is wrong; it never contains a secret.
	Msg string
}

// String formats p as "line N: path: msg", leaving out the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is every problem found in one config, sorted by line.
type Error struct {
	// File is the path given to Load; empty from Parse.
	File string
	// Problems are sorted by line, problems without a line last.
	Problems []Problem
}

// Error lists the problems one per line. It leaves File out so that callers can wrap it
// with the file name without repeating it.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Line, ps[j].Line
		if a == 0 || b == 0 {
			return a != 0 && b == 0
		}
		return a < b
	})
}

// coveredBy reports whether path is, or lies under, one of the paths in bad.
func coveredBy(path string, bad []string) bool {
	for _, b := range bad {
		if path == b || b == "" || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") {
			return true
		}
	}
	return false
}

// lineIndex maps key paths to source lines. The decoder's own errors know only a line, and
// Validate's know only a path; the index translates between the two.
type lineIndex struct {
	entries []entry // document order
	byPath  map[string]int
}

type entry struct {
	path  string
	key   string     // the mapping key; empty for the root and for sequence items
	line  int        // line of the key; of the node itself for the root and sequence items
	value *yaml.Node // what the key or item holds
}

// indexLines parses data into a node tree and indexes it. A YAML syntax error, or more
// than one document, is returned as the only problem.
func indexLines(data []byte) (*lineIndex, *Problem) {
	idx := &lineIndex{byPath: make(map[string]int)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return idx, nil
		}
		p := syntaxProblem(err)
		return nil, &p
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Problem{Line: next.Line, Msg: "only one YAML document is allowed"}
	case !errors.Is(err, io.EOF):
		p := syntaxProblem(err)
		return nil, &p
	}
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		idx.add(entry{line: root.Line, value: root})
		idx.walk(root, "")
	}
	return idx, nil
}

func (x *lineIndex) add(e entry) {
	if _, dup := x.byPath[e.path]; !dup {
		x.byPath[e.path] = len(x.entries)
	}
	x.entries = append(x.entries, e)
}

// walk does not follow aliases, so problems inside aliased content get the line of the
// alias itself, as its nearest present parent.
func (x *lineIndex) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			x.add(entry{path: p, key: k.Value, line: k.Line, value: v})
			x.walk(v, p)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			x.add(entry{path: p, line: item.Line, value: item})
			x.walk(item, p)
		}
	}
}

// lineOf returns the line of path, or of its nearest present parent when it is absent.
func (x *lineIndex) lineOf(path string) int {
	if x == nil {
		return 0
	}
	for {
		if i, ok := x.byPath[path]; ok {
			return x.entries[i].line
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// present reports whether path has a non-null value in the source; absent and null keys
// both get defaults.
func (x *lineIndex) present(path string) bool {
	if x == nil {
		return false
	}
	i, ok := x.byPath[path]
	if !ok {
		return false
	}
	v := x.entries[i].value
	return !(v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null")
}

func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

var (
	lineRE        = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownRE     = regexp.MustCompile(`^field (.+) not found in type \S+$`)
	duplicateRE   = regexp.MustCompile(`^(?:field (.+) already set in type \S+|mapping key "(.*)" already defined at line \d+)$`)
	unmarshalRE   = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (\\S+)$")
	badDurationRE = regexp.MustCompile(`^invalid duration ("(?:[^"\\]|\\.)*")`)
)

// syntaxProblem turns an error from the YAML parser into a Problem, keeping its line.
func syntaxProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return Problem{Msg: "invalid YAML: " + msg}
}

// typeProblem turns one of the strings of a *yaml.TypeError, like "line 3: field foo not
// found in type config.Kafka", into a Problem with a path and a readable message. When
// the string is about a value that could not be decoded, bad is true and the Problem's
// Path is that value's.
func (x *lineIndex) typeProblem(s string) (p Problem, bad bool) {
	m := lineRE.FindStringSubmatch(s)
	if m == nil {
		return Problem{Msg: s}, false
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]

	if m := unknownRE.FindStringSubmatch(msg); m != nil {
		return Problem{Path: x.keyAt(line, m[1]), Line: line, Msg: fmt.Sprintf("unknown key %q", m[1])}, false
	}
	if m := duplicateRE.FindStringSubmatch(msg); m != nil {
		key := m[1] + m[2]
		path := x.keyAt(line, key)
		text := fmt.Sprintf("duplicate key %q", key)
		if first := x.lineOf(path); path != "" && first != line {
			text += fmt.Sprintf(" (first at line %d)", first)
		}
		return Problem{Path: path, Line: line, Msg: text}, false
	}
	if m := unmarshalRE.FindStringSubmatch(msg); m != nil {
		tag, shown, goType := m[1], m[2], m[3]
		e := x.valueAt(line, goType, tag, strings.TrimSuffix(shown, "..."))
		got := describe(tag, shown)
		var path string
		if e != nil {
			path = e.path
			if e.value.Kind == yaml.ScalarNode {
				got = strconv.Quote(e.value.Value)
			}
		}
		return Problem{Path: path, Line: line, Msg: fmt.Sprintf("want %s, got %s", want(goType), got)}, e != nil
	}
	if m := badDurationRE.FindStringSubmatch(msg); m != nil {
		value, _ := strconv.Unquote(m[1])
		e := x.valueAt(line, "config.Duration", "", value)
		if e == nil {
			return Problem{Line: line, Msg: msg}, false
		}
		return Problem{Path: e.path, Line: line, Msg: msg}, true
	}
	return Problem{Line: line, Msg: msg}, false
}

// floatProblems reports a float given for an integer key, like max_concurrency: 2.5,
// which the decoder would otherwise truncate without a word.
func (x *lineIndex) floatProblems() []Problem {
	var problems []Problem
	for _, e := range x.entries {
		v := e.value
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!float" {
			continue
		}
		if t := goTypeAt(e.path); t != nil && reflect.Int <= t.Kind() && t.Kind() <= reflect.Uint64 {
			problems = append(problems, Problem{Path: e.path, Line: e.line, Msg: fmt.Sprintf("want an integer, got %q", v.Value)})
		}
	}
	return problems
}

// keyAt finds the path of the mapping key named key on line.
func (x *lineIndex) keyAt(line int, key string) string {
	for _, e := range x.entries {
		if e.line == line && e.key == key && e.value != nil {
			return e.path
		}
	}
	return ""
}

// valueAt finds the entry whose value starts on line and decodes into goType, preferring
// one that also has the given tag and starts with prefix: in flow style several values
// share a line.
func (x *lineIndex) valueAt(line int, goType, tag, prefix string) *entry {
	var typed, onLine *entry
	for i := range x.entries {
		e := &x.entries[i]
		if e.value.Line != line {
			continue
		}
		if onLine == nil {
			onLine = e
		}
		if t := goTypeAt(e.path); t == nil || t.String() != goType {
			continue
		}
		if (tag == "" || e.value.ShortTag() == tag) && strings.HasPrefix(e.value.Value, prefix) {
			return e
		}
		if typed == nil {
			typed = e
		}
	}
	if typed != nil {
		return typed
	}
	return onLine
}

// goTypeAt returns the type, pointers removed, that the value at path decodes into, or
// nil when path is not part of Config.
func goTypeAt(path string) reflect.Type {
	t := reflect.TypeFor[Config]()
	for _, part := range strings.Split(path, ".") {
		if name, _, _ := strings.Cut(part, "["); name != "" {
			if t = fieldType(t, name); t == nil {
				return nil
			}
		}
		for range strings.Count(part, "[") {
			if t.Kind() != reflect.Slice {
				return nil
			}
			t = t.Elem()
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fieldType returns the type of the field of t that key names, looking into inline
// fields; for a map, every key names its element type.
func fieldType(t reflect.Type, key string) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Map {
		return t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" && opts == "inline" {
			if ft := fieldType(f.Type, key); ft != nil {
				return ft
			}
			continue
		}
		if name == key && name != "-" {
			return f.Type
		}
	}
	return nil
}

func describe(tag, shown string) string {
	switch tag {
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	}
	return strconv.Quote(shown)
}

func want(goType string) string {
	switch {
	case goType == "int":
		return "an integer"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case goType == "config.Duration":
		return "a duration like 250ms, 10s or 2m"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "config.") || strings.HasPrefix(goType, "*config."):
		return "a mapping"
	}
	return goType
}
