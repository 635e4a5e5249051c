package dropin

import (
	"strings"
	"testing"
)

// The rules are systemd's extract_first_word(EXTRACT_UNQUOTE |
// EXTRACT_CUNESCAPE) as config_parse_environ uses it (systemd.exec(5),
// "Environment=").
func TestSplitEnviron(t *testing.T) {
	type w struct {
		text     string
		raw      string
		portable bool
	}
	for _, tc := range []struct {
		in    string
		words []w
		err   string
	}{
		{`NO_PROXY=a,b`, []w{{"NO_PROXY=a,b", `NO_PROXY=a,b`, true}}, ""},
		{`"NO_PROXY=a,b"`, []w{{"NO_PROXY=a,b", `"NO_PROXY=a,b"`, true}}, ""},
		{`'NO_PROXY=a b'`, []w{{"NO_PROXY=a b", `'NO_PROXY=a b'`, true}}, ""},
		{`A=1 B=2`, []w{{"A=1", "A=1", true}, {"B=2", "B=2", true}}, ""},
		{"A=1 \t  B=2  ", []w{{"A=1", "A=1", true}, {"B=2", "B=2", true}}, ""},
		// Quotes inside a word group and are removed (not on systemd < v233).
		{`NO_PROXY="a b"`, []w{{"NO_PROXY=a b", `NO_PROXY="a b"`, false}}, ""},
		{`"A=x"y`, []w{{"A=xy", `"A=x"y`, false}}, ""},
		{`A="x"'y'`, []w{{"A=xy", `A="x"'y'`, false}}, ""},
		// The other quote is literal inside quotes.
		{`"A=it's"`, []w{{"A=it's", `"A=it's"`, true}}, ""},
		{`'A="q"'`, []w{{`A="q"`, `'A="q"'`, true}}, ""},
		// Escapes, inside and outside quotes.
		{`"A=a\"b"`, []w{{`A=a"b`, `"A=a\"b"`, true}}, ""},
		{`A=a\ b`, nil, "unknown escape"}, // no such escape in systemd
		{`A=a\sb`, []w{{"A=a b", `A=a\sb`, true}}, ""},
		{`"A=\\host\share"`, []w{{`A=\host hare`, `"A=\\host\share"`, true}}, ""}, // \s is a space
		{`"A=\\\\host"`, []w{{`A=\\host`, `"A=\\\\host"`, true}}, ""},
		{`A=\x41\101\u00e9\U0001F600`, []w{{"A=AAé😀", `A=\x41\101\u00e9\U0001F600`, true}}, ""},
		{`A=tab\tnl\n`, []w{{"A=tab\tnl\n", `A=tab\tnl\n`, true}}, ""},
		// Errors: the words before are applied, the rest ignored.
		{`A=1 "B=2`, []w{{"A=1", "A=1", true}}, "unbalanced quoting"},
		{`A=1 B=2\`, []w{{"A=1", "A=1", true}}, "trailing backslash"},
		{`A=1 B=\q C=3`, []w{{"A=1", "A=1", true}}, "unknown escape"},
		{`A=\x00`, nil, "bad escape"},
		{`A=\000`, nil, "bad escape"},
		{`A=\u0000`, nil, "bad escape"},
		{`A=\xZZ`, nil, "bad escape"},
		{``, nil, ""},
		{`   `, nil, ""},
		{`""`, []w{{"", `""`, true}}, ""},
	} {
		got, err := splitEnviron(tc.in)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("splitEnviron(%q) error %v, want %q", tc.in, err, tc.err)
		}
		if len(got) != len(tc.words) {
			t.Errorf("splitEnviron(%q) = %d words %+v, want %d", tc.in, len(got), got, len(tc.words))
			continue
		}
		for i, g := range got {
			want := tc.words[i]
			if g.text != want.text || tc.in[g.start:g.end] != want.raw || g.portable != want.portable {
				t.Errorf("splitEnviron(%q) word %d = %q raw %q portable %v; want %q raw %q portable %v",
					tc.in, i, g.text, tc.in[g.start:g.end], g.portable, want.text, want.raw, want.portable)
			}
		}
	}
}

func TestValidAssignment(t *testing.T) {
	for _, tc := range []struct {
		in         string
		key, value string
		ok         bool
	}{
		{"NO_PROXY=a,b", "NO_PROXY", "a,b", true},
		{"no_proxy=", "no_proxy", "", true},
		{"A=b=c", "A", "b=c", true},
		{"_X1=", "_X1", "", true},
		{"A=multi\nline\ttab", "A", "multi\nline\ttab", true},
		{"NOEQUALS", "", "", false},
		{"=x", "", "", false},
		{"1A=x", "", "", false},
		{"A-B=x", "", "", false},
		{"A B=x", "", "", false},
		{"A=bell\a", "", "", false},
		{"A=\xff", "", "", false},
	} {
		k, v, ok := validAssignment(tc.in)
		if k != tc.key || v != tc.value || ok != tc.ok {
			t.Errorf("validAssignment(%q) = %q, %q, %v", tc.in, k, v, ok)
		}
	}
}

func TestQuoteAssignmentRoundTrip(t *testing.T) {
	for _, v := range []string{
		"169.254.169.254,169.254.170.2,/var/run/docker.sock",
		"",
		"a b",
		`with "quotes" and 'single'`,
		`back\slash`,
		"tab\tand\nnewline",
		"%%h literal percent",
		"ünïcode",
	} {
		q := quoteAssignment("NO_PROXY", v)
		ws, err := splitEnviron(q)
		if err != nil || len(ws) != 1 || ws[0].text != "NO_PROXY="+v || !ws[0].portable || ws[0].end != len(q) {
			t.Errorf("quoteAssignment(%q) = %s reads back as %+v, %v", v, q, ws, err)
		}
	}
	if got := quoteAssignment("NO_PROXY", "a,b"); got != `"NO_PROXY=a,b"` {
		t.Errorf("plain value quoted as %s, want the AWS documentation's form", got)
	}
}

func FuzzSplitEnviron(f *testing.F) {
	for _, s := range []string{`"NO_PROXY=a,b" X=1`, `A="x y"z`, `A=\x41 'B=\n'`, `A=1 "B`, `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ws, _ := splitEnviron(s)
		prev := 0
		for _, w := range ws {
			if w.start < prev || w.end <= w.start || w.end > len(s) {
				t.Fatalf("bad span %d..%d in %q", w.start, w.end, s)
			}
			prev = w.end
			// Re-splitting a word's raw bytes gives the same word.
			again, err := splitEnviron(s[w.start:w.end])
			if err != nil || len(again) != 1 || again[0].text != w.text {
				t.Fatalf("raw %q of %q re-splits as %+v, %v", s[w.start:w.end], s, again, err)
			}
			// Quoting a valid assignment reads back as the assignment.
			if k, v, ok := validAssignment(w.text); ok {
				q := quoteAssignment(k, v)
				back, err := splitEnviron(q)
				if err != nil || len(back) != 1 || back[0].text != w.text {
					t.Fatalf("quoteAssignment of %q = %s reads back as %+v, %v", w.text, q, back, err)
				}
			}
		}
	})
}
