package netfilter

import (
	"testing"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// BenchmarkFingerprint is the legacy poller's cost per poll_interval on a
// compliant host: shape (every poll) and deep (every few polls).
func BenchmarkFingerprint(b *testing.B) {
	be := nstest.Backends[1]
	for _, deep := range []bool{false, true} {
		name := "shape"
		if deep {
			name = "deep"
		}
		b.Run(name, func(b *testing.B) {
			nstest.Run(b, func() {
				e := newNS(b, nsConfig(b, be, false))
				e.Apply(ctx(b), false, nil)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, _, err := e.Fingerprint(deep); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
