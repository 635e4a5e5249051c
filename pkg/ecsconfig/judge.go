package ecsconfig

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseBool judges a value as the ECS agent does: TrimSpace, then
// strconv.ParseBool. ok is false for a value the agent rejects (it then
// leaves the feature off).
func ParseBool(v string) (val, ok bool) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	return b, err == nil
}

// unquote strips one pair of matching surrounding quotes (" or '), which
// systemd removes but ecs-init passes on to the agent.
func unquote(v string) (inner string, quoted bool) {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1], true
	}
	return v, false
}

// show prints a key or value for an operator: as is when it is printable
// UTF-8, else %q-escaped (non-UTF-8 bytes, control characters).
func show(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// showLine prints an assignment the way it reads in the file.
func showLine(key, value string) string {
	if show(key) != key || show(value) != value {
		return strconv.Quote(key + "=" + value)
	}
	return key + "=" + value
}

// oldValue is Change.Old / Change.New for an effective value.
func oldValue(v string, set bool) string {
	if !set {
		return "(unset)"
	}
	return show(v)
}

// explainBool says, in operator words, why value does not switch a flag
// on: a detail for the finding and a short reason for the change. off is
// what the agent then does ("task roles are OFF"). Both are "" when the
// value is a true boolean.
func explainBool(value, off string) (detail, reason string) {
	v := strings.TrimSpace(value)
	b, ok := ParseBool(value)
	switch {
	case ok && b:
		return "", ""
	case ok:
		return "the agent reads it as false: " + off,
			fmt.Sprintf("value %s switches the feature off", strconv.Quote(v))
	}
	if inner, quoted := unquote(v); quoted {
		if ib, iok := ParseBool(inner); iok && ib {
			return fmt.Sprintf("the quotes are kept by ecs-init, so the agent reads %s (with quotes), which is not a boolean: %s", show(v), off),
				fmt.Sprintf("value %s (quoted) is not a boolean to the agent", strconv.Quote(inner))
		}
		return fmt.Sprintf("the quotes are kept by ecs-init, so the agent reads %s (with quotes), which is not a boolean: %s", show(v), off),
			fmt.Sprintf("value %s (quoted) is not a boolean to the agent", strconv.Quote(v))
	}
	if v == "" {
		return "the value is empty, which is not a boolean: " + off, "empty value is not a boolean to the agent"
	}
	return fmt.Sprintf("%s is not a boolean to the agent (it accepts only 1, t, T, true, True, TRUE and their false forms): %s", strconv.Quote(v), off),
		fmt.Sprintf("value %s is not a boolean to the agent", strconv.Quote(v))
}

// missReason is the short form of explainMiss, for Change.Reason.
func missReason(a Assignment) string {
	what := "spaces around \"=\" stay in the name"
	switch k := a.Key; {
	case strings.HasPrefix(k, "#") || strings.HasPrefix(k, ";"):
		what = "commented out"
	case strings.HasPrefix(k, "export"):
		what = "ecs-init does not understand export"
	}
	return fmt.Sprintf("not set: line %d sets %s instead (%s)", a.LineNo(), strconv.Quote(a.Key), what)
}

// explainMiss says why a near-miss line does not set key.
func explainMiss(a Assignment, key string) string {
	k := a.Key
	switch {
	case strings.HasPrefix(k, "#") || strings.HasPrefix(k, ";"):
		return fmt.Sprintf("line %d (%s) is commented out; ecs-init still makes a variable named %s of it, but %s stays unset",
			a.LineNo(), showLine(a.Key, a.Value), strconv.Quote(k), key)
	case strings.HasPrefix(k, "export"):
		return fmt.Sprintf("line %d (%s) sets a variable named %s: ecs-init does not understand \"export\", so %s stays unset",
			a.LineNo(), showLine(a.Key, a.Value), strconv.Quote(k), key)
	default:
		return fmt.Sprintf("line %d (%s) sets a variable named %s: ecs-init keeps the spaces around \"=\" in the name, so %s stays unset",
			a.LineNo(), showLine(a.Key, a.Value), strconv.Quote(k), key)
	}
}
