package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// The man page holds every command's own --help and the whole policy
// reference, escaped for roff; no line of it starts a roff request by
// accident.
func TestManPage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"__man"}, &out, &errb); code != exitOK {
		t.Fatalf("__man: exit %d: %s", code, errb.String())
	}
	page := out.String()
	if !strings.HasPrefix(page, ".TH ECS-REMEDIATOR 8 ") {
		t.Fatalf("not a section 8 page:\n%.200s", page)
	}
	for _, c := range commands() {
		var help bytes.Buffer
		c.run([]string{"--help"}, &help, &help)
		if !strings.Contains(page, ".SS "+roffText(c.name)+"\n") {
			t.Errorf("no section for command %s", c.name)
		}
		for _, line := range strings.Split(strings.TrimSpace(help.String()), "\n") {
			if !strings.Contains(page, roffLine(line)+"\n") {
				t.Errorf("%s --help line %q is not in the page", c.name, line)
			}
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(policy.Reference()), "\n") {
		if !strings.Contains(page, roffLine(line)+"\n") {
			t.Errorf("policy reference line %q is not in the page", line)
		}
	}
	allowed := []string{".TH", ".SH", ".SS", ".PP", ".nf", ".fi", ".TP", ".B ", ".I ", ".RI", ".BR"}
	for i, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			ok := false
			for _, a := range allowed {
				ok = ok || strings.HasPrefix(line, a)
			}
			if !ok {
				t.Errorf("line %d is an unexpected roff request: %q", i+1, line)
			}
		}
	}
	if code := dispatch([]string{"__man", "x"}, &out, &errb); code != exitError {
		t.Errorf("__man with an argument: exit %d, want %d", code, exitError)
	}
}
