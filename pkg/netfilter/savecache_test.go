package netfilter

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// countingTool puts a script at dir/name that counts its runs in
// dir/name.count and execs the real binary.
func countingTool(t *testing.T, dir, name, real string) (path string, runs func() int) {
	t.Helper()
	realPath, err := exec.LookPath(real)
	if err != nil {
		t.Skipf("%s: %v", real, err)
	}
	path = filepath.Join(dir, name)
	count := path + ".count"
	script := "#!/bin/sh\necho run >> " + count + "\nexec " + realPath + " \"$@\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "run")
	}
}

// On a legacy host a steady reconcile runs no process: the IPv6 rules and
// the other backend's rules are read again only when the kernel shows a
// change, and a change is always seen.
func TestSaveCacheLegacy(t *testing.T) {
	b := nstest.Backends[1]
	nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip6tables-legacy-save", "iptables-nft-save", "ip")
	nstest.Run(t, func() {
		nstest.Sh(t, "ip link set lo up")
		e := newNS(t, nsConfig(t, b, false))
		if e.v6 == nil || e.oth == "" {
			t.Fatalf("want ip6tables and the other backend: v6 %v oth %q", e.v6, e.oth)
		}
		if fs, _ := e.Apply(ctx(t), false, nil); !finding.Compliant(fs) {
			t.Fatalf("apply: %+v", fs)
		}
		dir := t.TempDir()
		var v6Runs, othRuns func() int
		e.v6.save, v6Runs = countingTool(t, dir, "ip6tables-legacy-save", "ip6tables-legacy-save")
		e.read6, e.nft6 = e.newReader(*e.v6, true) // the production reader, with the counting binary
		e.oth, _ = countingTool(t, dir, "iptables-nft", "iptables-nft")
		_, othRuns = countingTool(t, dir, "iptables-nft-save", "iptables-nft-save")

		check := func(what string) []finding.Finding {
			t.Helper()
			fs := e.Check(ctx(t))
			for _, f := range fs {
				if f.Status == finding.Error {
					t.Fatalf("%s: %+v", what, f)
				}
			}
			return fs
		}
		for i := 0; i < 3; i++ {
			check("steady")
		}
		if v6Runs() != 1 || othRuns() != 1 {
			t.Fatalf("3 steady checks ran ip6tables-legacy-save %d and iptables-nft-save %d times, want 1 and 1", v6Runs(), othRuns())
		}

		// Traffic moves counters only: still cached.
		nstest.Sh(t, "ip6tables-legacy -A OUTPUT -d ::1 -j ACCEPT")
		check("after a foreign IPv6 rule")
		n := v6Runs()
		if n != 2 {
			t.Fatalf("a new IPv6 rule: ip6tables-legacy-save ran %d times in all, want 2", n)
		}
		for i := 0; i < 3; i++ {
			if c, err := net.DialTimeout("tcp", "[::1]:1", 100*time.Millisecond); err == nil {
				c.Close()
			}
		}
		if out := strings.Fields(nstest.Sh(t, "ip6tables-legacy -v -x -n -L OUTPUT 1")); len(out) == 0 || out[0] == "0" {
			t.Fatalf("no traffic went through the IPv6 rule, the test proves nothing: %v", out)
		}
		check("after traffic")
		if v6Runs() != n {
			t.Fatalf("packet counters alone made ip6tables-legacy-save run again")
		}

		// Our IPv6 rule deleted: seen at once.
		nstest.Sh(t, "ip6tables-legacy -D INPUT -p tcp --dport 51678 ! -i lo -j DROP")
		if f := findingOf(check("after deleting our IPv6 rule"), ItemIntrospectionBlock); f.Status != finding.Drift {
			t.Fatalf("our IPv6 rule deleted, %s is %s: %s", ItemIntrospectionBlock, f.Status, f.Detail)
		}

		// A rule for 169.254.170.2 in the nf_tables backend: seen at once.
		nstest.Sh(t, "iptables-nft -t nat -A OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679")
		f := findingOf(check("after an nft rule"), ItemOtherBackend)
		if !f.Warned() || !strings.Contains(f.Detail, "169.254.170.2") {
			t.Fatalf("a rule in the other backend was not reported: %+v", f)
		}
		if othRuns() != 2 {
			t.Fatalf("iptables-nft-save ran %d times in all, want 2", othRuns())
		}
	})
}
