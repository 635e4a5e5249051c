package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ecs-remediator/ecs-remediator/pkg/safefile"
	"github.com/ecs-remediator/ecs-remediator/pkg/suggest"
)

// Error is a mistake in the policy file. Its text names the file, the line
// and the key, and says what is allowed.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: key %q: %s", loc, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// MaxSize is the largest policy file read (pkg/safefile refuses more, and
// anything but a regular file, without reading it); a real one is a few KiB.
const MaxSize = 1 << 20

// Load reads the policy file at path on top of the built-in defaults. When
// the file does not exist and mustExist is false (the default path was not
// overridden), the defaults are returned; otherwise a missing file is an
// error.
func Load(path string, mustExist bool) (*Policy, error) {
	f, err := safefile.Read(path, safefile.Options{Max: MaxSize})
	if errors.Is(err, os.ErrNotExist) && !mustExist {
		p := Default()
		return p, nil
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{File: path, Msg: "policy file does not exist; create it (see README.md \"Policy file\") or leave out --config to use the built-in defaults"}
		}
		if errors.Is(err, safefile.ErrTooLarge) {
			return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read policy file: %v; a policy file is a few KiB: check it by hand", err)}
		}
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read policy file: %v", err)}
	}
	p, err := Parse(f.Data, path)
	if err != nil {
		return nil, err
	}
	p.path = path
	return p, nil
}

// Parse decodes a policy document strictly on top of the defaults: an unknown
// key, a wrong type, a duplicate key or an invalid value is an *Error.
func Parse(data []byte, file string) (*Policy, error) {
	p := Default()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, errors.New("EOF")) || err.Error() == "EOF" {
			return p, nil // an empty file means the defaults
		}
		return nil, &Error{File: file, Line: yamlErrLine(err), Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: file, Line: extra.Line, Msg: "more than one YAML document; the policy file holds exactly one"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return p, nil
	}
	d := &decoder{file: file, lines: map[string]int{}}
	if err := d.decode(root, reflect.ValueOf(p).Elem(), ""); err != nil {
		return nil, err
	}
	if err := d.validate(p); err != nil {
		return nil, err
	}
	p.path, p.lines = file, d.lines
	return p, nil
}

var lineRE = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

type decoder struct {
	file  string
	lines map[string]int // dotted key -> line, for later validation messages
}

func (d *decoder) errf(n *yaml.Node, key, format string, a ...any) error {
	return &Error{File: d.file, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, a...)}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	boolAutoType = reflect.TypeOf(BoolAuto(""))
)

func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case v.Kind() == reflect.Struct:
		return d.decodeStruct(n, v, key)
	case v.Kind() == reflect.Map:
		return d.decodeMap(n, v, key)
	case v.Kind() == reflect.Slice:
		return d.decodeSlice(n, v, key)
	case v.Kind() == reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		if err := d.decode(n, nv.Elem(), key); err != nil {
			return err
		}
		v.Set(nv)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return d.errf(n, key, "expected a single value, got a %s", kindName(n))
	}
	if n.Tag == "!!null" {
		return d.errf(n, key, "has no value; give one or remove the key to use the default")
	}
	switch {
	case v.Type() == boolAutoType:
		switch b, ok := boolValue(n); {
		case ok:
			v.SetString(strconv.FormatBool(b))
		case n.Tag == "!!str" && n.Value == string(AutoBool):
			v.SetString(n.Value)
		default:
			return d.errf(n, key, "expected true, false or auto, got %q", n.Value)
		}
	case v.Type() == durationType:
		dur, err := time.ParseDuration(n.Value)
		if err != nil || dur <= 0 {
			return d.errf(n, key, "expected a positive duration such as 500ms, 30s or 5m, got %q", n.Value)
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.Bool:
		b, ok := boolValue(n)
		if !ok {
			return d.errf(n, key, "expected true or false, got %q", n.Value)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		i, err := strconv.Atoi(n.Value)
		if err != nil || n.Tag != "!!int" {
			return d.errf(n, key, "expected a whole number, got %q", n.Value)
		}
		v.SetInt(int64(i))
	case v.Kind() == reflect.String:
		if n.Tag != "!!str" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			// 30, true, 1.5 written without quotes: almost always a mistake
			// for a text key; say so rather than guess.
			if n.Tag != "!!int" && n.Tag != "!!float" && n.Tag != "!!bool" {
				return d.errf(n, key, "expected text, got %s %q", n.Tag, n.Value)
			}
		}
		v.SetString(n.Value)
	default:
		return d.errf(n, key, "internal: unsupported type %s", v.Type())
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping (key: value pairs)"
	case yaml.SequenceNode:
		return "list"
	default:
		return "value"
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, key string) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "network:" with nothing under it keeps the defaults
	}
	if n.Kind != yaml.MappingNode {
		what := "the policy file"
		if key != "" {
			what = "section"
		}
		return d.errf(n, key, "%s must be a mapping of keys, got a %s", what, kindName(n))
	}
	t := v.Type()
	fields := map[string]int{}
	var known []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = i
		known = append(known, tag)
	}
	sort.Strings(known)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		full := join(key, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			where := "at the top level"
			if key != "" {
				where = "in section " + strconv.Quote(key)
			}
			if c := suggest.Closest(k.Value, known); c != "" {
				return d.errf(k, full, "unknown key %s; did you mean %s?", where, c)
			}
			return d.errf(k, full, "unknown key %s; known keys: %s", where, strings.Join(known, ", "))
		}
		if seen[k.Value] {
			return d.errf(k, full, "appears twice; keep one")
		}
		seen[k.Value] = true
		d.lines[full] = k.Line
		if err := d.decode(val, v.Field(idx), full); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, key string) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		v.Set(reflect.MakeMap(v.Type()))
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return d.errf(n, key, "expected a mapping of KEY: value pairs, got a %s", kindName(n))
	}
	m := reflect.MakeMap(v.Type())
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		full := join(key, k.Value)
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			return d.errf(k, full, "appears twice; keep one")
		}
		d.lines[full] = k.Line
		ev := reflect.New(v.Type().Elem()).Elem()
		if val.Kind == yaml.ScalarNode && val.Tag != "!!null" && ev.Kind() == reflect.String {
			// Values in a map of settings are text whatever they look like:
			// ECS_AWSVPC_BLOCK_IMDS: true means the text "true".
			ev.SetString(val.Value)
		} else if err := d.decode(val, ev, full); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(k.Value), ev)
	}
	v.Set(m)
	return nil
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, key string) error {
	if n.Kind != yaml.SequenceNode {
		return d.errf(n, key, "expected a list, got a %s", kindName(n))
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		ev := reflect.New(v.Type().Elem()).Elem()
		if err := d.decode(item, ev, fmt.Sprintf("%s[%d]", key, i)); err != nil {
			return err
		}
		s = reflect.Append(s, ev)
	}
	v.Set(s)
	return nil
}

// boolValue reads a YAML boolean, and also "true" or "false" in quotes
// (any case): templating tools quote what they fill in, and a quoted
// true means true to the operator who wrote it. YAML 1.1's yes/no/on/off
// stay errors: they are what the strict reading guards against.
func boolValue(n *yaml.Node) (bool, bool) {
	switch {
	case n.Tag == "!!bool":
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		return b, err == nil
	case n.Tag == "!!str" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		switch strings.ToLower(n.Value) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}
