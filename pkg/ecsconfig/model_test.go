package ecsconfig

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// Reading then writing an unchanged file gives back identical bytes.
func TestRoundTripGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.config")
	if len(files) < 4 {
		t.Fatalf("testdata missing: %v", files)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := Parse(b).Bytes(); !bytes.Equal(got, b) {
			t.Errorf("%s: round trip changed bytes:\n%q\n%q", p, b, got)
		}
	}
}

// ecs-init's reading of each line (docs/ecs-config.md).
func TestKV(t *testing.T) {
	for _, tc := range []struct {
		line, key, value string
		ok               bool
	}{
		{"ECS_A=true", "ECS_A", "true", true},
		{"  ECS_A=true  \r", "ECS_A", "true", true},
		{"ECS_A = true", "ECS_A ", " true", true},
		{`ECS_A="true"`, "ECS_A", `"true"`, true},
		{"#ECS_A=1", "#ECS_A", "1", true},
		{"export ECS_A=1", "export ECS_A", "1", true},
		{"ECS_A=b=c", "ECS_A", "b=c", true},
		{"ECS_A", "", "", false},
		{"", "", "", false},
		{"=x", "", "x", true},
	} {
		k, v, ok := KV([]byte(tc.line))
		if k != tc.key || v != tc.value || ok != tc.ok {
			t.Errorf("KV(%q) = %q, %q, %v; want %q, %q, %v", tc.line, k, v, ok, tc.key, tc.value, tc.ok)
		}
	}
}

func TestParseBoolLikeTheAgent(t *testing.T) {
	for v, want := range map[string][2]bool{
		"true": {true, true}, "1": {true, true}, "t": {true, true}, "T": {true, true}, "TRUE": {true, true}, "True": {true, true},
		" true ": {true, true}, "false": {false, true}, "0": {false, true},
		"yes": {false, false}, "on": {false, false}, "tRUE": {false, false}, `"true"`: {false, false}, "'true'": {false, false}, "": {false, false},
	} {
		b, ok := ParseBool(v)
		if b != want[0] || ok != want[1] {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, %v", v, b, ok, want[0], want[1])
		}
	}
}

func TestLastAndNearMiss(t *testing.T) {
	f := Parse([]byte("K=1\n#K=0\nexport K=2\nK = 3\n;K=4\nK=5\nX=1\n"))
	if a, ok := f.Last("K"); !ok || a.Value != "5" || a.LineNo() != 6 {
		t.Errorf("Last = %+v %v", a, ok)
	}
	g := Parse([]byte("K = 3\nexport K=2\n#K=0\n"))
	if _, ok := g.Last("K"); ok {
		t.Error("spaced/exported/commented lines must not set K")
	}
	if a, ok := g.NearMiss("K"); !ok || a.LineNo() != 2 {
		t.Errorf("NearMiss = %+v %v, want line 2", a, ok)
	}
	if _, ok := Parse([]byte("#K=1\nexporter K=1\n")).NearMiss("K"); ok {
		t.Error("a comment or another word is not a near miss")
	}
}

func TestSet(t *testing.T) {
	for _, tc := range []struct{ name, in, key, val, want, action string }{
		{"rewrite last", "K=false\nA=1\nK=\"true\"\n", "K", "true", "K=false\nA=1\nK=true\n", "rewrote line"},
		{"near miss", "A=1\nK = true\r\nB=2\r\n", "K", "true", "A=1\nK=true\r\nB=2\r\n", "rewrote line"},
		{"append LF", "A=1\n", "K", "true", "A=1\nK=true\n", "appended line"},
		{"append CRLF", "A=1\r\n", "K", "true", "A=1\r\nK=true\r\n", "appended line"},
		{"append no final newline", "A=1", "K", "true", "A=1\nK=true\n", "appended line"},
		{"append to empty", "", "K", "true", "K=true\n", "appended line"},
		{"keep no final newline on rewrite", "K=0", "K", "true", "K=true", "rewrote line"},
		{"non-UTF-8 kept", "A=\xff\nK=0\n", "K", "1", "A=\xff\nK=1\n", "rewrote line"},
	} {
		f := Parse([]byte(tc.in))
		action, _ := f.Set(tc.key, tc.val)
		if got := string(f.Bytes()); got != tc.want || action != tc.action {
			t.Errorf("%s: got %q (%s), want %q (%s)", tc.name, got, action, tc.want, tc.action)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.config")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b, "ECS_ENABLE_TASK_IAM_ROLE", "true")
	}
	f.Add([]byte("a\r\r\n\n\r"), "K", "v")
	f.Fuzz(func(t *testing.T, data []byte, key, value string) {
		if !bytes.Equal(Parse(data).Bytes(), data) {
			t.Fatalf("round trip changed %q", data)
		}
		if key == "" || bytes.ContainsAny([]byte(key), "=\r\n \t\v\f\x85\xa0") || bytes.ContainsAny([]byte(value), "\r\n") {
			return
		}
		if bytes.TrimSpace([]byte(key)) == nil || string(bytes.TrimSpace([]byte(key))) != key {
			return
		}
		orig := Parse(data)
		fl := Parse(data)
		_, line := fl.Set(key, value)
		out := fl.Bytes()
		again := Parse(out)
		a, ok := again.Last(key)
		// ecs-init's TrimSpace of the line eats trailing white space of the
		// value; nothing else may differ.
		if !ok || a.Value != strings.TrimRightFunc(value, unicode.IsSpace) {
			t.Fatalf("after Set(%q, %q) the effective value is %q (ok=%v) in %q", key, value, a.Value, ok, out)
		}
		// Every line but the one we set (and a terminator we added to the
		// old last line) is byte-identical.
		for i, l := range orig.Lines {
			if i == line-1 {
				continue
			}
			if i >= len(again.Lines) || !bytes.Equal(again.Lines[i].Text, l.Text) {
				if i == len(orig.Lines)-1 && len(l.EOL) == 0 {
					continue // an unterminated last line may be re-split
				}
				t.Fatalf("line %d changed: %q -> %q", i+1, l.Text, again.Lines[i].Text)
			}
		}
	})
}
