package sysctl

import "testing"

func TestKeyPath(t *testing.T) {
	for in, want := range map[string]string{
		"net.ipv4.conf.all.route_localnet":     "net/ipv4/conf/all/route_localnet",
		"net/ipv4/conf/all/route_localnet":     "net/ipv4/conf/all/route_localnet",
		"net.ipv4.conf.enp3s0/200.forwarding":  "net/ipv4/conf/enp3s0.200/forwarding",
		"net/ipv4/conf/enp3s0.200/forwarding":  "net/ipv4/conf/enp3s0.200/forwarding",
		"kernel":                               "kernel",
		"net.ipv4.conf.default.route_localnet": "net/ipv4/conf/default/route_localnet",
	} {
		if got := keyPath(in); got != want {
			t.Errorf("keyPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDesired(t *testing.T) {
	fresh := Header + PersistLine + "\n"
	for _, tc := range []struct {
		name, in string
		exists   bool
		want     string // "" = already right
		action   string
	}{
		{"missing", "", false, fresh, "created file"},
		{"empty", "", true, fresh, "created file"},
		{"ours", fresh, true, "", ""},
		{"compact form", "net.ipv4.conf.all.route_localnet=1\n", true, "", ""},
		{"slash form", "net/ipv4/conf/all/route_localnet = 1\n", true, "", ""},
		{"dash prefix", "-net.ipv4.conf.all.route_localnet = 1\n", true, "", ""},
		{"value spaces", "net.ipv4.conf.all.route_localnet =   1  \n", true, "", ""},
		{"user lines kept, ours appended",
			"# mine\nvm.swappiness = 10\n", true,
			"# mine\nvm.swappiness = 10\n" + PersistLine + "\n", "appended line 3"},
		{"no final newline",
			"vm.swappiness = 10", true,
			"vm.swappiness = 10\n" + PersistLine + "\n", "appended line 2"},
		{"CRLF style kept",
			"vm.swappiness = 10\r\n", true,
			"vm.swappiness = 10\r\n" + PersistLine + "\r\n", "appended line 2"},
		{"zero rewritten in place",
			"a = 1\nnet.ipv4.conf.all.route_localnet = 0\nb = 2\n", true,
			"a = 1\n" + PersistLine + "\nb = 2\n", "rewrote line 2"},
		{"last one wins: the later 0 is rewritten",
			PersistLine + "\nnet/ipv4/conf/all/route_localnet=0", true,
			PersistLine + "\n" + PersistLine, "rewrote line 2"},
		{"earlier 0 overridden by later 1", "net.ipv4.conf.all.route_localnet = 0\n" + PersistLine + "\n", true, "", ""},
		{"comments do not count",
			"# net.ipv4.conf.all.route_localnet = 1\n; net.ipv4.conf.all.route_localnet = 1\n", true,
			"# net.ipv4.conf.all.route_localnet = 1\n; net.ipv4.conf.all.route_localnet = 1\n" + PersistLine + "\n", "appended line 3"},
		{"glob and other interfaces do not count",
			"net.ipv4.conf.*.route_localnet = 1\nnet.ipv4.conf.default.route_localnet = 1\n", true,
			"net.ipv4.conf.*.route_localnet = 1\nnet.ipv4.conf.default.route_localnet = 1\n" + PersistLine + "\n", "appended line 3"},
		{"non-UTF-8 kept", "x = \xff\n", true, "x = \xff\n" + PersistLine + "\n", "appended line 2"},
	} {
		got, ok := desired(tc.in, tc.exists)
		if (tc.want == "") != !ok || got.content != tc.want || got.action != tc.action {
			t.Errorf("%s: got %q %q (%v), want %q %q", tc.name, got.content, got.action, ok, tc.want, tc.action)
		}
		if ok {
			if _, again := desired(got.content, true); again {
				t.Errorf("%s: the repaired file still needs a repair", tc.name)
			}
		}
	}
}

func TestSplitJoinRoundTrip(t *testing.T) {
	for _, s := range []string{"", "a", "a\n", "a\r\nb", "\r\n\n\r", "x\ry\n"} {
		if got := joinLines(splitLines(s)); got != s {
			t.Errorf("round trip %q -> %q", s, got)
		}
	}
}
