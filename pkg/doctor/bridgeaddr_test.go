package doctor

import (
	"net/netip"
	"testing"
)

func TestMatchBridge(t *testing.T) {
	names := []string{"br-1a2b", "docker0", "docker1"}
	cases := []struct {
		patterns []string
		want     string
	}{
		{[]string{"docker0"}, "docker0"},
		{[]string{"docker+"}, "docker0"},
		{[]string{"cni0", "docker1"}, "docker1"},
		{[]string{"docker1", "docker0"}, "docker1"}, // the patterns' order decides
		{[]string{"br-+"}, "br-1a2b"},
		{[]string{"+"}, "br-1a2b"},
		{[]string{"docker"}, ""}, // no wildcard: exact names only
		{nil, ""},
	}
	for _, tc := range cases {
		if got := matchBridge(tc.patterns, names); got != tc.want {
			t.Errorf("matchBridge(%q) = %q, want %q", tc.patterns, got, tc.want)
		}
	}
}

func TestProbeAddress(t *testing.T) {
	a := netip.MustParseAddr
	cases := []struct {
		bridge  string
		taken   []string
		want    string
		wantErr bool
	}{
		{"172.17.0.1/16", nil, "172.17.255.254", false},
		{"172.17.0.1/16", []string{"172.17.255.254", "172.17.255.253"}, "172.17.255.252", false},
		{"10.0.0.1/24", nil, "10.0.0.254", false},
		{"10.0.0.254/24", nil, "10.0.0.253", false}, // the bridge's own address is skipped
		{"192.168.9.1/30", nil, "192.168.9.2", false},
		{"192.168.9.1/30", []string{"192.168.9.2"}, "", true}, // only the bridge's and a taken address
		{"192.168.9.1/31", nil, "", true},
		{"172.17.0.1/16", take64("172.17.255.", 190), "", true},
	}
	for _, tc := range cases {
		taken := map[netip.Addr]bool{}
		for _, s := range tc.taken {
			taken[a(s)] = true
		}
		got, err := probeAddress(netip.MustParsePrefix(tc.bridge), taken)
		if tc.wantErr {
			if err == nil {
				t.Errorf("probeAddress(%s, %v) = %s, want an error", tc.bridge, tc.taken, got)
			}
			continue
		}
		if err != nil || got != a(tc.want) {
			t.Errorf("probeAddress(%s, %v) = %s, %v; want %s", tc.bridge, tc.taken, got, err, tc.want)
		}
	}
}

// take64 lists prefix+from .. prefix+254, the top of a subnet.
func take64(prefix string, from int) []string {
	var out []string
	for i := from; i <= 254; i++ {
		out = append(out, prefix+itoa(i))
	}
	return out
}

func itoa(i int) string { return netip.AddrFrom4([4]byte{0, 0, 0, byte(i)}).String()[6:] }

func TestProbeNames(t *testing.T) {
	if n := probeLinkName(4194303); len(n) > 15 {
		t.Fatalf("link name %q is longer than IFNAMSIZ-1", n)
	}
	for _, tc := range []struct {
		name string
		pid  int
		ok   bool
	}{{"ecsrp123", 123, true}, {"ecsrp", 0, false}, {"ecsrp0123", 0, false}, {"ecsrpx", 0, false}, {"eth0", 0, false}, {"ecsrp-1", 0, false}} {
		pid, ok := probeLinkPID(tc.name)
		if pid != tc.pid || ok != tc.ok {
			t.Errorf("probeLinkPID(%q) = %d, %v", tc.name, pid, ok)
		}
	}
	mac := pidMAC(probeMACPrefix, 4194303)
	if mac != "fe:ec:52:3f:ff:ff" {
		t.Fatalf("pidMAC = %s", mac)
	}
	if pid, ok := probeMACPID("FE:EC:52:3F:FF:FF"); !ok || pid != 4194303 {
		t.Fatalf("probeMACPID = %d, %v", pid, ok)
	}
	if _, ok := probeMACPID(pidMAC(hostMACPrefix, 1)); ok {
		t.Fatal("the host end's MAC is not a probe MAC")
	}
	if _, ok := probeMACPID("02:42:ac:11:00:02"); ok {
		t.Fatal("a container MAC is not a probe MAC")
	}
}
