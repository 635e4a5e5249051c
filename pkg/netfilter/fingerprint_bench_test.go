package netfilter

import (
	"testing"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// BenchmarkFingerprint is the legacy poller's cost per poll_interval on a
// compliant host.
func BenchmarkFingerprint(b *testing.B) {
	be := nstest.Backends[1]
	nstest.Run(b, func() {
		e := newNS(b, nsConfig(b, be, false))
		e.Apply(ctx(b), false, nil)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := e.Fingerprint(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
