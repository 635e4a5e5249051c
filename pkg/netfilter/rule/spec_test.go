package rule

import (
	"reflect"
	"testing"
)

func TestTokenize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`-p tcp  --dport 80`, []string{"-p", "tcp", "--dport", "80"}},
		{`-m comment --comment "hello \"world\" x" -j ACCEPT`, []string{"-m", "comment", "--comment", `hello "world" x`, "-j", "ACCEPT"}},
		{`-m comment --comment 'a b'`, []string{"-m", "comment", "--comment", "a b"}},
		{`--comment ""`, []string{"--comment", ""}},
		{"-j DROP\r", []string{"-j", "DROP"}},
	} {
		got, err := tokenize(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("tokenize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := tokenize(`--comment "open`); err == nil {
		t.Error("unterminated quote: want an error")
	}
}

// Spellings of the same rule: what ecs-init types, what legacy and nft
// print, and what older versions or hand-written files contain.
func TestRuleKeySameMeaning(t *testing.T) {
	groups := [][]string{
		{
			"-p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
			"-d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
			"--protocol tcp --destination 169.254.170.2/255.255.255.255 -m tcp --destination-port 80 --jump DNAT --to-destination 127.0.0.1:51679",
			"-p 6 --dst 169.254.170.2 -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
			"-s 0.0.0.0/0 -d 169.254.170.2/32 -i + -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
		},
		{
			"--dst 127.0.0.0/8 ! --src 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
			"! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
			"-d 127.0.0.1/8 -s ! 127.0.0.0/8 -m conntrack --ctstate ! ESTABLISHED,DNAT,RELATED -j DROP",
		},
		{
			"-p tcp --dport 51678 ! -i lo -j DROP",
			"! -i lo -p tcp -m tcp --dport 51678 -j DROP",
			"-p tcp -m tcp ! -i lo --dport 51678 -j DROP",
		},
		{
			"-i docker+ -d 169.254.169.254/32 -j DROP",
			"-d 169.254.169.254/32 -i docker+ -j DROP",
		},
		{
			"-p tcp --dport 51678 ! -i lo -j DROP -m comment --comment x",
			"! -i lo -p tcp -m comment --comment x -m tcp --dport 51678 -j DROP",
		},
	}
	keys := map[string]int{}
	for gi, g := range groups {
		for _, s := range g {
			k, _, err := Key(s, false)
			if err != nil {
				t.Fatalf("ruleKey(%q): %v", s, err)
			}
			if prev, ok := keys[k]; ok && prev != gi {
				t.Errorf("%q has the key of group %d: %q", s, prev, k)
			}
			keys[k] = gi
			first, _, _ := Key(g[0], false)
			if k != first {
				t.Errorf("%q\n  key %q\n want %q (same meaning as %q)", s, k, first, g[0])
			}
		}
	}
}

// Rules that look like ours but are not: each must get a different key.
func TestRuleKeyDifferentMeaning(t *testing.T) {
	ours := "-p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679"
	k0, _, _ := Key(ours, false)
	for _, s := range []string{
		"-p tcp -d 169.254.170.2 --dport 8080 -j DNAT --to-destination 127.0.0.1:51679",
		"-p tcp -d 169.254.170.3 --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
		"-p tcp -d 169.254.170.0/24 --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
		"-p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51680",
		"-p udp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
		"-p tcp ! -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
		"-p tcp -d 169.254.170.2 ! --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
		"-p tcp -d 169.254.170.2 --dport 80 -j ACCEPT",
		"-p tcp -d 169.254.170.2 --dport 80 -m comment --comment ecs -j DNAT --to-destination 127.0.0.1:51679",
		"-i eth0 -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
		"-p tcp -d 169.254.170.2 --dport 80 -g DNAT",
	} {
		k, _, err := Key(s, false)
		if err != nil {
			t.Fatalf("ruleKey(%q): %v", s, err)
		}
		if k == k0 {
			t.Errorf("%q got the key of our rule %q", s, ours)
		}
	}
}

// FuzzRuleKey: parsing never panics, and the key is a fixed point (the
// key of a key is itself), so printing is stable.
func FuzzRuleKey(f *testing.F) {
	for _, s := range []string{
		"-p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
		"! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
		`-m comment --comment "a \"b\"" -m multiport --dports 1:2,3 -j RETURN`,
		"-s ! 1.2.3.4 --ctstate ! NEW",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, _, err := Key(s, false)
		if err != nil {
			return
		}
		k2, _, err := Key(k, false)
		if err != nil {
			t.Fatalf("key %q of %q does not parse: %v", k, s, err)
		}
		if k2 != k {
			t.Fatalf("key not stable: %q -> %q -> %q", s, k, k2)
		}
	})
}
