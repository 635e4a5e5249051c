package dropin

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// render shows what parseUnit found: "line:KEY=VALUE[raw]" per
// assignment, "line:reset", "line:error".
func render(data string, ds []directive) string {
	var out []string
	for _, d := range ds {
		if d.reset {
			out = append(out, fmt.Sprintf("%d:reset", d.line))
		}
		for _, a := range d.words {
			out = append(out, fmt.Sprintf("%d:%s=%s[%s]", d.line, a.key, a.value, data[a.start:a.end]))
		}
		if d.err != nil {
			out = append(out, fmt.Sprintf("%d:error", d.line))
		}
	}
	return strings.Join(out, " ")
}

func TestParseUnit(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"aws documentation", "[Service]\nEnvironment=\"HTTP_PROXY=10.0.0.131:3128\"\nEnvironment=\"NO_PROXY=169.254.169.254,169.254.170.2,/var/run/docker.sock\"\n",
			`2:HTTP_PROXY=10.0.0.131:3128["HTTP_PROXY=10.0.0.131:3128"] 3:NO_PROXY=169.254.169.254,169.254.170.2,/var/run/docker.sock["NO_PROXY=169.254.169.254,169.254.170.2,/var/run/docker.sock"]`},
		{"several on one line", "[Service]\nEnvironment=A=1 \"B=2 3\" 'C=4'\n", `2:A=1[A=1] 2:B=2 3["B=2 3"] 2:C=4['C=4']`},
		{"spaces around = and the value", "[Service]\n  Environment  =   A=1   \n", `2:A=1[A=1]`},
		{"empty value resets", "[Service]\nEnvironment=A=1\nEnvironment=\nEnvironment=   \n", `2:A=1[A=1] 3:reset 4:reset`},
		{"an empty quoted word does not reset", "[Service]\nEnvironment=\"\"\n", ``},
		{"invalid assignments are skipped", "[Service]\nEnvironment=JUNK A=1 1B=2 C-D=3 E=4\n", `2:A=1[A=1] 2:E=4[E=4]`},
		{"a syntax error keeps the words before it", "[Service]\nEnvironment=A=1 \"B=2\n", `2:A=1[A=1] 2:error`},
		{"other sections and keys are not Environment", "[Unit]\nEnvironment=A=1\n[Install]\nEnvironment=B=2\n[Service]\nenvironment=C=3\nEnvironmentFile=/etc/x\nX-Environment=D=4\n", ``},
		{"assignment outside of a section", "Environment=A=1\n[Service]\nEnvironment=B=2\n", `3:B=2[B=2]`},
		{"section names are case sensitive", "[service]\nEnvironment=A=1\n", ``},
		{"back to Service after another section", "[Service]\nEnvironment=A=1\n[Unit]\nEnvironment=B=2\n[Service]\nEnvironment=C=3\n", `2:A=1[A=1] 6:C=3[C=3]`},
		{"comments", "# [Unit]\n[Service]\n; Environment=A=1\n  # Environment=B=2\nEnvironment=C=3 # not a comment\n", `5:C=3[C=3]`},
		{"continuation", "[Service]\nEnvironment=A=1 \\\n  B=2\n", `2:A=1[A=1] 2:B=2[B=2]`},
		{"comment inside a continuation is skipped", "[Service]\nEnvironment=A=1 \\\n# B=2\n C=3\n", `2:A=1[A=1] 2:C=3[C=3]`},
		{"escaped backslash is no continuation", "[Service]\nEnvironment=A=x\\\\\nEnvironment=B=2\n", `2:A=x\[A=x\\] 3:B=2[B=2]`},
		{"continuation at end of file", "[Service]\nEnvironment=A=1 \\", `2:A=1[A=1]`},
		{"CRLF line ends", "[Service]\r\nEnvironment=A=1\r\nEnvironment=B=2 \\\r\n C=3\r\n", `2:A=1[A=1] 3:B=2[B=2] 3:C=3[C=3]`},
		{"BOM", "\xef\xbb\xbf[Service]\nEnvironment=A=1\n", `2:A=1[A=1]`},
		{"no newline at the end", "[Service]\nEnvironment=A=1", `2:A=1[A=1]`},
		{"percent", "[Service]\nEnvironment=A=100%%\n", `2:A=100%%[A=100%%]`},
	} {
		ds, err := parseUnit([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := render(tc.in, ds); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestParseUnitEnds(t *testing.T) {
	in := "[Service]\nEnvironment=A=1 \\\n B=2\nEnvironment=C=3"
	ds, err := parseUnit([]byte(in))
	if err != nil || len(ds) != 2 {
		t.Fatal(ds, err)
	}
	if ds[0].end != strings.Index(in, "Environment=C") || ds[1].end != len(in) {
		t.Errorf("ends %d, %d", ds[0].end, ds[1].end)
	}
}

func TestParseUnitRejects(t *testing.T) {
	_, err := parseUnit([]byte("[Service]\nEnvironment=A=1\n[Service # comment\n"))
	var pe *parseError
	if !errors.As(err, &pe) || pe.line != 3 || !strings.Contains(err.Error(), "invalid section header") {
		t.Errorf("err = %v, want an invalid section header on line 3", err)
	}
}
