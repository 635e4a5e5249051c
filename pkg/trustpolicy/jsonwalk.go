package trustpolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// jval is one JSON value with the absolute offset of its first byte, so
// errors can point at it.
type jval struct {
	raw json.RawMessage
	off int
}

// kind names the JSON type of v for error messages.
func (v jval) kind() string {
	if len(v.raw) == 0 {
		return "nothing"
	}
	switch v.raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

type field struct {
	key    string
	keyOff int
	val    jval
}

// skipSpace returns the offset in b of the first byte at or after i that
// is neither JSON whitespace nor one of the separators in seps.
func skipSpace(b []byte, i int, seps string) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r' || bytes.IndexByte([]byte(seps), b[i]) >= 0) {
		i++
	}
	return i
}

// fields returns the members of an object value, in order. v must hold
// valid JSON (the caller checked the whole document).
func (d *doc) fields(v jval) ([]field, error) {
	if v.kind() != "an object" {
		return nil, errors.New("not an object")
	}
	dec := json.NewDecoder(bytes.NewReader(v.raw))
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	var out []field
	for dec.More() {
		keyStart := skipSpace(v.raw, int(dec.InputOffset()), ",")
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key is %T", tok)
		}
		valStart := skipSpace(v.raw, int(dec.InputOffset()), ":")
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, field{key: key, keyOff: v.off + keyStart, val: jval{raw: raw, off: v.off + valStart}})
	}
	return out, nil
}

// elems returns the elements of a list value, in order.
func (d *doc) elems(v jval) ([]jval, error) {
	if v.kind() != "a list" {
		return nil, errors.New("not a list")
	}
	dec := json.NewDecoder(bytes.NewReader(v.raw))
	if _, err := dec.Token(); err != nil { // [
		return nil, err
	}
	var out []jval
	for dec.More() {
		start := skipSpace(v.raw, int(dec.InputOffset()), ",")
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, jval{raw: raw, off: v.off + start})
	}
	return out, nil
}

// str decodes a string value.
func (d *doc) str(v jval, what string) (string, error) {
	var s string
	if v.kind() != "a string" || json.Unmarshal(v.raw, &s) != nil {
		return "", d.errorf(v.off, "%s must be a string, not %s", what, v.kind())
	}
	return s, nil
}

// strList decodes a value IAM accepts as "a string or a list of strings".
func (d *doc) strList(v jval, what string) ([]string, error) {
	switch v.kind() {
	case "a string":
		s, err := d.str(v, what)
		return []string{s}, err
	case "a list":
		els, err := d.elems(v)
		if err != nil {
			return nil, d.errorf(v.off, "%s: %v", what, err)
		}
		out := make([]string, 0, len(els))
		for i, e := range els {
			s, err := d.str(e, fmt.Sprintf("%s[%d]", what, i))
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, d.errorf(v.off, "%s must be a string or a list of strings, not %s", what, v.kind())
}

// checkDuplicates fails on a key that appears twice in one object,
// anywhere in the document, naming both lines: which copy a reader honours
// differs between parsers (Go's and Python's take the last, others the
// first or reject the document), so what this linter judged might not be
// what IAM or the next tool reads. d.data must be valid JSON.
func (d *doc) checkDuplicates() error {
	type frame struct {
		obj     bool
		wantKey bool
		keys    map[string]int // key -> offset of its first copy
	}
	dec := json.NewDecoder(bytes.NewReader(d.data))
	var st []*frame
	for {
		off := skipSpace(d.data, int(dec.InputOffset()), ",:")
		tok, err := dec.Token()
		if err != nil {
			return nil // end of the document (syntax errors are reported elsewhere)
		}
		var top *frame
		if len(st) > 0 {
			top = st[len(st)-1]
		}
		if top != nil && top.obj && top.wantKey {
			if tok == json.Delim('}') {
				st = st[:len(st)-1]
				continue
			}
			key, _ := tok.(string)
			if first, dup := top.keys[key]; dup {
				l1, _ := lineCol(d.data, first)
				l2, _ := lineCol(d.data, off)
				return d.errorf(off, "duplicate key %q in one object: line %d and line %d; JSON readers differ in which copy they honour, so keep exactly one", key, l1, l2)
			}
			top.keys[key] = off
			top.wantKey = false
			continue
		}
		if top != nil && top.obj {
			top.wantKey = true // after this value, the next key
		}
		switch tok {
		case json.Delim('{'):
			st = append(st, &frame{obj: true, wantKey: true, keys: map[string]int{}})
		case json.Delim('['):
			st = append(st, &frame{})
		case json.Delim(']'):
			st = st[:len(st)-1]
		}
	}
}
