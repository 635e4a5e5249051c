package envfile

import (
	"reflect"
	"testing"
)

// The expected environments were recorded from the real systemd 252
// (Debian 12, as Amazon Linux 2023): `systemd-run --wait --pipe -p
// EnvironmentFile=-FILE /usr/bin/env` in a booted systemd-nspawn container.
func TestParseAsRecorded(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		skipLine int // systemd refuses the whole file: the line named
	}{
		{"invalid UTF-8 in a comment is harmless", "A=1\n# caf\xe9 comment\nB=2\n", map[string]string{"A": "1", "B": "2"}, 0},
		{"invalid UTF-8 in a value skips the file", "A=1\nB=caf\xe9\nC=3\n", nil, 2},
		{"invalid UTF-8 in a name skips the file", "A=1\nK\xe9Y=2\nC=3\n", nil, 2},
		{"spaces around = are fine", "A=1\nNO_PROXY = a,b\nC=3\n", map[string]string{"A": "1", "C": "3", "NO_PROXY": "a,b"}, 0},
		{"only quotes is empty", "A=1\nHTTP_PROXY=\"\"\nC=3\n", map[string]string{"A": "1", "C": "3", "HTTP_PROXY": ""}, 0},
		{"a comment ending in a backslash swallows the next line", "A=1\n# comment \\\nB=2\nC=3\n", map[string]string{"A": "1", "C": "3"}, 0},
		{"quotes concatenate, backslash-newline joins, trailing space trimmed", "A=\"x\"y\nB=a\\\nb\nC= spaced  \n", map[string]string{"A": "xy", "B": "ab", "C": "spaced"}, 0},
		{"export is dropped, \\r ends a line", "export A=1\nB=2\r\nC=3\rX=4\n", map[string]string{"B": "2", "C": "3", "X": "4"}, 0},
		{"a name after a BOM is dropped", "\xef\xbb\xbfA=1\nB=2\n", map[string]string{"B": "2"}, 0},
		{"comments only at line start", "A=1\n;B=2\n  #C=3\nX=a#b\n", map[string]string{"A": "1", "X": "a#b"}, 0},
		{"single quotes are literal, double quotes unescape", `A='x\y' B` + "\n" + `C="q\"\$\n"` + "\n", map[string]string{"A": `x\yB`, "C": `q"$\n`}, 0},
		{"last assignment wins, no final newline", "A=1\nA=2", map[string]string{"A": "2"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Parse([]byte(tc.in))
			if tc.skipLine > 0 {
				if v.Skipped == nil || v.Skipped.Line != tc.skipLine {
					t.Fatalf("want the file skipped at line %d, got %+v", tc.skipLine, v)
				}
				if _, ok := v.Lookup("A"); ok {
					t.Error("Lookup on a skipped file must find nothing")
				}
				return
			}
			if v.Skipped != nil {
				t.Fatalf("skipped: %v", v.Skipped)
			}
			got := map[string]string{}
			for k, sv := range v.Vars {
				got[k] = sv.Value
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestParseLines(t *testing.T) {
	v := Parse([]byte("# c\nA=1\r\n\nB=\"x\ny\"\nC=3\n"))
	for k, line := range map[string]int{"A": 2, "B": 4, "C": 6} {
		if sv, ok := v.Lookup(k); !ok || sv.Line != line {
			t.Errorf("%s: %+v, want line %d", k, sv, line)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("A=1\nB=\"x\\\"y\"\n# c \\\nD='q'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := Parse(data)
		if v.Skipped != nil {
			return
		}
		for k := range v.Vars {
			if !ValidName(k) {
				t.Fatalf("invalid name %q kept", k)
			}
		}
	})
}
