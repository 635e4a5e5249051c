package nstest

import (
	"fmt"
	"strings"
)

// MixedRules is an iptables-restore file with n foreign rules, the worst
// case for the reconcile: half in filter INPUT, a quarter in nat PREROUTING
// (each naming a destination, so the shadow scan before our DNAT parses
// them all), a quarter in a user chain FOO that is never read. The package
// benchmarks and `make bench` load the same rules, so their figures compare.
func MixedRules(n int) string {
	var s strings.Builder
	ip := func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i/65536%256, i/256%256, i%256) }
	s.WriteString("*nat\n")
	for i := 0; i < n/4; i++ {
		fmt.Fprintf(&s, "-A PREROUTING -d %s/32 -p tcp -m tcp --dport %d -j DNAT --to-destination 10.0.0.1:80\n", ip(i), i%60000+1)
	}
	s.WriteString("COMMIT\n*filter\n:FOO - [0:0]\n")
	for i := 0; i < n/2; i++ {
		fmt.Fprintf(&s, "-A INPUT -s %s/32 -p tcp -m tcp --dport %d -j ACCEPT\n", ip(i), i%60000+1)
	}
	for i := 0; i < n-n/2-n/4; i++ {
		fmt.Fprintf(&s, "-A FOO -s %s/32 -j RETURN\n", ip(i))
	}
	s.WriteString("COMMIT\n")
	return s.String()
}
