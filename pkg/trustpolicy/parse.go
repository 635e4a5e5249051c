package trustpolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// principal is a Principal or NotPrincipal element.
type principal struct {
	wildcard  bool // "*" (or {"AWS":"*"})
	aws       []string
	service   []string
	federated []string
	canonical []string
}

// statement is one parsed Statement entry.
type statement struct {
	index        int
	sid          string
	effect       string // "Allow" or "Deny"
	principal    *principal
	notPrincipal *principal
	action       []string
	notAction    []string
	conditions   []string // "Operator key", sorted
	hasResource  bool
	off          int
}

// name identifies a statement for an operator: Statement[1] ("Sid").
func (s statement) name() string {
	if s.sid != "" {
		return fmt.Sprintf("Statement[%d] (Sid %q)", s.index, s.sid)
	}
	return fmt.Sprintf("Statement[%d]", s.index)
}

type policy struct {
	statements []statement
	source     string // "" for a plain document, else what was unwrapped
}

// parse reads a trust policy document, an `aws iam get-role` answer
// (Role.AssumeRolePolicyDocument) or a URL-encoded document.
func parse(data []byte, file string) (*policy, error) {
	d := &doc{file: file, data: data}
	if t := bytes.TrimSpace(data); len(t) >= 3 && strings.EqualFold(string(t[:3]), "%7B") {
		dec, err := url.QueryUnescape(string(t))
		if err != nil {
			return nil, fmt.Errorf("%s: looks URL-encoded but does not decode: %w", file, err)
		}
		d = &doc{file: file, data: []byte(dec), note: " (in the URL-decoded document)"}
		p, err := d.parseDocument()
		if p != nil {
			p.source = "URL-decoded document"
		}
		return p, err
	}
	return d.parseDocument()
}

// syntaxCheck turns invalid JSON into an error with line and column.
func (d *doc) syntaxCheck() error {
	if json.Valid(d.data) {
		return nil
	}
	var v any
	err := json.Unmarshal(d.data, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := int(se.Offset) - 1 // Offset counts the bytes read, the bad one included
		if off < 0 {
			off = 0
		}
		if strings.Contains(se.Error(), "unexpected end") {
			off = len(d.data) // point past the last byte: the document stops early
		}
		return d.errorf(off, "invalid JSON: %v", se)
	}
	if err == nil {
		err = errors.New("not valid JSON")
	}
	return d.errorf(0, "invalid JSON: %v", err)
}

func (d *doc) parseDocument() (*policy, error) {
	if err := d.syntaxCheck(); err != nil {
		return nil, err
	}
	if err := d.checkDuplicates(); err != nil {
		return nil, err
	}
	top := jval{raw: bytes.TrimSpace(d.data), off: skipSpace(d.data, 0, "")}
	if top.kind() != "an object" {
		return nil, d.errorf(top.off, "a policy document is a JSON object, not %s", top.kind())
	}
	fs, err := d.fields(top)
	if err != nil {
		return nil, d.errorf(top.off, "%v", err)
	}
	// `aws iam get-role --role-name R` prints {"Role": {..., "AssumeRolePolicyDocument": ...}}.
	for _, f := range fs {
		if f.key == "Role" && f.val.kind() == "an object" {
			inner, err := d.fields(f.val)
			if err != nil {
				return nil, d.errorf(f.val.off, "Role: %v", err)
			}
			for _, g := range inner {
				if g.key == "AssumeRolePolicyDocument" {
					return d.unwrap(g.val, "Role.AssumeRolePolicyDocument")
				}
			}
			return nil, d.errorf(f.val.off, "Role has no AssumeRolePolicyDocument: give the output of `aws iam get-role` or the trust policy document itself")
		}
		if f.key == "AssumeRolePolicyDocument" {
			return d.unwrap(f.val, "AssumeRolePolicyDocument")
		}
	}
	return d.parsePolicy(top, fs)
}

// unwrap parses an embedded document: an object, or a (URL-encoded) string.
func (d *doc) unwrap(v jval, where string) (*policy, error) {
	switch v.kind() {
	case "an object":
		fs, err := d.fields(v)
		if err != nil {
			return nil, d.errorf(v.off, "%s: %v", where, err)
		}
		p, err := d.parsePolicy(v, fs)
		if p != nil {
			p.source = where
		}
		return p, err
	case "a string":
		s, err := d.str(v, where)
		if err != nil {
			return nil, err
		}
		if t := strings.TrimSpace(s); len(t) >= 3 && strings.EqualFold(t[:3], "%7B") {
			dec, err := url.QueryUnescape(t)
			if err != nil {
				return nil, d.errorf(v.off, "%s looks URL-encoded but does not decode: %v", where, err)
			}
			s = dec
		}
		inner := &doc{file: d.file, data: []byte(s), note: " (in " + where + ")"}
		p, err := inner.parseDocument()
		if p != nil {
			p.source = where
		}
		return p, err
	}
	return nil, d.errorf(v.off, "%s must be an object or a string, not %s", where, v.kind())
}

func (d *doc) parsePolicy(top jval, fs []field) (*policy, error) {
	var stmts *jval
	for i, f := range fs {
		switch f.key {
		case "Version":
			v, err := d.str(f.val, "Version")
			if err != nil {
				return nil, err
			}
			if v != "2012-10-17" && v != "2008-10-17" {
				return nil, d.errorf(f.val.off, "Version %q is not a policy language version: use \"2012-10-17\"", v)
			}
		case "Id":
			if _, err := d.str(f.val, "Id"); err != nil {
				return nil, err
			}
		case "Statement":
			stmts = &fs[i].val
		default:
			return nil, d.errorf(f.keyOff, "unknown policy element %q%s (a policy has Version, Id and Statement)", f.key, caseHint(f.key, "Version", "Id", "Statement"))
		}
	}
	if stmts == nil {
		return nil, d.errorf(top.off, "the policy has no Statement")
	}
	var els []jval
	switch stmts.kind() {
	case "an object":
		els = []jval{*stmts}
	case "a list":
		var err error
		if els, err = d.elems(*stmts); err != nil {
			return nil, d.errorf(stmts.off, "Statement: %v", err)
		}
	default:
		return nil, d.errorf(stmts.off, "Statement must be an object or a list of objects, not %s", stmts.kind())
	}
	p := &policy{}
	for i, e := range els {
		s, err := d.parseStatement(i, e)
		if err != nil {
			return nil, err
		}
		p.statements = append(p.statements, s)
	}
	return p, nil
}

// caseHint suggests the right spelling when key differs only in case.
func caseHint(key string, known ...string) string {
	for _, k := range known {
		if strings.EqualFold(key, k) {
			return fmt.Sprintf(": write %q (element names are case-sensitive)", k)
		}
	}
	return ""
}

var statementElements = []string{"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}

func (d *doc) parseStatement(i int, v jval) (statement, error) {
	s := statement{index: i, off: v.off}
	at := fmt.Sprintf("Statement[%d]", i)
	if v.kind() != "an object" {
		return s, d.errorf(v.off, "%s must be an object, not %s", at, v.kind())
	}
	fs, err := d.fields(v)
	if err != nil {
		return s, d.errorf(v.off, "%s: %v", at, err)
	}
	hasEffect := false
	for _, f := range fs {
		where := at + "." + f.key
		switch f.key {
		case "Sid":
			if s.sid, err = d.str(f.val, where); err != nil {
				return s, err
			}
		case "Effect":
			if s.effect, err = d.str(f.val, where); err != nil {
				return s, err
			}
			if s.effect != "Allow" && s.effect != "Deny" {
				return s, d.errorf(f.val.off, "%s is %q: it must be \"Allow\" or \"Deny\"", where, s.effect)
			}
			hasEffect = true
		case "Principal", "NotPrincipal":
			p, err := d.parsePrincipal(f.val, where)
			if err != nil {
				return s, err
			}
			if f.key == "Principal" {
				s.principal = p
			} else {
				s.notPrincipal = p
			}
		case "Action", "NotAction":
			list, err := d.strList(f.val, where)
			if err != nil {
				return s, err
			}
			if f.key == "Action" {
				s.action = list
			} else {
				s.notAction = list
			}
		case "Resource", "NotResource":
			if _, err := d.strList(f.val, where); err != nil {
				return s, err
			}
			s.hasResource = true
		case "Condition":
			if s.conditions, err = d.parseCondition(f.val, where); err != nil {
				return s, err
			}
		default:
			return s, d.errorf(f.keyOff, "%s: unknown element %q%s (a statement has %s)", at, f.key, caseHint(f.key, statementElements...), strings.Join(statementElements, ", "))
		}
	}
	switch {
	case !hasEffect:
		return s, d.errorf(v.off, "%s has no Effect: add \"Effect\": \"Allow\"", at)
	case s.principal == nil && s.notPrincipal == nil:
		return s, d.errorf(v.off, "%s has no Principal: a trust policy statement names who may assume the role", at)
	case s.principal != nil && s.notPrincipal != nil:
		return s, d.errorf(v.off, "%s has both Principal and NotPrincipal: keep one", at)
	case s.action == nil && s.notAction == nil:
		return s, d.errorf(v.off, "%s has no Action: add \"Action\": \"sts:AssumeRole\"", at)
	case s.action != nil && s.notAction != nil:
		return s, d.errorf(v.off, "%s has both Action and NotAction: keep one", at)
	}
	return s, nil
}

func (d *doc) parsePrincipal(v jval, where string) (*principal, error) {
	if v.kind() == "a string" {
		s, err := d.str(v, where)
		if err != nil {
			return nil, err
		}
		if s != "*" {
			return nil, d.errorf(v.off, "%s is the string %q: only \"*\" may be a bare string; write {\"AWS\": %q} or {\"Service\": %q}", where, s, s, s)
		}
		return &principal{wildcard: true}, nil
	}
	if v.kind() != "an object" {
		return nil, d.errorf(v.off, "%s must be \"*\" or an object such as {\"Service\": \"ecs-tasks.amazonaws.com\"}, not %s", where, v.kind())
	}
	fs, err := d.fields(v)
	if err != nil {
		return nil, d.errorf(v.off, "%s: %v", where, err)
	}
	p := &principal{}
	for _, f := range fs {
		list, err := d.strList(f.val, where+"."+f.key)
		if err != nil {
			return nil, err
		}
		switch f.key {
		case "AWS":
			for _, a := range list {
				if a == "*" {
					p.wildcard = true
				}
			}
			p.aws = append(p.aws, list...)
		case "Service":
			p.service = append(p.service, list...)
		case "Federated":
			p.federated = append(p.federated, list...)
		case "CanonicalUser":
			p.canonical = append(p.canonical, list...)
		default:
			return nil, d.errorf(f.keyOff, "%s: unknown principal type %q%s (use AWS, Service, Federated or CanonicalUser)", where, f.key, caseHint(f.key, "AWS", "Service", "Federated", "CanonicalUser"))
		}
	}
	return p, nil
}

// parseCondition returns "Operator key" for every condition.
func (d *doc) parseCondition(v jval, where string) ([]string, error) {
	if v.kind() != "an object" {
		return nil, d.errorf(v.off, "%s must be an object such as {\"StringEquals\": {\"aws:SourceAccount\": \"123456789012\"}}, not %s", where, v.kind())
	}
	ops, err := d.fields(v)
	if err != nil {
		return nil, d.errorf(v.off, "%s: %v", where, err)
	}
	var out []string
	for _, op := range ops {
		if op.val.kind() != "an object" {
			return nil, d.errorf(op.val.off, "%s.%s must be an object of condition keys, not %s", where, op.key, op.val.kind())
		}
		keys, err := d.fields(op.val)
		if err != nil {
			return nil, d.errorf(op.val.off, "%s.%s: %v", where, op.key, err)
		}
		for _, k := range keys {
			switch k.val.kind() {
			case "a string", "a list", "a boolean", "a number":
			default:
				return nil, d.errorf(k.val.off, "%s.%s.%s must be a value or a list of values, not %s", where, op.key, k.key, k.val.kind())
			}
			out = append(out, op.key+" "+k.key)
		}
	}
	sort.Strings(out)
	return out, nil
}
