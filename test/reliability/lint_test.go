package reliability

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lint-trust-policy on the real binary: input over the cap (stdin too) is
// an error, never a truncation; a duplicate key names both lines; a public
// trust policy fails whatever --for says; control characters in the
// document never reach the terminal.
func TestLintTrustPolicyContracts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stdin := func(data []byte, args ...string) result {
		cmd := exec.CommandContext(context.Background(), bin, args...)
		cmd.Stdin = bytes.NewReader(data)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		return result{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
	}
	good := `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}`
	// Valid JSON that only a truncation would make acceptable: padding
	// after a complete document inside a string.
	huge := []byte(`{"Version": "2012-10-17", "Id": "` + strings.Repeat("x", 2<<20) + `", "Statement": []}`)
	if r := stdin(huge, "lint-trust-policy", "-", "--for", "task"); r.code != 2 || !strings.Contains(r.stderr, "larger than the 1048576 bytes allowed") {
		t.Errorf("stdin over the cap: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "lint-trust-policy", write("huge.json", string(huge)), "--for", "task"); r.code != 2 || !strings.Contains(r.stderr, "larger than the 1048576 bytes allowed") {
		t.Errorf("file over the cap: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := stdin([]byte(good), "lint-trust-policy", "-", "--for", "task"); r.code != 0 {
		t.Errorf("a good policy on stdin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dup := write("dup.json", "{\"Version\": \"2012-10-17\",\n \"Statement\": [{\"Effect\": \"Deny\",\n  \"Principal\": {\"Service\": \"ecs-tasks.amazonaws.com\"}, \"Action\": \"sts:AssumeRole\",\n  \"Effect\": \"Allow\"}]}\n")
	if r := run(t, "lint-trust-policy", dup, "--for", "task"); r.code != 2 || !strings.Contains(r.stderr, `duplicate key "Effect"`) || !strings.Contains(r.stderr, "line 2 and line 4") {
		t.Errorf("duplicate key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	public := write("public.json", `{"Version": "2012-10-17", "Statement": [{"Sid": "open\u001b[2J\u001b]0;x\u0007", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}`)
	for _, purpose := range []string{"task", "instance"} {
		r := run(t, "lint-trust-policy", public, "--for", purpose)
		if r.code != 1 || !strings.Contains(r.stdout, "fail    trust.wildcard_principal") {
			t.Errorf("public trust policy --for %s: exit %d\n%s%s", purpose, r.code, r.stdout, r.stderr)
		}
		if strings.ContainsAny(r.stdout+r.stderr, "\x1b\x07") || !strings.Contains(r.stdout, `open\x1b[2J`) {
			t.Errorf("control characters reached the terminal:\n%q", r.stdout)
		}
	}
}
