package netfilter

import (
	"fmt"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// A rule that matters which the kernel reader cannot print sends the read
// to the binaries, and says so through OnFallback; a plain ruleset does
// not.
func TestReaderFallbackIsReported(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Run(t, func() {
			e := newNS(t, nsConfig(t, b, false))
			var got []string
			e.OnFallback(func(backend, reason string, err error) { got = append(got, backend+" "+reason) })
			e.Check(ctx(t))
			if len(got) != 0 {
				t.Errorf("fall-backs on a plain ruleset: %v", got)
			}
			// A rule that may be ours (its bytes hold 169.254.170.2) must be
			// printed; the owner match is not something the readers print.
			nstest.Sh(t, b.Iptables+" -t nat -I OUTPUT -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -m owner --uid-owner 0 -j REDIRECT --to-ports 51679")
			e.Check(ctx(t))
			want := fmt.Sprintf("%s %s", b.Name, FallbackUnprintable)
			if len(got) == 0 || got[0] != want {
				t.Errorf("fall-backs %v, want %q", got, want)
			}
		})
	})
}
