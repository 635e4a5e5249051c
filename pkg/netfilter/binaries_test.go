package netfilter

import "testing"

func TestDeriveTool(t *testing.T) {
	for _, tc := range []struct{ bin, fam, suf, want string }{
		{"iptables", "iptables", "-save", "iptables-save"},
		{"iptables-nft", "iptables", "-restore", "iptables-nft-restore"},
		{"iptables-legacy", "ip6tables", "", "ip6tables-legacy"},
		{"/usr/sbin/iptables", "ip6tables", "-save", "/usr/sbin/ip6tables-save"},
		{"/sbin/iptables-nft", "iptables", "-save", "/sbin/iptables-nft-save"},
	} {
		if got := deriveTool(tc.bin, tc.fam, tc.suf); got != tc.want {
			t.Errorf("deriveTool(%q, %q, %q) = %q, want %q", tc.bin, tc.fam, tc.suf, got, tc.want)
		}
	}
}

func TestOtherBackendTool(t *testing.T) {
	for _, tc := range []struct{ bin, backend, want string }{
		{"iptables", backendNFT, "iptables-legacy"},
		{"iptables-nft", backendNFT, "iptables-legacy"},
		{"iptables-legacy", backendLegacy, "iptables-nft"},
		{"/usr/sbin/iptables", backendLegacy, "/usr/sbin/iptables-nft"},
	} {
		if got := otherBackendTool(tc.bin, tc.backend); got != tc.want {
			t.Errorf("otherBackendTool(%q, %q) = %q, want %q", tc.bin, tc.backend, got, tc.want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"iptables v1.8.9 (nf_tables)\n", backendNFT},
		{"iptables v1.8.9 (legacy)\n", backendLegacy},
		{"iptables v1.4.21\n", backendLegacy},
		{"ip6tables v1.8.4 (legacy)", backendLegacy},
	} {
		got, err := parseVersion(tc.out)
		if err != nil || got != tc.want {
			t.Errorf("parseVersion(%q) = %q, %v; want %q", tc.out, got, err, tc.want)
		}
	}
	if _, err := parseVersion("sh: iptables: not found"); err == nil {
		t.Error("garbage: want an error")
	}
}
